"""A chapter is prose, a few lines calling the package, and a figure or table: logic lives in
``ace_utils``, so a chapter defines at most two functions of its own (the Colab setup cell,
removed from the page and the same on every page, not counted), and the code a reader sees
fits the page: at most 100 characters a line in the cells shown with their input (the book's
code column shows about that many at 1400 px; the parameters cell, whose comments document
each parameter, and cells whose input is hidden or removed are not counted); the opening shows
the runtime glued from the committed timing records, never a typed time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ace_utils.book.runtimes import RECORDS, chapter_seconds

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "notebooks").glob("0*.py")) + [ROOT / "book" / "your_model.py", ROOT / "book" / "long_runs.py"]
COLAB_CELL = "# Colab setup."
HIDDEN = ("remove-cell", "remove-input", "hide-input", "parameters")
WIDTH = 100


def cells(source: str) -> list[tuple[str, str]]:
    """``(header, body)`` of each cell of a py:percent page (the header: its ``# %%`` line)."""
    return [(header, body) for header, _, body in (cell.partition("\n") for cell in source.split("\n# %%")[1:])]


def functions_defined(source: str) -> list[str]:
    """Names of the functions (nested ones too) defined in a py:percent page's cells, outside
    its Colab setup cell."""
    tree = ast.parse("\n".join(body for _, body in cells(source) if not body.startswith(COLAB_CELL)))
    return [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_the_count_reads_nested_functions_and_skips_the_colab_cell():
    page = ('# %%\nx = 1\n\n# %% tags=["remove-cell"]\n# Colab setup. In Colab only\ndef _colab_setup():\n    pass\n'
            '\n# %%\ndef f():\n    def g():\n        pass\n')
    assert sorted(functions_defined(page)) == ["f", "g"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_a_page_defines_at_most_two_functions(page):
    defined = functions_defined(page.read_text())
    assert len(defined) <= 2, f"{page.name} defines {defined}: move the logic into ace_utils"


def long_visible_lines(source: str, width: int = WIDTH) -> list[str]:
    """Code lines over ``width`` characters in the cells of a py:percent page shown with their
    input (comment lines and markdown cells not counted)."""
    long = []
    for header, body in cells(source):
        if "[markdown]" in header or any(tag in header for tag in HIDDEN):
            continue
        long += [line for line in body.split("\n") if len(line) > width and not line.lstrip().startswith("#")]
    return long


def test_the_width_check_reads_only_cells_shown_with_their_input():
    wide = "x = " + "1 + " * 30 + "1"
    page = f'# header\n# %%\n{wide}\n\n# %% tags=["hide-input"]\n{wide}\n\n# %% [markdown]\n# {wide}\n'
    assert long_visible_lines(page) == [wide]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_visible_code_fits_the_page(page):
    long = long_visible_lines(page.read_text())
    assert not long, f"{page.name}: {len(long)} visible code lines over {WIDTH} characters, e.g. {long[0]!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_page_opening_shows_the_recorded_runtime(page):
    """No opening types a runtime by hand, and every page's runtime is in a committed record."""
    opening = page.read_text().split("# %%", 2)[1]
    assert "**Runtime:** {glue:md}`runtime`" in opening, f"{page.name}: the opening's runtime is not the glued one"
    runtime_sentence = opening.split("**Runtime:**", 1)[1].split(".\n", 1)[0]
    assert not re.search(r"\d+(\.\d+)? ?(s|minutes?)\b", runtime_sentence), f"{page.name}: a typed time: {runtime_sentence}"
    cold, _ = chapter_seconds(page.stem, RECORDS)
    assert cold, f"no committed timing record holds {page.stem}: run benchmarks/run_all"
    glued_here = "open_chapter(" in page.read_text() or 'glue_markdown("runtime"' in page.read_text()
    assert glued_here, f"{page.name} shows the runtime but never glues it"
