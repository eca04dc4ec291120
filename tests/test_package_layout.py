"""The package's folders show its architecture, read from its source: which folder may import which,
no import circle, no environment change on import, small modules, docstrings of the method and
the models that name no chapter, no private names imported across modules, every module on the
API page.

Every module under ``ace_utils`` is parsed with :mod:`ast`; its imports (module level and inside
functions alike) give the import graph. The method (``ace_utils/method``) and the models
(``ace_utils/models``) import neither the tasks nor the book's tooling; the graph has no circle
(imports under ``if TYPE_CHECKING:`` are left out of that one check: they never run). The graph
helpers are checked on a small planted package first, so each rule can fail.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ace_utils"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
CHAPTER = re.compile(r"\bchapters?\s+`*\d\d|\b\d\d_[a-z]+_[a-z_]+\b", re.IGNORECASE)
MAX_LINES = 500
# modules known to be over MAX_LINES, with why (xfail, strict, while they are over it)
TOO_LONG: dict[str, str] = {}  # module -> why it may still exceed MAX_LINES (strict xfail)


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
    """A task module's docstring says which chapter it serves, and that chapter imports it
    (itself, or through another task module it imports); its functions carry no pasted
    "Chapter NN." tags (they go stale)."""
    tree = ast.parse(path.read_text())
    named = {m for m in re.findall(r"\b(\d\d)_[a-z]+", ast.get_docstring(tree) or "")}

    def imports(text: str, stem: str) -> bool:
        return bool(re.search(rf"from ace_utils\.tasks import {stem}\b|ace_utils\.tasks\.{stem}\b", text))

    via = {path.stem} | {t.stem for t in TASKS if t != path and imports(t.read_text(), path.stem)}
    importers = {nb.stem[:2] for nb in (ROOT / "notebooks").glob("0*.py") if any(imports(nb.read_text(), m) for m in via)}
    assert named & importers, (path.stem, named, importers)
    tags = [name for name, doc in _docstrings(tree) if name != "<module>" and TAG.search(doc)]
    assert not tags, tags


# --------------------------------------------------------------------------- reading the package


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file under ``package`` (``__init__.py`` is
    the package itself)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.AST) -> bool:
    """Whether ``node`` is an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) block."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST, runtime_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth (functions, classes, branches); with
    ``runtime_only`` not those in the body of an ``if TYPE_CHECKING:`` block."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for field, value in ast.iter_fields(node):
            if runtime_only and _type_checking(node) and field == "body":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child)

    visit(tree)
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path], *, runtime_only: bool = False) -> set[str]:
    """The package's modules that module ``name`` (at ``path``) imports. ``from P import x`` counts
    as an import of the submodule ``P.x`` where there is one, else of ``P``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), runtime_only):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            subs = [f"{source}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in modules]
            if len(targets) < len(subs):  # some names are attributes of the module itself
                targets.append(source)
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph(package: Path = PACKAGE, *, runtime_only: bool = False) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}`` for every module under ``package``."""
    modules = package_modules(package)
    return {name: imported_modules(name, path, modules, runtime_only=runtime_only) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or ``[]`` if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def layer_violations(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``"a imports b"`` for every module in ``layer`` (a dotted prefix) that imports a module
    under one of the ``forbidden`` prefixes."""
    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return sorted(f"{m} imports {t}" for m, targets in graph.items() if under(m, layer)
                  for t in targets if any(under(t, f) for f in forbidden))


# --------------------------------------------------------------------------- the helpers can fail


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package ``pkg`` with a method module that imports the book inside a function, a book
    module importing it back, and a type-only import that closes no circle at run time."""
    pkg = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "method/__init__.py": "",
        "method/core.py": "def f():\n    from pkg.book.cache import x\n    return x\n",
        "method/clean.py": "import os\n",
        "models/__init__.py": "",
        "models/net.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.book import claims\n",
        "book/__init__.py": "",
        "book/cache.py": "from ..method import core\nx = 1\n",
        "book/claims.py": "from pkg.models import net\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_the_checks_find_planted_violations(planted):
    graph = import_graph(planted)
    assert graph["pkg.method.core"] == {"pkg.book.cache"}  # found inside a function
    assert graph["pkg.book.cache"] == {"pkg.method.core"}  # a relative import
    assert layer_violations(graph, "pkg.method", ("pkg.book",)) == ["pkg.method.core imports pkg.book.cache"]
    assert layer_violations(graph, "pkg.models", ("pkg.book",)) == ["pkg.models.net imports pkg.book.claims"]
    assert find_cycle(graph) in (["pkg.book.cache", "pkg.method.core", "pkg.book.cache"],
                                 ["pkg.method.core", "pkg.book.cache", "pkg.method.core"])
    runtime = import_graph(planted, runtime_only=True)
    assert runtime["pkg.models.net"] == set()  # the type-only import never runs
    del runtime["pkg.method.core"]
    assert find_cycle(runtime) == [] and find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# --------------------------------------------------------------------------- the package's rules


GRAPH = import_graph()


def test_the_graph_reads_the_package():
    assert {"ace_utils", "ace_utils.method.core", "ace_utils.models.paper", "ace_utils.book.claims"} <= set(GRAPH)
    assert "ace_utils.method.ace" in GRAPH["ace_utils.method.core"]
    assert "ace_utils.book.ledger" in GRAPH["ace_utils.book.claims"]  # imported inside a method


def test_models_import_nothing_from_the_tasks_or_the_book():
    assert layer_violations(GRAPH, "ace_utils.models", ("ace_utils.book", "ace_utils.tasks")) == []


def test_method_imports_nothing_from_the_tasks_or_the_book():
    assert layer_violations(GRAPH, "ace_utils.method", ("ace_utils.book", "ace_utils.tasks")) == []


def test_the_import_graph_has_no_circle():
    cycle = find_cycle(import_graph(runtime_only=True))
    assert cycle == [], "import circle: " + " -> ".join(cycle)


def test_importing_ace_utils_changes_no_environment_variable():
    """In a fresh process with a clean environment: the package, and its top-level ``find_core``
    (which loads the method and torch), leave ``os.environ`` as they found it."""
    code = ("import json, os\nbefore = dict(os.environ)\nimport ace_utils\nace_utils.find_core\n"
            "after = dict(os.environ)\n"
            "print(json.dumps({k: [before.get(k), after.get(k)] for k in set(before) | set(after) "
            "if before.get(k) != after.get(k)}))\n")
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "SYSTEMROOT") if k in os.environ}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def _length_cases():
    for name, path in package_modules().items():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        too_long = rel in TOO_LONG and lines >= MAX_LINES
        marks = [pytest.mark.xfail(reason=TOO_LONG[rel], strict=True)] if too_long else []
        yield pytest.param(rel, lines, id=name, marks=marks)


@pytest.mark.parametrize("path, lines", list(_length_cases()))
def test_every_module_is_small(path, lines):
    assert lines < MAX_LINES, f"{path} has {lines} lines (at most {MAX_LINES - 1}): split it by job"
