"""The package's folders show its architecture: the method and the models are independent of
the book's chapters, no module reaches into another's private names, and the API page lists
every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ace_utils"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
CHAPTER = re.compile(r"\bchapters?\s+`*\d\d|\b\d\d_[a-z]+_[a-z_]+\b", re.IGNORECASE)


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _docstrings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield getattr(node, "name", "<module>"), doc


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent.name in ("method", "models")], ids=_dotted)
def test_method_and_models_docstrings_name_no_chapter(path):
    """Chapter references in the method or the models go stale as chapters change; the task
    modules (one per chapter) and the book's pages say which chapter uses what."""
    hits = [f"{name}: {m.group(0)!r}" for name, doc in _docstrings(ast.parse(path.read_text()))
            for m in CHAPTER.finditer(doc)]
    assert not hits, hits


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent.name in ("method", "models")], ids=_dotted)
def test_method_and_models_do_not_import_tasks_or_chapter_tooling(path):
    banned = ("ace_utils.tasks", "ace_utils.book.claims", "ace_utils.book.rerun", "ace_utils.book.params")
    imported = [n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in imported if m.startswith(banned)]


@pytest.mark.parametrize("path", MODULES, ids=_dotted)
def test_no_module_imports_a_private_name_of_another(path):
    private = [f"{n.module}.{a.name}" for n in ast.walk(ast.parse(path.read_text()))
               if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("ace_utils")
               for a in n.names if a.name.startswith("_")]
    assert not private, private


def test_the_api_page_documents_every_module():
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", page, flags=re.M))
    assert documented >= {_dotted(p) for p in MODULES}, sorted({_dotted(p) for p in MODULES} - documented)


TASKS = sorted(p for p in (PACKAGE / "tasks").glob("*.py") if p.name != "__init__.py")
TAG = re.compile(r"Chapters? \d\d(?:(?:,| and|-)\s*\d\d)*(?: \([^)]*\))?\.\s*$", re.MULTILINE)


@pytest.mark.parametrize("path", TASKS, ids=_dotted)
def test_task_module_names_a_chapter_that_imports_it_and_tags_no_function(path):
    """A task module's docstring says which chapter it serves, and that chapter imports it;
    its functions carry no pasted "Chapter NN." tags (they go stale)."""
    tree = ast.parse(path.read_text())
    named = {m for m in re.findall(r"\b(\d\d)_[a-z]+", ast.get_docstring(tree) or "")}
    importers = {nb.stem[:2] for nb in (ROOT / "notebooks").glob("0*.py")
                 if re.search(rf"from ace_utils\.tasks import {path.stem}\b|ace_utils\.tasks\.{path.stem}\b", nb.read_text())}
    assert named & importers, (path.stem, named, importers)
    tags = [name for name, doc in _docstrings(tree) if name != "<module>" and TAG.search(doc)]
    assert not tags, tags
