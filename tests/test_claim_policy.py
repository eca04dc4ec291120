"""The committed seed tables and the claims the chapters assert agree with the book's rule:
a claim is asserted at a chapter's defaults only if it held on >= 9 of >= 10 seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace_utils.claims import MIN_HELD, MIN_SEEDS, SEED_TABLES, seed_support
from ace_utils.rerun import read_runs_csv

CHAPTERS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def test_every_chapter_has_a_seed_table_of_ten_seeds():
    for chapter in CHAPTERS:
        support = seed_support(chapter)
        assert support, f"no seed table {SEED_TABLES / (chapter + '.csv')}: run python -m ace_utils.rerun"
        assert {n for _, n in support.values()} == {len(read_runs_csv(SEED_TABLES / f"{chapter}.csv"))}
        assert min(n for _, n in support.values()) >= MIN_SEEDS, chapter


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_default_seed_passes_every_claim_the_rule_asserts(chapter):
    """Seed 0 (what the book and nbval run) must not be a seed on which an asserted claim failed."""
    runs = read_runs_csv(SEED_TABLES / f"{chapter}.csv")
    support = seed_support(chapter)
    backed = {name for name, (held, n) in support.items() if n >= MIN_SEEDS and held >= MIN_HELD}
    failed_at_0 = [name for name, c in runs[0]["checks"].items()
                   if name in backed and c["asserted"] and not c["holds"]]
    assert not failed_at_0, f"{chapter}: seed 0 fails asserted claims {failed_at_0}"
