"""The final models of chapter 03's long run, both branches: where each model's necessary
dimension sits relative to its activation energy and how large its weights have grown
(:func:`ace_utils.tasks.modular.redundancy_profile`), and the rotational modes of its final core
counted both ways (``modes``, ``modes_in``: :func:`ace_utils.tasks.modular.analyse_checkpoint`). Reads the finished resumable states
that ``scripts/modular_paper_run.py --jobs N`` left in the ace-book cache (so it runs where
the long run ran) and writes ``<out>/final_states.json``, one entry per model and branch,
with the machine and commit. ``tests/test_modular_paper.py`` checks that its dimensions
equal the last checkpoint of ``<out>/curves.npz``.

    ACE_BOOK_CACHE=<the long run's cache> .venv/bin/python scripts/long_run_final_states.py \\
        [--out results/modular_paper_models]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ace_utils  # noqa: E402,F401  (sets the thread env before torch starts)
import torch  # noqa: E402

from ace_utils.book.cache import write_bytes_atomic  # noqa: E402
from ace_utils.book.machine import git_commit, machine_info  # noqa: E402
from ace_utils.tasks import modular as mod  # noqa: E402

BRANCHES = {"main": "final_params", "wd0": "branch_final"}  # curves-record branch name -> state key
# the operator fits of analyse_checkpoint on the final core: rotational modes both ways (ridge 1 with
# held-out classes, and the in-sample ridge-0 fit of the reference code's mode sweep) and their R^2
OPERATOR_KEYS = ("r_core", "modes", "modes_in", "r2_h", "r2_in")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/modular_paper_models")
    args = ap.parse_args(argv)
    out = ROOT / args.out
    meta = json.loads((out / "meta.json").read_text())
    if not meta.get("models_as_tasks"):
        raise SystemExit(f"{out}: the run was not trained as one task per model (--jobs > 1); its states are elsewhere")
    try:
        run = mod.preset_run_from_record(meta["run"], "paper")
    except ValueError as err:
        raise SystemExit(f"{out}/meta.json: {err}") from None
    data = mod.make_data(run.p, run.train_frac, run.split_seed)
    torch.set_num_threads(1)
    models = []
    for single in mod.single_runs(run):
        path = mod.resumable_path(single)
        if not path.exists():
            raise SystemExit(f"no state for model seed {single.seed} at {path}: set ACE_BOOK_CACHE to the long run's cache")
        state = torch.load(path, weights_only=False)
        if state["stage"] != "done":
            raise SystemExit(f"model seed {single.seed} is unfinished ({state['stage']} epoch {state['epoch']})")
        entry = {"model_seed": single.seed}
        for branch, key in BRANCHES.items():
            model = mod.to_models(state[key], single)[0]
            profile = mod.redundancy_profile(model, data)
            a = mod.analyse_checkpoint(model, data)
            profile.update({k: a[k] for k in OPERATOR_KEYS})
            entry[branch] = {k: round(v, 6) if isinstance(v, float) else v for k, v in profile.items()}
        models.append(entry)
        print(json.dumps(entry))
    record = {
        "command": " ".join(["python scripts/long_run_final_states.py", *(argv if argv is not None else sys.argv[1:])]),
        "made_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(ROOT),
        "machine": machine_info(),
        "epoch": run.epochs,
        "models": models,
    }
    write_bytes_atomic(out / "final_states.json", (json.dumps(record, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
