"""The agreement language models: their run configuration (:class:`AgreementRun`, the cache
key), training with the compact vocabulary (resumable), expansion to GPT-2's full vocabulary and
export, the cache of trained models, and loading a trained or a hub model."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ace_utils.book.cache import cache_dir, cached, config_key
from ace_utils.book.processes import map_in_processes
from ace_utils.models import GPT2_EOS_ID, load_gpt2_tokenizer, load_pretrained
from ace_utils.models.device import as_device, cache_tag, forked_rng, get_rng_state, set_rng_state, to_device
from ace_utils.models.training import Event, run_loop
from ace_utils.tasks import agreement_corpus as ac
from ace_utils.tasks.agreement.prompts import verb_token_ids

__all__ = ["CACHE_VERSION", "AgreementRun", "TrainedModel", "expand_to_full_vocab", "export_trained_model",
           "load_agreement_model", "partial_state_path", "train_agreement_model", "train_models"]

CACHE_VERSION = 1


@dataclass(frozen=True)
class AgreementRun:
    """Everything that defines one trained agreement LM (the cache key).

    GPT-2 architecture: ``n_layers`` blocks of width ``d_model``, ``n_heads`` heads,
    MLP 4 x d_model, context ``n_ctx``. Trained on ``n_sentences`` corpus sentences
    (seed ``data_seed``, training pairs of :func:`split_pairs(data_seed)`) for ``steps``
    AdamW steps of ``batch_size`` sentences, peak ``lr`` with linear warm-up (5%) and
    cosine decay, weight decay ``weight_decay``, dropout ``dropout``.
    """

    n_layers: int
    d_model: int
    n_heads: int = 4
    n_ctx: int = 64
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    dropout: float = 0.0
    n_sentences: int = 20000
    data_seed: int = 0
    seed: int = 0
    version: int = CACHE_VERSION


@dataclass
class TrainedModel:
    """A trained compact model: config, compact->GPT-2 id map, state dict, loss curve."""

    run: AgreementRun
    used_ids: list[int]
    state_dict: dict[str, Tensor]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _gpt2_config(run: AgreementRun, vocab_size: int):
    from transformers import GPT2Config

    special = GPT2_EOS_ID if vocab_size > GPT2_EOS_ID else None  # the compact model has no id 50256
    cfg = GPT2Config(
        vocab_size=vocab_size, n_positions=run.n_ctx, n_embd=run.d_model, n_layer=run.n_layers,
        n_head=run.n_heads, resid_pdrop=run.dropout, embd_pdrop=run.dropout, attn_pdrop=run.dropout,
        bos_token_id=special, eos_token_id=special, pad_token_id=special,
    )
    cfg._attn_implementation = "eager"
    return cfg


def _corpus_ids(run: AgreementRun, tokenizer: Any) -> list[list[int]]:
    train_pairs, test_pairs = ac.split_pairs(run.data_seed)
    sentences = ac.make_corpus(run.n_sentences, train_pairs, seed=run.data_seed)
    return [ids + [GPT2_EOS_ID] for ids in tokenizer(sentences)["input_ids"]]


def train_agreement_model(run: AgreementRun, *, progress: bool = False,
                          state_path: str | os.PathLike[str] | None = None,
                          max_steps: int | None = None, device: str | torch.device = "cpu") -> TrainedModel | None:
    """Train one small GPT-2 LM on the corpus with the compact softmax (uncached).

    Each row is one sentence followed by EOS, right-padded; the loss is next-token cross
    entropy over the real tokens and the first EOS. The compact vocabulary holds the ids of
    the corpus, of all test prompts and of the four verbs, plus one "other" class.

    Resumable: with ``state_path`` training continues from the state saved there (model,
    optimizer, schedule, batch and dropout generators, losses), if any; with ``max_steps``
    it stops after that many steps of this call, saves the state to ``state_path`` and
    returns None while the run is unfinished. A finished run deletes its state file. The
    result equals one uninterrupted call's, bit for bit (``test_agreement`` checks this).

    Trains on ``device``: the initial weights and batch draws are the CPU's, each batch goes
    there without blocking, dropout draws from that device's RNG, and the losses stay there
    until the call ends (no step waits for the device). The state comes back on the CPU.
    """
    import time

    from transformers import GPT2LMHeadModel

    t0 = time.perf_counter()
    tok = load_gpt2_tokenizer()
    rows = _corpus_ids(run, tok)
    _, test_pairs = ac.split_pairs(run.data_seed)
    extra = [i for p in ac.make_prompts(600, test_pairs, seed=run.data_seed) for i in tok.encode(p.text)]
    extra += list(verb_token_ids(tok).values())
    used = sorted({i for r in rows for i in r} | set(extra) | {GPT2_EOS_ID})
    remap = torch.full((len(tok),), -1, dtype=torch.long)
    remap[torch.tensor(used)] = torch.arange(len(used))
    other = len(used)
    offset = math.log(len(tok) - len(used))

    longest = max(len(r) for r in rows)
    data = torch.full((len(rows), longest), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        data[i, : len(r)] = remap[torch.tensor(r)]
    lengths = torch.tensor([len(r) for r in rows])

    device = as_device(device)
    saved = (torch.load(state_path, weights_only=True, map_location="cpu")
             if state_path is not None and Path(state_path).exists() else None)
    with forked_rng(device):
        torch.manual_seed(run.seed)
        model = GPT2LMHeadModel(_gpt2_config(run, len(used) + 1)).to(device)
        gen = torch.Generator().manual_seed(run.seed + 1)
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "wpe" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "wpe" not in n)]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": run.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=run.lr, betas=(0.9, 0.98),
        )
        warm = max(1, run.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / run.steps)))
        )
        losses: list[float] = []
        start, seconds = 0, 0.0
        if saved is not None:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["schedule"])
            gen.set_state(saved["batch_rng"])
            torch.set_rng_state(saved["torch_rng"])
            if "device_rng" in saved:
                set_rng_state(saved["device_rng"], device)
            losses, start, seconds = list(saved["losses"]), int(saved["step"]), float(saved["seconds"])
        stop = run.steps if max_steps is None else min(run.steps, start + max_steps)
        model.train()

        def update(t: int) -> None:  # optimizer step t (1-based)
            idx = torch.randint(0, len(rows), (run.batch_size,), generator=gen)
            T = int(lengths[idx].max())
            batch = to_device(data[idx, :T], device)
            inp = batch.clamp_min(0)
            out = model(input_ids=inp[:, :-1])
            logits = out.logits
            logits = torch.cat([logits[..., :other], logits[..., other:] + offset], dim=-1)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                                     ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.detach())  # read by the host when the call ends

        report = Event(lambda t: print(f"step {t - 1}: loss {float(losses[-1]):.4f}"), when=lambda t: t % 100 == 1)
        run_loop(update, start=start, stop=stop, events=[report] if progress else [])
        losses = [float(x) for x in losses]
        seconds += time.perf_counter() - t0
        if stop < run.steps:
            if state_path is None:
                raise ValueError("max_steps short of run.steps needs a state_path to save the unfinished run to")
            Path(state_path).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{state_path}.tmp")
            device_rng = {} if device.type == "cpu" else {"device_rng": get_rng_state(device)}
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
                        "batch_rng": gen.get_state(), "torch_rng": torch.get_rng_state(), "losses": losses,
                        "step": stop, "seconds": seconds, **device_rng}, tmp)
            os.replace(tmp, state_path)
            return None
    if state_path is not None:
        Path(state_path).unlink(missing_ok=True)
    model.eval()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainedModel(run, used, state, losses, seconds)


def expand_to_full_vocab(tm: TrainedModel, vocab_size: int = 50257):
    """The exact full-vocabulary ``GPT2LMHeadModel`` of a compact model (eval mode).

    Rows of the tied embedding for used ids are the compact rows; every unused id gets the
    "other" row, so ``n_unused`` equal logits reproduce the compact "other" logit plus
    ``log(n_unused)``: the full softmax equals the compact one on the used ids.
    """
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(_gpt2_config(tm.run, vocab_size))
    state = dict(tm.state_dict)
    wte_c = state.pop("transformer.wte.weight")
    state.pop("lm_head.weight", None)
    wte = wte_c[len(tm.used_ids)].repeat(vocab_size, 1)
    wte[torch.tensor(tm.used_ids)] = wte_c[: len(tm.used_ids)]
    state["transformer.wte.weight"] = wte
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise RuntimeError(f"state mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()


def _tm_save(tm: TrainedModel) -> dict:
    return {"run": asdict(tm.run), "used_ids": list(tm.used_ids), "state_dict": tm.state_dict,
            "losses": list(tm.losses), "seconds": float(tm.seconds)}


def _tm_load(p: dict) -> TrainedModel:
    return TrainedModel(AgreementRun(**p["run"]), list(p["used_ids"]), p["state_dict"], list(p["losses"]),
                        float(p["seconds"]))


def export_trained_model(tm: TrainedModel, folder: str | os.PathLike[str] | None = None, *,
                         device: str | torch.device = "cpu") -> Path:
    """Save the expanded model and the GPT-2 tokenizer to a folder (once); return the folder.

    Default folder: ``<cache_dir()>/agreement-hf/<config key>`` (``device``: where ``tm`` was
    trained; its kind enters the key off the CPU); a marker file written last makes a
    complete folder reusable.
    """
    from ace_utils.models import save_pretrained_model

    folder = Path(folder) if folder is not None else cache_dir() / "agreement-hf" / config_key(_run_key(tm.run, device))[:24]
    marker = folder / "ace_book_complete"
    if marker.is_file():
        return folder
    tok = load_gpt2_tokenizer()
    tok.pad_token = tok.eos_token
    save_pretrained_model(expand_to_full_vocab(tm, len(tok)), tok, folder)
    marker.write_text("ok\n")
    return folder


def _run_key(run: AgreementRun, device: str | torch.device = "cpu") -> dict:
    """The cache key of the model of ``run`` trained on ``device`` (its kind added off the CPU)."""
    return {**asdict(run), **cache_tag(device)}


def partial_state_path(run: AgreementRun, device: str | torch.device = "cpu") -> Path:
    """Where :func:`train_models` keeps the state of an unfinished ``run`` (trained on ``device``)."""
    return cache_dir() / "agreement-lm" / f"partial-{config_key(_run_key(run, device))}.pt"


def _cached_model(run: AgreementRun, progress: bool = False, device: str | torch.device = "cpu") -> TrainedModel:
    """The trained model of ``run`` from the cache, or trained on ``device`` (continuing a saved partial run)."""
    return cached(_run_key(run, device), lambda: train_agreement_model(
        run, progress=progress, state_path=partial_state_path(run, device), device=device),
        name="agreement-lm", save=_tm_save, load=_tm_load)


def _train_in_worker(run: AgreementRun, max_steps: int | None = None, device: str = "cpu") -> float:
    """Worker of :func:`train_models`: one thread, train (at most ``max_steps`` more steps)
    into the cache or the run's partial state, return CPU seconds."""
    import time

    torch.set_num_threads(1)
    c0 = time.process_time()
    tm = train_agreement_model(run, state_path=partial_state_path(run, device), max_steps=max_steps, device=device)
    if tm is not None:  # finished in this call
        cached(_run_key(run, device), lambda: tm, name="agreement-lm", save=_tm_save, load=_tm_load)
    return time.process_time() - c0


def train_models(runs: Sequence[AgreementRun], workers: int = 2,
                 max_steps: int | None = None, device: str | torch.device = "cpu") -> dict[AgreementRun, float]:
    """Train the runs that are not cached yet, ``workers`` at a time in fresh processes.

    Each worker trains with one thread (measured faster than two threads per model on two
    cores), writing into the cache that :func:`load_agreement_model` then reads; results
    are identical to training in the notebook process. Longest runs start first. With
    ``max_steps`` each run trains at most that many more steps in this call and an
    unfinished one keeps its state for the next call (:func:`partial_state_path`), so a
    chapter can spread training over cells with the same numbers as one call.
    Returns CPU seconds per run trained in this call (empty when everything was cached).
    Off the CPU the runs train on ``device``, one after another in this process.
    """
    device = as_device(device)
    todo = [r for r in runs if not (cache_dir() / "agreement-lm" / f"{config_key(_run_key(r, device))}.pt").exists()]
    todo.sort(key=lambda r: -r.n_layers * r.d_model**2)
    return dict(zip(todo, map_in_processes(_train_in_worker, (todo, [max_steps] * len(todo), [str(device)] * len(todo)),
                                           workers if device.type == "cpu" else 1)))


def load_agreement_model(source: str, name: str | None = None, run: AgreementRun | None = None,
                         *, device: str = "cpu", progress: bool = False):
    """(bridge, tokenizer, TrainedModel or None) for ``source`` "trained" (``run``) or "hub" (``name``).

    "trained": trains (or takes from the cache) the model of ``run`` on ``device``, exports it
    and loads it with :func:`load_pretrained` from the folder. "hub": ``load_pretrained(name)``;
    offline this raises :class:`HubUnavailableError` at once. A local folder given as
    ``name`` with source "hub" is loaded the same way (how the tests exercise the hub
    path). The tokenizer is the bridge's own, with a pad token set.
    """
    tm = None
    if source == "trained":
        if run is None:
            raise ValueError("source='trained' needs run=AgreementRun(...)")
        tm = _cached_model(run, progress, device)
        path = export_trained_model(tm, device=device)
        bridge = load_pretrained(path, device=device)
    elif source == "hub":
        if not name:
            raise ValueError("source='hub' needs a model id, e.g. name='gpt2'")
        bridge = load_pretrained(name, device=device)
    else:
        raise ValueError(f"source must be 'trained' or 'hub', got {source!r}")
    tok = bridge.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    verb_token_ids(tok)  # refuse multi-token verbs now, with the clear message
    return bridge, tok, tm
