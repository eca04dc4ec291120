"""scripts/run_chapters.py and its pytest plugin scripts/nbval_book.py (the chapters' part of
make test): each page runs under nbval, one item per code cell, in the order the pages' models
require; what passed is stored in the execution cache exactly as the book build looks it up,
what failed is named, reported and kept out of the cache and out of the build's execution; and
scripts/cell_times.py counts each page's executions from the kernels' log."""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # the scripts import execute_book, as they do when run

import cell_times as ct  # noqa: E402
import run_chapters as rc  # noqa: E402


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A page")] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


MYST_PAGE = """\
---
file_format: mystnb
kernelspec:
  name: python3
  display_name: Python 3
  language: python
---
# A text notebook

```{code-cell} ipython3
import os
print("cwd", os.path.basename(os.getcwd()))
```

```{code-cell} ipython3
6 * 7
```
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A small book run by run_chapters: 02 reads what 01 wrote (as chapter 02 reads chapter
    01's models), one page fails its second cell, one page is a MyST text notebook."""
    pytest.importorskip("nbval")
    root = tmp_path_factory.mktemp("book")
    (root / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: intro
        chapters:
          - file: notebooks/02_core_alignment
          - file: notebooks/01_markov_cores
          - file: notebooks/bad
          - file: text/page
        """))
    (root / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 60\n")
    (root / "notebooks").mkdir()
    (root / "text").mkdir()
    _notebook(root / "notebooks" / "01_markov_cores.ipynb",
              "import time, pathlib\ntime.sleep(1.0)\npathlib.Path('models.txt').write_text('trained')",
              "print('first line')\nprint('second line')",
              "from IPython.display import display\n"
              "display({'text/plain': '0.25'}, raw=True, metadata={'scrapbook': {'name': 'x', 'mime_prefix': ''}})")
    _notebook(root / "notebooks" / "02_core_alignment.ipynb",
              "import pathlib\nassert pathlib.Path('models.txt').read_text() == 'trained'")
    _notebook(root / "notebooks" / "bad.ipynb",
              "x = 1", "assert x == 2, 'a claim that does not hold'", "print('never runs')")
    (root / "text" / "page.md").write_text(MYST_PAGE)
    out = root / "_build" / "test"
    code = rc.main(["--jobs", "2", "--root", str(root), "--config", str(root / "_config.yml"),
                    "--build", str(root / "_build"), "--out", str(out / "chapters"),
                    "--junitxml", str(out / "chapters.xml"), "--build-config", str(out / "_config.yml")])
    return root, out, code


def test_every_code_cell_is_one_junit_item_and_a_failure_skips_the_rest_of_its_page(book):
    root, out, code = book
    assert code == 1  # one page failed
    cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(out / "chapters.xml").getroot().iter("testcase")}
    assert len(cases) == 3 + 1 + 3 + 2
    bad = {name: case for (cls, name), case in cases.items() if cls.endswith("bad.ipynb")}
    assert bad["Cell 0"].find("failure") is None and bad["Cell 0"].find("skipped") is None
    assert bad["Cell 1"].find("failure") is not None
    assert bad["Cell 2"].find("skipped") is not None
    log = (out / "chapters" / "bad.log").read_text()
    assert "Cell 1" in log and "a claim that does not hold" in log and "AssertionError" in log


def test_a_page_that_reads_another_pages_models_runs_after_it(book):
    root, out, _ = book
    for stem in ("01_markov_cores", "02_core_alignment"):
        assert "1 failed" not in (out / "chapters" / f"{stem}.log").read_text()
    cases = [c for c in ET.parse(out / "chapters.xml").getroot().iter("testcase") if "02_core" in c.get("classname")]
    assert cases and all(c.find("failure") is None for c in cases)


def test_passed_pages_are_in_the_cache_as_the_build_reads_them_and_failed_ones_are_not(book):
    root, out, _ = book
    eb = rc.eb
    cache = get_cache(str(root / "_build" / ".jupyter_cache"))
    _, merged = cache.merge_match_into_notebook(eb.read_page(root / "notebooks" / "01_markov_cores.ipynb"))
    code = [c for c in merged.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert code[1].outputs[0]["text"] == "first line\nsecond line\n"  # one stream, as nbclient writes it
    display = code[2].outputs[0]
    assert display["output_type"] == "display_data" and display["data"]["text/plain"] == "0.25"
    assert display["metadata"]["scrapbook"]["name"] == "x"  # glue finds its value by this metadata
    assert merged.metadata["language_info"]["name"] == "python"
    nbformat.validate(merged)
    _, page = cache.merge_match_into_notebook(eb.read_page(root / "text" / "page.md"))
    assert page.cells[1].outputs[0]["text"] == "cwd text\n"  # run in its own folder
    assert page.cells[2].outputs[0]["data"]["text/plain"] == "42"
    with pytest.raises(KeyError):
        cache.match_cache_notebook(eb.read_page(root / "notebooks" / "bad.ipynb"))
    executed = nbformat.read(out / "chapters" / "bad.ipynb", as_version=4)  # the failure's report
    assert executed.cells[2].outputs[0]["ename"] == "AssertionError"


def test_the_build_config_executes_nothing_and_reports_every_failure(book):
    root, out, _ = book
    cfg = yaml.safe_load((out / "_config.yml").read_text())
    assert cfg["execute"]["raise_on_error"] is False and cfg["execute"]["timeout"] == 60
    assert cfg["execute"]["exclude_patterns"] == ["notebooks/bad.ipynb"]


def test_the_book_timeout_is_nbvals_and_settings_nbval_cannot_follow_are_refused(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("execute:\n  timeout: 300\n")
    assert rc.book_timeout(cfg) == 300
    assert "--nbval-cell-timeout=300" in rc.pytest_command(Path("a.ipynb"), 300, tmp_path, tmp_path, tmp_path)
    cfg.write_text("execute:\n  timeout: 300\n  run_in_temp: true\n")
    with pytest.raises(SystemExit, match="run_in_temp"):
        rc.book_timeout(cfg)


def test_a_page_without_a_junit_report_counts_as_failed(tmp_path):
    good = tmp_path / "good.xml"
    good.write_text('<testsuites><testsuite name="a" tests="2" failures="0" errors="0" skipped="1">'
                    '<testcase name="Cell 0"/><testcase name="Cell 1"><skipped/></testcase></testsuite></testsuites>')
    rc.merge_junit({"a": good, "b": tmp_path / "missing.xml"}, tmp_path / "all.xml")
    assert rc.junit_counts(tmp_path / "all.xml") == (3, 1, 1)


def _log(path: Path, rows: list[tuple[str, str, float]]) -> None:
    path.write_text("".join(json.dumps({"source": s, "seconds": t, "error": False, "kernel": k}) + "\n"
                            for k, s, t in rows))


def test_cell_times_counts_each_pages_executions_by_its_kernels(tmp_path, capsys):
    _notebook(tmp_path / "a.ipynb", "import os", "x = 1")
    _notebook(tmp_path / "b.ipynb", "import os", "y = 2")
    _notebook(tmp_path / "c.ipynb", "z = 3")
    pages = [str(tmp_path / f"{n}.ipynb") for n in "abc"]
    log = tmp_path / "cells.jsonl"
    # b's first cell is also a's: its kernel still counts for b, where most of its cells are
    _log(log, [("k1", "import os", 1.0), ("k1", "x = 1", 2.0), ("k2", "import os", 1.0), ("k2", "y = 2", 400.0),
               ("k3", "import os", 1.0), ("k3", "x = 1", 2.0)])
    assert ct.executions(log, pages) == {"a": 2, "b": 1, "c": 0}
    assert ct.report(str(log), pages, limit=300) == 1  # b's cell over the limit
    assert ct.report(str(log), pages, limit=300, once=True) == 3  # and a twice, c never
    text = capsys.readouterr().out
    assert "OVER BUDGET: b Cell 1" in text and "NOT EXECUTED ONCE: a was executed 2 times" in text


def test_plain_pytest_needs_no_nbval():
    import tomllib

    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert not [o for o in opts if "nbval" in o]  # nbval's options live in scripts/run_chapters.py
