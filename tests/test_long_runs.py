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
    assert [f["label"] for f in run.finals] == ["seed 0", "seed 1000", "seed 2000"] and run.finals_epoch == 20000
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
    assert [f["label"] for f in run.finals] == ["reference M0", "reference M1"] and run.finals_epoch is None
    # the reference code's analysis names each branch's last epoch (a run still going): the earlier one
    states = json.loads((tmp_path / "final_states.json").read_text())
    (tmp_path / "final_states.json").write_text(json.dumps(dict(states, epoch={"main": 4500, "wd0": 4000})))
    assert lr.read_long_run(tmp_path).finals_epoch == 4000


def _tiny_run(with_logs: bool = True) -> lr.LongRun:
    """Two models, main checkpoints at epochs 0-300 (branch at 100), the branch at 100-300."""
    main = {"epoch": np.array([0.0, 100.0, 200.0, 300.0])}
    wd0 = {"epoch": np.array([100.0, 200.0, 300.0])}
    for key in ("r_core", "r_suf", "r_energy", "modes", "r2_h", "r_nec"):
        main[key] = np.array([[40.0, 44.0], [10.0, 12.0], [20.0, 30.0], [30.0, 40.0]])
        wd0[key] = np.array([[10.0, 12.0], [11.0, 12.0], [8.0, 20.0]])
    main["test_acc"] = np.array([[0.02, 0.02], [1.0, 1.0], [0.6, 1.0], [1.0, 0.9]])
    wd0["test_acc"] = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    logs = {"main": {}, "wd0": {}}
    if with_logs:
        logs = {"main": {"epoch": np.array([0.0, 150.0, 250.0, 300.0]),
                         "test_acc": np.array([[0.02, 0.02], [0.3, 1.0], [1.0, 0.8], [1.0, 0.9]])},
                "wd0": {"epoch": np.array([100.0, 150.0, 300.0]),
                        "test_acc": np.array([[1.0, 1.0], [0.95, 1.0], [1.0, 1.0]])}}
    meta = {"command": "python make_it.py", "run": {"p": 7, "branch_epoch": 100},
            "calls": [{"started_utc": "2030-01-01T00:00:00", "git_commit": "abc1234", "wall_s": 600.0,
                       "machine": "CPU A; load 1 1 1"},
                      {"started_utc": "2030-01-02T00:00:00", "git_commit": "def5678", "wall_s": 1200.0,
                       "machine": "CPU A; load 2 2 2"}]}
    return lr.LongRun("tiny", {"main": main, "wd0": wd0}, logs, meta, [], 100)


def test_branch_changes_known_answers():
    ch = lr.branch_changes(_tiny_run(), after=100)
    assert ch.branch_index == 1 and ch.after == 100
    np.testing.assert_array_equal(ch.core_growth["main"], [20.0, 28.0])  # (30, 40) - (10, 12)
    np.testing.assert_array_equal(ch.core_growth["wd0"], [-2.0, 8.0])  # (8, 20) - (10, 12)
    np.testing.assert_array_equal(ch.energy_drop["main"], [-20.0, -28.0])
    np.testing.assert_array_equal(ch.energy_drop["wd0"], [2.0, -8.0])
    np.testing.assert_allclose(ch.min_acc["main"], [0.3, 0.8])  # from the logs, after epoch 100
    np.testing.assert_allclose(ch.min_acc["wd0"], [0.95, 1.0])
    # without logs the checkpoints give the lowest accuracy
    np.testing.assert_allclose(lr.branch_changes(_tiny_run(with_logs=False), after=100).min_acc["main"], [0.6, 0.9])
    with pytest.raises(KeyError, match="branch epoch 100"):
        bad = _tiny_run()
        lr.branch_changes(lr.LongRun("bad", {"main": dict(bad.ckpts["main"], epoch=np.array([0.0, 50, 200, 300])),
                                             "wd0": bad.ckpts["wd0"]}, bad.logs, bad.meta, [], 100))


def test_late_means_are_the_runs_late_checkpoints():
    run = _tiny_run()
    np.testing.assert_allclose(run.late("main", "r_core", start=200), [25.0, 35.0])
    np.testing.assert_allclose(run.late("wd0", "r_core", start=100), [29 / 3, 44 / 3])
    assert run.config == {"p": 7, "branch_epoch": 100}


def test_describe_run_says_how_the_run_was_made():
    text = lr.describe_run(_tiny_run())
    lines = text.splitlines()
    assert lines[0] == "command: python make_it.py"
    assert lines[1] == "2 call(s) from 2030-01-01T00:00:00 at commit abc1234; 30 min wall on: CPU A"
    assert len(lines) == 6  # and the first and last checkpoint of each branch
    assert lines[2].startswith("WD = 1  epoch      0: test acc [0.02, 0.02], r_core [40, 44]")
    assert lines[5].startswith("WD 1→0  epoch    300: test acc [1.0, 1.0], r_core [8, 20]")
    # a writer of one call keeps it in meta itself
    one = _tiny_run()
    single = lr.LongRun("one", one.ckpts, one.logs, {"command": "c", "started_utc": "t", "git_commit": "g",
                                                      "wall_s": 120.0, "machine": "M"}, [], 100)
    assert lr.describe_run(single).splitlines()[1] == "1 call(s) from t at commit g; 2 min wall on: M"


def test_plots_draw_the_run():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = _tiny_run()
    fig = lr.plot_long_run(run)
    axes = fig.axes
    assert len(axes) == 5
    assert [a.get_ylabel() for a in axes][3] == "rotational modes (max 4)"  # p // 2 + 1
    wd1_core, wd0_core = axes[0].lines[0], axes[0].lines[1]
    np.testing.assert_allclose(wd1_core.get_xdata(), [0, 100, 200, 300])
    np.testing.assert_allclose(wd1_core.get_ydata(), [42, 11, 25, 35])  # mean over the two models
    np.testing.assert_allclose(wd0_core.get_ydata(), [11, 11.5, 14])
    assert wd1_core.get_color() == "k" and wd0_core.get_color() == "purple"
    # the SE band of WD = 1 at epoch 0: mean 42 +- std([40, 44], ddof=1) / sqrt(2) = 2
    band = axes[0].collections[0].get_paths()[0].vertices
    np.testing.assert_allclose(sorted(set(band[band[:, 0] == 0, 1].round(9))), [40.0, 44.0])
    assert any(list(ln.get_xdata()) == [100, 100] for ln in axes[2].lines)  # the branch epoch
    assert axes[4].get_ylim() == (-2.1, 1.05)
    plt.close(fig)

    fig = lr.plot_long_run_accuracy(run)
    left, right = fig.axes
    assert len(left.lines) == 2 and right.get_title() == "WD 1→0 (from epoch 100)"
    np.testing.assert_allclose(left.lines[1].get_ydata(), [0.02, 1.0, 0.8, 0.9])  # model 2, from the logs
    plt.close(fig)
    fig = lr.plot_long_run_accuracy(_tiny_run(with_logs=False))
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), [0, 100, 200, 300])  # the checkpoints
    plt.close(fig)
