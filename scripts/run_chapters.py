"""Run the book's executable pages as nbval tests, two at a time, and keep each execution for
the book build (the chapters' part of ``make test``).

Every page the book executes (``_toc.yml``'s ``.ipynb`` chapters and MyST text notebooks, as
``scripts/execute_book.py`` finds them) runs as ``pytest --nbval-lax``: one pytest item per code
cell, each within the book's per-cell ``execute.timeout`` (``_config.yml``), a page's cells in
one kernel started in the page's folder, with the plugin ``scripts/nbval_book.py``, which stores
every page whose cells all passed in the book's execution cache. One pytest process per page,
``--jobs`` at a time, in the order of ``scripts/execute_book.py`` (a page that reads the models
another page trains starts after it; never two pages that train on both cores together).

Each page's pytest output goes to ``<out>/<stem>.log`` and is printed when the page ends (so
two pages running together do not interleave); its executed notebook, failed or not, goes to
``<out>/<stem>.ipynb``; the JUnit XML of all pages' items is merged into ``--junitxml``.
``--build-config`` writes the configuration for the build that renders these executions: the
book's ``_config.yml`` with ``raise_on_error`` off (every failure reported, not the first) and
every page that is not in the cache (a failed page) excluded from execution, so that the build
executes nothing: each page runs once, here.

    .venv/bin/python scripts/run_chapters.py [--jobs 2] [--pages 01_markov_cores,02_core_alignment]
        [--out _build/test/chapters] [--junitxml _build/test/chapters.xml]
        [--build-config _build/test/_config.yml]

Exit status 0 when every page passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import yaml
from jupyter_cache import get_cache

import execute_book as eb

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent


@dataclass
class PageResult:
    """One page's pytest run: exit status, wall seconds, start (seconds after the first start)
    and its items' outcomes from its JUnit XML."""

    stem: str
    returncode: int
    seconds: float
    started: float
    tests: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.skipped


def book_timeout(config: Path) -> int:
    """The book's per-cell limit in seconds (``execute.timeout``); refuses settings nbval
    cannot follow (a temporary working folder, allowed errors)."""
    execute = (yaml.safe_load(config.read_text(encoding="utf8")) or {}).get("execute", {})
    if execute.get("run_in_temp", False):
        raise SystemExit(f"{config}: execute.run_in_temp is on; nbval runs each page in its own folder")
    if execute.get("allow_errors", False):
        raise SystemExit(f"{config}: execute.allow_errors is on; nbval fails a cell that raises")
    return int(execute.get("timeout", 30))


def pytest_command(path: Path, timeout: int, out: Path, cache: Path, root: Path) -> list[str]:
    """The pytest command line that runs one page under nbval with the book plugin."""
    return [sys.executable, "-m", "pytest", "-p", "nbval_book", "--nbval-lax", "--nbval-current-env",
            f"--nbval-cell-timeout={timeout}", "-v", "--color=no", "-o", f"junit_suite_name={path.stem}",
            f"--junitxml={out / (path.stem + '.xml')}", f"--book-cache={cache}", f"--book-executed={out}",
            f"--rootdir={root}", str(path)]


def junit_counts(xml: Path) -> tuple[int, int, int]:
    """``(tests, failed, skipped)`` of a pytest JUnit XML file (failures and errors count as failed)."""
    suites = ET.parse(xml).getroot().iter("testsuite")
    t = f = s = 0
    for suite in suites:
        t += int(suite.get("tests", 0))
        f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        s += int(suite.get("skipped", 0))
    return t, f, s


def merge_junit(parts: dict[str, Path], out: Path) -> None:
    """Merge the pages' JUnit files into one ``<testsuites>`` at ``out``; a page that wrote
    none (its pytest process died) appears as one failed test case."""
    root = ET.Element("testsuites", name="chapters (nbval)")
    for stem, xml in parts.items():
        try:
            root.extend(ET.parse(xml).getroot().iter("testsuite"))
        except (OSError, ET.ParseError) as err:
            suite = ET.SubElement(root, "testsuite", name=stem, tests="1", failures="1", errors="0", skipped="0")
            case = ET.SubElement(suite, "testcase", classname=stem, name="pytest run")
            ET.SubElement(case, "failure", message=f"no JUnit report: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)


def write_build_config(config: Path, cache: Path, pages: dict[str, Path], out: Path, root: Path) -> list[str]:
    """Write ``config`` with ``raise_on_error`` off and every page of ``pages`` that the cache
    does not hold excluded from execution, to ``out``; return the excluded pages."""
    cfg = yaml.safe_load(config.read_text(encoding="utf8")) or {}
    execute = cfg.setdefault("execute", {})
    execute["raise_on_error"] = False
    store = get_cache(str(cache))
    missing = []
    for stem, path in pages.items():
        try:
            store.match_cache_notebook(eb.read_page(path))
        except KeyError:
            missing.append(stem)
    patterns = list(execute.get("exclude_patterns") or [])
    patterns += [pages[s].resolve().relative_to(root.resolve()).as_posix() for s in missing]
    if patterns:
        execute["exclude_patterns"] = patterns
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf8") as f:
        f.write(f"# generated by scripts/run_chapters.py from {config.name}: raise_on_error off; "
                "pages not in the execution cache are not executed\n")
        yaml.safe_dump(cfg, f, sort_keys=False)
    return missing


def run_pages(pages: dict[str, Path], jobs: int, timeout: int, out: Path, cache: Path, root: Path) -> list[PageResult]:
    """Run every page under pytest/nbval (in the book's folder ``root``), ``jobs`` at a time in
    :func:`execute_book.schedule`'s order; print each page's output when it ends."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH", "")]))
    pending = list(pages)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    finished: set[str] = set()
    results: list[PageResult] = []
    t0 = time.perf_counter()
    while pending or running:
        while len(running) < jobs and (stem := eb.schedule(pending, set(running), finished)):
            pending.remove(stem)
            with open(out / f"{stem}.log", "w", encoding="utf8") as log:
                proc = subprocess.Popen(pytest_command(pages[stem], timeout, out, cache, root), cwd=root, env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
            running[stem] = (proc, time.perf_counter())
            print(f"  start {stem} at {time.perf_counter() - t0:.0f} s", flush=True)
        time.sleep(0.5)
        for stem, (proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[stem]
            finished.add(stem)
            result = PageResult(stem, proc.returncode, time.perf_counter() - started, started - t0)
            with suppress(OSError, ET.ParseError):
                result.tests, result.failed, result.skipped = junit_counts(out / f"{stem}.xml")
            results.append(result)
            status = "passed" if proc.returncode == 0 else f"FAILED (pytest exit {proc.returncode})"
            print(f"\n--- {stem}: {status}, {result.passed} of {result.tests} cells passed, "
                  f"{result.seconds:.0f} s ({out / (stem + '.log')})", flush=True)
            print((out / f"{stem}.log").read_text(encoding="utf8", errors="replace"), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="pages run at once (default 2)")
    ap.add_argument("--config", default=str(ROOT / "_config.yml"), help="the book's config (per-cell timeout)")
    ap.add_argument("--build", default=str(ROOT / "_build"), help="the build folder (the cache is <build>/.jupyter_cache)")
    ap.add_argument("--root", default=str(ROOT), help="the book's source folder (with _toc.yml)")
    ap.add_argument("--pages", default="", help="comma-separated page names (stems) to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "_build" / "test" / "chapters"),
                    help="folder of each page's log, JUnit XML and executed notebook")
    ap.add_argument("--junitxml", default=str(ROOT / "_build" / "test" / "chapters.xml"), help="the merged JUnit XML")
    ap.add_argument("--build-config", default=None, metavar="PATH",
                    help="write the config for the build that renders these executions (see above)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    timeout = book_timeout(Path(args.config))
    root = Path(args.root).resolve()
    pages = {stem: path.resolve() for stem, path in eb.executable_pages(root).items()}
    chosen = [p for p in args.pages.split(",") if p]
    if unknown := sorted(set(chosen) - set(pages)):
        ap.error(f"--pages: unknown {unknown}; the executable pages are {sorted(pages)}")
    if chosen:
        pages = {stem: path for stem, path in pages.items() if stem in chosen}
    out, cache = Path(args.out), Path(args.build) / ".jupyter_cache"
    out.mkdir(parents=True, exist_ok=True)
    get_cache(str(cache)).list_cache_records()  # create the cache's database before two writers share it

    print(f"run_chapters: {len(pages)} pages under pytest --nbval-lax, {args.jobs} at a time, "
          f"cells within {timeout} s (execute.timeout of {Path(args.config).name})", flush=True)
    t0 = time.perf_counter()
    results = run_pages(pages, args.jobs, timeout, out.resolve(), cache.resolve(), root)
    merge_junit({r.stem: out / f"{r.stem}.xml" for r in results}, Path(args.junitxml))

    print(f"\nrun_chapters: {len(results)} pages in {time.perf_counter() - t0:.0f} s; cells: "
          f"{sum(r.passed for r in results)} passed, {sum(r.failed for r in results)} failed, "
          f"{sum(r.skipped for r in results)} skipped (JUnit: {args.junitxml})")
    for r in sorted(results, key=lambda r: r.started):
        print(f"  {r.stem:32s} {'passed' if r.returncode == 0 else 'FAILED':6s} {r.passed:3d}/{r.tests:<3d} cells "
              f"{r.seconds:6.0f} s  (started at {r.started:.0f} s)")
    if args.build_config:
        missing = write_build_config(Path(args.config), cache, eb.executable_pages(root), Path(args.build_config), root)
        if missing:
            print(f"run_chapters: not in the execution cache, so rendered without outputs: {', '.join(missing)}")
    return 0 if results and all(r.returncode == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
