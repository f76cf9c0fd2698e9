"""The lifecycle every service of the stack shares: prepare, spawn, wait healthy, stop."""

from __future__ import annotations

import os
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from market_devstack.errors import PortInUseError, ServiceStartError
from market_devstack.process import PidFile, PidRecord, port_open, spawn_detached, terminate

if TYPE_CHECKING:
    from rich.console import Console

    from market_common.settings import MarketSettings


@dataclass(frozen=True)
class ServiceStatus:
    """What `status` reports (and `up` returns) for one service."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    endpoints: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    reused: bool = False


def tail(path: Path, lines: int = 20) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        data = path.read_bytes()[-64_000:]
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class Service(ABC):
    """One service process under ``<state_dir>/<name>``, logging to ``logs/<name>.log``."""

    # A class attribute; services with several instances (cluster nodes) set it per instance.
    name: str
    startup_timeout_s: ClassVar[float] = 60.0
    stop_timeout_s: ClassVar[float] = 20.0

    def __init__(self, settings: MarketSettings, console: Console | None = None) -> None:
        self.settings = settings
        self.stack = settings.stack
        self.console = console

    # -- layout -------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return Path(self.stack.state_dir)

    @property
    def home(self) -> Path:
        return self.state_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> PidFile:
        return PidFile(self.state_dir / "pids" / f"{self.name}.pid")

    # -- what subclasses provide ----------------------------------------------------------
    @abstractmethod
    def ports(self) -> list[int]:
        """Ports the service binds on ``stack.host``."""

    @abstractmethod
    def prepare(self) -> None:
        """Fetch/build binaries, render config, initialise storage (idempotent)."""

    @abstractmethod
    def command(self) -> list[str]:
        """argv of the service process."""

    @abstractmethod
    def probe(self) -> bool:
        """True once the service answers real requests."""

    @abstractmethod
    def endpoints(self) -> dict[str, str]:
        """Human/machine readable endpoints, e.g. ``{"bootstrap": "127.0.0.1:9092"}``."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def request_stop(self) -> None:  # noqa: B027 - optional hook
        """Ask the service to shut down its own way (before SIGTERM, which follows anyway)."""

    def after_healthy(self) -> None:  # noqa: B027 - optional hook
        """Provision things clients expect (buckets, …); runs on every `up`."""

    # -- lifecycle ----------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message)

    def running(self) -> PidRecord | None:
        return self.pid_file.live()

    def healthy(self) -> bool:
        try:
            return all(port_open(self.stack.host, p) for p in self.ports()[:1]) and self.probe()
        except Exception:  # a probe failing in any way just means "not healthy yet"
            return False

    def status(self) -> ServiceStatus:
        record = self.running()
        healthy = record is not None and self.healthy()
        return ServiceStatus(
            self.name,
            record is not None,
            healthy,
            record.pid if record else None,
            self.endpoints(),
            self.log_path,
        )

    def start(self) -> ServiceStatus:
        """Start the service, or reuse the one our pid file points at; wait until healthy."""
        return self.finish_start(self.launch())

    def launch(self) -> subprocess.Popen[bytes] | None:
        """Spawn the process without waiting for health; None if ours already runs.

        Split from :meth:`finish_start` so members of a cluster that only becomes healthy
        as a whole (a Kafka controller quorum) can all be spawned before any is awaited.
        """
        record = self.running()
        if record is not None:
            self._say(f"[green]{self.name}[/] already running (pid {record.pid}), reusing")
            return None
        busy = [p for p in self.ports() if port_open(self.stack.host, p, timeout_s=0.2)]
        if busy:
            raise PortInUseError(
                f"{self.name}: port(s) {busy} on {self.stack.host} are in use by a process the "
                f"stack did not start (no live pid file in {self.pid_file.path.parent}). Stop it "
                f"(`ss -ltnp | grep :{busy[0]}`) or choose other ports via MARKET_STACK__* "
                f"settings."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        argv = self.command()
        self._say(f"starting [bold]{self.name}[/] (log: {self.log_path})")
        proc = spawn_detached(argv, log_path=self.log_path, cwd=self.home, env=self.environment())
        self.pid_file.write(proc.pid, argv)
        return proc

    def finish_start(self, proc: subprocess.Popen[bytes] | None) -> ServiceStatus:
        """Wait until healthy what :meth:`launch` spawned (``proc``) or found running (None)."""
        record = self.running()
        if record is None:
            raise ServiceStartError(
                f"{self.name} exited right after start; last log lines "
                f"({self.log_path}):\n{tail(self.log_path)}"
            )
        try:
            self.wait_healthy(record, proc.poll if proc is not None else None)
        except ServiceStartError:
            if proc is not None:
                terminate(record, timeout_s=5)
                self.pid_file.remove()
            raise
        self.after_healthy()
        if proc is None:
            return ServiceStatus(
                self.name, True, True, record.pid, self.endpoints(), self.log_path, reused=True
            )
        self._say(f"[green]{self.name}[/] healthy (pid {proc.pid})")
        return ServiceStatus(self.name, True, True, proc.pid, self.endpoints(), self.log_path)

    def wait_healthy(self, record: PidRecord, poll: object | None) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if callable(poll) and poll() is not None or not record.is_alive():
                raise ServiceStartError(
                    f"{self.name} exited while starting; last log lines "
                    f"({self.log_path}):\n{tail(self.log_path)}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise ServiceStartError(
            f"{self.name} (pid {record.pid}) not healthy after {self.startup_timeout_s:.0f}s; "
            f"last log lines ({self.log_path}):\n{tail(self.log_path)}"
        )

    def stop(self) -> bool:
        """Stop the process our pid file names; True if there was one."""
        record = self.running()
        if record is None:
            self.pid_file.remove()
            return False
        self._say(f"stopping [bold]{self.name}[/] (pid {record.pid})")
        self.request_stop()
        terminate(record, timeout_s=self.stop_timeout_s)
        self.pid_file.remove()
        return True


def start_all(services: list[Service]) -> dict[str, ServiceStatus]:
    """Spawn every service, then wait for each: for members that are healthy only together.

    Every ``prepare`` (slow: a Kafka storage format is a JVM run) happens before the first
    spawn, so the first node does not time out waiting for a quorum that is still being
    formatted; ``launch`` prepares again, which is idempotent and quick.
    """
    for service in services:
        if service.running() is None:
            service.home.mkdir(parents=True, exist_ok=True)
            service.prepare()
    procs = [(service, service.launch()) for service in services]
    return {service.name: service.finish_start(proc) for service, proc in procs}
