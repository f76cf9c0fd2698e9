"""Peak resident memory of process trees, sampled from ``/proc`` while benchmarks run.

The benchmark report needs the local stack's footprint (Kafka, MinIO, fakesnow) and the
whole platform's (the stack plus the job processes running at that moment: Spark's JVM,
consumers, dbt). A background thread samples the RSS of each named tree every ``interval_s``
and keeps the peak of each group and of their sum at the same instant. Reading ``/proc``
directly (Linux only) avoids a dependency for ~40 lines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, resident bytes) of ``pid``, or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may contain spaces).
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[21]) * PAGE


def process_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, rss bytes) for every live process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = info
    return table


def tree(
    roots: Iterable[int],
    table: Mapping[int, tuple[int, int]],
    *,
    exclude: AbstractSet[int] = frozenset(),
) -> set[int]:
    """``roots`` and all their descendants, minus ``exclude`` and the subtrees below it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen: set[int] = set()
    stack = [p for p in roots if p in table]
    while stack:
        pid = stack.pop()
        if pid not in seen and pid not in exclude:
            seen.add(pid)
            stack += children.get(pid, [])
    return seen


@dataclass
class PeakMemory:
    """Samples ``groups`` (name → callable returning root pids, exclusive in order) until stopped."""

    groups: Mapping[str, Callable[[], Iterable[int]]]
    interval_s: float = 0.5
    peaks: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        table = process_table()
        total, counted = 0, set[int]()
        # Groups are exclusive, in order: a stack service started by the benchmark process
        # counts as stack, not twice.
        for name, roots in self.groups.items():
            pids = tree(roots(), table, exclude=counted)
            counted |= pids
            rss = sum(table[p][1] for p in pids)
            total += rss
            self.peaks[name] = max(self.peaks.get(name, 0), rss)
        self.peaks["total"] = max(self.peaks.get("total", 0), total)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def peaks_gib(self) -> dict[str, float]:
        return {name: round(value / 2**30, 2) for name, value in self.peaks.items()}
