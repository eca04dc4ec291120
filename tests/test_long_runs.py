"""ace_utils.book.long_runs reads a committed long run and summarises it per model: known values
of the committed paper's-models run (results/modular_paper_models) and of a small synthetic run
written in the reference-analysis layout (checkpoints only, no logs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ace_utils.book import long_runs as lr
from ace_utils.tasks import modular as mod

ROOT = Path(__file__).resolve().parents[1]


def test_committed_run_reads_and_summarises():
    run = lr.read_long_run(ROOT / "results" / "modular_paper_models")
    assert run.n_models == 3 and run.branch_epoch == 900
    assert run.ckpts["wd0"]["epoch"][0] == 900 and run.ckpts["main"]["epoch"][-1] == 20000
    # the branch starts from the main run's checkpoint at the branch epoch
    np.testing.assert_array_equal(run.at("main", "r_core", 900), run.ckpts["wd0"]["r_core"][0])
    late = run.late("main", "r_core")
    main = run.ckpts["main"]
    np.testing.assert_allclose(late, main["r_core"][main["epoch"] >= 15000].mean(0))
    rows = lr.summary(run)
    assert rows["r_core WD = 1: at branch; late; at end"].split("; ")[0] == ", ".join(
        f"{v:.0f}" for v in run.at("main", "r_core", 900))
    assert [f["label"] for f in run.finals] == ["seed 0", "seed 1000", "seed 2000"]
    low_log, _ = run.min_accuracy("main", source="log")
    low_ck, _ = run.min_accuracy("main")
    assert (low_log <= low_ck + 1e-12).all()  # the log holds every checkpoint epoch's neighbourhood


def _synthetic(tmp_path: Path) -> Path:
    epochs = np.array([0, 100, 200, 300], float)
    rec = {"main/ckpt/epoch": epochs, "wd0/ckpt/epoch": np.array([200, 300], float)}
    for key in mod.CURVE_KEYS:
        rec[f"main/ckpt/{key}"] = np.arange(8, dtype=float).reshape(4, 2)
        rec[f"wd0/ckpt/{key}"] = np.array([[4.0, 5.0], [1.0, 2.0]])
    rec["main/ckpt/test_acc"] = np.array([[0.1, 0.1], [0.9, 0.5], [0.95, 1.0], [0.99, 0.7]])
    mod.save_curves(tmp_path / "curves.npz", rec)
    (tmp_path / "meta.json").write_text(json.dumps({"branch_epoch": 200}))
    prof = {"acc_without_energy": 0.5, "param_norm": 10.0}
    (tmp_path / "final_states.json").write_text(json.dumps({"models": [
        {"model": "reference M0", "main": prof, "wd0": prof}, {"model": "reference M1", "main": prof, "wd0": prof}]}))
    return tmp_path


def test_reference_layout_without_logs(tmp_path):
    run = lr.read_long_run(_synthetic(tmp_path), "reference")
    assert run.logs == {"main": {}, "wd0": {}} and run.branch_epoch == 200
    np.testing.assert_allclose(run.late("main", "r_core", start=200), [5.0, 6.0])
    low, at = run.min_accuracy("main", after=50)
    np.testing.assert_allclose(low, [0.9, 0.5])
    np.testing.assert_array_equal(at, [100, 100])
    with pytest.raises(KeyError, match="no log accuracy"):
        run.min_accuracy("main", source="log")
    with pytest.raises(KeyError, match="epoch 150"):
        run.at("main", "r_core", 150)
    table = lr.comparison_table({"ref": run}, {"r_core WD 1->0 late": "no inflation"}, start=200,
                                acc_after=50)
    assert "| r_core WD 1->0 late | 2, 4 | no inflation |" in table
    assert "| lowest test acc. at checkpoints after 50, WD = 1 (epoch) | 0.900 (100), 0.500 (100) | not reported |" in table
    assert [f["label"] for f in run.finals] == ["reference M0", "reference M1"]
