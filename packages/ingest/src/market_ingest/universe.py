"""Symbol universes: the configured list, or a deterministic synthetic one for benchmarks."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable

from market_common.identifiers import is_valid_symbol


class InvalidSymbolError(ValueError):
    """A requested symbol is not a valid ticker (upper-case, e.g. ``BRK.B``)."""


def resolve_symbols(symbols: Iterable[str]) -> list[str]:
    """Upper-case, de-duplicated (first occurrence wins), each a valid ticker."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in symbols:
        sym = raw.strip().upper()
        if not sym or sym in seen:
            continue
        if not is_valid_symbol(sym):
            raise InvalidSymbolError(
                f"{raw!r} is not a valid ticker: 1-6 upper-case letters/digits, optional "
                "class suffix such as BRK.B"
            )
        seen.add(sym)
        out.append(sym)
    if not out:
        raise InvalidSymbolError("the symbol universe is empty: pass --symbols or MARKET_SYMBOLS")
    return out


def benchmark_universe(n: int = 500, *, seed: int = 0) -> list[str]:
    """``n`` distinct, valid, deterministic 3-5 letter tickers (an S&P-500-sized universe)."""
    letters = string.ascii_uppercase
    out: list[str] = []
    seen: set[str] = set()
    counter = 0
    while len(out) < n:
        digest = hashlib.blake2b(f"{seed}:{counter}".encode(), digest_size=8).digest()
        counter += 1
        length = 3 + digest[0] % 3
        sym = "".join(letters[b % 26] for b in digest[1 : 1 + length])
        if sym not in seen:
            seen.add(sym)
            out.append(sym)
    return out
