"""Structure of infra/docker-compose.yaml against the image targets and .env.example."""

from __future__ import annotations

import os
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


# --- Issue #16: the compose stack comes up (every finding has a regression test below) ---

REPO = INFRA.parent
# ${NAME} with no `:-default` and no `:?error`: compose substitutes "" when it is unset.
UNGUARDED = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _dockerfile_default(image: str, instruction: str) -> list[str]:
    """ENTRYPOINT / CMD of ``market/<name>`` from its Dockerfile (exec form)."""
    import json

    dockerfile = INFRA / "images" / image.split("/", 1)[1] / "Dockerfile"
    for line in reversed(dockerfile.read_text().splitlines()):
        if line.startswith(f"{instruction} "):
            return list(json.loads(line.split(" ", 1)[1]))
    return []


def _argv(svc: dict[str, Any]) -> list[str]:
    """The argv a platform service's container runs: entrypoint + command, image defaults."""
    image = svc["image"].split(":", 1)[0]
    entrypoint = svc.get("entrypoint", _dockerfile_default(image, "ENTRYPOINT"))
    command = svc.get(
        "command", _dockerfile_default(image, "CMD") if "entrypoint" not in svc else []
    )
    return [*entrypoint, *command]


def _console_scripts() -> dict[str, str]:
    """console script → ``module:attr``, from every workspace package's pyproject.toml."""
    import tomllib

    scripts: dict[str, str] = {}
    for pyproject in sorted(REPO.glob("packages/*/pyproject.toml")):
        scripts |= tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {})
    return scripts


def _parse_with_real_cli(argv: list[str]) -> None:
    """Parse ``argv`` with the CLI it names, exactly as it would at start-up (no execution)."""
    import importlib

    import typer  # pants: no-infer-dep (ambiguous owner; BUILD names one)

    script, args = argv[0], argv[1:]
    if script == "airflow":
        from airflow.cli.cli_parser import get_parser

        get_parser().parse_args(args)
        return
    module_name, _, attr = _console_scripts()[script].partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attr)
    # A script may point at a `main()` wrapper around the module's Typer `app`.
    app = target if isinstance(target, typer.Typer) else getattr(module, "app", None)
    assert isinstance(app, typer.Typer), f"{script}: no typer app found in {module_name}"
    command: Any = typer.main.get_command(app)
    ctx = command.make_context(script, list(args))

    def pending(ctx: Any) -> list[str]:
        # The sub-command and its arguments (click < 8.2 names it protected_args).
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:
            protected = getattr(ctx, "protected_args", [])
        return [*protected, *ctx.args]

    # Descend into sub-commands so their options are parsed too (duck-typed: typer >= 0.2x
    # vendors its own click, whose Group is not `click.Group`).
    while hasattr(command, "resolve_command") and pending(ctx):
        name, sub, rest = command.resolve_command(ctx, pending(ctx))
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub


def _platform_commands(services: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    commands = []
    for name, svc in services.items():
        if not svc.get("image", "").startswith("market/"):
            continue
        argv = _argv(svc)
        if not argv[0].startswith("/opt/market/spark/bin/"):  # Spark's own daemons (Java)
            commands.append((name, argv))
        health = svc.get("healthcheck", {}).get("test", [])
        if health[:1] == ["CMD"] and health[1] in {*_console_scripts(), "airflow"}:
            commands.append((f"{name} (healthcheck)", health[1:]))
    return commands


def test_every_service_command_parses_with_the_real_cli(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Finding: the realtime producer ran `stream --pace wall`; the flag is `--clock`."""
    import click  # pants: no-infer-dep (comes with typer)
    import typer  # pants: no-infer-dep (ambiguous owner; BUILD names one)

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path}/a.db")
    usage_errors = (click.ClickException, typer.TyperException)
    with pytest.raises(usage_errors, match="--pace"):
        _parse_with_real_cli(["market-ingest", "stream", "--pace", "wall"])  # the old command
    commands = _platform_commands(services)
    assert {"realtime-producer", "spark-streaming", "airflow-scheduler"} <= {n for n, _ in commands}
    failures = []
    for name, argv in commands:
        try:
            _parse_with_real_cli(argv)
        except (click.exceptions.Exit, typer.Exit, SystemExit) as exc:
            code = exc.code if isinstance(exc, SystemExit) else exc.exit_code
            if code not in (0, None):  # `--help` (healthchecks) exits 0 after printing
                failures.append(f"{name}: {' '.join(argv)} → exit {code}")
        except usage_errors as exc:
            failures.append(f"{name}: {' '.join(argv)} → {exc}")
    assert not failures, "commands their CLI rejects:\n" + "\n".join(failures)


def _service_environments(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        name: {str(k): str(v) for k, v in (svc.get("environment") or {}).items()}
        for name, svc in services.items()
    }


def test_every_market_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    from market_common.settings import ENV_PREFIX, MarketSettings
    from market_dags.config import DAGS_ENV_PREFIX, DeploymentSettings
    from market_dags.forwarding import model_variables

    known = {v.name for v in model_variables(MarketSettings, prefix=ENV_PREFIX)}
    known |= {v.name for v in model_variables(DeploymentSettings, prefix=DAGS_ENV_PREFIX)}
    known.add(f"{ENV_PREFIX}STATE_DIR")  # read by default_state_dir(), before the model
    unknown = sorted(
        f"{service}: {key}"
        for service, env in _service_environments(services).items()
        for key in env
        if key.startswith(ENV_PREFIX) and key not in known
    )
    assert not unknown, f"MARKET_* variables no settings model reads: {unknown}"


def test_market_settings_validate_with_the_compose_values(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values (after substituting .env.example) parse: enums, ints, JSON dicts."""
    from market_common.settings import MarketSettings
    from market_dags.config import DeploymentSettings

    example = _env_example()

    def substitute(value: str) -> str:
        return VARIABLE.sub(lambda m: example.get(m.group(1), "x"), value)

    env = _service_environments(services)["airflow-scheduler"]
    for key in [k for k in os.environ if k.startswith("MARKET_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("MARKET_"):
            monkeypatch.setenv(key, substitute(value))
    settings = MarketSettings()
    deployment = DeploymentSettings()
    assert settings.s3.endpoint_url == "http://minio:9000"
    assert deployment.runner.kind.value == "docker"
    assert deployment.runner.secret_files, "key files are mounted into the step containers"
    assert settings.snowflake.private_key_path is not None and settings.snowflake.password is None


def test_connection_uri_drivers_are_in_their_image(services: dict[str, dict[str, Any]]) -> None:
    """Finding: airflow-init used postgresql+psycopg2, but no psycopg2 was in the image."""
    import importlib.metadata

    from sqlalchemy.engine import make_url  # pants: no-infer-dep (comes with Airflow)

    checked = 0
    for name, env in _service_environments(services).items():
        image = services[name].get("image", "")
        for key, value in env.items():
            if "://" not in value or "+" not in value.split("://", 1)[0]:
                continue
            url = make_url(VARIABLE.sub("x", value))
            dbapi = url.get_dialect().import_dbapi()  # imports the driver module
            dists = importlib.metadata.packages_distributions()[dbapi.__name__.split(".")[0]]
            build = (INFRA / "images" / image.split(":")[0].split("/")[1] / "BUILD").read_text()
            assert any(
                f"#{d}" in build for d in dists
            ), f"{name}: {key} needs {dists} ({url.drivername}), not a dependency of {image}"
            checked += 1
    assert checked, "the Airflow metadata URI was checked"


def test_required_secrets_are_guarded(compose_text: str) -> None:
    """Finding: `${…}` without `:?` accepted empty secrets; every variable needs a default or a guard."""
    unguarded = sorted(set(UNGUARDED.findall(compose_text)))
    assert not unguarded, f"variables without :-default or :?error: {unguarded}"


def test_docker_runner_has_socket_network_and_provider(services: dict[str, dict[str, Any]]) -> None:
    """Finding: runner kind docker without the provider, the Docker socket or a shared network."""
    scheduler = services["airflow-scheduler"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in scheduler.get("volumes", [])
    env = _service_environments(services)["airflow-scheduler"]
    assert env["MARKET_DAGS__RUNNER__KIND"] == "docker"
    document = yaml.safe_load((INFRA / "docker-compose.yaml").read_text())
    assert env["MARKET_DAGS__RUNNER__NETWORK_MODE"] == document["networks"]["default"]["name"]
    build = (INFRA / "images" / "airflow" / "BUILD").read_text()
    assert "reqs#apache-airflow-providers-docker" in build


def test_streaming_service_has_its_own_checkpoint(services: dict[str, dict[str, Any]]) -> None:
    """Finding: the long-running streaming service and the DAG's streaming task shared one checkpoint."""
    from market_common.settings import MarketSettings

    argv = _argv(services["spark-streaming"])
    _parse_with_real_cli(argv)  # the flag below is one the real CLI accepts
    checkpoint = argv[argv.index("--checkpoint") + 1]
    dag_checkpoint = MarketSettings().s3.uri(MarketSettings().s3.checkpoint_prefix)
    assert checkpoint and checkpoint.rstrip("/") != dag_checkpoint
    assert not checkpoint.startswith(dag_checkpoint + "/realtime")


def test_loader_and_dbt_use_their_own_key_pair_users(services: dict[str, dict[str, Any]]) -> None:
    """Finding: compose gave dbt the loader's user and passed passwords to key-pair users."""
    env = _service_environments(services)["airflow-scheduler"]
    assert "MARKET_SNOWFLAKE__PASSWORD" not in env and "SNOWFLAKE_PASSWORD" not in _env_example()
    assert env["MARKET_SNOWFLAKE__USER"] != env["MARKET_DBT__SNOWFLAKE_USER"]
    assert (
        env["MARKET_SNOWFLAKE__PRIVATE_KEY_PATH"] != env["MARKET_DBT__SNOWFLAKE_PRIVATE_KEY_PATH"]
    )
    profiles = (REPO / "dbt" / "profiles.yml").read_text()
    assert "MARKET_DBT__SNOWFLAKE_USER" in profiles, "dbt's profile reads its own user"


def test_s3_clients_do_not_use_minio_root(services: dict[str, dict[str, Any]]) -> None:
    for name, env in _service_environments(services).items():
        if name != "minio-init" and name != "minio":
            assert "MINIO_ROOT" not in " ".join(env.values()), f"{name} gets MinIO's root account"
