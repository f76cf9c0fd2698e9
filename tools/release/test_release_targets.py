"""Every workspace package can be released by its tag, with the version of its pyproject.

`.github/workflows/release.yml` turns a tag `<folder>-v<version>` into
`./pants package packages/<folder>:dist` after checking `<version>` against the folder's
pyproject.toml. These tests keep the pieces it relies on in step, without building.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

# The repo root, or the Pants sandbox root (which holds the same files via //:release_inputs).
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
# PEP 440 public versions (what hatchling accepts and PyPI publishes).
VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def _calls(build_file: Path) -> dict[tuple[str, str], ast.Call]:
    """Top-level target calls of a BUILD file by (target type, name)."""
    calls = {}
    for node in ast.parse(build_file.read_text()).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            kwargs = {k.arg: k.value for k in call.keywords}
            name = kwargs.get("name")
            if isinstance(call.func, ast.Name) and isinstance(name, ast.Constant):
                calls[(call.func.id, name.value)] = call
    return calls


def _kwarg(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _project(package: Path) -> dict[str, object]:
    return tomllib.loads((package / "pyproject.toml").read_text())


def test_every_workspace_package_is_found() -> None:
    assert len(PACKAGES) == 8, f"expected the 8 workspace packages, found {PACKAGES}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_dist_target_builds_from_pyproject(package: Path) -> None:
    calls = _calls(package / "BUILD")
    dist = calls.get(("python_distribution", "dist"))
    assert dist is not None, f"{package.name}/BUILD needs python_distribution(name='dist')"

    generate_setup = _kwarg(dist, "generate_setup")
    assert isinstance(generate_setup, ast.Constant) and generate_setup.value is False, (
        f"{package.name}:dist must set generate_setup=False so that the pyproject's own "
        "backend builds it, with the pyproject's name and version"
    )

    project = _project(package)["project"]
    assert isinstance(project, dict)
    provides = _kwarg(dist, "provides")
    assert isinstance(provides, ast.Call), f"{package.name}:dist needs provides=python_artifact()"
    artifact = {k.arg: k.value for k in provides.keywords}
    assert set(artifact) == {"name"}, (
        f"{package.name}:dist: python_artifact takes only name= (a version there would "
        f"disagree with pyproject.toml's {project['version']!r}), got {sorted(map(str, artifact))}"
    )
    name = artifact["name"]
    assert (
        isinstance(name, ast.Constant) and name.value == project["name"]
    ), f"{package.name}:dist provides {ast.unparse(name)}, pyproject says {project['name']!r}"

    deps = _kwarg(dist, "dependencies")
    assert isinstance(deps, ast.List)
    dep_values = {d.value for d in deps.elts if isinstance(d, ast.Constant)}
    assert ":pyproject" in dep_values, f"{package.name}:dist must depend on :pyproject"
    pyproject_target = calls.get(("resource", "pyproject"))
    assert pyproject_target is not None, f"{package.name}/BUILD needs resource(name='pyproject')"
    source = _kwarg(pyproject_target, "source")
    assert isinstance(source, ast.Constant) and source.value == "pyproject.toml"

    hatch = _project(package)["tool"]["hatch"]["build"]["targets"]["wheel"]  # type: ignore[index]
    for src in hatch["packages"]:
        assert (
            f"./{src}" in dep_values
        ), f"{package.name}:dist must depend on ./{src}, the package hatchling puts in the wheel"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_release_tag_round_trips(package: Path) -> None:
    """The workflow's shell parsing of `<folder>-v<version>` gives back folder and version."""
    version = _project(package)["project"]["version"]  # type: ignore[index]
    assert isinstance(version, str) and VERSION.match(version), f"{package.name}: {version!r}"
    tag = f"{package.name}-v{version}"
    assert re.fullmatch(r".*-v[0-9].*", tag), f"{tag} must match the trigger '*-v[0-9]*'"
    # release.yml: package="${tag%-v*}" (shortest suffix), version="${tag##*-v}" (longest prefix)
    assert tag[: tag.rindex("-v")] == package.name, f"{tag}: folder names must not contain '-v'"
    assert tag[tag.rindex("-v") + 2 :] == version


def test_release_workflow_builds_the_dist_target() -> None:
    workflow = (ROOT / ".github/workflows/release.yml").read_text()
    assert '"*-v[0-9]*"' in workflow, "release.yml must trigger on <folder>-v<version> tags"
    assert './pants package "packages/${{ steps.tag.outputs.package }}:dist"' in workflow
    assert "packages/$package/pyproject.toml" in workflow, "the tag is checked against pyproject"
