"""The book page book/your_model (a notebook Colab opens) runs on the one-call API and shows
what its prose says.

Its code cells are executed in order in one namespace, as the book's kernel runs them, then
the results are checked against the prose. Its non-executed GPT-2 block is run too, on chapter
05's locally trained 2-layer GPT-2-architecture model, loaded through the same
``load_pretrained`` from a folder (no hub here).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import numpy as np
import pytest

from ace_utils.models.training import torch_threads

PAGE = Path(__file__).resolve().parents[1] / "book" / "your_model.py"


def _notebook():
    return jupytext.read(PAGE, fmt="py:percent")


def _code_cells() -> list[str]:
    return [c.source for c in _notebook().cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def page() -> dict:
    ns: dict = {"__name__": "your_model_page"}
    with torch_threads(None):  # the page sets its own thread count
        for src in _code_cells():
            exec(compile(src, str(PAGE), "exec"), ns)  # noqa: S102 - the page's own code
    return ns


def test_page_is_a_paired_notebook_with_a_parameters_cell_and_uses_the_one_call_api():
    nb = _notebook()
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert PAGE.with_suffix(".ipynb").exists() and not PAGE.with_suffix(".md").exists()
    tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
    assert tags[0] == ["remove-cell"] and tags[1] == ["parameters"]
    code = "\n".join(_code_cells())
    assert code.count("au.find_core(") == 3 and "from ace_utils.method.ace import" not in code


def test_a_bad_parameter_fails_at_once_naming_it():
    from ace_utils.book.params import ParameterError

    ns: dict = {"__name__": "your_model_page"}
    cells = _code_cells()
    first = next(i for i, src in enumerate(cells) if "validate(" in src)  # the page's first own cell
    for src in cells[:first]:
        exec(compile(src, str(PAGE), "exec"), ns)  # noqa: S102
    ns["seed"] = -1
    with pytest.raises(ParameterError, match="'seed'"):
        exec(compile(cells[first], str(PAGE), "exec"), ns)  # noqa: S102


def test_core_is_found_the_same_from_the_behaviour_and_from_the_readout(page):
    core, core_logits = page["core"], page["core_logits"]
    assert core.rank == 3 and core_logits.rank == 3 and core.basis.shape == (64, 3)
    assert page["angle_between"] < 1.0  # degrees


def test_core_is_sufficient_necessary_and_flippable_random_is_not(page):
    s, chance = page["scores"], page["chance"]
    assert abs(s["core keep"] - s["full model"]) <= 0.005  # "keeping only the core keeps the model's accuracy"
    assert s["core remove"] <= chance + 0.02  # "drops the accuracy to chance"
    assert s["core flip"] <= 0.05  # "wrong almost everywhere"
    assert s["random keep"] < s["full model"] - 0.15  # "keeping only it loses much of the accuracy"
    assert abs(s["random remove"] - s["full model"]) <= 0.02  # "removing or reflecting it changes little"
    assert abs(s["random flip"] - s["full model"]) <= 0.02


def test_cores_of_two_models_differ_in_geometry_but_agree_in_statistics(page):
    assert page["angles"].min() > 60  # "almost unrelated directions"
    assert page["overlap"] < 2 * page["level"]  # "near its level for random subspaces"
    assert page["cca"][:2].min() > 0.99 and 0.9 < page["cca"][2] < page["cca"][:2].min()  # "close to 1 ... a little lower"


def _hub_block() -> str:
    text = "\n".join(c.source for c in _notebook().cells if c.cell_type == "markdown")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    hub = [b for b in blocks if "load_pretrained" in b]
    assert len(hub) == 1, "the page has one non-executed hub example"
    return hub[0]


def test_hub_block_runs_on_a_local_gpt2_architecture_model():
    from ace_utils.tasks import agreement as ag

    run = ag.AgreementRun(2, 64, steps=600, data_seed=0, seed=0)  # chapter 05's first default model
    folder = ag.export_trained_model(ag._cached_model(run))
    src = _hub_block()
    assert 'load_pretrained("gpt2")' in src and 'hook="blocks.8.hook_resid_pre"' in src
    src = src.replace('load_pretrained("gpt2")', f"load_pretrained({str(folder)!r})")
    src = src.replace('hook="blocks.8.hook_resid_pre"', 'hook="blocks.1.hook_resid_post"')  # its last residual stream
    ns: dict = {"__name__": "your_model_hub_block"}
    with torch_threads(1):
        exec(compile(src, "your_model (hub block)", "exec"), ns)  # noqa: S102
    core = ns["core"]
    assert core.rank == 1 and core.basis.shape[0] == 64
    auc = {m: ns["auc"](m) for m in ("keep", "remove", "flip")}
    base, random_flip = ns["auc"](), ns["auc"]("flip", control=True)
    assert base >= 0.95 and abs(auc["keep"] - base) <= 0.03
    assert auc["flip"] <= 0.1 and abs(random_flip - base) <= 0.05
    assert np.isfinite(auc["remove"])
