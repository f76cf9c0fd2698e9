"""Each package says what it is for, and README's layout table matches the tree.

A package whose README cannot state its responsibility in one sentence probably has two; a
layout table that lists folders which moved (or misses new ones) sends readers astray.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

# The repo root, or the Pants sandbox root (which holds the same files via //:release_inputs).
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
PREFIX = "**Responsibility:** "


def responsibility(readme: str) -> str | None:
    """The paragraph after `**Responsibility:** ` when it is one sentence, else None.

    One sentence: it ends with a full stop and has no sentence break (". ") inside; dots
    within names (`market_common.clients`) are fine.
    """
    for paragraph in readme.split("\n\n"):
        text = " ".join(paragraph.split())
        if text.startswith(PREFIX):
            sentence = text[len(PREFIX) :]
            return sentence if sentence.endswith(".") and ". " not in sentence else None
    return None


def test_responsibility_is_one_sentence() -> None:
    assert responsibility("# x\n\n**Responsibility:** load files into the warehouse.\n") == (
        "load files into the warehouse."
    )
    assert responsibility("# x\n\n**Responsibility:** load files. And run dbt.\n") is None
    assert responsibility("# x\n\nLoads files.\n") is None


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_package_readme_states_its_responsibility(package: Path) -> None:
    readme = package / "README.md"
    assert readme.is_file(), f"{package.name} has no README.md"
    text = readme.read_text()
    name = tomllib.loads((package / "pyproject.toml").read_text())["project"]["name"]
    assert text.startswith(f"# {name}"), f"{readme} must open with '# {name}'"
    assert responsibility(text), (
        f"{readme}: state the package's one responsibility as one sentence in a paragraph "
        "starting '**Responsibility:** '"
    )


def test_readme_layout_table_matches_the_packages() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `packages/([^`/]+)` \|", readme, flags=re.MULTILINE))
    present = {p.name for p in PACKAGES}
    assert listed == present, (
        f"README's layout table lists {sorted(listed - present)} that do not exist and misses "
        f"{sorted(present - listed)}"
    )
