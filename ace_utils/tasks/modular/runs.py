"""The run entry points: a run's main stage and weight-decay branch trained and analysed at
every checkpoint (cached), every model in its own process, and long runs trained in resumable
segments whose state lives in a file."""

from __future__ import annotations

import io
import time
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from ace_utils.book.cache import cached
from ace_utils.book.processes import map_in_processes
from ace_utils.models.device import as_device, batched_default, cache_tag, to_device
from ace_utils.tasks.modular.analysis import analyse_checkpoint
from ace_utils.tasks.modular.config import GrokRun, single_runs
from ace_utils.tasks.modular.data import ModData, make_data
from ace_utils.tasks.modular.stacked_models import init_stacked, to_models
from ace_utils.tasks.modular.training import train_stacked

__all__ = [
    "CACHE_VERSION",
    "resumable_path",
    "run_branch",
    "run_experiment",
    "run_experiment_resumable",
    "run_main",
    "run_models",
    "run_models_resumable",
]

CACHE_VERSION = 3


def _analyse_stacked(bridges: list, params: dict[str, Tensor], data: ModData) -> list[dict]:
    """Load model i's slice of the stacked ``params`` into ``bridges[i]`` and analyse each."""
    for i, model in enumerate(bridges):
        state = model.state_dict()
        state.update({k: v[i].detach().clone() for k, v in params.items()})
        model.load_state_dict(state, strict=True)
    return [analyse_checkpoint(m, data) for m in bridges]


def _stack_analyses(rows: list[list[dict]]) -> dict[str, np.ndarray]:
    """Per-checkpoint lists (one dict per model) -> arrays (n_ckpt, M, ...)."""
    out: dict[str, np.ndarray] = {}
    for key in rows[0][0]:
        if key == "eigenvalues":
            # ragged (k varies): pad with nan to the largest k
            kmax = max(len(d[key]) for row in rows for d in row)
            arr = np.full((len(rows), len(rows[0]), max(kmax, 1)), np.nan + 0j)
            for i, row in enumerate(rows):
                for j, d in enumerate(row):
                    arr[i, j, : len(d[key])] = d[key]
            out[key] = arr
        else:
            out[key] = np.array([[d[key] for d in row] for row in rows], dtype=float)
    return out


def _run_branch(run: GrokRun, data: ModData, params: dict[str, Tensor], start: int, end: int, weight_decay: float,
                stream: int, progress: bool, batched: bool = False) -> dict:
    bridges = to_models(params, run, params["embed.weight"].device)
    rows: list[list[dict]] = []
    epochs: list[int] = []

    def on_ckpt(epoch: int, p: dict[str, Tensor]) -> None:
        rows.append(_analyse_stacked(bridges, p, data))
        epochs.append(epoch)

    log = train_stacked(run, data, params, start_epoch=start, end_epoch=end, weight_decay=weight_decay,
                        on_checkpoint=on_ckpt, stream=stream, progress=progress, batched=batched)
    return {"log": log, "ckpt_epoch": np.array(epochs, dtype=float), "ckpt": _stack_analyses(rows)}


def _program(device: str | torch.device, batched: bool | None) -> tuple[torch.device, bool, dict]:
    """(device, batched, what the cache keys add): nothing for the CPU program the committed
    results use, the device kind and ``"program": "batched"`` otherwise."""
    device = as_device(device)
    batched = batched_default(device) if batched is None else batched
    return device, batched, {**cache_tag(device), **({"program": "batched"} if batched else {})}


def _on_host(params: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    """Detached CPU copies of stacked parameters (what the cache stores and the chapters read)."""
    return None if params is None else {k: v.detach().cpu().clone() for k, v in params.items()}


def _branch_run(run: GrokRun) -> GrokRun:
    """``run`` with the branch point added to its checkpoints (its parameters are kept there)."""
    ck = set(run.checkpoint_epochs) | ({run.branch_epoch} if run.branch_epoch > 0 else set())
    return replace(run, checkpoint_epochs=tuple(sorted(ck)))


def run_main(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
             batched: bool | None = None) -> dict:
    """Train the main run of ``run`` (cached) and analyse its checkpoints, on ``device``
    (``batched``: :func:`train_stacked`'s; parameters come back on the CPU).

    Returns ``{"main": branch record, "final_params", "branch_params" (the parameters at
    ``run.branch_epoch``, or None), "train_cpu_s"}``; a branch record is ``{"log":
    train_stacked's log, "ckpt_epoch": (C,), "ckpt": {name: (C, M, ...)}}`` with the keys of
    :func:`analyse_checkpoint`. Cached under ``modular`` keyed by ``run``, the torch version and
    (off the CPU program) the device kind and program.
    """
    device, batched, tag = _program(device, batched)
    key = {"task": "modular-main", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}

    def build() -> dict:
        torch.manual_seed(run.seed)
        t_cpu = time.process_time()
        data = make_data(run.p, run.train_frac, run.split_seed).to(device)
        params = init_stacked(run, device=device)
        keep_epoch = run.branch_epoch if run.branch_epoch > 0 else None
        bridges = to_models(params, run, device)
        rows: list[list[dict]] = []
        epochs: list[int] = []
        saved: dict[str, dict] = {}

        def on_ckpt(epoch: int, p: dict[str, Tensor]) -> None:
            if epoch == keep_epoch:
                saved["branch"] = {k: v.detach().clone() for k, v in p.items()}
            if epoch in run.checkpoint_epochs:
                rows.append(_analyse_stacked(bridges, p, data))
                epochs.append(epoch)

        log = train_stacked(_branch_run(run), data, params, start_epoch=0, end_epoch=run.epochs,
                            weight_decay=run.weight_decay, on_checkpoint=on_ckpt, progress=progress, batched=batched)
        return {
            "main": {"log": log, "ckpt_epoch": np.array(epochs, dtype=float), "ckpt": _stack_analyses(rows)},
            "final_params": _on_host(params),
            "branch_params": _on_host(saved.get("branch")),
            "train_cpu_s": time.process_time() - t_cpu,
        }

    return cached(key, build, name="modular", refresh=refresh)


def run_branch(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
               batched: bool | None = None) -> dict | None:
    """The weight-decay branch of ``run`` (cached; None if ``run.branch_epoch`` is 0), on
    ``device`` (the main run's, cached under the same device and program).

    Continues the main run's parameters at ``run.branch_epoch`` (:func:`run_main`, cached)
    with ``run.branch_weight_decay`` and a fresh AdamW to ``run.epochs``; its checkpoints
    are those of the main run from the branch point on. Returns ``{"branch": branch
    record, "train_cpu_s"}``.
    """
    if run.branch_epoch <= 0:
        return None
    device, batched, tag = _program(device, batched)
    key = {"task": "modular-branch", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}

    def build() -> dict:
        start = run_main(run, progress=progress, device=device, batched=batched)["branch_params"]
        t_cpu = time.process_time()
        data = make_data(run.p, run.train_frac, run.split_seed).to(device)
        params = {k: to_device(v.clone(), device) for k, v in start.items()}
        branch_run = replace(run, checkpoint_epochs=tuple(e for e in run.checkpoint_epochs if e >= run.branch_epoch))
        branch = _run_branch(branch_run, data, params, run.branch_epoch, run.epochs, run.branch_weight_decay, 1, progress,
                             batched)
        return {"branch": branch, "train_cpu_s": time.process_time() - t_cpu}

    return cached(key, build, name="modular", refresh=refresh)


def run_experiment(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
                   batched: bool | None = None) -> dict:
    """Both parts of ``run`` trained as one stack of ``run.n_models`` models: :func:`run_main`
    and :func:`run_branch` merged into ``{"main", "branch" (or None), "final_params",
    "branch_params", "train_cpu_s"}``."""
    main = run_main(run, progress=progress, refresh=refresh, device=device, batched=batched)
    branch = run_branch(run, progress=progress, refresh=refresh, device=device, batched=batched)
    return {**main, "branch": branch["branch"] if branch else None,
            "train_cpu_s": main["train_cpu_s"] + (branch["train_cpu_s"] if branch else 0.0)}


def _concat_logs(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Segment logs of :func:`train_stacked` -> one log (cumulative times continued)."""
    out: dict[str, np.ndarray] = {}
    for k in parts[0]:
        if k in ("wall_s", "cpu_s"):
            out[k] = float(sum(p[k] for p in parts))
        elif k in ("train_wall_s", "train_cpu_s"):
            offsets = np.cumsum([0.0] + [p[k][-1] if len(p[k]) else 0.0 for p in parts[:-1]])
            out[k] = np.concatenate([p[k] + o for p, o in zip(parts, offsets)])
        else:
            out[k] = np.concatenate([p[k] for p in parts])
    return out


def run_experiment_resumable(
    run: GrokRun, path, *, segment_epochs: int = 500, max_segments: int | None = None, stop_after_main: bool = False,
    progress: bool = False, device: str | torch.device = "cpu", batched: bool | None = None,
) -> dict | None:
    """:func:`run_experiment` (main run and weight-decay branch), trained in segments of
    ``segment_epochs`` with the whole state written to ``path`` (a ``.pt`` file) after each.

    A call finds the file and continues from its last segment, so a long run (the paper
    preset: 20,000 epochs) survives interruptions: rerun the same command. Optimizer
    moments, dropout RNG states, logs and checkpoint analyses are carried across segments,
    so the result equals one uninterrupted run's (a test checks this). ``max_segments``
    stops after that many segments in this call and returns None (the run is unfinished);
    otherwise returns the dict of :func:`run_experiment` (``train_cpu_s`` summed over
    calls). With ``stop_after_main`` the call stops once the main run is finished and returns
    its result with ``"branch": None`` (a later call trains the branch). ``segment_epochs``
    must be a multiple of ``run.eval_every``. Trains on ``device`` (``batched``: as
    :func:`train_stacked`); the state file names them, so a run is continued only with the
    program and device kind it started on.
    """
    from pathlib import Path

    from ace_utils.book.cache import write_bytes_atomic
    if segment_epochs < 1 or segment_epochs % run.eval_every:
        raise ValueError(f"segment_epochs must be a positive multiple of eval_every = {run.eval_every}")
    path = Path(path)
    device, batched, tag = _program(device, batched)
    key = {"version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}
    if path.exists():
        saved = torch.load(path, weights_only=False, map_location="cpu")
        if saved["key"] != key:
            raise ValueError(f"{path} holds another run ({saved['key']['run']}); remove it or choose another path")
        saved["params"] = {k: to_device(v, device) for k, v in saved["params"].items()}
    else:
        saved = {"key": key, "stage": "main", "epoch": 0, "params": init_stacked(run, device=device), "state": {},
                 "logs": {"main": [], "branch": []}, "rows": {"main": [], "branch": []},
                 "ckpt_epoch": {"main": [], "branch": []}, "branch_params": None, "cpu_s": 0.0}
    data = make_data(run.p, run.train_frac, run.split_seed).to(device)
    models = to_models(saved["params"], run, device)
    done = 0
    while (saved["stage"] != "done" and (max_segments is None or done < max_segments)
           and not (stop_after_main and saved["stage"] != "main")):
        stage, start = saved["stage"], saved["epoch"]
        end = min(run.epochs, (start // segment_epochs + 1) * segment_epochs)
        main = stage == "main"
        seg_run = _branch_run(run) if main else replace(
            run, checkpoint_epochs=tuple(e for e in run.checkpoint_epochs if e >= run.branch_epoch))

        def on_ckpt(epoch: int, p: dict[str, Tensor], stage: str = stage) -> None:
            if stage == "main" and epoch == run.branch_epoch:
                saved["branch_params"] = _on_host(p)
            if epoch in run.checkpoint_epochs:
                saved["rows"][stage].append(_analyse_stacked(models, p, data))
                saved["ckpt_epoch"][stage].append(epoch)

        c0 = time.process_time()
        log = train_stacked(seg_run, data, saved["params"], start_epoch=start, end_epoch=end,
                            weight_decay=run.weight_decay if main else run.branch_weight_decay, on_checkpoint=on_ckpt,
                            stream=0 if main else 1, progress=progress, state=saved["state"], batched=batched)
        saved["cpu_s"] += time.process_time() - c0
        saved["logs"][stage].append(log)
        saved["epoch"] = end
        if end == run.epochs:
            saved["final_params" if main else "branch_final"] = _on_host(saved["params"])
            if main and run.branch_epoch > 0:  # the branch: from the kept parameters, a fresh AdamW
                saved.update(stage="branch", epoch=run.branch_epoch, state={},
                             params={k: to_device(v.clone(), device) for k, v in saved["branch_params"].items()})
            else:
                saved["stage"] = "done"
        buf = io.BytesIO()
        torch.save(saved, buf)
        write_bytes_atomic(path, buf.getvalue())
        done += 1
    if saved["stage"] == "main" or (saved["stage"] == "branch" and not stop_after_main):
        return None

    def record(stage: str) -> dict:
        return {"log": _concat_logs(saved["logs"][stage]), "ckpt_epoch": np.array(saved["ckpt_epoch"][stage], dtype=float),
                "ckpt": _stack_analyses(saved["rows"][stage])}

    with_branch = saved["stage"] == "done" and run.branch_epoch > 0
    return {"main": record("main"), "branch": record("branch") if with_branch else None,
            "final_params": saved["final_params"], "branch_params": saved["branch_params"], "train_cpu_s": saved["cpu_s"]}


def _stage_in_worker(stage: str, run: GrokRun, device: str = "cpu") -> dict | None:
    torch.set_num_threads(1)
    return run_main(run, device=device, batched=False) if stage == "main" else run_branch(run, device=device, batched=False)


def _merge_records(records: list[dict]) -> dict:
    """One-model branch records -> one record with models on axis 1 (wall: the longest, CPU: summed)."""
    log = {}
    for k, v in records[0]["log"].items():
        vals = [r["log"][k] for r in records]
        if k == "epoch":
            log[k] = vals[0]
        elif k in ("train_cpu_s", "cpu_s"):
            log[k] = np.sum(vals, axis=0)
        elif k in ("train_wall_s", "wall_s"):
            log[k] = np.max(vals, axis=0)
        else:
            log[k] = np.concatenate(vals, axis=1)
    ckpt = {}
    for k in records[0]["ckpt"]:
        arrs = [r["ckpt"][k] for r in records]
        if k == "eigenvalues":  # ragged: pad to the widest
            width = max(a.shape[-1] for a in arrs)
            arrs = [np.concatenate([a, np.full(a.shape[:-1] + (width - a.shape[-1],), np.nan + 0j)], -1) for a in arrs]
        ckpt[k] = np.concatenate(arrs, axis=1)
    return {"log": log, "ckpt_epoch": records[0]["ckpt_epoch"], "ckpt": ckpt}


def _cat_params(outs: list[dict], key: str) -> dict[str, Tensor] | None:
    """One-model runs' stacked parameters ``outs[i][key]`` -> one stack (None if absent)."""
    return None if outs[0][key] is None else {n: torch.cat([o[key][n] for o in outs]) for n in outs[0][key]}


def run_models(run: GrokRun, stage: str, *, workers: int = 2, device: str | torch.device = "cpu",
               batched: bool | None = None) -> dict | None:
    """One stage (``"main"`` or ``"branch"``) of ``run`` with every model trained on its own,
    ``workers`` models at a time in fresh processes with one torch thread each (cached per
    model). A model's numbers do not depend on ``workers`` or on the other models.

    On ``device`` with ``batched`` (default: off the CPU) the models train instead as one
    batched stack in this process (:func:`run_main`, :func:`run_branch`); off the CPU without
    it, one after another in this process.

    ``"main"`` returns :func:`run_main`'s keys, ``"branch"`` :func:`run_branch`'s (None
    without a branch), with the models stacked on the model axis.
    """
    if stage not in ("main", "branch"):
        raise ValueError(f"stage must be 'main' or 'branch', got {stage!r}")
    if stage == "branch" and run.branch_epoch <= 0:
        return None
    device, batched, _ = _program(device, batched)
    if batched:
        stage_fn = run_main if stage == "main" else run_branch
        return stage_fn(run, device=device, batched=True)
    runs = single_runs(run)
    workers = workers if device.type == "cpu" else 1
    outs = map_in_processes(_stage_in_worker, ([stage] * len(runs), runs, [str(device)] * len(runs)), workers)
    merged: dict = {"train_cpu_s": float(sum(o["train_cpu_s"] for o in outs))}
    merged[stage] = _merge_records([o[stage] for o in outs])
    if stage == "main":
        for k in ("final_params", "branch_params"):
            merged[k] = _cat_params(outs, k)
    return merged


def _resumable_in_worker(run: GrokRun, path: str, segment_epochs: int, max_segments: int | None,
                         stop_after_main: bool, device: str = "cpu") -> dict | None:
    torch.set_num_threads(1)
    return run_experiment_resumable(run, path, segment_epochs=segment_epochs, max_segments=max_segments,
                                    stop_after_main=stop_after_main, device=device, batched=False)


def resumable_path(run: GrokRun, device: str | torch.device = "cpu", batched: bool | None = None):
    """Where :func:`run_models_resumable` keeps the state of ``run`` (a one-model run, or the
    whole stack of the batched program on ``device``): in the ace-book cache, named by the
    run's configuration (and, off the CPU program, the device kind and program)."""
    from ace_utils.book.cache import cache_dir, config_key
    _, _, tag = _program(device, batched)
    key = {"task": "modular-resumable", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(),
           **tag}
    return cache_dir() / "modular" / f"resumable-{config_key(key)[:24]}.pt"


def run_models_resumable(
    run: GrokRun, *, workers: int = 2, segment_epochs: int = 500, max_segments: int | None = None,
    stop_after_main: bool = False, device: str | torch.device = "cpu", batched: bool | None = None,
) -> dict | None:
    """The main run and the weight-decay branch of ``run``, every model on its own (as
    :func:`run_models`, ``workers`` processes with one torch thread each), each model a
    resumable run (:func:`run_experiment_resumable`) whose state lives in the cache
    (:func:`resumable_path`).

    With ``max_segments`` each model trains at most that many segments of ``segment_epochs``
    in this call, and the call returns None while any model is unfinished: a chapter can
    spread a long training over several cells, each continuing where the last stopped.
    ``stop_after_main`` returns as soon as the main runs are finished (``"branch": None``).
    A finished run is read from its state file. Returns the keys of
    :func:`run_experiment` with the models stacked on the model axis; the numbers equal
    :func:`run_models`'s. On ``device`` with ``batched`` (default: off the CPU) the models are
    one resumable batched stack trained in this process.
    """
    device, batched, _ = _program(device, batched)
    if batched:
        path = resumable_path(run, device, True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return run_experiment_resumable(run, path, segment_epochs=segment_epochs, max_segments=max_segments,
                                        stop_after_main=stop_after_main, device=device, batched=True)
    runs = single_runs(run)
    paths = [resumable_path(r, device, False) for r in runs]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    n = len(runs)
    workers = workers if device.type == "cpu" else 1
    outs = map_in_processes(_resumable_in_worker, (runs, [str(pth) for pth in paths], [segment_epochs] * n,
                                                    [max_segments] * n, [stop_after_main] * n, [str(device)] * n),
                            workers)
    if any(o is None for o in outs):
        return None
    merged: dict = {"train_cpu_s": float(sum(o["train_cpu_s"] for o in outs)),
                    "main": _merge_records([o["main"] for o in outs]),
                    "branch": None if any(o["branch"] is None for o in outs) else _merge_records([o["branch"] for o in outs])}
    for k in ("final_params", "branch_params"):
        merged[k] = _cat_params(outs, k)
    return merged
