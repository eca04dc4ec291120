"""The committed seed tables and the claims the chapters assert agree with the book's rule:
a claim is asserted at a chapter's defaults only if it held on >= 9 of >= 10 seeds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ace_utils.book.chapter import at_settings
from ace_utils.book.claims import MIN_HELD, MIN_SEEDS, SEED_TABLES, seed_support
from ace_utils.book.rerun import read_runs_csv

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.ipynb"))


def test_every_chapter_has_a_seed_table_of_ten_seeds():
    for chapter in CHAPTERS:
        support = seed_support(chapter)
        assert support, f"no seed table {SEED_TABLES / (chapter + '.csv')}: run python -m ace_utils.book.rerun"
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


def _parameters_cell_defaults(source: str) -> dict:
    """The literal assignments of a py:percent chapter's ``parameters`` cell."""
    cell = source.split('# %% tags=["parameters"]', 1)[1].split("\n# %%", 1)[0]
    return {t.id: ast.literal_eval(node.value) for node in ast.parse(cell).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _asserted_at(source: str) -> dict:
    """The ``asserted_at`` of the chapter's one ``open_chapter`` call: name -> value or predicate."""
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "open_chapter"]
    assert len(calls) == 1, f"{len(calls)} open_chapter calls"
    (kw,) = [k for k in calls[0].keywords if k.arg == "asserted_at"]
    return {ast.literal_eval(k): eval(compile(ast.Expression(v), "asserted_at", "eval")) for k, v in zip(kw.value.keys, kw.value.values)}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_claims_are_asserted_at_the_chapters_defaults(chapter):
    """Each chapter's open_chapter(asserted_at=...) holds at the defaults of its parameters cell,
    so the book's own run (and every seed of the seed table) asserts what the chapter claims."""
    source = (ROOT / "notebooks" / f"{chapter}.py").read_text()
    defaults, at = _parameters_cell_defaults(source), _asserted_at(source)
    assert set(at) <= set(defaults), sorted(set(at) - set(defaults))
    assert at_settings(defaults, at), {n: (defaults[n], v) for n, v in at.items() if not callable(v)}
    moved = {n: v for n, v in at.items() if not callable(v)}
    for name, value in moved.items():  # and a changed setting is not asserted (the rule is not vacuous)
        other = dict(defaults, **{name: "another value"})
        assert not at_settings(other, at), name


def test_at_settings_compares_values_and_calls_predicates():
    at = {"n": 2, "k": lambda k: k >= 5}
    assert at_settings({"n": 2, "k": 5}, at) and not at_settings({"n": 3, "k": 5}, at) and not at_settings({"n": 2, "k": 4}, at)
