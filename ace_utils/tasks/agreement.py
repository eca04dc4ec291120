"""Subject-verb agreement in language models: training, prompts, ACE at every layer, the flip.

Explained in chapter ``05_agreement_axis``. One code path for two model sources:

- ``"trained"``: our own small GPT-2-architecture models (Hugging Face ``GPT2LMHeadModel``),
  trained here on the synthetic corpus of :mod:`ace_utils.tasks.agreement_corpus`, saved
  with the real GPT-2 tokenizer and loaded through :func:`ace_utils.models.hub.load_pretrained`
  like any checkpoint;
- ``"hub"``: GPT-2 Small / Medium / Large or any causal LM id TransformerBridge supports
  (needs the Hugging Face hub; fails at once offline with :class:`HubUnavailableError`).

**Compact-vocabulary training, full-vocabulary model.** The corpus uses ~110 of GPT-2's
50257 token ids. A softmax over all 50257 ids would cost ~99% of the training compute, so
the model is trained with a *compact* vocabulary: the used ids plus one "other" class whose
logit gets ``+log(n_unused)``. Afterwards the compact model is expanded into an exact
50257-token GPT-2 model whose unused rows all equal the "other" row: its full softmax then
equals the compact one, probability for probability (``test_agreement`` checks this), so the
exported model lives in GPT-2's token space and goes through the same loader as GPT-2.

**Sites.** ``hidden_states[l]`` for ``l = 0..L`` are read at ``blocks.{l}.hook_in`` (l < L)
and ``blocks.{L-1}.hook_out`` (l = L), at each prompt's last token. Note: in Hugging Face
``hidden_states[L]`` is *after* the final LayerNorm; we read and edit the residual stream
before it, so extraction and intervention share one space at every layer.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.book.cache import cache_dir, cached, config_key
from ace_utils.book.processes import map_in_processes
from ace_utils.method.ace import ACEResult, ace, observability_from_gradients
from ace_utils.method.activations import collect_activations_and_gradients
from ace_utils.method.interventions import subspace_hook
from ace_utils.models import GPT2_EOS_ID, load_gpt2_tokenizer, load_pretrained
from ace_utils.models.device import (
    as_device,
    cache_tag,
    forked_rng,
    get_rng_state,
    model_device,
    set_rng_state,
    to_device,
)
from ace_utils.models.training import Event, run_loop
from ace_utils.tasks import agreement_corpus as ac

__all__ = [
    "AgreementRun",
    "TrainedModel",
    "MultiTokenVerbError",
    "verb_token_ids",
    "encode_texts",
    "PromptBatch",
    "prompt_batch",
    "layer_hooks",
    "train_agreement_model",
    "train_models",
    "expand_to_full_vocab",
    "export_trained_model",
    "load_agreement_model",
    "number_margin",
    "margins",
    "margin_acts_and_grads",
    "roc_auc",
    "LayerCores",
    "ace_all_layers",
    "intervention_margins",
    "layer_sweep",
    "edit_hooks_for",
    "agreement_score",
    "separation",
    "GenerationResult",
    "generate",
    "verb_inversion",
    "factor_share",
    "knob_fit",
    "core_coordinate",
    "last_logits",
]

CACHE_VERSION = 1
VERB_WORDS = ("is", "are", "was", "were")


class MultiTokenVerbError(ValueError):
    """A verb of the margin (" is", " are", " was", " were") is not one token for this tokenizer."""


# --------------------------------------------------------------------------- tokens


def verb_token_ids(tokenizer: Any) -> dict[str, int]:
    """Token ids of " is", " are", " was", " were" (with the leading space, as after a noun).

    Raises :class:`MultiTokenVerbError` naming the verb and its pieces when the tokenizer
    splits one into several tokens: the margin is a difference of single next-token logits
    and is not defined for a multi-token verb.
    """
    out = {}
    for w in VERB_WORDS:
        ids = tokenizer.encode(" " + w, add_special_tokens=False)
        if len(ids) != 1:
            pieces = tokenizer.convert_ids_to_tokens(ids)
            raise MultiTokenVerbError(
                f"the verb {' ' + w!r} is {len(ids)} tokens for this tokenizer ({pieces}); the number margin "
                f"z(are)+z(were)-z(is)-z(was) needs each verb to be one token. Choose a model whose tokenizer "
                f"keeps ' is', ' are', ' was', ' were' whole (GPT-2 family, Llama, Qwen, Gemma do)."
            )
        out[w] = ids[0]
    return out


def encode_texts(tokenizer: Any, texts: Sequence[str], max_len: int = 64) -> tuple[Tensor, Tensor]:
    """Right-padded token ids (N, T) and each row's last real position (N,) LongTensor.

    No BOS is added (GPT-2 style; for tokenizers that add one, it is kept as the tokenizer
    gives it). Padding is with the pad id (EOS when none); with causal attention, pads
    *after* a row's last token cannot change anything at or before it, so no attention
    mask is needed. Rows longer than ``max_len`` raise ValueError.
    """
    enc = [tokenizer.encode(t) for t in texts]
    longest = max(len(e) for e in enc)
    if longest > max_len:
        raise ValueError(f"a text is {longest} tokens, more than max_len={max_len}")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    tokens = torch.full((len(enc), longest), int(pad), dtype=torch.long)
    for i, e in enumerate(enc):
        tokens[i, : len(e)] = torch.tensor(e, dtype=torch.long)
    last = torch.tensor([len(e) - 1 for e in enc], dtype=torch.long)
    return tokens, last


@dataclass
class PromptBatch:
    """Prompts ready for a model: tokens (N, T), last positions (N,), labels (N,) 0/1."""

    prompts: list
    tokens: Tensor
    last: Tensor
    labels: np.ndarray

    def subset(self, idx: Sequence[int] | np.ndarray) -> "PromptBatch":
        idx = np.asarray(idx)
        t = torch.as_tensor(idx)
        return PromptBatch([self.prompts[i] for i in idx], self.tokens[t], self.last[t], self.labels[idx])


def prompt_batch(tokenizer: Any, prompts: Sequence[ac.Prompt]) -> PromptBatch:
    """Tokenise prompts with *this model's* tokenizer."""
    tokens, last = encode_texts(tokenizer, [p.text for p in prompts])
    return PromptBatch(list(prompts), tokens, last, np.array([int(p.plural) for p in prompts]))


def layer_hooks(n_layers: int) -> list[str]:
    """Hook names of ``hidden_states[l]``, l = 0..L (pre-final-LN at l = L)."""
    return [f"blocks.{l}.hook_in" for l in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_out"]


# --------------------------------------------------------------------------- training


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


# --------------------------------------------------------------------------- margins


def number_margin(logits_last: Tensor, verb_ids: dict[str, int]) -> Tensor:
    """``z(are) + z(were) - z(is) - z(was)`` from last-token logits (..., V)."""
    v = verb_ids
    return logits_last[..., v["are"]] + logits_last[..., v["were"]] - logits_last[..., v["is"]] - logits_last[..., v["was"]]


def _gather_last(last: Tensor) -> Callable:
    """Hook for ``unembed.hook_in``: keep only each row's last position (B, 1, D).

    The unembedding then computes V logits for one position per row instead of all T.
    """

    def hook(act: Tensor, hook=None) -> Tensor:  # noqa: ARG001
        return act[torch.arange(act.shape[0], device=act.device), last.to(act.device)][:, None]

    return hook


def _device_of(model) -> torch.device:
    """Where a model (or the model a :class:`_LastTokenModel` wraps) keeps its parameters."""
    return model_device(model.model if isinstance(model, _LastTokenModel) else model)


def _last_logits(model, tokens: Tensor, last: Tensor, fwd_hooks: Sequence = ()) -> Tensor:
    """(B, V) logits at each row's last position, computing only those logits (on the model's device)."""
    tokens = to_device(tokens, _device_of(model))
    out = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", _gather_last(last))])
    return out[:, 0]


def margins(model, batch: PromptBatch, verb_ids: dict[str, int], fwd_hooks_for: Callable | None = None,
            batch_size: int = 256) -> np.ndarray:
    """Number margin per prompt (N,), optionally with hooks ``fwd_hooks_for(last_pos_batch)``;
    computed on the model's device, returned to the host."""
    out = []
    with torch.no_grad():
        for s in range(0, len(batch.labels), batch_size):
            sl = slice(s, s + batch_size)
            hooks = fwd_hooks_for(batch.last[sl]) if fwd_hooks_for is not None else ()
            out.append(number_margin(_last_logits(model, batch.tokens[sl], batch.last[sl], hooks), verb_ids))
    return torch.cat(out).double().cpu().numpy()


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for binary ``labels`` (Mann-Whitney form, ties count 1/2)."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        raise ValueError("roc_auc needs both classes")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------- ACE at every layer


class _LastTokenModel:
    """Wraps a bridge so that ``run_with_hooks(..., last=...)`` returns last-token logits (B, 1, V)."""

    def __init__(self, model) -> None:
        self.model = model

    def run_with_hooks(self, tokens, fwd_hooks=(), last=None, **kw):
        return self.model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", _gather_last(last))],
                                         **kw)


def margin_acts_and_grads(model, batch: PromptBatch, verb_ids: dict[str, int], hook: str,
                          batch_size: int = 100) -> tuple[Tensor, Tensor]:
    """Activations ``H`` and number-margin gradients ``G`` at ``hook``, last prompt token.

    The margin is :func:`number_margin`. Returns two (N, D) float32 tensors, the quantities
    :func:`ace_all_layers` computes for every layer (``W_o = G^T G / N``), for one layer, as
    the baselines of chapter 06 need them.
    """
    acts, grads = collect_activations_and_gradients(
        _LastTokenModel(model), to_device(batch.tokens, _device_of(model)), [hook],
        lambda logits, sl: number_margin(logits[:, 0], verb_ids),
        positions=batch.last, batch_size=batch_size, forward_kwargs={"last": batch.last},
    )
    return acts[hook], grads[hook]


@dataclass
class LayerCores:
    """ACE results per layer l = 0..L: ``results[l]`` (rank 1), hook names, train activations."""

    hooks: list[str]
    results: list[ACEResult]
    seconds: float

    @property
    def n_layers(self) -> int:
        return len(self.hooks) - 1

    def q(self, layer: int) -> Tensor:
        """(D,) the 1-D core direction at ``layer``."""
        return self.results[layer].core(1)[:, 0]


def ace_all_layers(model, batch: PromptBatch, verb_ids: dict[str, int], batch_size: int = 100) -> LayerCores:
    """1-D ACE core at every ``hidden_states[l]``, margin tail, one backward per batch.

    Activations and margin gradients at each prompt's last token for all layers come from
    :func:`collect_activations_and_gradients` (gradients through all later layers);
    ``W_o = mean g g^T``; rank fixed to 1, as in the paper and the reference code (joshseth/cores).
    """
    import time

    t0 = time.perf_counter()
    n_layers = model.cfg.n_layers
    hooks = layer_hooks(n_layers)

    def metric(logits: Tensor, sl: slice) -> Tensor:
        return number_margin(logits[:, 0], verb_ids)

    acts, grads = collect_activations_and_gradients(
        _LastTokenModel(model), to_device(batch.tokens, _device_of(model)), hooks, metric, positions=batch.last,
        batch_size=batch_size,
        forward_kwargs={"last": batch.last},
    )
    results = [ace(acts[h], observability_from_gradients(grads[h]), rank=1) for h in hooks]
    return LayerCores(hooks, results, time.perf_counter() - t0)


def edit_hooks_for(hook: str, q: Tensor, mean: Tensor, mode: str, strength: float = 1.0) -> Callable:
    """``last -> [(hook, fn)]``: keep/remove/flip of ``q`` about ``mean`` at each row's last token.

    For the ``fwd_hooks_for`` argument of :func:`margins` and :func:`last_logits`.
    """
    Q = q.reshape(-1, 1)
    return lambda last: [(hook, subspace_hook(Q, mode, mean=mean, positions=last, strength=strength))]


def intervention_margins(model, batch: PromptBatch, verb_ids: dict[str, int], hook: str, q: Tensor, mean: Tensor,
                         mode: str, strength: float = 1.0) -> np.ndarray:
    """Margins with keep/remove/flip of direction ``q`` about ``mean`` at ``hook``, last token only."""
    return margins(model, batch, verb_ids, edit_hooks_for(hook, q, mean, mode, strength))


def layer_sweep(model, cores: LayerCores, test: PromptBatch, verb_ids: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """Base / keep / remove / flip / random-flip AUC at every layer, and the chosen layer.

    Interventions are centred on the training mean and touch the last prompt token only
    (as in the reference code, joshseth/cores). The random control flips one Haar-random direction (seeded by
    ``seed`` and the layer). The chosen layer minimises the flip AUC (the paper's rule);
    when several layers tie (the AUC saturates at 0), the tie is broken by the lowest
    :func:`separation` of the flipped margins, the AUC's continuous counterpart
    (``layer_first_min`` is the first tied layer, the rule read literally).
    Returns a dict of (L+1,) arrays (``keep``, ``remove``, ``flip``, ``random_flip`` AUCs
    and ``*_sep`` separations) plus ``base`` (float), ``layer`` (int), ``depth``.
    """
    base_m = margins(model, test, verb_ids)
    out: dict[str, Any] = {"base": roc_auc(base_m, test.labels), "base_margin": base_m}
    y = np.asarray(test.labels).astype(bool)
    for mode in ("keep", "remove", "flip"):
        ms = [intervention_margins(model, test, verb_ids, h, cores.q(l), cores.results[l].mean, mode)
              for l, h in enumerate(cores.hooks)]
        out[mode] = np.array([roc_auc(m, y) for m in ms])
        out[mode + "_sep"] = np.array([separation(m, y) for m in ms])
    rnd = []
    for l, h in enumerate(cores.hooks):
        g = torch.Generator().manual_seed(seed * 1000 + l)
        qr = torch.randn(cores.q(l).shape[0], generator=g, dtype=torch.float64)
        rnd.append(roc_auc(intervention_margins(model, test, verb_ids, h, qr / qr.norm(), cores.results[l].mean,
                                                "flip"), test.labels))
    out["random_flip"] = np.array(rnd)
    tied = np.flatnonzero(out["flip"] <= out["flip"].min() + 1e-12)
    out["layer_first_min"] = int(tied[0])  # the paper's rule read literally (np.argmin: first of the ties)
    out["layer"] = int(tied[np.argmin(out["flip_sep"][tied])])
    out["depth"] = np.arange(len(cores.hooks)) / cores.n_layers
    return out


def separation(m: np.ndarray, labels: np.ndarray) -> float:
    """Standardised difference of the class means, ``(mean_1 - mean_0) / pooled sd``.

    Positive when plural prompts get larger margins; unlike the AUC it does not saturate.
    """
    m, y = np.asarray(m, float), np.asarray(labels).astype(bool)
    return float((m[y].mean() - m[~y].mean()) / np.sqrt(0.5 * (m[y].var() + m[~y].var())))


def agreement_score(logits_last: Tensor, verb_ids: dict[str, int], plural: np.ndarray, past: np.ndarray | None = None
                    ) -> np.ndarray:
    """``log P(correct set) - log max_v P(v)`` over the four verbs (the reference code's
    agreement score).

    Correct set: {is, was} for singular heads, {are, were} for plural ones (tense ignored,
    as in the paper). Zero or positive when a correct verb is the most likely of the four.
    """
    z = torch.stack([logits_last[:, verb_ids[w]] for w in VERB_WORDS], 1).double()  # is, are, was, were
    pl = torch.as_tensor(np.asarray(plural, bool), device=z.device)
    correct = torch.where(pl[:, None], z[:, [1, 3]], z[:, [0, 2]])
    return (torch.logsumexp(correct, 1) - z.max(1).values).cpu().numpy()


def last_logits(model, batch: PromptBatch, fwd_hooks_for: Callable | None = None) -> Tensor:
    """(N, V) last-token logits, optionally with hooks ``fwd_hooks_for(last)``."""
    with torch.no_grad():
        hooks = fwd_hooks_for(batch.last) if fwd_hooks_for is not None else ()
        return _last_logits(model, batch.tokens, batch.last, hooks)


# --------------------------------------------------------------------------- generation


@dataclass
class GenerationResult:
    """Texts generated from prompts: ``texts`` (continuations), ``full`` (prompt + continuation),
    ``strengths`` the flip strengths used per row and step (0 for clean runs)."""

    texts: list[str]
    full: list[str]
    strengths: np.ndarray


def _lse_margin(logits: Tensor, v: dict[str, int]) -> Tensor:
    return torch.logaddexp(logits[:, v["are"]], logits[:, v["were"]]) - torch.logaddexp(logits[:, v["is"]], logits[:, v["was"]])


def generate(model, tokenizer, prompts: Sequence[str], *, hook: str | None = None, q: Tensor | None = None,
             mean: Tensor | None = None, strength: float | str = 0.0, n_new: int = 24, temperature: float = 1.0,
             top_k: int = 50, seed: int = 0, eps: float = 1.0, s_probe: float = 0.2, s_max: float = 50.0,
             stop_at_eos: bool = True) -> GenerationResult:
    """Sample continuations, optionally flipping the core at every step.

    Without a cache, every step recomputes the whole sequence; the flip
    ``h <- h + s [(I - 2P)(h - mu) - (h - mu)]`` is applied at ``hook`` to the last prompt
    token and to every generated token, each with the strength it had when it was the last
    token (what a KV-cached generate with a last-position hook does). ``strength``: a number
    (1 = the exact reflection) or ``"adaptive"``: at each step a finite-difference probe
    (``s_probe``) picks ``s`` so that the margin ``logsumexp(are, were) - logsumexp(is, was)``
    moves to ``-sign(clean) * eps``, clipped to ``[0, s_max]`` (the reference code's recipe, joshseth/cores).
    Sampling: temperature, top-k, a torch Generator seeded with ``seed`` (row i uses the
    same random numbers in clean and flipped runs). The forward passes run on the model's
    device; each step's last-token logits come to the host, which samples (the same draws on
    every device). Returns :class:`GenerationResult`.
    """
    v = verb_token_ids(tokenizer)
    tokens, last = encode_texts(tokenizer, prompts, max_len=10_000)
    B = tokens.shape[0]
    T = tokens.shape[1] + n_new
    pad = tokens[0, -1].item() if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    seq = torch.full((B, T), int(pad), dtype=torch.long)
    seq[:, : tokens.shape[1]] = tokens
    S = torch.zeros(B, T, dtype=torch.float64)
    first = last.clone()
    cur = last.clone()
    done = torch.zeros(B, dtype=torch.bool)
    gen = torch.Generator().manual_seed(seed)
    flip = q is not None and hook is not None and strength != 0.0
    Q = None if q is None else q.reshape(-1, 1).to(torch.float64)

    def run(Sx: Tensor) -> Tensor:
        hooks = []
        if flip:
            def h_fn(act: Tensor, hook=None) -> Tensor:  # noqa: ARG001
                x = act.to(torch.float64)
                q_x = Q.to(x)
                c = ((x - mean.to(x)) @ q_x)  # (B, T, 1)
                delta = -2.0 * c @ q_x.T  # (B, T, D): the reflection's change at s = 1
                s = Sx[:, : act.shape[1], None].to(x)
                return (x + s * delta).to(act.dtype)

            hooks.append((hook, h_fn))
        width = int(cur.max()) + 1
        with torch.no_grad():
            return _last_logits(model, seq[:, :width], cur, hooks).double().cpu()

    for step in range(n_new):
        rows = torch.arange(B)
        if flip:
            if strength == "adaptive":
                S[rows, cur] = 0.0
                m0 = _lse_margin(run(S), v)
                S[rows, cur] = s_probe
                m1 = _lse_margin(run(S), v)
                slope = (m1 - m0) / s_probe
                target = -torch.sign(m0) * eps
                s = torch.where(slope.abs() > 1e-9, (target - m0) / slope, torch.full_like(m0, s_max))
                S[rows, cur] = s.clamp(0.0, s_max)
            else:
                S[rows, cur] = float(strength)
        logits = run(S) / temperature
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, -1)
        nxt = torch.multinomial(probs.float(), 1, generator=gen)[:, 0]
        nxt = torch.where(done, torch.full_like(nxt, int(pad)), nxt)
        cur = torch.where(done, cur, cur + 1)
        seq[rows, cur] = torch.where(done, seq[rows, cur], nxt)
        if stop_at_eos and tokenizer.eos_token_id is not None:
            done = done | (nxt == tokenizer.eos_token_id)
        if bool(done.all()):
            break
    texts, full = [], []
    for i in range(B):
        ids = seq[i, first[i] + 1 : cur[i] + 1].tolist()
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        cont = tokenizer.decode(ids)
        texts.append(cont)
        full.append(prompts[i] + cont)
    return GenerationResult(texts, full, S.numpy())


def verb_inversion(prompts: Sequence[ac.Prompt], full_texts: Sequence[str]) -> dict[str, Any]:
    """Number errors of the generated verbs, parsed with :func:`parse_verbs`.

    For each text, the verbs *after the prompt* with a known subject are checked against
    that subject's number. ``main``: the first generated verb of the prompt's own clause
    (its subject is the prompt's head): inverted if its number is not the head's.
    Returns fractions ``all_wrong`` (over all parsed verbs), ``main_wrong`` (over prompts
    whose main verb was found), the counts, and ``main_found``.
    """
    n_all = n_wrong = n_main = n_main_wrong = 0
    for p, text in zip(prompts, full_texts):
        n_prompt_words = len(ac._words(p.text))
        verbs = [pv for pv in ac.parse_verbs(text) if pv.index >= n_prompt_words]
        for pv in verbs:
            if pv.subject_plural is None:
                continue
            n_all += 1
            n_wrong += int(not pv.agrees)
        if verbs and verbs[0].subject is not None and verbs[0].subject == p.head.lower():
            n_main += 1
            n_main_wrong += int(verbs[0].verb_plural != p.plural)
    return {
        "all_wrong": n_wrong / n_all if n_all else float("nan"), "n_verbs": n_all,
        "main_wrong": n_main_wrong / n_main if n_main else float("nan"), "main_found": n_main,
        "n_texts": len(full_texts),
    }


def factor_share(z: np.ndarray, factors: dict[str, Sequence]) -> dict[str, float]:
    """Share of the variance of ``z`` explained by each categorical factor alone (eta^2)."""
    z = np.asarray(z, float)
    tot = ((z - z.mean()) ** 2).sum()
    out = {}
    for name, f in factors.items():
        f = np.asarray(f)
        between = sum(((z[f == k].mean() - z.mean()) ** 2) * (f == k).sum() for k in np.unique(f))
        out[name] = float(between / tot) if tot > 0 else float("nan")
    return out


# --------------------------------------------------------------------------- helpers for the chapter


def knob_fit(z: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """Affine fit ``m ~ a z + b`` (z-scored both): slope, intercept, R^2."""
    zs = (z - z.mean()) / z.std()
    ms = (m - m.mean()) / m.std()
    a, b = np.polyfit(zs, ms, 1)
    r2 = 1 - ((ms - (a * zs + b)) ** 2).sum() / ((ms - ms.mean()) ** 2).sum()
    return {"slope": float(a), "intercept": float(b), "r2": float(r2)}


def core_coordinate(model, batch: PromptBatch, hook: str, q: Tensor, mean: Tensor) -> np.ndarray:
    """``z = (h - mu) . q`` at each prompt's last token at ``hook`` (N,)."""
    from ace_utils.method.activations import collect_activations

    H = collect_activations(_LastTokenModel(model), to_device(batch.tokens, _device_of(model)), [hook],
                            positions=batch.last, batch_size=256, forward_kwargs={"last": batch.last})[hook]
    return ((H.double() - mean.to(H.device).double()) @ q.to(H.device).double()).cpu().numpy()
