"""Spark stage progress for the command line, read from the driver's status tracker.

A batch job over years of bars is minutes of silence otherwise: Spark's own console bar is
off under spark-submit's log settings and mixes with its log lines. A daemon thread polls
``SparkContext.statusTracker()`` (the same figures the Spark UI shows) and keeps one rich
progress line up to date: tasks completed over tasks known so far (the total grows as new
stages are submitted), the number of stages finished, and the stage running now. Polling
never touches the job: it reads driver-side counters over py4j, and a failed read is
skipped, not raised, since progress must not fail a job.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.progress import Progress, TaskID

POLL_S = 0.5


@dataclass
class _Stages:
    """Task counts of every stage seen (by id), and which ones are still active."""

    tasks: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (done, total)
    active: set[int] = field(default_factory=set)
    current: str = ""

    @property
    def done(self) -> int:
        # A stage that left the active set finished: count all of its tasks.
        return sum(total if sid not in self.active else d for sid, (d, total) in self.tasks.items())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.tasks.values())

    @property
    def finished(self) -> int:
        return len(self.tasks.keys() - self.active)


class StageProgress:
    """Context manager: shows ``spark``'s stage progress on ``progress`` while the body runs."""

    def __init__(
        self, spark: Any, progress: Progress, label: str, *, interval_s: float = POLL_S
    ) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.progress = progress
        self.interval_s = interval_s
        self.task: TaskID = progress.add_task(label, total=None, detail="starting")
        self.stages = _Stages()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spark-progress", daemon=True)

    def __enter__(self) -> StageProgress:
        if not self.progress.disable:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
            self.poll()
            self.stages.active.clear()  # the job returned: nothing is running any more
            self.stages.current = "done" if exc is None else "failed"
            self._show()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):  # progress must never fail the job
                self.poll()
                self._show()

    def poll(self) -> None:
        """Read the active stages' task counts from the status tracker once."""
        active = set(self.tracker.getActiveStageIds())
        for sid in sorted(active):
            info = self.tracker.getStageInfo(sid)
            if info is None:  # finished between the two calls
                continue
            self.stages.tasks[sid] = (info.numCompletedTasks, info.numTasks)
            self.stages.current = (
                f"stage {sid} {info.name.split(' at ')[0]}: "
                f"{info.numCompletedTasks}/{info.numTasks} tasks"
            )
        self.stages.active = active & self.stages.tasks.keys()

    def _show(self) -> None:
        stages = self.stages
        self.progress.update(
            self.task,
            completed=stages.done,
            total=stages.total or None,
            detail=f"{stages.finished} stages done · {stages.current}",
        )
