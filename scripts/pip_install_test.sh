#!/usr/bin/env bash
# ace_utils as a library, installed the way a researcher installs it into an environment of
# their own: from pyproject.toml alone (no requirements.txt), not in editable mode.
#
#   scripts/pip_install_test.sh
#
# 1. A fresh virtual environment on the build's Python (python3.11, or $PYTHON) that already
#    has torch, as a research environment has ($LIB_TORCH, default torch==2.13.0: on this kind
#    of machine pip takes the CPU build from local disk).
# 2. `pip install <clone>` of the repository's HEAD (a local clone), then pytest alone (no nbval,
#    none of the book's tools).
# 3. Every ace_utils module imports from site-packages, and the method's unit tests pass there,
#    run from a copy of tests/ beside no source tree, with pytest's settings from pyproject.toml.
#
# Prints the install and test times. Needs network access to PyPI only. Exit 0 if all passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${LIB_TORCH:-torch==2.13.0}"
METHOD_TESTS=(test_ace.py test_interventions.py test_alignment.py test_operators.py test_baselines.py test_find_core.py)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pip-install.XXXXXX")"
[[ "${KEEP_WORK:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
export PIP_NO_CACHE_DIR=1
unset PYTHONPATH VIRTUAL_ENV
# pip, without the warnings of this machine's pip.conf about its local indexes' missing folders
pip_() {
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
    return "${PIPESTATUS[0]}"
}

t0=$SECONDS
"$PYTHON" -m venv "$VENV"
pip_ install --quiet "$TORCH_SPEC"
t_torch=$((SECONDS - t0))
git clone --quiet "file://$ROOT" "$WORK/src"
pip_ install --quiet "$WORK/src"
pip_ install --quiet pytest
pip_ check
t_install=$((SECONDS - t0 - t_torch))
echo "pip-install: $("$VENV/bin/python" -V), torch in ${t_torch} s, ace-book and pytest in ${t_install} s"
"$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("nbval") is not None)' \
    || { echo "pip-install: nbval is installed, so plain pytest is not tested" >&2; exit 1; }

cd "$WORK"  # nothing of the source tree on sys.path
"$VENV/bin/python" - <<'PYEOF'
import importlib
import pkgutil
import sysconfig
from pathlib import Path

import ace_utils

site = Path(sysconfig.get_paths()["purelib"])
assert Path(ace_utils.__file__).is_relative_to(site), f"ace_utils comes from {ace_utils.__file__}, not {site}"
names = [m.name for m in pkgutil.walk_packages(ace_utils.__path__, "ace_utils.")]
for name in names:
    importlib.import_module(name)
assert callable(ace_utils.find_core)
print(f"pip-install: {len(names)} ace_utils modules import from {site}")
PYEOF

mkdir "$WORK/suite"
cp -r "$WORK/src/tests" "$WORK/src/pyproject.toml" "$WORK/suite/"
t=$SECONDS
(cd "$WORK/suite" && "$VENV/bin/pytest" -q -p no:cacheprovider "${METHOD_TESTS[@]/#/tests/}")
echo "pip-install: passed in $((SECONDS - t0)) s (the method's unit tests $((SECONDS - t)) s)"
