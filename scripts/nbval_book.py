"""pytest plugin: the book's pages run by nbval, and their executions kept for the book.

Loaded by ``scripts/run_chapters.py`` (``pytest -p nbval_book --nbval-lax ...`` with
``scripts/`` on ``PYTHONPATH``) on top of nbval, which makes one pytest item per code cell and
runs the cells in one kernel. This plugin adds:

- **MyST text notebooks**: a ``.md`` page with a kernel (``book/your_model.md``) is collected like
  a ``.ipynb``, read as myst-nb reads it for the book, and run in its own folder;
- **the executed notebook**: every cell's outputs (streams merged as nbval merges them, rich
  outputs with their metadata, so that myst-nb's ``glue`` finds its values) and an execution
  count go back into the page's notebook, with the kernel's ``language_info``;
- ``--book-cache DIR``: a page whose every code cell passed is stored in the jupyter-cache at
  ``DIR`` exactly as myst-nb's ``execute_notebooks: cache`` mode stores an execution it ran
  itself (matched by the hash of the code cells, ``execution_seconds`` for the book's execution
  table), so ``jupyter-book build`` renders this execution instead of running the page again.
  A page with a failed, skipped or unrun cell is not stored;
- ``--book-executed DIR``: every executed page, passed or not, written to ``DIR/<stem>.ipynb``
  (the execution report of a failure: its error output is in the failing cell);
- **stop at the first failure**: the cells after a failed cell of the same page are skipped
  (they would run on a kernel whose state is incomplete, as the book build stops there too).
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, coalesce_streams, find_comment_markers, find_metadata_tags

from execute_book import read_page  # the page as the book build reads it: same cells, same hash


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nbval_book", "the book's pages under nbval (scripts/nbval_book.py)")
    group.addoption("--book-cache", metavar="DIR", default=None,
                    help="store every page whose cells all passed in the jupyter-cache DIR "
                         "(the book build's _build/.jupyter_cache)")
    group.addoption("--book-executed", metavar="DIR", default=None,
                    help="write every executed page, passed or failed, to DIR/<stem>.ipynb")


def _nbval_on(config: pytest.Config) -> bool:
    return bool(config.option.nbval or config.option.nbval_lax)


class MystNotebookFile(IPyNbFile):
    """A MyST text notebook (``.md`` with a ``kernelspec``), collected as nbval collects a
    ``.ipynb``: one item per code cell, named ``Cell N`` (N counts code cells from 0)."""

    def collect(self):
        self.nb = read_page(Path(self.path))
        code = [c for c in self.nb.cells if c.cell_type == "code"]
        for num, cell in enumerate(code):
            options = defaultdict(bool, find_metadata_tags(cell.metadata))
            options.update(dict(find_comment_markers(cell.source)))
            options.setdefault("check", self.compare_outputs)
            yield IPyNbCell.from_parent(self, name=f"Cell {num}", cell_num=num, cell=cell, options=options)


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix != ".md" or not _nbval_on(parent.config):
        return None
    from myst_nb.core.read import is_myst_markdown_notebook

    if is_myst_markdown_notebook(file_path.read_text(encoding="utf8")):
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None


_SUMMARY = pytest.StashKey[list]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, IPyNbCell):  # `-v` prints the node id, not nbval's 'x::ipynb::Cell 0'
            path, lineno, _ = item.location
            item.location = (path, lineno, item.name)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("executed pages (nbval_book)")
        for line in lines:
            terminalreporter.write_line(line)


class _PageRun:
    """What one page's run has produced so far (kept on its collector)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.passed = 0          # code cells whose call passed
        self.count = 0           # execution count given to the next executed cell
        self.failed: str | None = None  # name of the first cell that failed


def _run_of(nbfile: IPyNbFile) -> _PageRun:
    if not hasattr(nbfile, "_book_run"):
        nbfile._book_run = _PageRun()
    return nbfile._book_run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, IPyNbCell):
        run = _run_of(item.parent)
        if run.failed is not None:
            pytest.skip(f"not run: {run.failed} of this page failed")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if not isinstance(item, IPyNbCell):
        return
    report = outcome.get_result()
    run = _run_of(item.parent)
    if call.when == "call" and item.test_outputs is not None:  # the cell was sent to the kernel
        run.count += 1
        outputs = coalesce_streams(list(item.test_outputs))
        for out in outputs:
            if out.output_type == "execute_result":
                out.execution_count = run.count
        item.cell.outputs = outputs
        item.cell.execution_count = run.count
    if report.failed and run.failed is None:
        run.failed = item.name
    if call.when == "call" and report.passed:
        run.passed += 1


def _language_info(nbfile: IPyNbFile) -> dict | None:
    """The kernel's ``language_info`` (what nbclient writes into an executed notebook), or
    None where the kernel is gone (a timed-out cell stops it)."""
    kernel = nbfile.kernel
    if kernel is None or not kernel.is_alive():
        return None
    try:
        return kernel.kc.kernel_info(reply=True, timeout=10)["content"]["language_info"]
    except Exception:  # noqa: BLE001 (a page without it still renders; its run has failed anyway)
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    nbfile = item.parent if isinstance(item, IPyNbCell) else None
    last = nbfile is not None and (nextitem is None or nextitem.parent is not nbfile)
    language_info = _language_info(nbfile) if last else None  # before the kernel stops
    yield
    if last:
        _finish_page(item.config, nbfile, language_info)


def _finish_page(config: pytest.Config, nbfile: IPyNbFile, language_info: dict | None) -> None:
    run = _run_of(nbfile)
    seconds = time.perf_counter() - run.started
    nb = copy.deepcopy(nbfile.nb)
    if language_info:
        nb.metadata["language_info"] = language_info
    path = Path(nbfile.path)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    complete = run.failed is None and run.passed == n_code
    notes = [f"{run.passed} of {n_code} code cells passed in {seconds:.0f} s"]
    if run.failed:
        notes.append(f"{run.failed} failed")
    if executed := config.getoption("book_executed"):
        out = Path(executed) / f"{path.stem}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        notes.append(f"executed notebook {out}")
    if cache_dir := config.getoption("book_cache"):
        if complete:
            store_execution(cache_dir, nb, path, seconds)
            notes.append(f"stored in {cache_dir}")
        else:
            notes.append("not stored (incomplete)")
    config.stash.setdefault(_SUMMARY, []).append(f"{path.name}: " + "; ".join(notes))


def store_execution(cache_dir: str | Path, nb: nbformat.NotebookNode, path: Path, seconds: float) -> None:
    """Store executed ``nb`` (read from ``path`` as the book reads it) in the jupyter-cache at
    ``cache_dir``, as myst-nb's cache mode stores an execution of its own."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(cache_dir)).cache_notebook_bundle(
        CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}), check_validity=False, overwrite=True)
