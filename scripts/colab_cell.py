"""The Colab setup cell every page with a Colab button opens with: its one source, and a writer.

    python scripts/colab_cell.py            # list each page and the extras its cell installs
    python scripts/colab_cell.py --write    # rewrite the cell in every page (then jupytext --sync)

The cell is the first code cell of every notebook (``notebooks/*.py`` and the pages in
``book/*.py``), tagged ``remove-cell`` so the book hides it. In Colab only, it clones the
repository named in ``_config.yml`` (``repository.url``, the URL's one home; ``$ACE_BOOK_REPO``
overrides it, as the Colab-like test does) and installs it in editable mode with the page's
extras of ``pyproject.toml``, under a constraint that keeps the torch Colab already has. A
stamp file in the clone makes a second run do nothing. A repository that cannot be fetched
stops the notebook with one line (IPython prints ``_render_traceback_``'s lines instead of a
traceback). Every name the cell leaves behind is private, a module or a function, so that a
chapter's parameter check sees no stray parameter. ``tests/test_colab_cell.py`` checks every page against :func:`cell_source`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MARK = '# %% tags=["remove-cell"]\n'

TEMPLATE = '''\
# Colab setup. In Colab only: fetch the book's repository and install ace_utils with what this
# page needs from its pyproject.toml, keeping Colab's torch. A second run does nothing.
import os
import subprocess
import sys

_EXTRAS = "{extras}"  # this page's extras of pyproject.toml ("" for none)


def _colab_setup(extras: str) -> None:
    from importlib import invalidate_caches, metadata

    class SetupStopped(Exception):
        def _render_traceback_(self):  # IPython shows this one line, not a traceback
            return [f"SetupStopped: {{self}}"]

    repo = os.environ.get("ACE_BOOK_REPO", "{url}")
    clone = os.environ.get("ACE_BOOK_CLONE", "/content/ace-book")
    if not os.path.isdir(os.path.join(clone, "ace_utils")):
        got = subprocess.run(["git", "clone", "-q", "--depth", "1", repo, clone], capture_output=True, text=True)
        if got.returncode != 0:
            lines = got.stderr.strip().splitlines() or [f"git exited with {{got.returncode}}"]
            why = next((line for line in lines if line.startswith("fatal:")), lines[-1])
            raise SetupStopped(f"cannot fetch {{repo}}: {{why}}")
    stamp = os.path.join(clone, f".colab-installed-{{extras or 'base'}}")
    if not os.path.exists(stamp):
        keep = os.path.join(clone, ".colab-constraints.txt")
        with open(keep, "w") as f:
            f.write(f"torch=={{metadata.version('torch')}}\\n")  # pip must not replace Colab's torch
        target = f"{{clone}}[{{extras}}]" if extras else clone
        if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", keep, "-e", target]).returncode != 0:
            raise SetupStopped(f"pip could not install {{target}} beside Colab's torch (pip's message is above)")
        open(stamp, "w").close()
        invalidate_caches()
    if clone not in sys.path:
        sys.path.insert(0, clone)


if "google.colab" in sys.modules:  # pragma: no cover - only in Colab
    _colab_setup(_EXTRAS)
'''


def repository_url(root: Path = ROOT) -> str:
    """The repository URL's one home: ``repository.url`` in ``_config.yml``."""
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))["repository"]["url"]


def pages(root: Path = ROOT) -> list[Path]:
    """The py:percent sources of every page the book gives a Colab button: the chapters and
    the notebook pages of ``book/``."""
    return sorted((root / "notebooks").glob("*.py")) + sorted((root / "book").glob("*.py"))


def needed_extras(source: str) -> str:
    """The extras a page needs beyond the package itself: ``dask`` where it trains in worker
    processes (a ``workers`` argument, ace_utils.book.processes), else none."""
    return "dask" if re.search(r"\bworkers\s*=", _without_setup_cell(source)) else ""


def cell_source(extras: str, url: str) -> str:
    """The setup cell's code for a page needing ``extras`` ("" or a comma-separated list)."""
    return TEMPLATE.format(extras=extras, url=url)


def _without_setup_cell(source: str) -> str:
    start, end = _setup_cell_span(source)
    return source[:start] + source[end:]


def _setup_cell_span(source: str) -> tuple[int, int]:
    """Where the setup cell's code lies in a py:percent source (after its ``# %%`` line)."""
    start = source.index(MARK) + len(MARK)
    nxt = source.find("\n# %%", start)
    end = len(source) if nxt < 0 else nxt + 1
    if '"google.colab" in sys.modules' not in source[start:end]:
        raise ValueError("the first remove-cell cell is not the Colab setup cell")
    return start, end


def write(path: Path, url: str) -> bool:
    """Put the current cell into ``path``; True if it changed."""
    text = path.read_text(encoding="utf8")
    start, end = _setup_cell_span(text)
    new = text[:start] + cell_source(needed_extras(text), url) + "\n" + text[end:]
    if new != text:
        path.write_text(new, encoding="utf8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the cell in every page and sync the .ipynb")
    args = ap.parse_args(argv)
    url = repository_url()
    for path in pages():
        extras = needed_extras(path.read_text(encoding="utf8"))
        changed = write(path, url) if args.write else False
        if changed:
            subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(path)], check=True, capture_output=True)
        print(f"{path.relative_to(ROOT)}: extras {extras or '-'}{' (rewritten)' if changed else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
