"""Vectorised contract validation and JSON (de)serialisation of record frames.

Why not ``validate_payload`` per record: building one pydantic model per row costs
~20 µs, which would dominate a million-record backfill. Instead the rules of
:mod:`market_common.contracts` are applied column-wise with numpy, and pydantic is used
only where it has to speak:

1. :func:`canonicalise` brings a frame to canonical dtypes and marks every row whose
   representation the vectorised checker cannot judge on its own (missing/extra columns,
   object columns holding non-strings, ints stored as non-integral floats, non-ISO
   timestamps, ...). Those rows take the *slow path*.
2. :func:`check` applies the contract rules to the canonical rows (schema_version, symbol
   syntax + universe, finite positive prices, non-negative volume, OHLC consistency,
   future-timestamp tolerance) and the serialised size limit.
3. Every row that is on the slow path or failed a check is validated by
   :func:`market_common.contracts.validate_payload` on its JSON bytes: pydantic is the
   authority, produces the DLQ reason and, where it accepts (e.g. a defaulted ``source``),
   the canonical values that are sent.

So the vectorised path can only *accept* a row, never reject one: a row it fails is
re-judged by pydantic. ``tests/test_records.py`` checks on randomised frames that the
vectorised verdict equals pydantic's for every canonical row, and that the bytes sent for
accepted rows parse back (through ``validate_payload``) to the same values.
"""

from __future__ import annotations

from market_ingest.records.canonical import canonicalise, empty_frame
from market_ingest.records.common import FIELDS, MAX_RECORD_BYTES, Kind, Reject, Validated
from market_ingest.records.dead_letters import dead_letter_json
from market_ingest.records.decoding import decode_values
from market_ingest.records.encoding import encode, row_json
from market_ingest.records.frames import validate_frame
from market_ingest.records.rules import check

__all__ = [
    "FIELDS",
    "MAX_RECORD_BYTES",
    "Kind",
    "Reject",
    "Validated",
    "canonicalise",
    "check",
    "dead_letter_json",
    "decode_values",
    "empty_frame",
    "encode",
    "row_json",
    "validate_frame",
]
