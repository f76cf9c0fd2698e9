"""Cold command 1: a fresh clone, an empty home (so every cache is empty), then the run.

``market-bench cold`` (``./pants run benchmarks -- all --only cold``) clones the repository's committed HEAD into a
scratch directory and runs the README's command 1 there with ``HOME`` pointing at an empty
directory: Pants's venv, pex and tools (``~/.cache/market-platform``), Pants's own caches
(``~/.cache/pants``), the Maven/Ivy jars (``~/.m2``, ``~/.ivy2*``) and the Go module cache
(MinIO's build) all start empty, exactly as on a new machine; the system toolchains (Java,
Go, CPython) are the prerequisites and stay. The clone's stack runs on its own state dir
and free ports, so the shared stack is not touched.

Where the time goes is measured in the order command 1 spends it, as three commands whose
sum is the cold run: ``./pants --version`` (bootstrap: Pants's venv, pex, linters),
``./pants package tools/pipeline`` (resolving and building the run PEX), and
``./pants run tools/pipeline -- run`` (the PEX is a cache hit; then the stack, with MinIO
compiled from source, and every step, whose seconds come from the run's own summary).
The goal (issue 18) is ≤ 8 minutes; ``met`` is stated with the measured figure. This is
very heavy (gigabytes of downloads, a Go build): run it rarely, under ``heavy``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

RESULT_NAME = "cold_run"
GOAL_S = 8 * 60
# Ports of the clone's private stack (MARKET_STACK__<NAME>): never the shared stack's.
PORT_SETTINGS = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "MINIO_PORT", "MINIO_CONSOLE_PORT",
                 "FAKESNOW_PORT", "POSTGRES_PORT", "AIRFLOW_PORT", "SPARK_MASTER_PORT",
                 "SPARK_MASTER_UI_PORT", "SPARK_HISTORY_PORT")  # fmt: skip
# A row of the run's "Steps" summary table (market_pipeline.summary): " backfill │ ran │ 12.3".
STEP_ROW = re.compile(r"^\s*(\w+)\s*│\s*(ran|up to date)\s*│\s*([\d.]+)\s*$", re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cold_env(home: Path, state_dir: Path) -> dict[str, str]:
    """The environment of a new machine: this one's (toolchains on PATH, CA bundles, pip and
    pyenv settings are the machine's, not caches) with an empty HOME, none of this shell's
    ``MARKET_*`` settings, and the clone's own stack state and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKET_", "PANTS_"))}
    env.update(
        HOME=str(home),
        MARKET_STATE_DIR=str(state_dir),
        NO_SCIE_WARNING="1",
        **{f"MARKET_STACK__{name}": str(free_port()) for name in PORT_SETTINGS},
    )
    return env


def copy_machine_config(home: Path) -> None:
    """Configuration (not caches) a new account on this machine would also have: Go's
    user env file (e.g. GOTOOLCHAIN=local, so no toolchain is downloaded)."""
    go_env = Path.home() / ".config" / "go" / "env"
    if go_env.is_file():
        (home / ".config" / "go").mkdir(parents=True, exist_ok=True)
        shutil.copy2(go_env, home / ".config" / "go" / "env")


def timed(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> tuple[float, str]:
    """Run ``argv``, appending its output to ``log``; (seconds, output). Raises on failure."""
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 1)
    output = done.stdout + done.stderr
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}  ({seconds} s, exit {done.returncode})\n{output}\n")
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode} after {seconds} s; see {log}"
        )
    return seconds, output


def measure(repo: Path, work: Path) -> dict[str, Any]:
    """Clone ``repo`` into ``work`` and time command 1 cold (see the module docstring)."""
    clone, home = work / "clone", work / "home"
    home.mkdir(parents=True)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(clone)], check=True)
    commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    copy_machine_config(home)
    env = cold_env(home, clone / ".local")
    log = work / "cold_run.log"
    phases: dict[str, float] = {}
    try:
        phases["pants_bootstrap"], _ = timed(["./pants", "--version"], cwd=clone, env=env, log=log)
        phases["run_pex_build"], _ = timed(
            ["./pants", "package", "tools/pipeline"], cwd=clone, env=env, log=log
        )
        phases["pipeline_run"], output = timed(
            ["./pants", "run", "tools/pipeline", "--", "run"], cwd=clone, env=env, log=log
        )
    finally:
        # The clone's stack must not outlive the measurement.
        subprocess.run(["./pants", "run", "tools/devstack", "--", "down"], cwd=clone, env=env,
                       capture_output=True, check=False)  # fmt: skip
    steps = {name: float(s) for name, _, s in STEP_ROW.findall(output)}
    total = round(sum(phases.values()), 1)
    return {
        "name": RESULT_NAME,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "wall_time_s": total,
        "goal_s": GOAL_S,
        "met": total <= GOAL_S,
        "phases_s": phases,
        "run_steps_s": steps,
        "cores": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "log": str(log),
    }


def markdown(record: dict[str, Any]) -> str:
    verdict = "met" if record["met"] else "**not met**"
    lines = [
        f"# Cold command 1 ({record['measured_at']}, commit {record['commit'][:10]})",
        "",
        f"Fresh clone, empty HOME (every cache empty): **{record['wall_time_s']} s** on "
        f"{record['cores']} cores (load {record['load_average_1_5_15']}); goal "
        f"≤ {record['goal_s']} s: {verdict}.",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *[f"| {name} | {s} |" for name, s in record["phases_s"].items()],
        "",
        "Steps of the run itself (its summary table; `stack` includes building MinIO):",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {name} | {s} |" for name, s in record["run_steps_s"].items()],
    ]
    return "\n".join(lines) + "\n"


def main(
    results_dir: Annotated[Path, typer.Option(help="Where cold_run.json/.md go.")] = Path(
        "benchmarks/results"
    ),
    repo: Annotated[Path, typer.Option(help="Repository to clone (its HEAD).")] = Path("."),
    keep: Annotated[bool, typer.Option(help="Keep the scratch clone and home.")] = False,
) -> None:
    """Time a cold command 1 and write ``<results_dir>/cold_run.{json,md}``."""
    work = Path(tempfile.mkdtemp(prefix="market-cold-run-"))
    try:
        record = measure(repo.resolve(), work)
    finally:
        if not keep:
            shutil.rmtree(work / "home", ignore_errors=True)
            shutil.rmtree(work / "clone", ignore_errors=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    (results_dir / f"{RESULT_NAME}.md").write_text(markdown(record))
    typer.echo(json.dumps(record))
