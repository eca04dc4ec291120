"""scripts/execute_book.py: which pages it executes, in which order, and that what it caches
is what the book build looks up (a failing notebook is left for the build to report)."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("execute_book", ROOT / "scripts" / "execute_book.py")
eb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eb)


def test_the_book_pages_executed_are_the_notebooks_and_the_myst_notebook():
    pages = eb.executable_pages(ROOT)
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(pages) == sorted(chapters + ["your_model", "long_runs"])
    assert "method" not in pages and "intro" not in pages  # text pages are not executed


def test_every_page_has_a_place_in_the_order_and_needs_name_pages():
    pages = set(eb.executable_pages(ROOT))
    assert pages <= set(eb.COST_ORDER), pages - set(eb.COST_ORDER)
    for stem, needs in eb.NEEDS.items():
        assert stem in pages and set(needs) <= pages, (stem, needs)


def test_schedule_waits_for_the_chapters_whose_models_a_chapter_reads():
    pending = list(eb.COST_ORDER)
    assert eb.schedule(pending, set(), set()) == "03_grokking_core"
    # 02 reads chapter 01's models: not while 01 is pending or running
    assert eb.schedule(["02_core_alignment", "01_markov_cores"], set(), set()) == "01_markov_cores"
    assert eb.schedule(["02_core_alignment"], {"01_markov_cores"}, set()) is None
    assert eb.schedule(["02_core_alignment"], set(), {"01_markov_cores"}) == "02_core_alignment"
    # a needed page that is not to be executed at all (cached already) does not block
    assert eb.schedule(["02_core_alignment"], set(), set()) == "02_core_alignment"
    assert eb.schedule(["06_ace_vs_baselines"], {"05_agreement_axis"}, {"01_markov_cores", "03_grokking_core"}) is None


def test_two_heavy_chapters_never_run_together():
    assert eb.HEAVY <= set(eb.COST_ORDER)
    pending = [s for s in eb.COST_ORDER if s != "03_grokking_core"]
    nxt = eb.schedule(pending, {"03_grokking_core"}, set())
    assert nxt is not None and nxt not in eb.HEAVY  # a light page beside the heavy one
    assert eb.schedule(["04_grokking_time", "05_agreement_axis"], {"03_grokking_core"}, set()) is None
    assert eb.schedule(["04_grokking_time", "05_agreement_axis"], {"00_ace_in_five_minutes"}, set()) == "05_agreement_axis"


def _notebook(path: Path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A page"), nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


def test_executed_pages_are_cached_for_the_build_and_failures_are_not(tmp_path):
    (tmp_path / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: intro
        chapters:
          - file: good
          - file: bad
        """))
    (tmp_path / "intro.md").write_text("# Intro\n")
    _notebook(tmp_path / "good.ipynb", "print(6 * 7)")
    _notebook(tmp_path / "bad.ipynb", "assert 1 == 2, 'a claim that fails'")
    (tmp_path / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 60\n")
    build = tmp_path / "_build"
    assert eb.main(["--jobs", "2", "--root", str(tmp_path), "--build", str(build),
                    "--config", str(tmp_path / "_config.yml")]) == 0
    cache = get_cache(str(build / ".jupyter_cache"))
    good = nbformat.read(tmp_path / "good.ipynb", as_version=4)
    _, merged = cache.merge_match_into_notebook(good)  # what the build does with a cached page
    assert merged.cells[1].outputs[0]["text"] == "42\n"
    try:
        cache.match_cache_notebook(nbformat.read(tmp_path / "bad.ipynb", as_version=4))
        raise AssertionError("a failing notebook was cached")
    except KeyError:
        pass
