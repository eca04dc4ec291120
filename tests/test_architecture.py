"""Tests for ace_utils.tasks.architecture: the one-factor-at-a-time study's settings and summaries."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ace_utils.models.paper import ModelVariant
from ace_utils.tasks import architecture as arch
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod


def test_settings_change_one_factor_each_from_the_paper():
    paper = arch.MODADD_SETTINGS[0]
    assert paper.name == "paper" and paper.variant.is_paper and paper.dropout == 0.1
    names = [s.name for s in arch.MODADD_SETTINGS]
    assert len(set(names)) == len(names) and all(n.replace("-", "").isalnum() for n in names)
    for s in arch.MODADD_SETTINGS[1:-1]:
        changed = len(s.variant.changes()) + (s.dropout != 0.1)
        assert changed == 1, s.name
    assert len(arch.MODADD_SETTINGS[-1].variant.changes()) == 4
    assert arch.setting_named("no-dropout").dropout == 0.0
    with pytest.raises(ValueError, match="setting must be one of .*'paper'"):
        arch.setting_named("post-ln")


def test_modadd_run_is_chapter_03s_run_with_the_change():
    base = mod.preset_run("default", seed=3, architecture="paper")
    assert arch.modadd_run(arch.MODADD_SETTINGS[0], seed=3) == base  # the baseline shares chapter 03's cache
    pre = arch.modadd_run(arch.setting_named("pre-ln"), seed=3)
    assert pre == replace(base, variant=ModelVariant(norm="pre"))
    short = arch.modadd_run(arch.setting_named("no-dropout"), seed=3, epochs=200)
    assert (short.epochs, short.branch_epoch, short.dropout) == (200, 0, 0.0)
    assert short.checkpoint_epochs == tuple(e for e in base.checkpoint_epochs if e <= 200)


def test_a_shortened_run_equals_the_start_of_the_full_one():
    """What the chapter checks live: the first epochs of a run do not depend on its length."""
    setting = arch.setting_named("pre-ln")
    full = replace(arch.modadd_run(setting, n_models=1), p=11, d_model=32, d_mlp=64, epochs=20,
                   checkpoint_epochs=(0, 10, 20), branch_epoch=15)
    short = replace(full, epochs=10, checkpoint_epochs=(0, 10), branch_epoch=0)
    data = mod.make_data(11, 0.5, 42)
    logs = []
    for run in (full, short):
        params = mod.init_stacked(run)
        logs.append(mod.train_stacked(run, data, params, start_epoch=0, end_epoch=run.epochs, weight_decay=1.0))
    n = len(logs[1]["epoch"])
    for k in ("test_acc", "train_loss", "test_loss"):
        np.testing.assert_array_equal(logs[0][k][:n], logs[1][k])


def _curves(test_acc: np.ndarray, r_energy: np.ndarray) -> dict[str, np.ndarray]:
    C, M = r_energy.shape
    curves = {"main/log/epoch": np.arange(0, 10 * len(test_acc), 10.0), "main/log/test_acc": test_acc,
              "main/ckpt/epoch": np.arange(0, 20 * C, 20.0), "main/ckpt/r_energy": r_energy}
    for i, k in enumerate(("r_suf", "r_nec", "r_core", "core_only_acc", "core_removed_acc", "modes", "r2_in",
                           "r2_h", "test_acc")):
        curves[f"main/ckpt/{k}"] = np.full((C, M), float(i))
    return curves


def test_modadd_summary_known_answer():
    acc = np.array([[0.0, 0.0], [0.5, 0.2], [0.995, 0.3], [1.0, 0.4], [1.0, 0.5]])  # epochs 0..40
    r_energy = np.array([[40, 42], [30, 41], [15, 40]])  # checkpoints at epochs 0, 20, 40
    s = arch.modadd_summary(_curves(acc, r_energy))
    assert s["grok_epoch"][0] == 20 and np.isnan(s["grok_epoch"][1])
    np.testing.assert_array_equal(s["r_energy_init"], [40, 42])
    assert s["r_energy_grok"][0] == 30 and np.isnan(s["r_energy_grok"][1])
    np.testing.assert_array_equal(s["r_energy_end"], [15, 40])
    assert s["r_nec"].tolist() == [1.0, 1.0] and s["test_acc"].tolist() == [8.0, 8.0]
    assert set(s) == set(arch.SUMMARY_KEYS)


def test_markov_run_and_summary_on_two_tiny_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    setting = arch.setting_named("pre-ln-no-dropout", arch.MARKOV_SETTINGS)
    run = arch.markov_run(setting, seed=5)
    assert (run.lr, run.epochs) == (mk.PRESETS["default"]["lr"], mk.PRESETS["default"]["epochs"])
    assert run.dropout == 0.0 and run.variant == ModelVariant(norm="pre")
    data = mk.make_data(mk.lazy_cycle(), n_train=200, n_test=200)
    tiny = [replace(arch.markov_run(setting, seed=s), d_model=16, d_mlp=32, epochs=2) for s in (5, 6)]
    models = [mk.train_markov_model(r, data, progress=False) for r in tiny]
    s = arch.markov_summary(models, data)
    assert {k: v.shape for k, v in s.items()} == {"acc": (2,), "rank": (2,), "real_error": (2,),
                                                    "complex_error": (2,), "overlap": (1,), "cca": (1,),
                                                    "eigenvalues": (2, 3)}
    true = mk.nontrivial_eigenvalues(data.T)
    np.testing.assert_allclose(np.abs(s["eigenvalues"] - true).max(1), np.maximum(s["real_error"], s["complex_error"]))
    assert 0 <= s["overlap"][0] <= 1 and 0 <= s["cca"][0] <= 1
    # a model compared with itself: overlap 1, canonical correlations 1
    same = arch.markov_summary([models[0], models[0]], data)
    assert same["overlap"][0] == pytest.approx(1.0) and same["cca"][0] == pytest.approx(1.0, abs=1e-6)
    assert isinstance(models[0].ln_final, torch.nn.LayerNorm)
