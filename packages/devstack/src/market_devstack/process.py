"""Detached service processes tracked by pid files.

Services must outlive the CLI that started them, so each runs in its own session with
output to a log file. A pid file records the pid *and* the kernel start time so a recycled
pid is never mistaken for (or killed as) one of ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from market_devstack.errors import ServiceStopError


def process_start_time(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of ``pid``; None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    state = fields[0]
    if state in ("Z", "X"):  # zombie / dead: as good as gone
        return None
    return int(fields[19])


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds."""

    pid: int
    start_time: int | None
    argv: tuple[str, ...] = ()

    def is_alive(self) -> bool:
        current = process_start_time(self.pid)
        if current is None:
            return False
        return self.start_time is None or current == self.start_time


class PidFile:
    """``<state_dir>/pids/<service>.pid`` as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> PidRecord | None:
        try:
            data = json.loads(self.path.read_text())
            return PidRecord(int(data["pid"]), data.get("start_time"), tuple(data.get("argv", ())))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write(self, pid: int, argv: Sequence[str]) -> PidRecord:
        record = PidRecord(pid, process_start_time(pid), tuple(argv))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"pid": pid, "start_time": record.start_time, "argv": list(argv)})
        )
        tmp.replace(self.path)
        return record

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def live(self) -> PidRecord | None:
        """The recorded process if it still runs; a stale file is removed."""
        record = self.read()
        if record is None:
            return None
        if record.is_alive():
            return record
        self.remove()
        return None


def spawn_detached(
    argv: Sequence[str], *, log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout/stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(
            f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode()
        )
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )


def terminate(record: PidRecord, *, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group of ``record``, SIGKILL after ``timeout_s``."""
    if not record.is_alive():
        return
    _signal_group(record.pid, signal.SIGTERM)
    if _wait_gone(record, timeout_s):
        return
    _signal_group(record.pid, signal.SIGKILL)
    if not _wait_gone(record, 5.0):
        raise ServiceStopError(
            f"process {record.pid} survived SIGKILL; inspect it with `ps -o pid,stat,cmd -p "
            f"{record.pid}`"
        )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the whole session we created (pid == pgid), else just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(record: PidRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # Reap it if it is our own child (tests start and stop in one process).
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(record.pid, os.WNOHANG)
        if not record.is_alive():
            return True
        time.sleep(0.1)
    return not record.is_alive()


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
