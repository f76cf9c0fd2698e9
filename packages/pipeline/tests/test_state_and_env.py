"""Run-state file and the settings hand-off to child processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_common.runtime import child_env, settings_env
from market_common.settings import MarketSettings
from market_pipeline.run import parse_json_tail
from market_pipeline.state import RunState, fingerprint


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_state_round_trip_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first, second = RunState(path), RunState(path)  # two runs sharing one file
    first.put("backfill", "k1", {"sent": 10})
    second.put("ticks", "k2", {"sent": 20})
    assert first.get("backfill", "k1") == {"sent": 10}
    assert first.get("ticks", "k2") == {"sent": 20}, "a concurrent writer's entry survives"
    assert first.get("backfill", "other") is None


def test_corrupt_state_is_treated_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state = RunState(path)
    assert state.get("backfill", "k") is None
    state.put("backfill", "k", {"ok": True})
    assert state.get("backfill", "k") == {"ok": True}


def test_child_settings_equal_the_parents(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parent = MarketSettings(
        symbols=["AAPL", "BRK.B"],
        kafka={"batch_topic": "t-batch", "partitions": 5},
        s3={"raw_prefix": "x/raw", "access_key_id": "id", "secret_access_key": "secret"},
        snowflake={"batch_database": "DB_A", "schema": "S1"},
        stack={"state_dir": tmp_path},
        contracts={"universe": ["AAPL", "BRK.B"], "max_future_skew_s": 30},
    )
    for key, value in settings_env(parent).items():
        monkeypatch.setenv(key, value)
    child = MarketSettings()
    for section in ("kafka", "s3", "snowflake", "stack", "contracts"):
        assert (
            getattr(child, section).model_dump() == getattr(parent, section).model_dump()
        ), section
    assert child.symbols == parent.symbols
    assert child_env(settings=parent)["PYTHONPATH"], "children see our sys.path"


def test_parse_json_tail_skips_tool_chatter() -> None:
    stdout = ':: loading settings :: file = /x/ivysettings.xml\n{\n  "rows_in": 3,\n  "quarantined": {}\n}\n'
    assert parse_json_tail(stdout) == {"rows_in": 3, "quarantined": {}}
    assert parse_json_tail('{"a": 1}') == {"a": 1}
