"""``python -m market_devstack`` == ``market-devstack``."""

from __future__ import annotations

from market_devstack.cli import app

app()
