"""Every engine of the ingest package is derived from the one contract definition.

``market_common.contract_spec`` holds fields, bounds and the ordered rules; these tests fail
when the README's reason-code table, the arrow wire schema, the frame fields or the
pydantic models drift from it.
"""

from __future__ import annotations

from pathlib import Path

from market_common import contract_spec
from market_common.contracts import REASON_CODES, RECORD_TYPES, WIRE_FIELDS
from market_ingest.records import FIELDS
from market_ingest.records.decoding import ARROW_WIRE_SCHEMA

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_reason_table_is_generated_from_the_definition() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("-->\n", text.index("<!-- reason-codes:start")) + 4
    table = text[start : text.index("<!-- reason-codes:end -->")].strip()
    assert (
        table == contract_spec.reason_table_markdown()
    ), "README reason table out of step: paste `python -m market_common.contract_spec`"


def test_finding_contract_written_four_times_every_engine_uses_the_one_definition() -> None:
    assert REASON_CODES == contract_spec.REASON_CODES
    for kind, fields in contract_spec.FIELDS.items():
        names = tuple(f.name for f in fields)
        assert FIELDS[kind] == names, kind
        assert tuple(ARROW_WIRE_SCHEMA[kind].names) == names, kind
        assert set(WIRE_FIELDS[kind]) == set(names), kind
        assert set(RECORD_TYPES[kind].model_fields) == set(names), kind


def test_value_rules_follow_the_precedence_order() -> None:
    for kind, rules in contract_spec.VALUE_RULES.items():
        ranks = [contract_spec.RANK[r.code] for r in rules]
        assert ranks == sorted(ranks), kind
        assert all(kind in contract_spec.REASONS[rank].kinds for rank in ranks), kind


def test_bounds_keep_aggregates_finite_and_within_64_bits() -> None:
    rows = 10**6  # the largest group any job sums over
    assert contract_spec.VOLUME_MAX * rows < 2**63
    assert contract_spec.PRICE_MAX**2 * rows < 1.7e308
    assert contract_spec.PRICE_MAX / contract_spec.PRICE_MIN < 1e12
