"""pyproject.toml states the ranges a library user needs; requirements.txt is the exact lock the
book is built and tested with. The lock must lie inside the ranges (base and every extra), the
extras must name what the code imports lazily, and every third-party module the package or a
chapter imports must be declared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME = canonicalize_name(PROJECT["name"])
BASE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {k: [Requirement(r) for r in v] for k, v in PROJECT["optional-dependencies"].items()}


def lock() -> dict[str, str]:
    """name -> pinned version of requirements.txt (every line must be an exact pin)."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
            assert m, f"requirements.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def expand(extra: str, seen: frozenset = frozenset()) -> list[Requirement]:
    """An extra's requirements with the self-references (``ace-book[dask]``) expanded."""
    out = []
    for req in EXTRAS[extra]:
        if canonicalize_name(req.name) == NAME:
            out += [r for e in sorted(req.extras - seen) for r in expand(e, seen | {extra})]
        else:
            out.append(req)
    return out


GROUPS = {"base": BASE, **{e: expand(e) for e in EXTRAS}}


def test_extras_are_the_documented_ones():
    assert set(EXTRAS) == {"dask", "book", "test"}


@pytest.mark.parametrize("group", GROUPS)
def test_the_lock_lies_inside_every_range(group):
    pins = lock()
    missing = [str(r) for r in GROUPS[group] if canonicalize_name(r.name) not in pins]
    outside = [f"{r} (lock {pins[canonicalize_name(r.name)]})" for r in GROUPS[group]
               if canonicalize_name(r.name) in pins and not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not missing, f"{group}: not pinned in requirements.txt: {missing}"
    assert not outside, f"{group}: the lock is outside the range: {outside}"


def test_ranges_are_ranges_not_pins():
    pinned = [str(r) for reqs in GROUPS.values() for r in reqs if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"exact pins belong in requirements.txt, not pyproject.toml: {pinned}"


def test_jupyter_book_stays_below_2():
    """jupyter-book 2 is another program (mystmd) that builds nothing of a 1.x book."""
    (jb,) = [r for r in GROUPS["book"] if r.name == "jupyter-book"]
    assert not jb.specifier.contains("2.0.0")


# import name -> distribution, where they differ
DIST = {"yaml": "pyyaml", "IPython": "ipython"}
# provided by the kernel that runs a notebook (Colab, ipykernel), not by ace_utils
KERNEL = {"IPython"}


def third_party_imports(paths) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "ace_utils":
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_import_of_the_package_and_the_chapters_is_declared():
    """The base covers the package's imports at module level; what a module imports lazily
    (dask in ace_utils.book.cluster, papermill in the seed runner) is in an extra."""
    declared = {canonicalize_name(r.name) for reqs in GROUPS.values() for r in reqs}
    code = sorted((ROOT / "ace_utils").rglob("*.py")) + sorted((ROOT / "notebooks").glob("*.py"))
    undeclared = {m: sorted(p)[:3] for m, p in third_party_imports(code).items()
                  if m not in KERNEL and canonicalize_name(DIST.get(m, m)) not in declared}
    assert not undeclared, undeclared


def test_the_dask_extra_holds_what_the_parallel_training_imports():
    lazy = third_party_imports([ROOT / "ace_utils" / "book" / "cluster.py"])
    assert set(lazy) == {"dask"}
    assert {canonicalize_name(r.name) for r in EXTRAS["dask"]} == {"dask", "distributed"}  # dask.distributed


def test_requires_python_admits_the_pythons_tested():
    """3.11 is the build's Python; 3.12 is Colab's, which scripts/colab_like_test.sh runs."""
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(PROJECT["requires-python"])
    assert "3.11" in spec and "3.12" in spec and "3.10" not in spec  # transformers 5 needs 3.11
