"""``market-pipeline run --source replay``: the user's own files through the whole platform.

The replay's universe and backfill window default to what the files hold, so a file of two
tickers that are not in the default list, dated last spring, runs end to end without any
other option: :func:`replay_plan` reads the files once, before the run starts, and fails
early (``ReplayInputError``) on a path that does not exist or holds no CSV/Parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market_ingest.sources import Source
    from market_pipeline.run import RunOptions

# Days added to the window so the first file day is inside it whatever the rounding.
WINDOW_MARGIN_DAYS = 7


@dataclass(frozen=True)
class ReplayPlan:
    """What the files imply for the run: their tickers and the years back to their first bar."""

    symbols: tuple[str, ...]
    years: float | None  # None: the files hold no daily bars (ticks only)


def replay_plan(paths: Sequence[Path], *, end: date) -> ReplayPlan:
    """The files' tickers and the backfill length (from ``end``) that reaches their first day."""
    from market_ingest.sources.replay import ReplaySource

    source = ReplaySource(list(paths))
    first = source.first_trade_date()
    years = None
    if first is not None and first <= end:
        years = round(((end - first).days + WINDOW_MARGIN_DAYS) / 365.25, 4)
    return ReplayPlan(symbols=tuple(source.symbols()), years=years)


def run_source(options: RunOptions) -> Source | str:
    """The source a run's produce steps use: a replay of its files, else the source's name."""
    if options.source != "replay":
        return options.source
    from market_ingest.sources import make_source

    return make_source("replay", replay_paths=list(options.replay_paths))
