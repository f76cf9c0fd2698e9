"""``market-ingest backfill --source replay`` on the real broker: the universe is the files'.

Two tickers outside the default list used to dead-letter every row as ``unknown_symbol``
and exit 0. Now, without ``--symbols``, the replay's universe is what its files hold; and
a run whose every record is dead-lettered exits ``ExitCode.REJECTED`` naming the reason
and the fix. Topics are unique to the test; counts are read back from Kafka itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from market_common.exitcodes import ExitCode
from market_ingest.calendar import last_completed_session
from market_ingest.cli import app
from market_ingest.sources.synthetic import SyntheticSource

pytestmark = pytest.mark.integration

OWN_SYMBOLS = ["ACME", "ZZZT"]  # neither is in settings.symbols


def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@pytest.fixture()
def bars_csv(tmp_path: Path) -> tuple[Path, int]:
    end = last_completed_session(datetime.now(UTC))
    bars = SyntheticSource(seed=5).daily_frame(OWN_SYMBOLS, end - timedelta(days=40), end)
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    return path, len(bars)


def _backfill(
    monkeypatch: pytest.MonkeyPatch, unique_name: Any, path: Path, *extra: str
) -> tuple[Any, str, str]:
    batch, dlq = unique_name("replay-batch"), unique_name("replay-dlq")
    monkeypatch.setenv("MARKET_KAFKA__BATCH_TOPIC", batch)
    monkeypatch.setenv("MARKET_KAFKA__DLQ_TOPIC", dlq)
    start = (last_completed_session(datetime.now(UTC)) - timedelta(days=60)).isoformat()
    args = ["backfill", "--source", "replay", "--replay-path", str(path), "--start", start]
    return CliRunner().invoke(app, [*args, *extra]), batch, dlq


def test_replay_universe_defaults_to_the_files_symbols(
    local_stack: Any, unique_name: Any, bars_csv: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, rows = bars_csv
    outcome, batch, _ = _backfill(monkeypatch, unique_name, path)

    assert outcome.exit_code == ExitCode.OK, outcome.output
    summary = json.loads(outcome.stdout.strip().splitlines()[-1])
    assert (summary["records"], summary["sent"], summary["dead_lettered"]) == (rows, rows, 0)
    assert _end_offsets(local_stack.kafka_bootstrap, batch) == rows, "every row is on the topic"


def test_all_rows_dead_lettered_exits_rejected_with_reason_and_fix(
    local_stack: Any, unique_name: Any, bars_csv: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, rows = bars_csv
    outcome, _, dlq = _backfill(monkeypatch, unique_name, path, "--symbols", "AAPL,MSFT")

    assert outcome.exit_code == ExitCode.REJECTED, outcome.output
    message = " ".join(outcome.output.split())  # rich wraps long lines
    assert f"all {rows:,} records were dead-lettered" in message
    assert f"unknown_symbol ({rows:,})" in message and "leave --symbols unset" in message
    assert _end_offsets(local_stack.kafka_bootstrap, dlq) == rows, "each row is on the DLQ"
