"""The chapters are jupytext py:percent sources paired with .ipynb files.

The .py file is what people edit and review; the .ipynb is what the book, nbval, papermill
and Colab open. These tests keep the two in step and keep the committed .ipynb clean:

- every ``notebooks/*.py`` has a paired ``.ipynb`` (and no ``.ipynb`` lacks its ``.py``);
- the cell types and sources agree (run ``jupytext --sync notebooks/*.py`` after editing);
- the ``.ipynb`` stores no outputs and no execution counts
  (``jupyter nbconvert --clear-output --inplace notebooks/*.ipynb``);
- it has a ``python3`` kernelspec, exactly one cell tagged ``parameters`` (for papermill)
  and the jupytext pairing ``ipynb,py:percent``.

The checks live in :func:`notebook_problems` and :func:`directory_problems`, which take any
path, so they are themselves tested below on throwaway notebooks in ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
PAIRING = "ipynb,py:percent"
KERNEL = "python3"


def _cells(nb) -> list[tuple[str, str]]:
    """(cell type, source) per cell; trailing whitespace of a cell is not significant."""
    return [(c.cell_type, c.source.rstrip()) for c in nb.cells]


def _parameter_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]


def notebook_problems(py_path: Path) -> list[str]:
    """Everything wrong with the pair ``py_path`` / ``py_path.with_suffix('.ipynb')``.

    Returns a list of human-readable problems; an empty list means the pair is fine.
    """
    py_path = Path(py_path)
    ipynb_path = py_path.with_suffix(".ipynb")
    name = py_path.stem
    if not ipynb_path.exists():
        return [f"{name}: {ipynb_path.name} is missing (run `jupytext --sync {py_path.name}`)"]

    problems: list[str] = []
    py_nb = jupytext.read(py_path, fmt="py:percent")
    nb = nbformat.read(ipynb_path, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:  # pragma: no cover - message only
        problems.append(f"{name}.ipynb is not a valid notebook: {exc.message}")

    # 1. same cells, same sources
    a, b = _cells(py_nb), _cells(nb)
    if a != b:
        if len(a) != len(b):
            detail = f"{len(a)} cells in .py, {len(b)} in .ipynb"
        else:
            i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
            detail = f"first difference at cell {i} ({a[i][0]} in .py, {b[i][0]} in .ipynb)"
        problems.append(f"{name}: .py and .ipynb are out of sync: {detail} (run `jupytext --sync {py_path.name}`)")

    # 2. no outputs, no execution counts in the committed .ipynb
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{name}.ipynb: cell {i} stores outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"{name}.ipynb: cell {i} stores an execution count (clear outputs before committing)")

    # 3. kernelspec
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        problems.append(f"{name}.ipynb: kernelspec name is {kernel!r}, expected {KERNEL!r}")

    # 4. exactly one `parameters` cell, the same one in both files
    params = _parameter_cells(nb)
    if len(params) != 1:
        problems.append(f"{name}.ipynb: {len(params)} cells tagged 'parameters', expected exactly 1")
    elif _parameter_cells(py_nb) != params:
        problems.append(f"{name}: the 'parameters' tag differs between .py and .ipynb")

    # 5. jupytext pairing, recorded in both files
    for label, meta in ((".ipynb", nb.metadata), (".py", py_nb.metadata)):
        formats = meta.get("jupytext", {}).get("formats")
        if formats != PAIRING:
            problems.append(f"{name}{label}: jupytext formats is {formats!r}, expected {PAIRING!r}")
    return problems


def directory_problems(directory: Path) -> list[str]:
    """Pair problems of every ``*.py`` in ``directory``, plus a missing source or stray ``.ipynb``."""
    directory = Path(directory)
    sources = sorted(directory.glob("*.py"))
    if not sources:
        return [f"no *.py notebooks in {directory}"]
    problems = [p for py in sources for p in notebook_problems(py)]
    for ipynb in sorted(directory.glob("*.ipynb")):
        if not ipynb.with_suffix(".py").exists():
            problems.append(f"{ipynb.name} has no paired .py source")
    return problems


# --- the repository's notebooks ------------------------------------------------------------

# the chapters, and the notebook pages of book/ (the text pages there are .md)
BOOK_DIR = NOTEBOOK_DIR.parent / "book"
SOURCES = sorted(NOTEBOOK_DIR.glob("*.py")) + sorted(BOOK_DIR.glob("*.py"))


def test_there_are_notebooks():
    # a failure, not a skip: an empty notebooks/ folder means the book lost its chapters
    assert SOURCES, f"no notebooks/*.py found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("py_path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_pair(py_path):
    problems = notebook_problems(py_path)
    assert not problems, "\n".join(problems)


def test_no_ipynb_without_source():
    stray = [p.name for d in (NOTEBOOK_DIR, BOOK_DIR) for p in sorted(d.glob("*.ipynb")) if not p.with_suffix(".py").exists()]
    assert not stray, f"notebooks without a paired .py source: {stray}"


# --- the checks themselves, on throwaway pairs ------------------------------------------------

PY_TEXT = '''\
# %% [markdown]
# # A throwaway chapter
#
# Two lines of text.

# %% tags=["parameters"]
seed = 0

# %%
x = seed + 1
assert x == 1
'''


def make_pair(directory: Path, name: str = "nb", text: str = PY_TEXT) -> Path:
    """Write a correctly paired py:percent / ipynb notebook into ``directory``; return the .py path."""
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata["jupytext"] = {"formats": PAIRING}
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    py_path = Path(directory) / f"{name}.py"
    jupytext.write(nb, py_path, fmt="py:percent")
    jupytext.write(nb, py_path.with_suffix(".ipynb"))
    return py_path


def test_check_accepts_a_good_pair(tmp_path):
    make_pair(tmp_path)
    assert directory_problems(tmp_path) == []


def test_check_accepts_a_single_notebook(tmp_path):
    py = make_pair(tmp_path, "only")
    assert notebook_problems(py) == []
    assert directory_problems(tmp_path) == []


def test_check_fails_on_an_empty_directory(tmp_path):
    assert directory_problems(tmp_path) == [f"no *.py notebooks in {tmp_path}"]


def test_check_catches_a_missing_ipynb(tmp_path):
    py = make_pair(tmp_path)
    py.with_suffix(".ipynb").unlink()
    assert any("is missing" in p for p in notebook_problems(py))


def test_check_catches_an_ipynb_without_source(tmp_path):
    make_pair(tmp_path)
    make_pair(tmp_path, "orphan").unlink()
    assert directory_problems(tmp_path) == ["orphan.ipynb has no paired .py source"]


def test_check_catches_a_stale_pair(tmp_path):
    py = make_pair(tmp_path)
    # edit the source without syncing
    py.write_text(py.read_text().replace("x = seed + 1", "x = seed + 2"))
    problems = notebook_problems(py)
    assert len(problems) == 1 and "out of sync" in problems[0] and "cell 2" in problems[0]


def test_check_catches_an_added_cell(tmp_path):
    py = make_pair(tmp_path)
    py.write_text(py.read_text() + "\n# %%\ny = 2\n")
    assert any("out of sync" in p and "4 cells in .py, 3 in .ipynb" in p for p in notebook_problems(py))


def test_check_catches_outputs_and_execution_counts(tmp_path):
    py = make_pair(tmp_path)
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    cell = nb.cells[2]
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nbformat.write(nb, ipynb)
    problems = notebook_problems(py)
    assert any("stores outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    # the sources are unchanged: only the output problems are reported
    assert len(problems) == 2


def test_check_catches_a_missing_or_doubled_parameters_tag(tmp_path):
    py = make_pair(tmp_path, "none", PY_TEXT.replace(' tags=["parameters"]', ""))
    assert any("0 cells tagged 'parameters'" in p for p in notebook_problems(py))
    py = make_pair(tmp_path, "two", PY_TEXT.replace("# %%\nx", '# %% tags=["parameters"]\nx'))
    assert any("2 cells tagged 'parameters'" in p for p in notebook_problems(py))


def test_check_catches_a_wrong_kernel_or_pairing(tmp_path):
    py = make_pair(tmp_path)
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    nb.metadata["kernelspec"]["name"] = "julia-1.10"
    nb.metadata["jupytext"]["formats"] = "ipynb,py:light"
    nbformat.write(nb, ipynb)
    problems = notebook_problems(py)
    assert any("kernelspec name is 'julia-1.10'" in p for p in problems)
    assert any(".ipynb: jupytext formats is 'ipynb,py:light'" in p for p in problems)
