"""Locating the external tools the stack needs (java, mvn, go) and the shared cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from market_common.runtime import file_lock
from market_devstack.errors import ArtifactResolutionError, PrerequisiteMissingError

if TYPE_CHECKING:
    from rich.console import Console

MIN_JAVA = 17
MIN_GO = (1, 24)


def cache_root() -> Path:
    """``~/.cache/market-platform`` (``$XDG_CACHE_HOME`` respected): built/downloaded binaries."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "market-platform"


def _which(name: str, *extra_dirs: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@lru_cache(maxsize=1)
def find_java() -> str:
    """A ``java`` of version >= 17 (``$JAVA_HOME`` first, then PATH)."""
    candidates: list[str] = []
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(java_home) / "bin" / "java"))
    if found := _which("java", "/usr/bin", "/usr/local/bin"):
        candidates.append(found)
    fix = (
        "install a JDK/JRE 17 or newer (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)"
        " and put `java` on PATH or set JAVA_HOME"
    )
    for java in candidates:
        if not Path(java).is_file():
            continue
        major = _java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java
        fix = f"{java} is Java {major}; Kafka needs Java {MIN_JAVA}+. " + fix
    raise PrerequisiteMissingError(f"java {MIN_JAVA}+", fix)


def _java_major(java: str) -> int | None:
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_mvn() -> str:
    """Maven, used once to resolve and checksum-verify the Kafka jars."""
    mvn = _which("mvn", "/usr/bin", "/usr/local/bin")
    if mvn is None:
        raise PrerequisiteMissingError(
            "mvn (Apache Maven)",
            "install Maven 3.6+ (Debian/Ubuntu: `apt-get install maven`); it is only needed the"
            " first time, to download the Kafka jars into the cache",
        )
    return mvn


def find_go() -> str:
    """Go >= 1.24, used once to build MinIO from its module."""
    go = _which("go", "/usr/local/go/bin", "/usr/bin")
    fix = (
        "install Go 1.24+ from https://go.dev/dl/ and put `go` on PATH; it is only needed the"
        " first time, to build MinIO into the cache"
    )
    if go is None:
        raise PrerequisiteMissingError("go 1.24+", fix)
    proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", proc.stdout.strip())
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise PrerequisiteMissingError("go 1.24+", f"{go} reports {proc.stdout.strip()!r}; {fix}")
    return go


_COMPLETE_MARKER = ".complete"


def resolve_maven_jars(
    libs: Path, pom: str, *, required_jar: str, what: str, console: Console | None = None
) -> Path:
    """Copy (once) the runtime jars of ``pom``'s dependencies into ``libs`` and return it.

    Maven does the work so every jar is checked against Maven Central's checksums
    (``--strict-checksums`` makes a mismatch fatal) and transitive versions match the poms.
    ``required_jar`` must be among the results (guards against an empty resolution);
    a ``.complete`` marker makes later calls free, a file lock serialises parallel callers.
    """
    if (libs / _COMPLETE_MARKER).is_file():
        return libs
    with file_lock(libs.parent / ".lock"):
        if (libs / _COMPLETE_MARKER).is_file():
            return libs
        mvn = find_mvn()
        find_java()
        started = time.monotonic()
        if console is not None:
            console.print(f"resolving {what} jars from Maven Central into {libs} …")
        with tempfile.TemporaryDirectory(prefix="maven-libs-") as tmp:
            work = Path(tmp)
            (work / "pom.xml").write_text(pom)
            out = work / "libs"
            argv = [
                mvn, "-q", "-B", "--strict-checksums", "-f", str(work / "pom.xml"),
                "dependency:copy-dependencies", f"-DoutputDirectory={out}",
                "-Dmdep.useRepositoryLayout=false", "-DincludeScope=runtime",
            ]  # fmt: skip
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            jars = sorted(out.glob("*.jar")) if out.is_dir() else []
            if proc.returncode != 0 or not any(j.name == required_jar for j in jars):
                raise ArtifactResolutionError(
                    f"Maven could not resolve {what} (exit {proc.returncode}). Check "
                    f"network access to https://repo.maven.apache.org and ~/.m2/settings.xml, "
                    f"then rerun `market-devstack up`.\n{(proc.stdout + proc.stderr)[-3000:]}"
                )
            if libs.exists():
                shutil.rmtree(libs)
            libs.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out), str(libs))
        (libs / _COMPLETE_MARKER).write_text(
            f"{len(jars)} jars in {time.monotonic() - started:.1f}s\n"
        )
        if console is not None:
            console.print(f"{what}: {len(jars)} jars in {time.monotonic() - started:.1f}s")
    return libs
