"""Our analysis of the reference code's own mod-add checkpoints (github.com/joshseth/cores).

The reference code's ``modadd.py`` (paper schedule: three models, 20,000 epochs at weight
decay 1, the weight-decay-0 branch from epoch 900) writes its checkpoints as
``<ckpts>/wd1/epoch_NNNNNN.pt`` and ``<ckpts>/wd0/epoch_NNNNNN.pt``, each holding the
``model_state_dicts`` of its models. This script loads every checkpoint into this book's
:class:`~ace_utils.models.paper.PaperTransformer` (the same module under other parameter
names; the logits are checked to agree), analyses it with
:func:`ace_utils.tasks.modular.analyse_checkpoint` exactly as chapter 03 analyses its own
long run, and writes

- ``<out>/curves.npz``: ``main/ckpt/epoch`` (C,) and ``main/ckpt/{name}`` (C, 3) for
  the chapter's curve names (:data:`~ace_utils.tasks.modular.CURVE_KEYS`) and ``modes_in``
  (the rotational modes of the in-sample fit, the reference's own mode sweep), and the same
  under ``wd0/`` from the branch epoch on (the branch's first row is the weight-decay-1
  checkpoint it starts from). No ``log/`` keys: the reference code evaluates only at its
  checkpoints, so ``ckpt/test_acc`` is its accuracy curve.
- ``<out>/final_states.json``: :func:`~ace_utils.tasks.modular.redundancy_profile` of each
  model's last checkpoint in both branches, with its core's operator fits (modes both ways, R^2).
- ``<out>/meta.json``: the command, the reference commit, the machine, the times.

The reference code names its first checkpoint "epoch 0" though it is saved after one epoch
of training; the epochs here are the reference's names. Nothing of the reference code is
imported or copied: its checkpoints are read as plain state dicts.

    .venv/bin/python scripts/reference_run_analysis.py --ckpts <run>/experiments/modular_addition/ckpts \\
        --reference-commit <sha> --out results/modular_reference_code [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ace_utils.book.cache import write_bytes_atomic  # noqa: E402
from ace_utils.book.machine import git_commit, machine_info  # noqa: E402
from ace_utils.models.paper import PaperModelConfig, PaperTransformer  # noqa: E402
from ace_utils.tasks import modular as mod  # noqa: E402

P = 53
# the reference code's TwoLayerTransformer for mod-add: 2 post-LN layers, d_model 128, 4 heads, d_ff 512
CONFIG = PaperModelConfig(n_layers=2, d_model=128, n_heads=4, d_mlp=512, d_vocab=P)
# the chapter's curves and the rotational modes of the in-sample ridge-0 fit (the reference's own mode sweep)
CURVES = (*mod.CURVE_KEYS, "modes_in")
OPERATOR_KEYS = ("r_core", "modes", "modes_in", "r2_h", "r2_in")
RENAME = ((r"^token_emb\.", "embed."), (r"^pos_emb\.", "pos_embed."), (r"^layer1\.", "blocks.0.layer."),
          (r"^layer2\.", "blocks.1.layer."), (r"^lm_head\.", "unembed."))


def to_paper_state(ref_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference module's parameter names -> :class:`PaperTransformer`'s (same tensors)."""
    out = {}
    for name, value in ref_state.items():
        new = name
        for pattern, repl in RENAME:
            new = re.sub(pattern, repl, new)
        out[new] = value
    return out


def load_model(ref_state: dict[str, torch.Tensor]) -> PaperTransformer:
    model = PaperTransformer(CONFIG)
    model.load_state_dict(to_paper_state(ref_state), strict=True)
    return model.eval()


def reference_logits(ref_state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The reference forward, written out from its published definition (token + position
    embedding, two ``nn.TransformerEncoderLayer`` under an additive -inf causal mask, linear
    readout), to check that the renamed state gives the same logits in our module."""
    emb = torch.nn.Embedding(P, 128)
    pos = torch.nn.Embedding(64, 128)
    layers = [torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, batch_first=True) for _ in range(2)]
    head = torch.nn.Linear(128, P)
    emb.weight.data = ref_state["token_emb.weight"]
    pos.weight.data = ref_state["pos_emb.weight"]
    for i, layer in enumerate(layers):
        layer.load_state_dict({k[len(f"layer{i + 1}."):]: v for k, v in ref_state.items()
                               if k.startswith(f"layer{i + 1}.")})
        layer.eval()
    head.load_state_dict({"weight": ref_state["lm_head.weight"], "bias": ref_state["lm_head.bias"]})
    T = x.shape[1]
    causal = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    with torch.no_grad():
        h = emb(x) + pos(torch.arange(T).unsqueeze(0))
        for layer in layers:
            h = layer(h, src_mask=causal)
        return head(h)


def checkpoints(folder: Path) -> dict[int, Path]:
    found = {}
    for path in folder.glob("epoch_*.pt"):
        m = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
        if m:
            found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def analyse_file(path: str) -> list[dict]:
    """Every model of one checkpoint file analysed (one process, one thread)."""
    torch.set_num_threads(1)
    data = mod.make_data(P, 0.5, 42)
    states = torch.load(path, map_location="cpu", weights_only=False)["model_state_dicts"]
    rows = []
    for ref_state in states:
        a = mod.analyse_checkpoint(load_model(ref_state), data)
        rows.append({k: a[k] for k in CURVES})
    return rows


def final_profile(path: str) -> list[dict]:
    torch.set_num_threads(1)
    data = mod.make_data(P, 0.5, 42)
    states = torch.load(path, map_location="cpu", weights_only=False)["model_state_dicts"]
    out = []
    for s in states:
        model = load_model(s)
        a = mod.analyse_checkpoint(model, data)
        out.append({**mod.redundancy_profile(model, data), **{k: a[k] for k in OPERATOR_KEYS}})
    return out


def check_equivalence(path: Path) -> float:
    """Largest |logit difference| between the reference forward and our module on the test pairs."""
    data = mod.make_data(P, 0.5, 42)
    worst = 0.0
    for ref_state in torch.load(path, map_location="cpu", weights_only=False)["model_state_dicts"]:
        ours = load_model(ref_state)
        with torch.no_grad():
            mine = ours(data.test_x)
        worst = max(worst, float((mine - reference_logits(ref_state, data.test_x)).abs().max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpts", type=Path, required=True, help="the reference run's ckpts folder (wd1/, wd0/)")
    ap.add_argument("--reference-commit", required=True, help="the reference code's commit that made the checkpoints")
    ap.add_argument("--branch-epoch", type=int, default=900)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "modular_reference_code")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--train-note", default="", help="how the checkpoints were made (command, machine, times)")
    args = ap.parse_args(argv)

    wd1, wd0 = checkpoints(args.ckpts / "wd1"), checkpoints(args.ckpts / "wd0")
    if args.branch_epoch not in wd1:
        raise SystemExit(f"no weight-decay-1 checkpoint at the branch epoch {args.branch_epoch} in {args.ckpts / 'wd1'}")
    gap = check_equivalence(next(iter(wd1.values())))
    if gap > 1e-4:
        raise SystemExit(f"our module's logits differ from the reference forward by {gap:.2e}: mapping broken")
    branches = {"main": wd1, "wd0": {args.branch_epoch: wd1[args.branch_epoch],
                                     **{e: p for e, p in wd0.items() if e > args.branch_epoch}}}
    t0, cpu0 = time.time(), time.process_time()
    record: dict[str, np.ndarray] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, files in branches.items():
            rows = list(pool.map(analyse_file, [str(p) for p in files.values()]))
            record[f"{name}/ckpt/epoch"] = np.array(list(files), dtype=float)
            for key in CURVES:
                record[f"{name}/ckpt/{key}"] = np.array([[r[key] for r in row] for row in rows], dtype=float)
            print(f"{name}: {len(files)} checkpoints analysed, {time.time() - t0:.0f} s", flush=True)
        finals = dict(zip(branches, pool.map(final_profile, [str(list(f.values())[-1]) for f in branches.values()])))
    args.out.mkdir(parents=True, exist_ok=True)
    mod.save_curves(args.out / "curves.npz", record)
    final_states = {
        "command": "python scripts/reference_run_analysis.py (redundancy_profile of each branch's last checkpoint)",
        "epoch": {b: int(list(f)[-1]) for b, f in branches.items()},
        "models": [{"model": f"reference M{i}", **{b: finals[b][i] for b in branches}}
                   for i in range(len(finals["main"]))],
    }
    write_bytes_atomic(args.out / "final_states.json", (json.dumps(final_states, indent=1) + "\n").encode())
    meta = {
        "what": "the reference code's paper schedule (its modadd.py: 3 models, seed_all(1031), 20,000 epochs at "
                "weight decay 1, the weight-decay-0 branch from epoch 900), trained outside this repository, "
                "analysed by this book's analyse_checkpoint",
        "reference_code": "github.com/joshseth/cores",
        "reference_commit": args.reference_commit,
        "training": args.train_note,
        "analysis_command": "python scripts/reference_run_analysis.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "analysis_git_commit": git_commit(),
        "analysis_machine": machine_info(),
        "analysis_wall_s": round(time.time() - t0, 1),
        "analysis_cpu_s": round(time.process_time() - cpu0
                                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, 1),
        "logit_gap_reference_vs_ours": gap,
        "branch_epoch": args.branch_epoch,
        "checkpoints": {b: len(f) for b, f in branches.items()},
        "analysed_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_bytes_atomic(args.out / "meta.json", (json.dumps(meta, indent=1) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
