"""Shared fixtures: the literal mart frames, and the local-stack plugin for integration tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Outside Pants (plain pytest in importlib mode) the sibling helper module is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
import mart_samples

from market_pipeline.marts import MartFrames

pytest_plugins = ["market_testing.pytest_plugin"]


@pytest.fixture
def frames() -> MartFrames:
    return MartFrames(
        performance=mart_samples.stock_performance(),
        daily_summary=mart_samples.daily_summary(),
        realtime_signals=mart_samples.realtime_signals(),
    )
