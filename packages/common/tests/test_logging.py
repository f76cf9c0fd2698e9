from __future__ import annotations

import json
import logging

import pytest

from market_common.logging import configure_logging, get_logger


def test_json_logs_carry_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger("market.test").info("flushed", extra={"rows": 12, "key": "raw/x.parquet"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["msg"], line["rows"], line["key"], line["level"]) == (
        "flushed", 12, "raw/x.parquet", "info",
    )  # fmt: skip
    logging.getLogger().handlers.clear()
