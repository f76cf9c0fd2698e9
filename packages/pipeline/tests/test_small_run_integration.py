"""A small real run through every CLI as a user types it, then the inspector and the report.

One module-scoped run on the shared stack, under names unique to it: a replay of two
tickers' daily bars (three rows planted with high below low) and a session of ticks →
``market-ingest backfill`` / ``stream`` → ``consume batch`` → ``market-spark batch`` →
``market-load historical`` → ``market-dbt build``. The realtime topic is deliberately left
unconsumed, so the inspector must show its whole content as the group's lag.

Asserted: each command's ``--json`` output parses and agrees with the stores and with the
other commands; the human mode draws the progress line of each long step on stderr; and
``market-pipeline inspect --json`` reports what the stores hold, read independently here
from the files and the commands' own summaries; and the HTML report that
``market-pipeline report`` wrote, opened in headless Chromium as a reader would, decodes
every chart at its own size, has rows in every table, and shows the data-quality section
(dbt test results, the planted dead letters by reason), the inspector section (the run's
own topics and tables) and the data-source label. Screenshots of the page and of each
section go to ``$MARKET_TEST_ARTIFACTS_DIR/report`` (default under /tmp). Everything runs in
one module so Pants's one process per file runs the (minutes-long) run once.
"""

# Interpolated SQL names are test-generated identifiers.
# ruff: noqa: S608
from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SmallRun

from market_pipeline.inspector_view import human_bytes
from market_testing.browser import artifacts_dir, chromium

pytestmark = pytest.mark.integration


def test_every_json_summary_parses_and_agrees_with_the_files(small_run: SmallRun) -> None:
    backfill, stream = small_run.json["backfill"], small_run.json["stream"]
    assert backfill["records"] == len(small_run.bars), "every row of bars.csv was read"
    assert backfill["dead_lettered"] == small_run.bad_rows
    assert backfill["top_reasons"] == {"high_below_low": small_run.bad_rows}
    assert backfill["acked"] == len(small_run.bars) - small_run.bad_rows
    assert stream["acked"] == len(small_run.ticks), "every replayed tick reached the topic"

    consumed = small_run.json["consume"]
    assert (
        consumed["messages"] == backfill["acked"] and consumed["rows_written"] == backfill["acked"]
    )
    spark = small_run.json["spark"]
    assert spark["rows_in"] == backfill["acked"] and spark["rows_out"] == backfill["acked"]
    assert small_run.json["spark_json"]["rows_in"] == 0, "the re-run found no changed input"
    load = small_run.json["load"]
    assert load["rows_inserted"] == backfill["acked"], "every valid bar reached the warehouse"
    again = small_run.json["load_again"]
    assert again["rows_merged"] == 0 and again["files_skipped"] == again["files_seen"] > 0
    dbt = small_run.json["dbt"]
    assert dbt["args"] == [] and dbt["nodes"] > 0
    assert set(dbt["statuses"]) <= {"success", "pass"}, f"dbt build is green: {dbt}"


@pytest.mark.parametrize(
    ("step", "pattern"),
    [
        # The consume bar ends at the messages read, with rows/objects as its detail.
        ("consume", r"consume batch .* (\d+)/\1 .*(\d[\d,]*) rows → \d+ objects"),
        # Spark: tasks done over tasks seen, and a count of the finished stages.
        ("spark", r"spark batch .* (\d+)/\1 .* (\d+) stages done · done"),
        ("load_human", r"load historical .* 1/1 .*COPY \+ MERGE"),
    ],
)
def test_the_human_mode_draws_each_steps_progress(
    small_run: SmallRun, step: str, pattern: str
) -> None:
    stderr = small_run.stderr[step]
    match = re.search(pattern, stderr)
    assert match, f"{step}'s final progress line on stderr:\n{stderr[-2000:]}"
    if step == "consume":
        assert int(match.group(1)) == small_run.json["consume"]["messages"]
    if step == "spark":
        assert int(match.group(2)) > 0, "at least one Spark stage ran"


def test_inspect_json_reports_what_the_stores_hold(small_run: SmallRun) -> None:
    report: dict[str, Any] = small_run.json["inspect"]
    env, backfill = small_run.env, small_run.json["backfill"]
    assert report["errors"] == {}, "every store could be read"

    topics = {t["topic"]: t for t in report["topics"]}
    batch = topics[env["MARKET_KAFKA__BATCH_TOPIC"]]
    assert batch["end_offset"] == backfill["acked"]
    assert batch["lag"] == {env["MARKET_KAFKA__BATCH_GROUP"]: 0}, "consumed and committed"
    realtime = topics[env["MARKET_KAFKA__REALTIME_TOPIC"]]
    assert realtime["lag"] == {env["MARKET_KAFKA__REALTIME_GROUP"]: len(small_run.ticks)}
    assert topics[env["MARKET_KAFKA__DLQ_TOPIC"]]["messages"] == small_run.bad_rows

    (reason,) = report["dlq"]
    assert (reason["reason"], reason["count"]) == ("high_below_low", small_run.bad_rows)
    assert any(symbol in reason["sample"] for symbol in small_run.symbols), reason["sample"]

    lake = {p["prefix"]: p for p in report["lake"]}
    raw = lake[f"{env['MARKET_S3__RAW_PREFIX']}/historical/"]
    assert raw["objects"] == small_run.json["consume"]["objects_written"] and raw["bytes"] > 0
    assert lake[f"{env['MARKET_S3__PROCESSED_PREFIX']}/historical/"]["objects"] > 0
    assert lake[f"{env['MARKET_S3__RAW_PREFIX']}/realtime/"]["objects"] == 0

    tables = {t["relation"].split(".", 1)[1]: t for t in report["warehouse"]}
    daily = tables["PUBLIC.DAILY_STOCK_METRICS"]
    assert daily["rows"] == backfill["acked"]
    assert daily["sources"] == sorted(small_run.bars["source"].unique()), "the file's source column"
    assert 0 <= daily["age_hours"] < 1, "loaded minutes ago"
    assert tables["PUBLIC.REALTIME_STOCK_ANALYTICS"]["rows"] is None, "never loaded"
    performance = tables["ANALYTICS.MART_STOCK_PERFORMANCE"]
    assert performance["rows"] == backfill["acked"]
    assert (
        performance["latest"] == pd.Timestamp(small_run.bars["trade_date"].max()).date().isoformat()
    )
    signals = tables["ANALYTICS.MART_REALTIME_SIGNALS"]
    assert (signals["rows"], signals["latest"]) == (0, None), "built empty (batch only)"

    dbt = report["dbt"]
    assert dbt["ran"] and dbt["command"] == "build" and dbt["failures"] == []
    assert dbt["statuses"] == {"pass": small_run.dbt_tests}, "every test of the build passed"


def test_inspect_without_json_prints_every_section(small_run: SmallRun) -> None:
    text = " ".join(small_run.stdout["inspect_human"].split())
    for title in ("dbt tests", "Dead letters by reason", "Kafka topics", "Lake prefixes",
                  "Warehouse tables", "Quarantined rows by reason"):  # fmt: skip
        assert title in text, f"section {title!r} in:\n{text[:3000]}"
    assert "high_below_low" in text and small_run.env["MARKET_KAFKA__BATCH_TOPIC"] in text
    raw = next(p for p in small_run.json["inspect"]["lake"] if p["objects"])
    assert human_bytes(raw["bytes"]) in text


def test_json_mode_writes_nothing_but_the_summary(small_run: SmallRun) -> None:
    for step in ("backfill", "stream", "load_again", "dbt", "spark_json"):
        lines = small_run.stdout[step].strip().splitlines()
        assert json.loads(lines[-1]), f"{step}: the last stdout line is the JSON summary"
        assert "━" not in small_run.stderr.get(step, ""), f"{step} --json drew no progress"


def png_size(path: Path) -> list[int]:
    """Width and height from a PNG's IHDR chunk (the first chunk, right after the signature)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is a PNG"
    return list(struct.unpack(">II", header[16:24]))


def _full_page(driver: Any) -> None:
    """Grow the window to the page, so one screenshot holds all of it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 100, 16000))


def test_the_report_renders_every_chart_and_table_in_chromium(small_run: SmallRun) -> None:
    from selenium.webdriver.common.by import By

    index = small_run.report_dir / "index.html"
    artifacts = artifacts_dir("report")
    with chromium("1400,1000") as driver:
        driver.get(index.resolve().as_uri())
        driver.execute_script("return document.readyState")  # loaded: file:// is synchronous
        images = driver.find_elements(By.TAG_NAME, "img")
        charts = sorted((small_run.report_dir / "charts").glob("*.png"))
        assert (
            len(images) == len(charts) == 2 + len(small_run.symbols)
        ), "breadth, heatmap, one per symbol"
        for image in images:
            src = driver.execute_script("return arguments[0].getAttribute('src')", image)
            natural = driver.execute_script(
                "return [arguments[0].complete, arguments[0].naturalWidth, arguments[0].naturalHeight]",
                image,
            )
            path = small_run.report_dir / src  # relative to index.html
            assert natural == [True, *png_size(path)], f"{src} was decoded at its own size"
            assert image.size["width"] > 100 and image.size["height"] > 50, f"{src} is visible"

        tables = driver.find_elements(By.TAG_NAME, "table")
        assert tables, "the report has tables"
        empty = [t.find_element(By.XPATH, "preceding-sibling::h2[1]|preceding-sibling::h3[1]").text
                 for t in tables if not t.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip
        assert not empty, f"tables without rows: {empty}"

        quality = driver.find_element(By.ID, "quality")
        text = quality.text
        assert "dbt tests" in text and f"pass {small_run.dbt_tests}" in text
        assert f"high_below_low {small_run.bad_rows}" in text, "the planted bad rows, by reason"
        assert "nothing is quarantined" in text
        assert "no realtime windows in mart_realtime_signals yet" in driver.page_source
        inspector = driver.find_element(By.ID, "inspector")
        assert small_run.env["MARKET_KAFKA__BATCH_TOPIC"] in inspector.text
        assert (
            f"{small_run.env['MARKET_SNOWFLAKE__BATCH_DATABASE']}.PUBLIC.DAILY_STOCK_METRICS"
            in inspector.text
        )
        label = driver.find_element(By.ID, "data-source").text
        assert all(name in label for name in small_run.bars["source"].unique()), label

        _full_page(driver)
        driver.save_screenshot(str(artifacts / "report-full.png"))
        for section in (quality, inspector):
            section.screenshot(str(artifacts / f"report-{section.get_attribute('id')}.png"))
    assert png_size(artifacts / "report-full.png")[1] > 1000, "the screenshot holds the page"
