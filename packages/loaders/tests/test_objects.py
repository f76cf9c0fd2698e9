"""Data-file filtering, Hive partitions and the Structured Streaming sink log."""

from __future__ import annotations

import json

import pytest

from market_loaders.errors import CommitLogError
from market_loaders.objects import is_data_file, parse_log, partition_values, select_log_files


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("date=2024-01-02/part-00000-abc.snappy.parquet", True),
        ("part-00000.parquet", True),
        ("_spark_metadata/0", False),
        ("_SUCCESS", False),
        ("_runs/run-1.json", False),
        ("date=2024-01-02/.part-00000.parquet.crc", False),
        ("date=2024-01-02/_temporary/0/part-00000.parquet", False),
        ("date=2024-01-02/notes.txt", False),
    ],
)
def test_is_data_file(key: str, expected: bool) -> None:
    assert is_data_file(key) is expected


def test_partition_values() -> None:
    assert partition_values("date=2024-01-02/hour=3/part-0.parquet") == {
        "date": "2024-01-02",
        "hour": "3",
    }
    assert partition_values("part-0.parquet") == {}


def test_select_log_files_uses_latest_compaction() -> None:
    names = ["0", "1", "9.compact", "10", "11", ".12.tmp", "19.compact", "20", "21"]
    assert select_log_files(names) == ["19.compact", "20", "21"]
    assert select_log_files(["0", "1", "2"]) == ["0", "1", "2"]


def _log(*entries: tuple[str, str]) -> str:
    lines = ["v1"] + [
        json.dumps({"path": p, "size": 1, "isDir": False, "action": a}) for p, a in entries
    ]
    return "\n".join(lines)


def test_parse_log_adds_and_deletes() -> None:
    base = "s3a://market-lake/p/realtime/date=2024-01-02"
    texts = [
        ("9.compact", _log((f"{base}/part-a.parquet", "add"), (f"{base}/part-b.parquet", "add"))),
        ("10", _log((f"{base}/part-c.parquet", "add"), (f"{base}/part-a.parquet", "delete"))),
        ("11", _log(("s3a://other-bucket/p/realtime/part-x.parquet", "add"))),
    ]
    keys = parse_log(texts, "market-lake")
    assert keys == {
        "p/realtime/date=2024-01-02/part-b.parquet",
        "p/realtime/date=2024-01-02/part-c.parquet",
    }


@pytest.mark.parametrize("text", ["", "{}", "v1\nnot json", 'v1\n{"nopath": 1}'])
def test_parse_log_rejects_corrupt_logs(text: str) -> None:
    with pytest.raises(CommitLogError):
        parse_log([("3", text)], "market-lake")
