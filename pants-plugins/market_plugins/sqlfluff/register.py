"""Pants backend `market_plugins.sqlfluff`: sqlfluff in `lint` and `fmt`."""

from __future__ import annotations

from market_plugins.sqlfluff import rules as sqlfluff_rules


def rules() -> list:
    return [*sqlfluff_rules.rules()]
