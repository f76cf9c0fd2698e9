"""Structure of infra/docker-compose.yaml against the image targets and .env.example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml


def _infra_dir() -> Path:
    """infra/ in the repo or in the Pants sandbox (the test file sits in infra/tests/)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "docker-compose.yaml").is_file() and parent.name == "infra":
            return parent
    raise FileNotFoundError("infra/docker-compose.yaml not found above this test")


INFRA = _infra_dir()
REQUIRED_SERVICES = {
    "kafka",
    "minio",
    "spark-master",
    "spark-worker",
    "postgres",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}; `$$` escapes a literal `$`.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (INFRA / "docker-compose.yaml").read_text()


@pytest.fixture(scope="module")
def services(compose_text: str) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(compose_text)
    return document["services"]


def _env_example() -> dict[str, str]:
    values = {}
    for line in (INFRA / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _image_targets() -> dict[str, set[str]]:
    """repository -> tags of every docker_image target in infra/images/*/BUILD."""
    targets: dict[str, set[str]] = {}
    for build in sorted(INFRA.glob("images/*/BUILD")):
        for block in re.findall(r"docker_image\((.*?)\n\)", build.read_text(), re.S):
            repository = re.search(r'repository="([^"]+)"', block)
            tags = re.search(r"image_tags=\[([^\]]*)\]", block)
            assert repository and tags, f"{build}: docker_image without repository/image_tags"
            targets[repository.group(1)] = set(re.findall(r'"([^"]+)"', tags.group(1)))
    return targets


def test_required_services_present(services: dict[str, dict[str, Any]]) -> None:
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    without = [name for name, svc in services.items() if not svc.get("healthcheck", {}).get("test")]
    assert not without, f"services without a healthcheck test: {without}"


def test_ports_bind_to_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    exposed = [
        f"{name}: {port}"
        for name, svc in services.items()
        for port in svc.get("ports", [])
        if not str(port).startswith("127.0.0.1:")
    ]
    assert not exposed, f"ports not bound to 127.0.0.1: {exposed}"


def test_platform_images_are_pants_targets(services: dict[str, dict[str, Any]]) -> None:
    targets = _image_targets()
    assert targets, "no docker_image targets found under infra/images"
    defaults = {name: value for name, value in _env_example().items()}
    used = set()
    for name, svc in services.items():
        image = svc.get("image", "")
        repository, _, tag = image.partition(":")
        if not repository.startswith("market/"):
            continue
        used.add(repository)
        assert repository in targets, f"{name}: {repository} is not a docker_image repository"
        # ${MARKET_IMAGE_TAG:-latest}: both the default and .env.example's value are built.
        match = VARIABLE.fullmatch(tag)
        candidates = (
            {tag}
            if match is None
            else {
                tag.split(":-", 1)[1].rstrip("}") if ":-" in tag else "",
                defaults.get(match.group(1), ""),
            }
        )
        assert candidates <= targets[repository], (
            f"{name}: tag(s) {sorted(candidates)} of {repository} are not built by Pants "
            f"(image_tags: {sorted(targets[repository])})"
        )
    assert used == set(targets), f"images built but not deployed: {sorted(set(targets) - used)}"


def test_every_variable_is_documented(compose_text: str) -> None:
    used = set(VARIABLE.findall(compose_text))
    documented = set(_env_example())
    assert used, "the compose file should take its settings from the environment"
    assert not used - documented, f"not in .env.example: {sorted(used - documented)}"
    assert not documented - used, f".env.example documents unused: {sorted(documented - used)}"


def test_env_example_holds_no_secrets() -> None:
    secret_keys = [k for k in _env_example() if re.search(r"PASSWORD|SECRET|FERNET", k)]
    assert secret_keys, "expected the secret settings to be listed"
    real = [k for k in secret_keys if not _env_example()[k].startswith("replace")]
    assert not real, f"secrets in .env.example must be placeholders: {real}"
