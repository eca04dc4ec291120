"""The committed 'paper'-preset curves of chapter 03 (results/modular_paper/) are real: the
first 200 epochs of the same run, retrained here, match the file exactly."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ace_utils.tasks import modular as mod

RESULTS = Path(__file__).resolve().parents[1] / "results" / "modular_paper"
PREFIX_EPOCHS = 200


def test_committed_curves_cover_the_paper_schedule():
    rec = mod.load_curves(RESULTS / "curves.npz")
    meta = json.loads((RESULTS / "meta.json").read_text())
    run = mod.preset_run("paper", seed=meta["run"]["seed"], n_models=meta["run"]["n_models"])
    assert meta["run"] == json.loads(json.dumps(asdict(run)))  # the file is the preset's run
    assert rec["main/log/epoch"][-1] == run.epochs == 20_000
    assert rec["wd0/ckpt/epoch"][0] == run.branch_epoch == 900
    assert rec["main/ckpt/epoch"].tolist() == list(run.checkpoint_epochs)


def test_first_epochs_of_the_committed_run_reproduce_exactly():
    rec = mod.load_curves(RESULTS / "curves.npz")
    meta = json.loads((RESULTS / "meta.json").read_text())
    run = mod.preset_run("paper", seed=meta["run"]["seed"], n_models=meta["run"]["n_models"])
    short = replace(run, epochs=PREFIX_EPOCHS, branch_epoch=0,
                    checkpoint_epochs=tuple(e for e in run.checkpoint_epochs if e <= PREFIX_EPOCHS))
    # same thread count as the recorded run: float64 reductions in the analyses (ACE's eigh,
    # the operator fit) are bitwise reproducible only at a fixed thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(meta["torch_threads"])
    try:
        again = mod.curves_record(mod.run_experiment(short, progress=False, refresh=True))
    finally:
        torch.set_num_threads(threads)
    n_log = len(again["main/log/epoch"])
    n_ck = len(again["main/ckpt/epoch"])
    assert n_log == PREFIX_EPOCHS // run.eval_every + 1 and n_ck == 3
    for key, value in again.items():
        part = "log" if "/log/" in key else "ckpt"
        committed = rec[key][: n_log if part == "log" else n_ck]
        np.testing.assert_array_equal(value, committed, err_msg=key)
