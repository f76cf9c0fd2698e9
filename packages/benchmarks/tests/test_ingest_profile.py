from __future__ import annotations

import cProfile
import json
import pstats
import zlib

from market_benchmarks.ingest_profile import buckets, top

RULES = (("compression", r"~:.*zlib"), ("json encoding", r"/json/"))


def test_buckets_give_c_time_to_the_python_caller_and_add_up() -> None:
    doc = {"rows": [{"symbol": f"S{i}", "close": i * 1.5} for i in range(20_000)]}
    profile = cProfile.Profile()
    profile.enable()
    text = json.dumps(doc)  # C encoder called from json/encoder.py: "json encoding"
    zlib.compress(text.encode() * 20, 9)  # named by its own rule
    profile.disable()
    stats = pstats.Stats(profile)
    got = buckets(stats, RULES)
    assert got.get("compression", 0) > 0, f"zlib's own time has its bucket: {got}"
    assert got.get("json encoding", 0) > 0, f"the C encoder counts for json's bucket: {got}"
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    assert abs(sum(got.values()) - total) < 1e-6, "every second of own time is in one bucket"
    assert top(stats, "cumtime", n=3), "the cumulative top list is not empty"
