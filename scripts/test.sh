#!/usr/bin/env bash
# The project's test command (`make test`, which .ci/run calls). It runs its parts in order, all
# of them even if an earlier one fails, prints each part's exit status and time, and exits
# non-zero if any part failed. A part is a shell function plus one `run_part` line at the end.
#
#   unit tests  pytest over tests/, two at a time (pytest-xdist, one worker per core)
#   chapters    every page the book executes (the notebooks/*.ipynb chapters and the MyST
#               notebooks in book/) run by nbval: scripts/run_chapters.py runs one
#               `pytest --nbval-lax` per page, two at a time (a page that reuses another's
#               trained models after it), one pytest item per code cell, each cell within the
#               book's execute.timeout (_config.yml). The asserting cells are what make it a
#               test: a failing claim, an error or a timeout fails the cell's item, with its
#               traceback in the log. The plugin scripts/nbval_book.py stores every page that
#               passed in the book's execution cache (_build/.jupyter_cache, emptied first), as
#               the book build would after executing it. The kernels log every cell's time
#               (scripts/ipython_cell_times.py), and their claims ledgers go to _build/test/claims,
#               where tests/test_rerun.py then compares chapter 01's with its committed
#               seed-table entry (instead of training it a second time)
#   book        jupyter-book build -W -n --keep-going --all into _build/html, rendering those
#               executions: its config (_build/test/_config.yml, written by run_chapters.py from
#               _config.yml) excludes from execution any page not in the cache, so the build
#               executes nothing; any Sphinx warning fails it (broken refs, toc, bibliography,
#               autodoc, glue). scripts/cell_times.py then prints each chapter's total and its
#               slowest cells, and fails unless every page was executed exactly once
#   browser     tests/test_book_browser.py opens every page of that build in headless chromium
#               (scripts/setup_browser.sh installs it where missing) and fails on broken images,
#               missing figures, error output and dead internal links; a screenshot of every page
#               in _build/screenshots/
#   readers     the readers' paths, started in the background beside the unit tests (they are
#               mostly downloads and unpacking), side by side, each in a fresh virtual
#               environment from pyproject.toml alone (no requirements.txt), each one's log in
#               _build/test/readers/ (printed by this part, which waits for them):
#               scripts/colab_like_test.sh (Colab: Python 3.12,
#               torch first as Colab has it, the chapters' own setup cell installs the book from
#               a local clone, chapters 00 and 01 run to the end under papermill) and
#               scripts/pip_install_test.sh (`pip install` of the package into an environment
#               that has torch; every module imports, the method's unit tests pass)
#
# Reports in _build/test/: unit-tests.xml and chapters.xml (JUnit), chapters/<page>.log (each
# page's pytest output) and chapters/<page>.ipynb (each executed page, failed or not),
# cell_times.jsonl. The book's execution cache makes a later `make book` nearly free.
#
# Environment: OMP_WAIT_POLICY=PASSIVE and HF_HUB_OFFLINE=1 unless already set; BOOK_JOBS
# (default 2) pages at once.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$ROOT/$VENV"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
# trained models are cached here, not in the user cache, so every test run trains from
# scratch in a fresh clone (and the chapters still share their models). The unit tests get a
# cache of their own: the chapters then run from an empty model cache, exactly as a first
# `make book` does, and their times are the book's cold times.
export ACE_BOOK_CACHE="${ACE_BOOK_CACHE:-$ROOT/_build/model-cache}"
UNIT_TEST_CACHE="${ACE_BOOK_CACHE%/}-unit-tests"
export PATH="$VENV/bin:$PATH"
PY="$VENV/bin/python"
TEST_DIR="_build/test"
rm -rf "$TEST_DIR" && mkdir -p "$TEST_DIR"

failed=()
times=()
part_no=0
run_part() {  # run_part NAME CMD...: run, time and record a failure
    local name="$1"; shift
    local t0=$SECONDS rc=0
    part_no=$((part_no + 1))
    echo; echo "=== $part_no. $name ==="
    "$@" || rc=$?
    echo "--- $name: exit $rc, $((SECONDS - t0)) s"
    times+=("$(printf '%-24s exit %d %6d s' "$name" "$rc" "$((SECONDS - t0))")")
    if [[ $rc -ne 0 ]]; then failed+=("$name (exit $rc)"); fi
}

# pytest exit 5 = nothing collected: a failure here, there must be tests
unit_tests() {
    env ACE_BOOK_CACHE="$UNIT_TEST_CACHE" "$PY" -m pytest tests -n 2 --durations=10 \
        --junitxml="$TEST_DIR/unit-tests.xml"
}

# the kernels of the chapters (and of the build, which should start none) log their cells
kernel_env() {
    env IPYTHONDIR="$ROOT/$TEST_DIR/ipython" ACE_CELL_TIMES="$ROOT/$TEST_DIR/cell_times.jsonl" "$@"
}

chapters() {
    rm -rf _build/.jupyter_cache _build/html/reports || return 1
    mkdir -p "$TEST_DIR/ipython/profile_default/startup" || return 1
    ln -sf "$ROOT/scripts/ipython_cell_times.py" "$TEST_DIR/ipython/profile_default/startup/00-cell-times.py"
    local rc=0
    ACE_BOOK_CLAIMS="$ROOT/$TEST_DIR/claims" kernel_env "$PY" scripts/run_chapters.py --jobs "${BOOK_JOBS:-2}" \
        --out "$TEST_DIR/chapters" --junitxml "$TEST_DIR/chapters.xml" --build-config "$TEST_DIR/_config.yml" || rc=$?
    # a committed seed-table entry against the chapter's run here (tests/test_rerun.py)
    ACE_BOOK_CHAPTER_CLAIMS="$ROOT/$TEST_DIR/claims" "$PY" -m pytest -q -p no:cacheprovider \
        tests/test_rerun.py -k matches_the_chapters_run --junitxml="$TEST_DIR/chapter-ledgers.xml" || rc=1
    return $rc
}

book() {
    [[ -f "$TEST_DIR/_config.yml" ]] || { echo "no $TEST_DIR/_config.yml: the chapters part did not finish" >&2; return 1; }
    local rc=0
    kernel_env "$VENV/bin/jupyter-book" build . --config "$TEST_DIR/_config.yml" -W -n --keep-going --all || rc=$?
    if [[ -f "$TEST_DIR/cell_times.jsonl" ]]; then
        "$PY" scripts/cell_times.py "$TEST_DIR/cell_times.jsonl" --once || rc=1
    else
        echo "no cell was executed (no $TEST_DIR/cell_times.jsonl)" >&2; rc=1
    fi
    return $rc
}

browser() {
    [[ -f _build/html/index.html ]] || { echo "no _build/html/index.html: the book build failed" >&2; return 1; }
    scripts/setup_browser.sh || return 1
    BOOK_HTML_DIR="$ROOT/_build/html" BOOK_SCREENSHOTS="$ROOT/_build/screenshots" \
        "$PY" -m pytest -q tests/test_book_browser.py --junitxml="$TEST_DIR/browser.xml"
}

# The readers' paths start first, in the background, beside the unit tests: they are mostly
# downloads and unpacking into fresh environments, which leave the cores half idle. The two run
# side by side, each one's output in its log; the last part waits for them and prints the logs.
READERS_LOGS="$TEST_DIR/readers"
declare -A READERS=([colab-like]=scripts/colab_like_test.sh [pip-install]=scripts/pip_install_test.sh)
start_readers() {
    mkdir -p "$READERS_LOGS"
    local name
    for name in "${!READERS[@]}"; do
        ( t0=$SECONDS; rc=0; "${READERS[$name]}" > "$READERS_LOGS/$name.log" 2>&1 || rc=$?
          echo "$rc $((SECONDS - t0))" > "$READERS_LOGS/$name.status" ) &
    done
}

readers() {
    wait  # the background jobs of start_readers
    local rc=0 name status
    for name in "${!READERS[@]}"; do
        echo "--- $name (started with the unit tests) ---"
        cat "$READERS_LOGS/$name.log"
        status="$(cat "$READERS_LOGS/$name.status" 2>/dev/null || echo "1 ?")"
        echo "--- $name: exit ${status% *}, ${status#* } s"
        [[ "${status% *}" == 0 ]] || rc=1
    done
    return $rc
}

start_readers
run_part "unit tests" unit_tests
run_part "chapters (nbval)" chapters
run_part "book (rendered)" book
run_part "browser" browser
run_part "readers' paths" readers

echo
echo "make test: parts"
printf '  %s\n' "${times[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "make test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "make test: all parts passed"
