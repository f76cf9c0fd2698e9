"""Every workspace package can be released by its tag, with the version of its pyproject.

`.github/workflows/release.yml` turns a tag `<folder>-v<version>` into
`./pants package packages/<folder>:dist` after checking `<version>` against the folder's
pyproject.toml. These tests keep the pieces it relies on in step, without building.
"""

from __future__ import annotations

import ast
import builtins
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The repo root, or the Pants sandbox root (which holds the same files via //:release_inputs).
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
# PEP 440 public versions (what hatchling accepts and PyPI publishes).
VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


MACROS = ROOT / "build-support/macros.py"


def _targets(package: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The targets a package's BUILD file declares, by (target type, name).

    The BUILD file is executed the way Pants executes it: after the prelude
    (build-support/macros.py, `[GLOBAL].build_file_prelude_globs`), so targets made by a macro
    are seen with the arguments the macro really passes. Target types only record their
    keyword arguments; `python_artifact(...)` evaluates to its keyword arguments.
    """
    declared: dict[tuple[str, str], dict[str, Any]] = {}

    def target_type(kind: str) -> Callable[..., None]:
        def declare(**kwargs: Any) -> None:
            declared[(kind, str(kwargs.get("name", "")))] = kwargs

        return declare

    class BuildSymbols(dict[str, Any]):
        """Every name that is not a Python builtin is a target type, as in a BUILD file."""

        def __missing__(self, key: str) -> Any:
            if hasattr(builtins, key):
                raise KeyError(key)
            return target_type(key)

    symbols = BuildSymbols(python_artifact=lambda **kwargs: kwargs)
    # The prelude's functions look target types up as globals, which must be a plain dict:
    # give them the target types the macros call, recorded like every other one.
    macro_globals: dict[str, Any] = {
        "python_artifact": symbols["python_artifact"],
        **{kind: target_type(kind) for kind in ("python_distribution", "resource")},
    }
    exec(compile(MACROS.read_text(), str(MACROS), "exec"), macro_globals)  # noqa: S102
    symbols.update({k: v for k, v in macro_globals.items() if k.islower() and callable(v)})
    build_file = package / "BUILD"
    exec(compile(build_file.read_text(), str(build_file), "exec"), {}, symbols)  # noqa: S102
    return declared


def _project(package: Path) -> dict[str, object]:
    return tomllib.loads((package / "pyproject.toml").read_text())


def test_every_workspace_package_is_found() -> None:
    assert len(PACKAGES) == 10, f"expected the 10 workspace packages, found {PACKAGES}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_dist_target_builds_from_pyproject(package: Path) -> None:
    targets = _targets(package)
    dist = targets.get(("python_distribution", "dist"))
    assert dist is not None, (
        f"{package.name}/BUILD needs a `:dist` target: call "
        "workspace_distribution(distribution=..., packages=[...]) (build-support/macros.py)"
    )
    assert dist.get("generate_setup") is False, (
        f"{package.name}:dist must set generate_setup=False so that the pyproject's own "
        "backend builds it, with the pyproject's name and version"
    )

    project = _project(package)["project"]
    assert isinstance(project, dict)
    artifact = dist.get("provides")
    assert isinstance(artifact, dict), f"{package.name}:dist needs provides=python_artifact()"
    assert set(artifact) == {"name"}, (
        f"{package.name}:dist: python_artifact takes only name= (a version there would "
        f"disagree with pyproject.toml's {project['version']!r}), got {sorted(artifact)}"
    )
    assert (
        artifact["name"] == project["name"]
    ), f"{package.name}:dist provides {artifact['name']!r}, pyproject says {project['name']!r}"

    deps = set(dist.get("dependencies", []))
    assert ":pyproject" in deps, f"{package.name}:dist must depend on :pyproject"
    pyproject_target = targets.get(("resource", "pyproject"))
    assert pyproject_target is not None, f"{package.name}/BUILD needs resource(name='pyproject')"
    assert pyproject_target.get("source") == "pyproject.toml"

    hatch = _project(package)["tool"]["hatch"]["build"]["targets"]["wheel"]  # type: ignore[index]
    for src in hatch["packages"]:
        assert (
            f"./{src}" in deps
        ), f"{package.name}:dist must depend on ./{src}, the package hatchling puts in the wheel"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_dist_block_is_not_repeated(package: Path) -> None:
    """The release targets come from the one macro, never a hand-written copy."""
    written = {
        node.value.func.id
        for node in ast.parse((package / "BUILD").read_text()).body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    }
    assert "workspace_distribution" in written, f"{package.name}/BUILD must use the macro"
    assert not written & {"python_distribution", "resource"}, (
        f"{package.name}/BUILD declares {sorted(written & {'python_distribution', 'resource'})} "
        "by hand: workspace_distribution() (build-support/macros.py) declares them"
    )


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
