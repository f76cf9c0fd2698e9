"""The workspace packages are separately versioned for real.

Two rules, each checked on the real tree and proven able to fail on small made-up trees:

1. Sibling ranges: a package that depends on a sibling (`market-common`, …) names the range
   of the sibling's versions it works with (`market-common>=0.1,<0.2`), and that range
   contains the sibling's version in the workspace. A bare name would let a release pair any
   two versions; a range that excludes the workspace version means the workspace itself is a
   combination no user can install.
2. Version bumps: a package whose released content (its `src/` and `pyproject.toml`) changed
   since its last release tag `<folder>-v<version>` (.github/workflows/release.yml) must
   declare a version above that tag's, or the next release would publish different code
   under a version that already exists. Without a tag the rule has nothing to compare with:
   the test says so (skip) and rule 1 still applies.

The git history is read from the checkout named by `MARKET_REPO_ROOT` (exported by `./pants`,
which also exports `MARKET_GIT_STATE` so that Pants re-runs this test when HEAD, the tags or
the working tree change), or the checkout this file is in when run by plain pytest.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

# packaging comes with pytest (its own dependency): not a requirement of this repo.
from packaging.requirements import Requirement  # pants: no-infer-dep
from packaging.version import InvalidVersion, Version  # pants: no-infer-dep

# The repo root, or the Pants sandbox root (which holds the same files via //:release_inputs).
ROOT = Path(__file__).resolve().parents[2]
# What a package's release artifacts are built from (hatchling: src/ + pyproject.toml).
RELEASED_PATHS = ("src", "pyproject.toml")


@dataclass(frozen=True)
class Package:
    """One workspace package as its pyproject.toml declares it."""

    folder: str
    name: str
    version: Version
    requires: tuple[Requirement, ...]


def workspace_packages(root: Path) -> dict[str, Package]:
    """Every `packages/*/pyproject.toml` under `root`, by distribution name."""
    found = {}
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        found[project["name"]] = Package(
            folder=pyproject.parent.name,
            name=project["name"],
            version=Version(project["version"]),
            requires=tuple(Requirement(r) for r in project.get("dependencies", [])),
        )
    return found


def sibling_range_violations(packages: dict[str, Package]) -> list[str]:
    """Rule 1: each dependency on a sibling has a range, and it holds the sibling's version."""
    violations = []
    for package in packages.values():
        for req in package.requires:
            sibling = packages.get(req.name)
            if sibling is None:
                continue
            if not req.specifier:
                violations.append(
                    f"{package.name} requires {req.name} with no version range: declare the "
                    f"versions it works with, e.g. '{req.name}>={sibling.version.major}."
                    f"{sibling.version.minor},<{sibling.version.major}."
                    f"{sibling.version.minor + 1}'"
                )
            elif not req.specifier.contains(sibling.version, prereleases=True):
                violations.append(
                    f"{package.name} requires '{req}', which excludes the workspace's "
                    f"{req.name} {sibling.version}: widen the range in "
                    f"packages/{package.folder}/pyproject.toml (after checking it works "
                    f"with {sibling.version})"
                )
    return violations


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def last_release(repo: Path, folder: str) -> Version | None:
    """The highest version among the tags `<folder>-v<version>`, or None without any."""
    listed = _git(repo, "tag", "--list", f"{folder}-v*")
    if listed.returncode != 0:
        raise RuntimeError(f"git tag --list failed in {repo}: {listed.stderr.strip()}")
    versions = []
    for tag in listed.stdout.split():
        try:
            versions.append(Version(tag[len(folder) + 2 :]))
        except InvalidVersion:
            continue  # e.g. `ingest-v2-draft`: not a release tag of the workflow
    return max(versions, default=None)


def unbumped_change(repo: Path, package: Package, released: Version) -> str | None:
    """Rule 2 for one package against its last release: None when it holds, else why not.

    Compares the tag with the working tree (committed or not), so an edit is caught before
    it is committed.
    """
    tag = f"{package.folder}-v{released}"
    paths = [f"packages/{package.folder}/{p}" for p in RELEASED_PATHS]
    diff = _git(repo, "diff", "--name-only", tag, "--", *paths)
    if diff.returncode != 0:
        raise RuntimeError(f"git diff against {tag} failed in {repo}: {diff.stderr.strip()}")
    changed = diff.stdout.split()
    if package.version < released:
        return f"{package.name} is at {package.version}, below its release tag {tag}"
    if changed and package.version == released:
        return (
            f"{package.name} changed since {tag} ({', '.join(changed[:5])}"
            f"{', …' if len(changed) > 5 else ''}) but still says version {released}: bump "
            f"project.version in packages/{package.folder}/pyproject.toml (and the sibling "
            "ranges that should accept it)"
        )
    return None


def _repo_root() -> Path | None:
    """The git checkout to read history from, or None (e.g. a Pants sandbox without it)."""
    for candidate in (os.environ.get("MARKET_REPO_ROOT"), str(ROOT)):
        if candidate and _git(Path(candidate), "rev-parse", "--git-dir").returncode == 0:
            return Path(candidate)
    return None


PACKAGES = workspace_packages(ROOT)


def test_sibling_ranges_hold_the_workspace_versions() -> None:
    assert len(PACKAGES) == 10, f"expected the 10 workspace packages, found {sorted(PACKAGES)}"
    violations = sibling_range_violations(PACKAGES)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("package", PACKAGES.values(), ids=lambda p: p.folder)
def test_no_change_without_a_version_bump_since_release(package: Package) -> None:
    repo = _repo_root()
    if repo is None:
        pytest.skip("no git checkout reachable (set MARKET_REPO_ROOT): version bumps unchecked")
    released = last_release(repo, package.folder)
    if released is None:
        pytest.skip(
            f"no release tag {package.folder}-v<version> yet: only the sibling-range rule "
            f"applies to {package.name}"
        )
    violation = unbumped_change(repo, package, released)
    assert violation is None, violation


# ---- the rules can fail: small made-up workspaces -------------------------------------


def _write_package(root: Path, folder: str, version: str, deps: list[str]) -> None:
    pkg = root / "packages" / folder
    (pkg / "src").mkdir(parents=True, exist_ok=True)
    quoted = ", ".join(f'"{d}"' for d in deps)
    (pkg / "pyproject.toml").write_text(
        f'[project]\nname = "market-{folder}"\nversion = "{version}"\ndependencies = [{quoted}]\n'
    )


def test_range_rule_fails_on_a_bare_or_excluding_range(tmp_path: Path) -> None:
    _write_package(tmp_path, "common", "0.2.0", [])
    _write_package(tmp_path, "ingest", "0.1.0", ["market-common>=0.1,<0.2", "pyarrow"])
    _write_package(tmp_path, "spark", "0.1.0", ["market-common"])
    _write_package(tmp_path, "load", "0.1.0", ["market-common>=0.2,<0.3"])

    violations = sibling_range_violations(workspace_packages(tmp_path))

    assert len(violations) == 2, violations
    assert "market-ingest requires 'market-common<0.2,>=0.1'" in violations[0]
    assert "excludes the workspace's market-common 0.2.0" in violations[0]
    assert "market-spark requires market-common with no version range" in violations[1]
    assert "'market-common>=0.2,<0.3'" in violations[1], "the message suggests a range"


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    done = _git(repo, *identity, "commit", "-qm", message)
    assert done.returncode == 0, done.stderr


def test_bump_rule_on_a_temporary_git_repo(tmp_path: Path) -> None:
    assert _git(tmp_path, "init", "-q").returncode == 0
    _write_package(tmp_path, "common", "0.1.0", [])
    code = tmp_path / "packages/common/src/thing.py"
    code.write_text("ANSWER = 41\n")
    readme = tmp_path / "packages/common/README.md"
    readme.write_text("docs\n")
    _commit(tmp_path, "first")

    assert last_release(tmp_path, "common") is None, "no tag yet: nothing to compare with"

    _git(tmp_path, "tag", "common-v0.1.0")
    _git(tmp_path, "tag", "common-v0.0.9")
    _git(tmp_path, "tag", "common-v-draft")  # not a version: ignored
    released = last_release(tmp_path, "common")
    assert released == Version("0.1.0")
    package = workspace_packages(tmp_path)["market-common"]
    assert unbumped_change(tmp_path, package, released) is None, "nothing changed yet"

    readme.write_text("more docs\n")
    _commit(tmp_path, "docs only")
    assert unbumped_change(tmp_path, package, released) is None, "README is not released"

    code.write_text("ANSWER = 42\n")  # not even committed: caught before the commit
    violation = unbumped_change(tmp_path, package, released)
    assert violation is not None and "packages/common/src/thing.py" in violation, violation
    assert "still says version 0.1.0" in violation

    _write_package(tmp_path, "common", "0.1.1", [])
    bumped = workspace_packages(tmp_path)["market-common"]
    assert unbumped_change(tmp_path, bumped, released) is None, "the bump settles it"

    _write_package(tmp_path, "common", "0.0.1", [])
    lowered = workspace_packages(tmp_path)["market-common"]
    violation = unbumped_change(tmp_path, lowered, released)
    assert violation is not None and "below its release tag common-v0.1.0" in violation
