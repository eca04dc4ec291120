"""Small seeded TransformerLens-native transformers (pre-LN), and their cache payloads.

Built with ``TransformerBridge.boot_native`` (transformer-lens 4.x has no
HookedTransformer). Their architecture differs from the paper's
(:mod:`ace_utils.models.paper`): the native model is *pre-LN* (LayerNorm before attention
and MLP inside each residual block), has a final LayerNorm, no dropout, learned absolute
position embeddings, causal attention, and an unembedding without a learned bias (the
bridge shows a constant zero ``unembed.bias``).

Hook names (the bridge's canonical names; the cache also holds aliases):
``hook_embed``, ``hook_pos_embed``, ``blocks.{l}.hook_in`` / ``hook_resid_pre``,
``blocks.{l}.hook_resid_mid``, ``blocks.{l}.hook_out`` / ``hook_resid_post``,
``blocks.{l}.attn.hook_pattern``, ``blocks.{l}.attn.hook_z``, ``blocks.{l}.mlp.hook_post``,
``ln_final.hook_out`` (input of the unembedding) and ``unembed.hook_out`` (logits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch

from ace_utils.models.state_io import load_model_state, save_model_state
from ace_utils.models.training import move_model

if TYPE_CHECKING:  # transformer_lens takes ~3 s to import: lazy
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "ModelShape",
    "SmallModelConfig",
    "build_native_model",
    "native_from_payload",
    "native_to_payload",
]

_SUPPORTED_ACTS = ("relu", "gelu", "gelu_new", "silu")


# --------------------------------------------------------------------------- native small models


class ModelShape:
    """What the small-model configs share: ``d_head``, ``n_outputs``, the dict round trip, and
    the checks of their integer sizes, head split and seed. Mixed into frozen dataclasses with
    fields ``d_model``, ``n_heads``, ``d_vocab``, ``d_vocab_out`` and ``seed``."""

    def _check_sizes(self, names: tuple[str, ...]) -> None:
        """Raise ValueError naming the field unless every field in ``names`` is a positive int,
        ``d_model`` divides by ``n_heads`` and ``seed`` is an int."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    @property
    def d_head(self) -> int:
        """Per-head dimension, ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    @property
    def n_outputs(self) -> int:
        """Number of logits per position (``d_vocab_out`` or ``d_vocab``)."""
        return self.d_vocab_out if self.d_vocab_out is not None else self.d_vocab

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable; part of cache keys)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(d))


@dataclass(frozen=True)
class SmallModelConfig(ModelShape):
    """Shape and seed of a small native transformer; hashable and usable as a cache key.

    ``d_head = d_model // n_heads`` (``d_model`` must be divisible by ``n_heads``);
    ``d_vocab`` input tokens, ``d_vocab_out`` output classes (default: ``d_vocab``);
    ``n_ctx`` the maximum sequence length; ``seed`` fixes the initial weights.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    n_ctx: int
    d_vocab: int
    act_fn: str = "relu"
    seed: int = 0
    d_vocab_out: int | None = None

    def __post_init__(self) -> None:
        self._check_sizes(("n_layers", "d_model", "n_heads", "d_mlp", "n_ctx", "d_vocab"))
        if self.act_fn not in _SUPPORTED_ACTS:
            raise ValueError(f"act_fn={self.act_fn!r}; supported: {_SUPPORTED_ACTS}")
        if self.d_vocab_out is not None and self.d_vocab_out < 1:
            raise ValueError(f"d_vocab_out must be positive or None, got {self.d_vocab_out!r}")


def build_native_model(cfg: SmallModelConfig, device: str | torch.device = "cpu") -> TransformerBridge:
    """A randomly initialised TransformerLens-native transformer wrapped in a TransformerBridge.

    Pre-LN blocks (LayerNorm with learned scale and bias), final LayerNorm, unbiased
    unembedding, ``cfg.act_fn`` MLP, no dropout; GPT-2-style init N(0, 0.8/sqrt(d_model))
    with output projections scaled by 1/sqrt(2 n_layers). The init is a pure function of
    ``cfg.seed`` (drawn from a private ``torch.Generator`` on the CPU, so the same on every
    device) and leaves the global torch RNG untouched. ``model(tokens)`` maps int tokens
    (batch, pos) to logits (batch, pos, ``cfg.n_outputs``).
    """
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    tl_cfg = TransformerBridgeConfig(
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        n_layers=cfg.n_layers,
        n_ctx=cfg.n_ctx,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.n_outputs,
        act_fn=cfg.act_fn,
        normalization_type="LN",
        init_mode="gpt2",
        init_weights=True,
        seed=int(cfg.seed),
        model_name="ace-book-native",
        device=str(device),
    )
    return TransformerBridge.boot_native(tl_cfg, device=device)


def native_to_payload(model: TransformerBridge, cfg: SmallModelConfig) -> dict[str, Any]:
    """``{"config": cfg.to_dict(), "state_dict": CPU tensors}``: a cacheable native model.

    The ``save=`` of the book's model cache (``cached`` in ``book/cache.py``), with
    :func:`native_from_payload` as ``load=``.
    """
    return {"config": cfg.to_dict(), "state_dict": save_model_state(model)}


def native_from_payload(payload: Mapping[str, Any], device: str | torch.device = "cpu") -> TransformerBridge:
    """Rebuild a native model from :func:`native_to_payload` output (strict key check).

    """
    model = build_native_model(SmallModelConfig.from_dict(payload["config"]), device="cpu")
    load_model_state(model, payload["state_dict"], strict=True)
    return move_model(model, device)
