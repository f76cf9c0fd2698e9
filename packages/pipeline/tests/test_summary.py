"""The terminal summary renders what the run result holds."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from market_common.settings import MarketSettings
from market_dags import steps
from market_pipeline.counts import LayerCounts
from market_pipeline.marts import MartFrames
from market_pipeline.run import DbtOutcome, RunOptions, RunResult, StepOutcome
from market_pipeline.summary import render_summary


def _render(result: RunResult) -> str:
    console = Console(record=True, width=160)
    console.print(render_summary(result))
    return console.export_text()


def test_summary_shows_layers_movers_and_quality(frames: MartFrames, tmp_path: Path) -> None:
    settings = MarketSettings(stack={"state_dir": tmp_path})
    k, sf = settings.kafka, settings.snowflake
    result = RunResult(
        settings,
        RunOptions(),
        steps=[
            StepOutcome(steps.FETCH_HISTORICAL, "ran", 1.5, {"sent": 4321, "dead_lettered": 2}),
            StepOutcome(steps.COLLECT_TICKS, "skipped", 0.0, {"sent": 98765, "dead_lettered": 0}),
            StepOutcome(steps.CONSUME_BATCH, "ran", 1.0, {"dead_lettered": 1}),
        ],
        counts=LayerCounts(
            kafka={k.batch_topic: 4321, k.realtime_topic: 98765, k.dlq_topic: 3},
            raw={"historical": 4320, "realtime": 98765},
            processed={"historical": 4300, "realtime": 260},
            quarantined={"historical": 20, "realtime": 0},
            warehouse={sf.batch_table: 4300, sf.stream_table: 260},
        ),
        frames=frames,
        dbt=DbtOutcome(
            {"test": {"pass": 61, "fail": 2}, "model": {"success": 5}},
            ["test.x [fail]: 3 rows"],
            {},
        ),
    )
    text = _render(result)
    assert (
        "4,321" in text and "98,765 (earlier run)" in text
    ), "produced counts, skipped step marked"
    assert "4,300" in text and "260" in text
    assert "test.x [fail]: 3 rows" in text
    assert not result.ok, "failed dbt tests make the run not ok"
    last = frames.performance[
        frames.performance["trade_date"] == frames.performance["trade_date"].max()
    ]
    best = last.loc[last["daily_return_pct"].idxmax()]
    assert f"{best['daily_return_pct']:+.2f}%" in text
    assert "dead-lettered by producers/consumers (these steps)" in text
    dead_line = next(line for line in text.splitlines() if "dead-lettered by producers" in line)
    assert dead_line.rstrip().endswith("3"), "2 from the backfill + 1 from the consumer"
