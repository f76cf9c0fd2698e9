"""Stage accounting of the CLI's progress line (the status tracker's figures, summed)."""

from __future__ import annotations

from market_spark.progress import _Stages


def test_finished_stages_count_all_their_tasks_and_active_ones_what_is_done() -> None:
    stages = _Stages(tasks={0: (3, 8), 1: (2, 4)}, active={1})

    assert (stages.done, stages.total, stages.finished) == (8 + 2, 12, 1)


def test_when_nothing_is_active_every_task_is_done() -> None:
    stages = _Stages(tasks={0: (0, 8), 1: (1, 4)}, active=set())

    assert stages.done == stages.total == 12 and stages.finished == 2
