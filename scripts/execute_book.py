"""Execute the book's notebooks into jupyter-book's execution cache, two at a time.

``jupyter-book build`` (1.x) executes the notebooks it has no cached outputs for one after
another. Most chapters keep both cores busy only while they train; their analyses, figures
and kernel start-up use one. This script runs up to ``--jobs`` notebooks at once (each in
its own kernel, as the build would) and stores every successful execution in the cache the
build reads (``<build>/.jupyter_cache``, matched by the hash of the code cells), so the build
that follows only renders them. A notebook that fails or times out is left out of the cache:
the build then executes it again and reports its error with the traceback, as without this
step. Settings come from the book's config: the per-cell ``execute.timeout``,
``allow_errors``, ``run_in_temp``.

Chapters reuse models that earlier chapters trained and cached (:data:`NEEDS`), so a chapter
starts only after the chapters whose models it reads have finished; among the ready ones the
longest (:data:`COST_ORDER`) starts first, but two chapters that train for minutes on both
cores (:data:`HEAVY`) never run together: side by side they would double each other's cell
times, and each cell has 600 s. Which notebooks run together does not change
their numbers: every model trains with its own seeds in its own process.

    .venv/bin/python scripts/execute_book.py [--jobs 2] [--config _config.yml] [--build _build] [--root .]
        [--pages 01_markov_cores,02_core_alignment]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import sys
import time
from contextlib import suppress
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parents[1]

# page stem -> the pages whose cached models it reads (it would train them again otherwise)
NEEDS: dict[str, tuple[str, ...]] = {
    "02_core_alignment": ("01_markov_cores",),
    "06_ace_vs_baselines": ("01_markov_cores", "03_grokking_core", "05_agreement_axis"),
    "07_architecture_and_the_core": ("01_markov_cores", "03_grokking_core"),
}
# pages that train for minutes with both cores (two worker processes): at most one of them runs at
# a time, so that a training cell is slowed only by a lighter page beside it (two of them together
# double their cells' times, towards the per-cell limit)
HEAVY = frozenset({"03_grokking_core", "04_grokking_time", "05_agreement_axis", "07_architecture_and_the_core"})
# the pages from the longest to the shortest cold run (results/run_all.md); pages not listed go last
COST_ORDER = ("03_grokking_core", "05_agreement_axis", "04_grokking_time", "07_architecture_and_the_core",
              "06_ace_vs_baselines", "01_markov_cores", "02_core_alignment", "your_model", "long_runs",
              "00_ace_in_five_minutes")


def toc_files(toc: Path) -> list[str]:
    """Every ``file:`` entry of the table of contents, in book order (no suffix)."""
    def walk(node) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in walk(v)]
        if isinstance(node, list):
            return [f for v in node for f in walk(v)]
        return []

    data = yaml.safe_load(toc.read_text(encoding="utf8"))
    return [data["root"]] + walk(data.get("parts", []) + data.get("chapters", []))


def executable_pages(root: Path) -> dict[str, Path]:
    """stem -> path of each page the build executes: ``.ipynb`` files and MyST text notebooks."""
    pages = {}
    for entry in toc_files(root / "_toc.yml"):
        ipynb, md = root / f"{entry}.ipynb", root / f"{entry}.md"
        if ipynb.exists():
            pages[ipynb.stem] = ipynb
        elif md.exists() and is_myst_markdown_notebook(md.read_text(encoding="utf8")):
            pages[md.stem] = md
    return pages


def read_page(path: Path) -> nbformat.NotebookNode:
    """The notebook as myst-nb reads it (so that its hash matches the build's lookup)."""
    text = path.read_text(encoding="utf8")
    if path.suffix == ".md":
        return read_myst_markdown_notebook(text, add_source_map=True, path=str(path))
    return nbformat.reads(text, as_version=4)


def schedule(pending: list[str], running: set[str], finished: set[str]) -> str | None:
    """The next page to start: the first in cost order whose needed pages have all finished,
    and not a second :data:`HEAVY` page while one runs."""
    rank = {s: i for i, s in enumerate(COST_ORDER)}
    heavy_running = bool(HEAVY & running)
    for stem in sorted(pending, key=lambda s: rank.get(s, len(rank))):
        if stem in HEAVY and heavy_running:
            continue
        if all(n in finished or (n not in pending and n not in running) for n in NEEDS.get(stem, ())):
            return stem
    return None


def execute(path: Path, nb: nbformat.NotebookNode, timeout: int, allow_errors: bool, in_temp: bool):
    """Run ``nb`` (in place) in a fresh kernel; the jupyter-cache result (``.err``, ``.time``)."""
    if in_temp:
        import tempfile
        with tempfile.TemporaryDirectory() as cwd:
            return single_nb_execution(nb, cwd=cwd, timeout=timeout, allow_errors=allow_errors, meta_override=True)
    return single_nb_execution(nb, cwd=str(path.parent), timeout=timeout, allow_errors=allow_errors, meta_override=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    ap.add_argument("--config", default=str(ROOT / "_config.yml"), help="the book's config (timeout, errors, cwd)")
    ap.add_argument("--build", default=str(ROOT / "_build"), help="the build folder (the cache is <build>/.jupyter_cache)")
    ap.add_argument("--root", default=str(ROOT), help="the book's source folder (with _toc.yml)")
    ap.add_argument("--pages", default="", help="comma-separated page names (stems) to execute (default: all)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    execute_cfg = (yaml.safe_load(Path(args.config).read_text(encoding="utf8")) or {}).get("execute", {})
    if execute_cfg.get("execute_notebooks", "cache") != "cache":
        print(f"execute_book: execute_notebooks is {execute_cfg.get('execute_notebooks')!r}, not 'cache': nothing to do")
        return 0
    timeout = int(execute_cfg.get("timeout", 30))
    allow_errors = bool(execute_cfg.get("allow_errors", False))
    in_temp = bool(execute_cfg.get("run_in_temp", False))
    cache = get_cache(str(Path(args.build) / ".jupyter_cache"))

    pages = executable_pages(Path(args.root))
    chosen = [p for p in args.pages.split(",") if p]
    if unknown := sorted(set(chosen) - set(pages)):
        ap.error(f"--pages: unknown {unknown}; the executable pages are {sorted(pages)}")
    if chosen:
        pages = {stem: path for stem, path in pages.items() if stem in chosen}
    notebooks = {stem: read_page(path) for stem, path in pages.items()}
    pending = []
    for stem, nb in notebooks.items():
        with suppress(KeyError):
            cache.match_cache_notebook(nb)
            continue
        pending.append(stem)
    print(f"execute_book: {len(pending)} of {len(pages)} pages to execute, {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    running: dict[cf.Future, str] = {}
    finished: set[str] = set()
    failed: list[str] = []
    with cf.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        while pending or running:
            while len(running) < args.jobs and (stem := schedule(pending, set(running.values()), finished)):
                pending.remove(stem)
                print(f"  start {stem} at {time.perf_counter() - t0:.0f} s", flush=True)
                running[pool.submit(execute, pages[stem], notebooks[stem], timeout, allow_errors, in_temp)] = stem
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                stem = running.pop(fut)
                finished.add(stem)
                result = fut.result()
                if result.err is None:
                    cache.cache_notebook_bundle(CacheBundleIn(notebooks[stem], str(pages[stem]),
                                                              data={"execution_seconds": result.time}),
                                                check_validity=False, overwrite=True)
                    print(f"  done  {stem} in {result.time:.0f} s", flush=True)
                else:
                    failed.append(stem)
                    print(f"  FAILED {stem} after {result.time:.0f} s ({type(result.err).__name__}); "
                          "the book build runs it again and reports the error", flush=True)
    print(f"execute_book: {len(finished) - len(failed)} executed, {len(failed)} failed, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0  # failures are reported by the build, which executes the page again


if __name__ == "__main__":
    sys.exit(main())
