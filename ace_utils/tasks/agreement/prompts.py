"""Prompts as a model reads them: the four verbs' token ids, texts encoded and padded, prompt
batches with their labels, and the hook names of the residual stream at every layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.tasks import agreement_corpus as ac

__all__ = ["VERB_WORDS", "MultiTokenVerbError", "PromptBatch", "encode_texts", "layer_hooks", "prompt_batch",
           "verb_token_ids"]

VERB_WORDS = ("is", "are", "was", "were")


class MultiTokenVerbError(ValueError):
    """A verb of the margin (" is", " are", " was", " were") is not one token for this tokenizer."""


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
