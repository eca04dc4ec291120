"""Text generated with the agreement core flipped at every step, and the number errors of the
generated verbs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.tasks import agreement_corpus as ac
from ace_utils.tasks.agreement.cores import last_token_logits
from ace_utils.tasks.agreement.prompts import encode_texts, verb_token_ids

__all__ = ["GenerationResult", "factor_share", "generate", "verb_inversion"]

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
            return last_token_logits(model, seq[:, :width], cur, hooks).double().cpu()

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
