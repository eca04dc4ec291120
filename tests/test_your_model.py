"""The book page book/your_model.md runs, and says what it computes.

Its ``{code-cell}`` cells are executed in order in one namespace (what myst-nb does when
the book is built), then the results are checked. Its non-executed GPT-2 block is run too,
on chapter 05's locally trained 2-layer GPT-2-architecture model, loaded through the same
``load_pretrained`` from a folder (no hub here).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import numpy as np
import pytest

from ace_utils.models.training import torch_threads

PAGE = Path(__file__).resolve().parents[1] / "book" / "your_model.md"


def _code_cells() -> list[str]:
    nb = jupytext.read(PAGE, fmt="md:myst")
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def page() -> dict:
    ns: dict = {"__name__": "your_model_page"}
    with torch_threads(None):  # the page sets its own thread count
        for src in _code_cells():
            exec(compile(src, str(PAGE), "exec"), ns)  # noqa: S102 - the page's own code
    return ns


def test_page_is_a_mystnb_notebook_with_code_cells():
    text = PAGE.read_text()
    assert text.startswith("---\nfile_format: mystnb\nkernelspec:\n  name: python3\n")
    assert len(_code_cells()) == 5


def test_core_is_found(page):
    assert page["core"].rank == 3
    assert page["Q"].shape == (64, 3)


def test_core_is_sufficient_necessary_and_flippable_random_is_not(page):
    s, chance = page["scores"], page["chance"]
    assert abs(s["core keep"] - s["full model"]) <= 0.005  # keeping the core keeps the behaviour
    assert s["core remove"] <= chance + 0.05  # removing it gives chance or less (one-sided, as chapter 01)
    assert abs(s["core remove"] - chance) <= 0.02  # here at chance: 0.26 against 0.25, as the page says
    assert s["core flip"] <= 0.01  # reflecting it makes every prediction wrong
    assert 0.4 < s["random keep"] < 0.6  # a random 3-D subspace alone halves the accuracy
    assert abs(s["random remove"] - s["full model"]) <= 0.005  # and removing it changes nothing
    assert abs(s["random flip"] - s["full model"]) <= 0.005
    assert abs(s["core keep"] - 0.7498) <= 0.0005 and abs(s["full model"] - 0.7498) <= 0.0005  # quoted on the page


def test_baseline_table_is_printed_for_the_label_free_finders(page):
    table = page["table"]
    assert list(table)[:5] == ["ACE", "ACE, observable side", "PCA ranked by output energy", "PCA", "sensitivity"]
    assert table["ACE"]["keep"] == pytest.approx(page["scores"]["core keep"])
    assert table["ACE"]["remove"] == pytest.approx(page["scores"]["core remove"])
    assert abs(table["PCA"]["keep"] - table["ACE"]["keep"]) <= 0.005  # "PCA does almost as well"
    assert table["sensitivity"]["keep"] > table["ACE"]["keep"] - 0.05  # "keep most of the accuracy"
    assert abs(table["sensitivity"]["remove"] - 0.48) <= 0.01  # "removing them leaves about 0.48": not necessary


def test_cores_of_two_models_differ_in_geometry_but_agree_in_statistics(page):
    # the quoted numbers, within what float32 training on another CPU kind can move them
    assert page["angles"].min() > 76.5 and page["angles"].max() < 87.0  # "78-86 deg" on the page
    assert abs(page["overlap"] - 0.030) < 0.005 and page["overlap"] < page["level"]  # "0.03 (random 0.047)"
    assert page["cca"][:2].min() > 0.999 and abs(page["cca"][2] - 0.96) < 0.005  # 0.999, 0.999, 0.96


def _hub_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 1, "the page has one non-executed python block (the hub example)"
    return blocks[0]


def test_hub_block_runs_on_a_local_gpt2_architecture_model():
    from ace_utils.tasks import agreement as ag

    run = ag.AgreementRun(2, 64, steps=600, data_seed=0, seed=0)  # chapter 05's first default model
    folder = ag.export_trained_model(ag._cached_model(run))
    src = _hub_block()
    assert 'load_pretrained("gpt2")' in src and 'hook = "blocks.8.hook_in"' in src
    src = src.replace('load_pretrained("gpt2")', f"load_pretrained({str(folder)!r})")
    src = src.replace('hook = "blocks.8.hook_in"', 'hook = "blocks.1.hook_out"')  # its last residual stream
    ns: dict = {"__name__": "your_model_hub_block"}
    with torch_threads(1):
        exec(compile(src, "your_model.md (hub block)", "exec"), ns)  # noqa: S102
    core = ns["core"]
    assert core.rank == 1 and core.basis.shape[0] == 64
    auc = {m: ns["auc"](core.core(), m) for m in ("keep", "remove", "flip")}
    base, random_flip = ns["auc"](), ns["auc"](ns["q_random"], "flip")
    assert base >= 0.95 and abs(auc["keep"] - base) <= 0.03
    assert auc["flip"] <= 0.1 and abs(random_flip - base) <= 0.05
    assert np.isfinite(auc["remove"])
