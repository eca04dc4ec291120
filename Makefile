# The two commands of the README:
#   make book   build the book, executing notebooks (cached), into _build/html
#   make test   unit tests + every chapter run once by nbval (one pytest item per cell) into an
#               emptied execution cache + the book rendered from those executions (-W) + every
#               page of it opened in headless chromium (scripts/test.sh)
# Both bootstrap .venv from requirements.txt first (scripts/setup_venv.sh; a no-op when the
# stamp .venv/.requirements.sha256 matches requirements.txt and pyproject.toml).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3.11

# every command below sees these (two busy-waiting OpenMP threads slowed a training step from
# 92 to 543 ms when another process shared a 2-core Xeon; notebooks default to offline models).
# Override on the command line, e.g. `make book HF_HUB_OFFLINE=0`.
OMP_WAIT_POLICY ?= PASSIVE
HF_HUB_OFFLINE ?= 1
export OMP_WAIT_POLICY HF_HUB_OFFLINE VENV PYTHON

JB := $(VENV)/bin/jupyter-book
# notebooks executed at once: before the build renders them (make book: scripts/execute_book.py),
# and under nbval (make test: scripts/run_chapters.py)
BOOK_JOBS ?= 2
export BOOK_JOBS

.PHONY: help venv book test browser-test clean clean-all

help:
	@echo "make book    build the book (executes notebooks, cached) -> _build/html/index.html"
	@echo "make test    unit tests, every notebook run once under nbval, the book rendered"
	@echo "             from those runs (-W), then every page checked in headless chromium"
	@echo "make browser-test  open every page of _build/html in headless chromium (after make book)"
	@echo "make venv    create/refresh $(VENV) from requirements.txt"
	@echo "make clean   remove _build (HTML, execution cache, check build)"

venv:
	@scripts/setup_venv.sh

# scripts/execute_book.py first executes the uncached notebooks, $(BOOK_JOBS) at a time, into the
# build's execution cache; the build then renders them (and executes, with its error report, any
# that failed there). --all re-reads every page (seconds; executions still come from the cache),
# so -W sees the warnings of unchanged pages too instead of passing on a stale incremental build
book: venv
	$(VENV)/bin/python scripts/execute_book.py --jobs $(BOOK_JOBS)
	$(JB) build . -W -n --keep-going --all
	@echo "open _build/html/index.html"

test: venv
	scripts/test.sh

# the browser part of `make test` alone, on the book `make book` built (installs chromium
# with apt-get where /usr/bin/chromium is missing: scripts/setup_browser.sh)
browser-test: venv
	scripts/setup_browser.sh
	BOOK_HTML_DIR=$(CURDIR)/_build/html $(VENV)/bin/python -m pytest -q tests/test_book_browser.py

clean:
	rm -rf _build

clean-all: clean
	rm -rf $(VENV)
