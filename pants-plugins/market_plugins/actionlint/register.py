"""Pants backend `market_plugins.actionlint`: actionlint in `lint`."""

from __future__ import annotations

from market_plugins.actionlint import rules as actionlint_rules


def rules() -> list:
    return [*actionlint_rules.rules()]
