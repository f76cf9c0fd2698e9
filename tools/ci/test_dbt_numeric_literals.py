"""No NUMBER-literal division in the dbt SQL where a double is meant.

Snowflake types ``14.0`` as NUMBER(3,1) and divides NUMBERs in fixed point: ``14.0 / 13.0``
is NUMBER with scale 7 (1.0769231), so ``ln(14.0 / 13.0)`` put the RSI off by up to ~7e-6.
fakesnow (DuckDB) computes the same expression in doubles, so no emulator test can see it:
this check reads the SQL the way Snowflake would type it. A division whose operands are
both numeric literals, or whose operand is a decimal literal, is flagged; cast one side
(``cast(14 as float) / 13``) to divide in doubles.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def _dbt_dir() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "dbt" / "dbt_project.yml").is_file():
            return parent / "dbt"
    raise FileNotFoundError("dbt/dbt_project.yml not found above this test")


DBT = _dbt_dir()
NUMBER = r"\d+(?:\.\d*)?|\.\d+"
DECIMAL = r"\d+\.\d*|\.\d+"
# `<literal> / <literal>` (integer or decimal), or a decimal literal on either side of `/`.
LITERAL_DIVISION = re.compile(
    rf"(?<![\w.])(?:(?:{NUMBER})\s*/\s*(?:{NUMBER})|(?:{DECIMAL})\s*/|/\s*(?:{DECIMAL}))(?![\w.])"
)
# Jinja and SQL comments (documentation may show the arithmetic it explains).
COMMENTS = re.compile(r"\{#.*?#\}|/\*.*?\*/|--[^\n]*", re.S)


def literal_divisions(sql: str) -> list[str]:
    """Each NUMBER-literal division in ``sql`` (comments ignored), as written."""
    return [m.group(0) for m in LITERAL_DIVISION.finditer(COMMENTS.sub("", sql))]


@pytest.mark.parametrize(
    ("sql", "flagged"),
    [
        ("{%- set ln_14_over_13 = 'ln(14.0 / 13.0)' -%}", True),  # the finding
        ("select 1 / 3 as third", True),
        ("select x / 2.5 from t", True),
        ("select 0.5 / y from t", True),
        ("select ln(cast(14 as float) / 13)", False),
        ("select close_price / 14 from t", False),
        ("{# 14.0 / 13.0 explained #} select 1", False),
    ],
)
def test_the_check_flags_number_literal_division(sql: str, flagged: bool) -> None:
    assert bool(literal_divisions(sql)) is flagged, sql


def test_dbt_sql_divides_no_number_literals() -> None:
    """Finding: int_rolling_metrics.sql computed ln(14.0 / 13.0) in NUMBER arithmetic."""
    files = sorted([*DBT.glob("models/**/*.sql"), *DBT.glob("macros/**/*.sql")])
    assert any(f.name == "int_rolling_metrics.sql" for f in files)
    found = {
        str(f.relative_to(DBT)): hits for f in files if (hits := literal_divisions(f.read_text()))
    }
    assert not found, f"NUMBER-literal division (cast one operand to float): {found}"
