"""``python -m market_localstack`` == ``market-localstack``."""

from __future__ import annotations

from market_localstack.cli import app

app()
