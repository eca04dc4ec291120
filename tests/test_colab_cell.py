"""Every chapter opens with the same hidden Colab setup cell, which installs there and nowhere else.

The book's launch button opens ``notebooks/<chapter>.ipynb`` in Colab. Its first code
cell must (1) be the same text in every chapter (new chapters are picked up from
``notebooks/*.ipynb``), (2) be hidden in the rendered book (tag ``remove-cell``), (3) clone
the repository named in ``_config.yml`` and ``pip install -e`` it when ``google.colab`` is
imported, and (4) do nothing otherwise. (3) and (4) are checked by executing the cell's
text with ``subprocess.run`` replaced by a recorder.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def first_code_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code")


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/*.ipynb"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_hidden_colab_setup(path):
    cell = first_code_cell(path)
    reference = first_code_cell(CHAPTERS[0]).source
    assert "remove-cell" in cell.metadata.get("tags", []), f"{path.name}: first code cell not tagged remove-cell"
    assert '"google.colab" in sys.modules' in cell.source, f"{path.name}: first code cell is not the Colab setup"
    assert cell.source == reference, f"{path.name}: Colab setup cell differs from {CHAPTERS[0].name}'s"


def _run_cell(source: str, monkeypatch, in_colab: bool) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(list(cmd)))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<colab-setup>", "exec"), {})
    return calls


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    path_before = list(sys.path)
    assert _run_cell(first_code_cell(CHAPTERS[0]).source, monkeypatch, in_colab=False) == []
    assert sys.path == path_before


def test_setup_cell_installs_the_repository_in_colab(monkeypatch):
    calls = _run_cell(first_code_cell(CHAPTERS[0]).source, monkeypatch, in_colab=True)
    assert calls[0][:2] == ["git", "clone"] and REPO_URL in calls[0], calls
    target = calls[0][-1]
    assert calls[1][:3] == [sys.executable, "-m", "pip"] and "install" in calls[1], calls
    assert calls[1][-2:] == ["-e", target], calls
    assert sys.path[0] == target
