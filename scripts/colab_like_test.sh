#!/usr/bin/env bash
# Colab as a reader meets it, in a fresh environment: the chapters' own setup cell installs the
# book from its repository into an environment that holds only what Colab gives, and chapters
# 00 and 01 then run to the end through papermill with their claims asserted.
#
#   scripts/colab_like_test.sh                 # the repository's HEAD, as a local clone
#   ACE_BOOK_REPO=https://github.com/o/r scripts/colab_like_test.sh   # any other repository
#
# 1. A fresh virtual environment on Colab's Python (3.12: $COLAB_PYTHON, else python3.12 on
#    PATH, else pyenv's 3.12), torch installed first as Colab has it: a CUDA build from PyPI
#    ($COLAB_TORCH, default torch==2.13.0; on a machine without a GPU it runs on the CPU), then
#    the Jupyter kernel and papermill, as the runtime. No requirements.txt.
# 2. An IPython startup file imports a stand-in `google.colab` package, so the setup cell takes its
#    Colab branch; the kernel's working folder is an empty `content/`, as in Colab. The cell
#    clones $ACE_BOOK_REPO (default: this repository, file://, so HEAD is what is tested) into
#    content/ace-book and pip-installs it with the page's extras from pyproject.toml.
# 3. Chapter 00 (no extras) and chapter 01 (extra dask: it trains in worker processes) run
#    under papermill from an empty model cache; any failed claim or error fails the test.
#    Chapter 01 runs smaller than its defaults (CHAPTER_PARAMS: two models, no extra chain, no
#    second architecture; its claims are asserted at any number of models): the same code
#    paths (its extra's install, training in worker processes, the analyses) in a fraction of
#    the time; the chapters part of `make test` runs it at its defaults.
# 4. The setup cell again, in a new kernel: it must call no subprocess (idempotent); torch must
#    be the version installed in step 1; the cell with an unreachable repository must stop
#    with one line.
#
# Prints the install and run times. Needs network access to PyPI only. Exit 0 if all passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="${ACE_BOOK_REPO:-file://$ROOT}"
TORCH_SPEC="${COLAB_TORCH:-torch==2.13.0}"
CHAPTERS=(00_ace_in_five_minutes 01_markov_cores)
declare -A CHAPTER_PARAMS=([01_markov_cores]="-p n_models 2 -p extra_n_states 0 -p contrast False")

find_python() {
    if [[ -n "${COLAB_PYTHON:-}" ]]; then echo "$COLAB_PYTHON"; return; fi
    if python3.12 -V >/dev/null 2>&1; then command -v python3.12; return; fi
    local root
    root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
    compgen -G "$root/versions/3.12*/bin/python3.12" | sort -V | tail -n 1
}
PYTHON="$(find_python)"
[[ -n "$PYTHON" && -x "$PYTHON" ]] || { echo "colab-like: no Python 3.12 (set COLAB_PYTHON)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/colab-like.XXXXXX")"
[[ "${KEEP_WORK:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
CONTENT="$WORK/content"
mkdir -p "$CONTENT" "$WORK/ipython/profile_default/startup" "$WORK/notebooks" "$WORK/out"
echo "colab-like: $("$PYTHON" -V) in $WORK; repository $REPO"

# every download cold, as in a new Colab runtime (and no gigabytes left in the pip cache)
export PIP_NO_CACHE_DIR=1
t0=$SECONDS
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
t_torch=$((SECONDS - t0))
TORCH_VERSION="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("torch"))')"
"$VENV/bin/python" -m pip install --quiet ipykernel papermill
t_runtime=$((SECONDS - t0 - t_torch))
echo "colab-like: torch $TORCH_VERSION installed in ${t_torch} s ($(du -sh "$VENV" | cut -f1) venv), kernel and papermill in ${t_runtime} s"

# Colab's kernel has google.colab imported; this one imports an empty stand-in package (a real
# one, with a module spec: libraries probe it with importlib.util.find_spec)
mkdir -p "$WORK/colab-stub/google/colab"
echo '"""An empty stand-in for the google.colab package of Colab."""' > "$WORK/colab-stub/google/colab/__init__.py"
printf 'import sys\n\nsys.path.append(%s)\nimport google.colab  # noqa: E402,F401\n' "'$WORK/colab-stub'" \
    > "$WORK/ipython/profile_default/startup/00-google-colab.py"
for ch in "${CHAPTERS[@]}"; do
    git -C "$ROOT" show "HEAD:notebooks/$ch.ipynb" > "$WORK/notebooks/$ch.ipynb"
done

# what the kernels see: no state of this machine's user (kernelspecs, caches, the project's venv)
run_env=(env -u VIRTUAL_ENV -u PYTHONPATH -u ACE_BOOK_CACHE
         PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" IPYTHONDIR="$WORK/ipython"
         JUPYTER_DATA_DIR="$WORK/jupyter" JUPYTER_CONFIG_DIR="$WORK/jupyter-config"
         XDG_CACHE_HOME="$WORK/cache" HF_HUB_OFFLINE=1 ACE_BOOK_REPO="$REPO"
         ACE_BOOK_CLONE="$CONTENT/ace-book")
papermill() { "${run_env[@]}" "$VENV/bin/papermill" -k python3 --cwd "$CONTENT" --no-progress-bar "$@"; }

declare -A took
for ch in "${CHAPTERS[@]}"; do
    t=$SECONDS
    # shellcheck disable=SC2086  # the parameters are words
    papermill "$WORK/notebooks/$ch.ipynb" "$WORK/out/$ch.ipynb" ${CHAPTER_PARAMS[$ch]:-}
    took[$ch]=$((SECONDS - t))
    echo "colab-like: $ch ${CHAPTER_PARAMS[$ch]:-at its defaults} ran to the end in ${took[$ch]} s (the first includes the setup cell's install)"
done

# the setup cell once more, in a new kernel: it must run no subprocess
"$VENV/bin/python" - "$WORK/notebooks/${CHAPTERS[1]}.ipynb" "$WORK/again.ipynb" <<'EOF'
import sys

import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
setup = next(c for c in nb.cells if c.cell_type == "code")
spy = ("import subprocess\n_calls = []\n_run = subprocess.run\n"
       "subprocess.run = lambda *a, **k: _calls.append(a) or _run(*a, **k)")
check = "assert _calls == [], f'the setup cell ran {_calls} on its second run'"
nb.cells = [nbformat.v4.new_code_cell(spy), setup, nbformat.v4.new_code_cell(check)]
nbformat.write(nb, sys.argv[2])
EOF
papermill "$WORK/again.ipynb" "$WORK/out/again.ipynb"
echo "colab-like: a second run of the setup cell ran nothing"

after="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("torch"))')"
[[ "$after" == "$TORCH_VERSION" ]] || { echo "colab-like: the install replaced torch $TORCH_VERSION by $after" >&2; exit 1; }
shown="$("$VENV/bin/python" -m pip show ace-book 2>/dev/null)"  # (grep -q in a pipe would cut pip off: pipefail)
[[ "$shown" == *"Editable project location: $CONTENT/ace-book"* ]] \
    || { echo "colab-like: ace-book is not installed from the clone" >&2; exit 1; }
echo "colab-like: torch $after kept; ace-book installed in editable mode from the clone"

# an unreachable repository: the cell stops with one line
"$VENV/bin/python" - "$WORK/notebooks/${CHAPTERS[0]}.ipynb" "$WORK/unreachable.ipynb" <<'EOF'
import sys

import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells = [next(c for c in nb.cells if c.cell_type == "code")]
nbformat.write(nb, sys.argv[2])
EOF
if "${run_env[@]}" ACE_BOOK_REPO="file://$WORK/no-such-repository" ACE_BOOK_CLONE="$WORK/elsewhere" \
        "$VENV/bin/papermill" -k python3 --cwd "$CONTENT" --no-progress-bar \
        "$WORK/unreachable.ipynb" "$WORK/out/unreachable.ipynb" >"$WORK/unreachable.log" 2>&1; then
    echo "colab-like: the setup cell went on without its repository" >&2; exit 1
fi
"$VENV/bin/python" - "$WORK/out/unreachable.ipynb" <<'EOF'
import sys

import nbformat

(err,) = [o for c in nbformat.read(sys.argv[1], as_version=4).cells for o in c.get("outputs", [])
          if o["output_type"] == "error"]
assert len(err["traceback"]) == 1 and err["traceback"][0].startswith("SetupStopped: cannot fetch file://"), err
print(f"colab-like: an unreachable repository stops the cell with one line: {err['traceback'][0]}")
EOF

echo "colab-like: passed in $((SECONDS - t0)) s (torch ${t_torch} s, runtime ${t_runtime} s, ${CHAPTERS[0]} ${took[${CHAPTERS[0]}]} s incl. the install, ${CHAPTERS[1]} ${took[${CHAPTERS[1]}]} s)"
