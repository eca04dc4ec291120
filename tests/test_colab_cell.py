"""Every page with a Colab button opens with the Colab setup cell, which installs there and nowhere else.

The book's launch button opens a page's ``.ipynb`` in Colab: every chapter and the notebook
pages of ``book/``. Their first code cell must (1) be the text of ``scripts/colab_cell.py``
for that page's extras and the repository URL of ``_config.yml`` (the URL's one home), (2) be
hidden in the rendered book (tag ``remove-cell``), (3) in Colab, clone the repository and
``pip install -e`` it with those extras under a constraint that keeps the installed torch, (4)
do nothing the second time, (5) stop with one line when the repository cannot be fetched, and
(6) do nothing outside Colab. (3)-(6) run the cell's text with ``subprocess.run`` replaced by
a recorder; ``scripts/colab_like_test.sh`` runs it for real in a fresh environment.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("colab_cell", ROOT / "scripts" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)

REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
PAGES = [p.with_suffix(".ipynb") for p in colab_cell.pages()]
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def first_code_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code")


def test_every_notebook_page_of_the_book_is_a_page_with_the_cell():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [c["file"] for part in toc["parts"] for c in part["chapters"]] + [toc["root"]]
    notebooks = {ROOT / f"{e}.ipynb" for e in entries if (ROOT / f"{e}.ipynb").exists()}
    assert notebooks == set(PAGES), sorted(p.name for p in notebooks ^ set(PAGES))
    mystnb = [e for e in entries if (ROOT / f"{e}.md").exists()
              and (ROOT / f"{e}.md").read_text().startswith("---\nfile_format: mystnb")]
    assert not mystnb, f"Colab cannot open a MyST notebook (.md); make these .ipynb pages: {mystnb}"
    assert ROOT / "book" / "your_model.ipynb" in PAGES


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_first_code_cell_is_the_hidden_colab_setup_for_its_extras(path):
    cell = first_code_cell(path)
    extras = colab_cell.needed_extras(path.with_suffix(".py").read_text())
    assert "remove-cell" in cell.metadata.get("tags", []), f"{path.name}: first code cell not tagged remove-cell"
    assert cell.source == colab_cell.cell_source(extras, REPO_URL).rstrip("\n"), \
        f"{path.name}: not the Colab setup cell of scripts/colab_cell.py (python scripts/colab_cell.py --write)"
    assert set(filter(None, extras.split(","))) <= EXTRAS


def test_pages_that_train_in_worker_processes_install_dask():
    extras = {p.stem: colab_cell.needed_extras(p.with_suffix(".py").read_text()) for p in PAGES}
    assert extras["00_ace_in_five_minutes"] == "" and extras["your_model"] == ""
    assert extras["01_markov_cores"] == "dask"  # trains through map_in_processes (dask.distributed)


class Recorder:
    """Stands in for subprocess.run: records commands; a clone creates the folder."""

    def __init__(self, clone_rc: int = 0, pip_rc: int = 0):
        self.calls: list[list[str]] = []
        self.clone_rc, self.pip_rc = clone_rc, pip_rc

    def __call__(self, cmd, *args, **kwargs):
        cmd = list(cmd)
        self.calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            if self.clone_rc == 0:
                (Path(cmd[-1]) / "ace_utils").mkdir(parents=True)
                return subprocess.CompletedProcess(cmd, 0, "", "")
            return subprocess.CompletedProcess(cmd, self.clone_rc, "", f"Cloning into '{cmd[-1]}'...\nfatal: repository '{cmd[-2]}' not found\n"
                                            "Please make sure you have the correct access rights\nand the repository exists.\n")
        return subprocess.CompletedProcess(cmd, self.pip_rc, None, None)


def _run_cell(source: str, monkeypatch, in_colab: bool, recorder: Recorder, clone: Path | None = None) -> dict:
    monkeypatch.setattr(subprocess, "run", recorder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if clone is not None:
        monkeypatch.setenv("ACE_BOOK_CLONE", str(clone))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace: dict = {}
    exec(compile(source, "<colab-setup>", "exec"), namespace)
    return namespace


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    path_before, rec = list(sys.path), Recorder()
    _run_cell(colab_cell.cell_source("dask", REPO_URL), monkeypatch, False, rec)
    assert rec.calls == [] and sys.path == path_before


def test_setup_cell_installs_the_repository_with_its_extras_keeping_torch_and_only_once(monkeypatch, tmp_path):
    clone, rec = tmp_path / "ace-book", Recorder()
    monkeypatch.delenv("ACE_BOOK_REPO", raising=False)
    source = colab_cell.cell_source("dask", REPO_URL)
    _run_cell(source, monkeypatch, True, rec, clone)
    (git, pip) = rec.calls
    assert git[:2] == ["git", "clone"] and git[-2:] == [REPO_URL, str(clone)]
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and pip[-2:] == ["-e", f"{clone}[dask]"]
    constraints = Path(pip[pip.index("-c") + 1]).read_text()
    assert constraints == f"torch=={importlib.metadata.version('torch')}\n"
    assert sys.path[0] == str(clone)
    rec.calls.clear()
    _run_cell(source, monkeypatch, True, rec, clone)  # a second run
    assert rec.calls == [] and sys.path.count(str(clone)) == 1


@pytest.mark.parametrize("in_colab", [False, True], ids=["elsewhere", "colab"])
def test_the_cell_leaves_no_name_a_parameter_check_would_take_for_a_parameter(monkeypatch, tmp_path, in_colab):
    from ace_utils.book.params import validate

    namespace = _run_cell(colab_cell.cell_source("dask", REPO_URL), monkeypatch, in_colab, Recorder(), tmp_path / "c")
    validate({}, {k: v for k, v in namespace.items() if k != "__builtins__"})  # raises on an unknown parameter


def test_a_page_without_extras_installs_the_package_alone(monkeypatch, tmp_path):
    clone, rec = tmp_path / "ace-book", Recorder()
    _run_cell(colab_cell.cell_source("", REPO_URL), monkeypatch, True, rec, clone)
    assert rec.calls[-1][-2:] == ["-e", str(clone)]


def test_the_repository_url_can_be_overridden(monkeypatch, tmp_path):
    rec = Recorder()
    monkeypatch.setenv("ACE_BOOK_REPO", "file:///srv/ace-book")
    _run_cell(colab_cell.cell_source("", REPO_URL), monkeypatch, True, rec, tmp_path / "c")
    assert rec.calls[0][-2] == "file:///srv/ace-book"


def test_a_repository_that_cannot_be_fetched_stops_with_one_line(monkeypatch, tmp_path):
    rec = Recorder(clone_rc=128)
    monkeypatch.delenv("ACE_BOOK_REPO", raising=False)
    with pytest.raises(Exception) as e:
        _run_cell(colab_cell.cell_source("dask", REPO_URL), monkeypatch, True, rec, tmp_path / "c")
    assert type(e.value).__name__ == "SetupStopped" and len(rec.calls) == 1  # pip never runs
    (line,) = e.value._render_traceback_()  # what IPython (Colab) prints instead of a traceback
    assert line == f"SetupStopped: cannot fetch {REPO_URL}: fatal: repository '{REPO_URL}' not found"


def test_a_failed_install_stops_with_one_line_and_is_retried(monkeypatch, tmp_path):
    clone = tmp_path / "c"
    with pytest.raises(Exception) as e:
        _run_cell(colab_cell.cell_source("dask", REPO_URL), monkeypatch, True, Recorder(pip_rc=1), clone)
    (line,) = e.value._render_traceback_()
    assert line.startswith("SetupStopped: pip could not install")
    rec = Recorder()
    _run_cell(colab_cell.cell_source("dask", REPO_URL), monkeypatch, True, rec, clone)  # no stamp: pip again
    assert len(rec.calls) == 1 and rec.calls[0][3] == "install"


def test_the_writer_rewrites_only_the_setup_cell(tmp_path):
    py = tmp_path / "x.py"
    before = '# %% [markdown]\n# # T\n\n# %% tags=["remove-cell"]\n# Colab\nimport sys\nif "google.colab" in sys.modules:\n    pass\n\n# %%\nworkers = 2\n'
    py.write_text(before)
    assert colab_cell.write(py, "https://github.com/o/r")
    text = py.read_text()
    assert text.startswith('# %% [markdown]\n# # T\n\n# %% tags=["remove-cell"]\n')
    assert text.endswith("\n\n# %%\nworkers = 2\n") and '_EXTRAS = "dask"' in text and "https://github.com/o/r" in text
    assert not colab_cell.write(py, "https://github.com/o/r")  # idempotent
