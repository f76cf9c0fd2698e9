"""Replay re-emits exported records (CSV or raw-zone Parquet) unchanged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from market_ingest.clock import SimulatedClock
from market_ingest.rawzone import to_table
from market_ingest.records import validate_frame
from market_ingest.sources.replay import ReplaySource
from market_ingest.sources.synthetic import SyntheticSource

NOW = datetime(2024, 6, 3, 21, tzinfo=UTC)


def test_csv_daily_bars_round_trip(tmp_path: Path) -> None:
    bars = SyntheticSource(seed=2).daily_frame(["AAPL", "MSFT"], date(2024, 1, 1), date(2024, 3, 1))
    bars.to_csv(tmp_path / "bars.csv", index=False)
    frames = list(
        ReplaySource([tmp_path], chunk_rows=17).daily_bars(
            ["AAPL"], date(2024, 1, 1), date(2024, 3, 1)
        )
    )
    replayed = pd.concat(frames, ignore_index=True)
    checked = validate_frame("daily_bar", replayed.assign(schema_version=1), now=NOW)
    assert not checked.rejects and len(checked.frame) == len(bars)
    assert np.allclose(checked.frame["close"].to_numpy(), bars["close"].to_numpy())


def test_raw_zone_parquet_replays_as_ticks(tmp_path: Path) -> None:
    ticks = pd.concat(
        list(SyntheticSource(seed=2).ticks(["AAPL"], clock=SimulatedClock(NOW), session_minutes=2))
    )
    canon = validate_frame("tick", ticks.assign(schema_version=1), now=NOW).frame
    n = len(canon)
    table = to_table(
        "realtime",
        canon,
        topic="t",
        partition=0,
        offsets=np.arange(n),
        timestamps_ms=np.zeros(n, dtype=np.int64),
        ingested_at=NOW,
    )
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "part.parquet")
    out = pd.concat(
        list(ReplaySource([tmp_path / "part.parquet"]).ticks(["AAPL"], clock=SimulatedClock(NOW)))
    )
    assert "kafka_offset" not in out.columns
    checked = validate_frame("tick", out, now=NOW)
    assert not checked.rejects and len(checked.frame) == n
