"""Product packages install only product code: their runtime closures are checked in uv.lock.

The closure of a package is everything ``pip install <package>`` (no extras) pulls in,
computed from uv.lock — the lock every environment of the workspace is built from — by
following each dependency with the extras it names, markers included (a marker can only
narrow what is installed, so counting every branch errs on the strict side). Two rules:

1. No product package's closure holds a test-, benchmark- or dev-only distribution (the test
   runner, the property-testing and browser libraries, DuckDB, the Snowflake emulator, the dev
   stack, the testing and benchmark packages).
2. The Airflow package (``market-dags``) pulls no Kafka, S3 or Snowflake client: the steps run
   in their own processes or images; only its ``in-process`` extra brings the step packages.

Each rule is also run on a small made-up lock, to show that it can fail.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCT_PACKAGES = (
    "market-common",
    "market-ingest",
    "market-spark",
    "market-loaders",
    "market-dbt",
    "market-dags",
    "market-pipeline",
)
# Distributions only tests, benchmarks or development need.
DEV_ONLY = frozenset(
    {
        "pytest",
        "pytest-timeout",
        "hypothesis",
        "selenium",
        "aiosmtpd",
        "duckdb",
        "fakesnow",
        "market-devstack",
        "market-testing",
        "market-benchmarks",
        "mypy",
        "ruff",
        "black",
        "sqlfluff",
    }
)
CLIENT_LIBRARIES = frozenset({"kafka-python", "boto3", "snowflake-connector-python"})

Lock = Mapping[str, Mapping[str, Any]]


def load_lock(path: Path) -> Lock:
    """uv.lock's packages by name."""
    packages = tomllib.loads(path.read_text())["package"]
    return {p["name"]: p for p in packages}


def closure(lock: Lock, name: str, extras: Iterable[str] = ()) -> set[str]:
    """Every distribution installing ``name[extras]`` brings, ``name`` included."""
    seen: set[tuple[str, str | None]] = set()
    todo: list[tuple[str, str | None]] = [(name, None), *((name, e) for e in extras)]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        package, extra = item
        entry = lock[package]
        deps = entry.get("dependencies", []) if extra is None else (
            entry.get("optional-dependencies", {}).get(extra, [])
        )  # fmt: skip
        for dep in deps:
            todo.append((dep["name"], None))
            todo.extend((dep["name"], e) for e in dep.get("extra", []))
    return {package for package, _ in seen}


def violations(lock: Lock) -> dict[str, list[str]]:
    """Each broken rule, by package: the offending distributions."""
    found: dict[str, list[str]] = {}
    for package in PRODUCT_PACKAGES:
        bad = sorted(closure(lock, package) & DEV_ONLY)
        if bad:
            found[package] = bad
    clients = sorted(closure(lock, "market-dags") & CLIENT_LIBRARIES)
    if clients:
        found.setdefault("market-dags", []).extend(clients)
    return found


def test_product_closures_hold_no_dev_only_distribution() -> None:
    lock = load_lock(ROOT / "uv.lock")
    assert violations(lock) == {}, "runtime closures that pull dev-only or client libraries"


def test_the_closure_follows_extras_and_transitive_dependencies() -> None:
    lock = load_lock(ROOT / "uv.lock")
    # The dev stack reaches DuckDB only through fakesnow: transitive edges are followed.
    assert {"fakesnow", "duckdb"} <= closure(lock, "market-devstack")
    # Extras are followed: the clients come with market-common's extras only.
    assert "kafka-python" not in closure(lock, "market-common")
    assert "kafka-python" in closure(lock, "market-common", ["kafka"])
    # The command-1 extra brings the dev stack back, by choice of the user.
    assert "market-devstack" in closure(lock, "market-pipeline", ["local"])


def _made_up_lock(**edges: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = {"market-common", *PRODUCT_PACKAGES, *DEV_ONLY, *CLIENT_LIBRARIES}
    lock: dict[str, dict[str, Any]] = {n: {"name": n} for n in names}
    for package, deps in edges.items():
        lock[package.replace("_", "-")]["dependencies"] = deps
    return lock


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"market_spark": [{"name": "duckdb"}]}, {"market-spark": ["duckdb"]}),
        (
            {"market_pipeline": [{"name": "market-devstack"}], "market_devstack": [{"name": "fakesnow"}]},
            {"market-pipeline": ["fakesnow", "market-devstack"]},
        ),
        ({"market_dags": [{"name": "market-common", "extra": ["s3"]}]}, None),
    ],
)  # fmt: skip
def test_the_rules_can_fail(edges: dict[str, list[dict[str, Any]]], expected: Any) -> None:
    lock = _made_up_lock(**edges)
    lock["market-common"]["optional-dependencies"] = {"s3": [{"name": "boto3"}]}
    found = violations(lock)
    assert found == (expected or {"market-dags": ["boto3"]})
