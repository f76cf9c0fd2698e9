"""Fixtures of the local stack's own pytest plugin (a plain import, so Pants infers it)."""

from __future__ import annotations

from market_testing.pytest_plugin import *  # noqa: F403
