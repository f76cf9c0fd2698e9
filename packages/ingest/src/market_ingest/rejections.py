"""A produce run whose every record was dead-lettered is a failure, not a success.

The producers never stop on bad input (each bad record goes to the DLQ with a reason, see
README "Reasons"), so a run over a file of entirely wrong rows used to "succeed" having sent
nothing usable. :func:`check_not_all_rejected` turns that case into
:class:`AllRecordsRejectedError`, whose message lists the top reasons and, per reason, what
the user can change; callers exit with ``ExitCode.REJECTED``.
"""

from __future__ import annotations

from collections.abc import Mapping

from market_ingest.errors import IngestError

# What to change for the reasons a whole file typically fails with.
FIXES: Mapping[str, str] = {
    "unknown_symbol": (
        "the tickers are not in the run's universe: leave --symbols unset (a replay then uses "
        "the tickers in its files) or pass --symbols with the files' tickers"
    ),
    "invalid_symbol": "symbols must be tickers such as AAPL or BRK.B (upper case, <= 6 chars)",
    "missing_field": (
        "daily files need symbol,trade_date,open,high,low,close,volume; tick files need "
        "symbol,ts,price,volume"
    ),
    "unknown_field": "drop the columns the contract does not define (see packages/ingest/README.md)",
    "invalid_timestamp": "trade_date as YYYY-MM-DD, ts as ISO 8601 with a UTC offset",
    "future_timestamp": "the rows are dated in the future: check the dates and the time zone",
    "wrong_type": "prices must be numbers and volumes integers (no quotes, no thousands separators)",
    "price_outside_range": "open and close must lie within [low, high]",
    "high_below_low": "high must not be below low (columns swapped?)",
}
GENERIC_FIX = "see the reason table in packages/ingest/README.md and the records on the DLQ topic"


class AllRecordsRejectedError(IngestError):
    """Every record of a produce run failed the contract and went to the dead-letter topic."""

    def __init__(self, kind: str, records: int, reasons: Mapping[str, int]) -> None:
        self.kind = kind
        self.records = records
        self.reasons = dict(reasons)
        lines = [f"{kind}: all {records:,} records were dead-lettered; top reasons:"]
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:5]:
            lines.append(f"  - {reason} ({count:,}): {FIXES.get(reason, GENERIC_FIX)}")
        super().__init__("\n".join(lines))


def check_not_all_rejected(
    kind: str, *, records: int, dead_lettered: int, reasons: Mapping[str, int]
) -> None:
    """Raise AllRecordsRejectedError when ``records > 0`` and every one was dead-lettered."""
    if records > 0 and dead_lettered >= records:
        raise AllRecordsRejectedError(kind, records, reasons)
