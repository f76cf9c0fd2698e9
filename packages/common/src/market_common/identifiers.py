"""Identifier validation: SQL identifiers and ticker symbols are never interpolated unchecked."""

from __future__ import annotations

import re

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?$")


class InvalidIdentifierError(ValueError):
    """A database/schema/table/column name is not a plain SQL identifier."""


def validate_identifier(name: str) -> str:
    """Return ``name`` if it is a plain, unquoted SQL identifier; raise otherwise."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise InvalidIdentifierError(
            f"{name!r} is not a valid identifier: use letters, digits, _ or $, "
            "starting with a letter or _ (at most 255 characters)"
        )
    return name


def qualified(*parts: str) -> str:
    """``DB.SCHEMA.TABLE`` from validated parts."""
    return ".".join(validate_identifier(p) for p in parts)


def is_valid_symbol(symbol: str) -> bool:
    """Ticker symbols: upper-case letters/digits, optional class suffix (``BRK.B``, ``BF-B``)."""
    return isinstance(symbol, str) and SYMBOL_RE.fullmatch(symbol) is not None
