"""The paper's own small transformer (post-LN PyTorch encoder layers), hookable with TransformerLens.

The models of arXiv 2602.22600 (reference code: github.com/joshseth/cores,
``src/cores/models.py``) are token embedding + learned position embedding, then
``n_layers`` ``torch.nn.TransformerEncoderLayer`` blocks with PyTorch defaults
(``batch_first=True``, post-LN, ReLU, LayerNorm eps 1e-5, dropout 0.1) under a causal
mask, then an untied linear readout *with* bias. There is no final LayerNorm and no
dropout on the embeddings. Every block computes

    x = norm1(x + dropout1(self_attn(x, x, x, causal mask)))
    x = norm2(x + dropout2(linear2(dropout(relu(linear1(x))))))

(attention dropout 0.1 inside ``self_attn``). Initialisation is PyTorch's own, so a
:class:`PaperTransformer` equals the reference model built right after
``torch.manual_seed(cfg.seed)`` (same module order: token embedding, position
embedding, blocks, readout). Float32.

Differences from :func:`ace_utils.models.native.build_native_model`: post-LN instead of pre-LN,
no final LayerNorm, dropout, a learned readout bias, N(0, 1) embeddings.

Variants. :class:`ModelVariant` changes one or more of those four design choices while
keeping everything else (sizes, seed, training): ``norm="pre"`` (PyTorch's
``norm_first=True`` blocks and a final LayerNorm ``ln_final`` before the readout),
``dropout_sites="embed-resid"`` (dropout on the summed embeddings and on the two residual
writes of every block, none on the attention probabilities or the FFN hidden activation:
where the TransformerLens-native models of this book drop), ``init="small"`` (every weight
matrix N(0, 0.8/sqrt(d_model)), the output projections divided by sqrt(2 n_layers), biases
zero: TransformerLens's ``init_mode="gpt2"``), ``readout_bias=False``. No dropout at all is
``dropout=0.0``. The default variant is the paper's model, and a config with it has the same
dict (and cache key) as before variants existed.

Hook names (the same names as the TransformerLens bridges use for the same places):
``hook_embed`` and ``hook_pos_embed`` (batch, pos, d_model); ``blocks.{l}.hook_in``
(residual stream entering block l; for l = 0 it is ``hook_embed + hook_pos_embed``) and
``blocks.{l}.hook_out`` (block l's output, after ``norm2``), (batch, pos, d_model);
``unembed.hook_in`` (what the readout reads: the last block's output), (batch, pos,
d_model); ``unembed.hook_out`` (logits), (batch, pos, n_outputs).

Parameter names: ``embed.weight``, ``pos_embed.weight``, ``blocks.{l}.layer.*``
(PyTorch's ``TransformerEncoderLayer`` names: ``self_attn.in_proj_weight``,
``self_attn.out_proj.weight``, ``linear1.weight``, ``norm1.weight``, ...),
``unembed.weight`` and ``unembed.bias``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from ace_utils.models import stacked
from ace_utils.models.native import ModelShape, SmallModelConfig, build_native_model
from ace_utils.models.state_io import load_model_state, save_model_state
from ace_utils.models.training import move_model

__all__ = [
    "ARCHITECTURES",
    "DROPOUT_SITES",
    "INITS",
    "NORMS",
    "ModelVariant",
    "check_variant",
    "without_default_variant",
    "build_model",
    "check_architecture",
    "PaperBlock",
    "PaperModelConfig",
    "PaperTransformer",
    "PaperUnembed",
    "paper_from_payload",
    "paper_optimizer",
    "paper_to_payload",
    "stacked_last_logits",
]


# The two model families of the book's tasks: the paper's post-LN PyTorch model (this
# module) and TransformerLens-native pre-LN models (ace_utils.models.native.build_native_model).
ARCHITECTURES = ("paper", "pre-ln")


def check_architecture(architecture: str) -> None:
    """Raise ``ValueError`` unless ``architecture`` is one of :data:`ARCHITECTURES`."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


NORMS = ("post", "pre")
DROPOUT_SITES = ("paper", "embed-resid")
INITS = ("pytorch", "small")


@dataclass(frozen=True)
class ModelVariant:
    """Which of the paper's four design choices a model keeps; the default is the paper's.

    ``norm``: ``"post"`` (the paper's post-LN blocks, no final LayerNorm) or ``"pre"``
    (pre-LN blocks and a final LayerNorm). ``dropout_sites``: ``"paper"`` (PyTorch's sites:
    attention probabilities, attention output, FFN hidden activation, FFN output) or
    ``"embed-resid"`` (the summed embeddings, the attention output and the FFN output).
    ``init``: ``"pytorch"`` (PyTorch's default initialisation, N(0, 1) embeddings) or
    ``"small"`` (TransformerLens's GPT-2-style N(0, 0.8/sqrt(d_model))). ``readout_bias``:
    whether the readout has a learned bias.
    """

    norm: str = "post"
    dropout_sites: str = "paper"
    init: str = "pytorch"
    readout_bias: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (("norm", NORMS), ("dropout_sites", DROPOUT_SITES), ("init", INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.readout_bias, bool):
            raise ValueError(f"readout_bias must be True or False, got {self.readout_bias!r}")

    @property
    def is_paper(self) -> bool:
        """Whether this is the paper's model (every choice at its default)."""
        return self == ModelVariant()

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the paper's model, name -> value."""
        paper = ModelVariant()
        return {k: v for k, v in asdict(self).items() if v != getattr(paper, k)}


def check_variant(variant: Any, architecture: str) -> None:
    """Raise ``ValueError`` unless ``variant`` is a :class:`ModelVariant`, and the paper's one
    unless ``architecture`` is ``"paper"`` (the only architecture it changes)."""
    if not isinstance(variant, ModelVariant):
        raise ValueError(f"variant must be a ModelVariant, got {variant!r}")
    if not variant.is_paper and architecture != "paper":
        raise ValueError("variant applies to architecture='paper' only")


def without_default_variant(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (a dataclass's ``asdict``) without its ``"variant"`` entry when that is the
    paper's: configs and runs of the paper's model keep the dicts (and cache keys) they had
    before variants existed."""
    if fields.get("variant") == asdict(ModelVariant()):
        fields = {k: v for k, v in fields.items() if k != "variant"}
    return fields


@dataclass(frozen=True)
class PaperModelConfig(ModelShape):
    """Shape and seed of the paper's transformer; hashable and usable as a cache key.

    ``d_mlp`` is the feed-forward width (PyTorch's ``dim_feedforward``); ``d_vocab``
    input tokens, ``d_vocab_out`` output classes (default: ``d_vocab``);
    ``n_positions`` rows of the learned position embedding (the maximum sequence
    length; 64 in the reference code); ``dropout`` the dropout probability at every site
    of ``variant.dropout_sites``; ``seed`` fixes the initial weights; ``variant`` the
    design choices (:class:`ModelVariant`, default: the paper's). Sizes in the paper: Markov chain
    1 layer, d_model 64, 4 heads, d_mlp 256, d_vocab 4; modular addition 2 layers,
    d_model 128, 4 heads, d_mlp 512, d_vocab p = 53; grokking-time sweep 1 layer,
    d_model 128, 4 heads, d_mlp 512.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    d_vocab_out: int | None = None
    n_positions: int = 64
    dropout: float = 0.1
    seed: int = 0
    variant: ModelVariant = ModelVariant()

    def __post_init__(self) -> None:
        self._check_sizes(("n_layers", "d_model", "n_heads", "d_mlp", "d_vocab", "n_positions"))
        check_variant(self.variant, "paper")
        if self.d_vocab_out is not None and (
            not isinstance(self.d_vocab_out, int) or isinstance(self.d_vocab_out, bool) or self.d_vocab_out < 1
        ):
            raise ValueError(f"d_vocab_out must be a positive int or None, got {self.d_vocab_out!r}")
        if (
            not isinstance(self.dropout, (int, float))
            or isinstance(self.dropout, bool)
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (``variant`` nested, and left out when it is the paper's)."""
        return without_default_variant(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PaperModelConfig":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        if "variant" in d:
            d["variant"] = ModelVariant(**d["variant"])
        return cls(**d)


@contextlib.contextmanager
def _mha_fastpath_disabled() -> Iterator[None]:
    """Turn off PyTorch's fused encoder-layer / attention inference path; restore on exit.

    In eval mode under ``torch.no_grad()`` (or with no parameter requiring grad),
    ``TransformerEncoderLayer`` and ``MultiheadAttention`` switch to fused kernels
    (``torch._transformer_encoder_layer_fwd``) whose results differ from the ordinary
    path in the last float32 bits (about 7e-7 on the block output). Activations read
    without gradients would then not equal those read with gradients. The switch
    ``torch.backends.mha.set_fastpath_enabled`` is process-wide, so it is flipped only
    for the duration of one block's forward and always restored.
    """
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def _causal_mask(n_pos: int, device: torch.device) -> Tensor:
    """Boolean (pos, pos) mask, True above the diagonal (= may not attend)."""
    return torch.triu(torch.ones(n_pos, n_pos, dtype=torch.bool, device=device), diagonal=1)


class PaperBlock(nn.Module):
    """One block: a PyTorch ``TransformerEncoderLayer`` between two hook points.

    ``layer`` keeps PyTorch's module (its parameter names and initialisation): post-LN
    for the paper's model, ``norm_first`` for ``variant.norm == "pre"``; with
    ``variant.dropout_sites == "embed-resid"`` its attention-probability and FFN-hidden
    dropout are off. ``hook_in`` sees the residual stream entering the block, ``hook_out``
    the block's output (after ``norm2`` when post-LN), both (batch, pos, d_model).
    """

    def __init__(self, cfg: PaperModelConfig) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model=cfg.d_model,
            nhead=cfg.n_heads,
            dim_feedforward=cfg.d_mlp,
            dropout=cfg.dropout,
            batch_first=True,
            norm_first=cfg.variant.norm == "pre",
        )
        if cfg.variant.dropout_sites == "embed-resid":
            self.layer.dropout.p = 0.0  # FFN hidden activation
            self.layer.self_attn.dropout = 0.0  # attention probabilities
        self.hook_in = HookPoint()
        self.hook_out = HookPoint()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(batch, pos, d_model) -> (batch, pos, d_model); ``mask`` boolean (pos, pos), True = blocked."""
        x = self.hook_in(x)
        # The ordinary (non-fused) path always: the same numbers with and without grad.
        with _mha_fastpath_disabled():
            x = self.layer(x, src_mask=mask)
        return self.hook_out(x)


class PaperUnembed(nn.Linear):
    """The readout ``nn.Linear(d_model, n_outputs)`` (with bias unless ``bias=False``),
    between two hook points.

    ``hook_in`` (batch, pos, d_model) is what the readout reads; ``hook_out``
    (batch, pos, n_outputs) are the logits ``h @ weight.T + bias``.
    """

    def __init__(self, d_model: int, n_outputs: int, bias: bool = True) -> None:
        super().__init__(d_model, n_outputs, bias=bias)
        self.hook_in = HookPoint()
        self.hook_out = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        """(batch, pos, d_model) -> logits (batch, pos, n_outputs)."""
        return self.hook_out(super().forward(self.hook_in(x)))


class PaperTransformer(HookedRootModule):
    """The paper's causal post-LN transformer with TransformerLens hook points.

    ``model(tokens)`` maps int tokens (batch, pos), pos <= ``cfg.n_positions``, to logits
    (batch, pos, ``cfg.n_outputs``). Built on the CPU under a forked torch RNG seeded
    with ``cfg.seed``: the initial weights are a pure function of ``cfg.seed``, equal to
    the reference model (joshseth/cores) built right after ``torch.manual_seed(seed)``,
    and the global RNG is left untouched. Then moved to ``device``. Dropout is active in
    train mode (PyTorch's default mode after construction); call ``.eval()`` to read
    activations. A non-default ``cfg.variant`` changes the model as :class:`ModelVariant`
    says; the pre-LN variant's final LayerNorm is ``ln_final``, and ``unembed.hook_in``
    is then its output (what the readout reads).
    """

    def __init__(self, cfg: PaperModelConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.cfg = cfg
        variant = cfg.variant
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            # Construction order = the reference code's: token, position, blocks, readout.
            self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
            self.pos_embed = nn.Embedding(cfg.n_positions, cfg.d_model)
            self.blocks = nn.ModuleList([PaperBlock(cfg) for _ in range(cfg.n_layers)])
            if variant.norm == "pre":
                self.ln_final = nn.LayerNorm(cfg.d_model)
            self.unembed = PaperUnembed(cfg.d_model, cfg.n_outputs, bias=variant.readout_bias)
            if variant.init == "small":
                _small_init_(self, cfg)
        embed_dropout = variant.dropout_sites == "embed-resid" and cfg.dropout > 0
        self.embed_dropout = nn.Dropout(cfg.dropout) if embed_dropout else nn.Identity()
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.setup()
        move_model(self, device)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (batch, pos) int -> logits (batch, pos, n_outputs)."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (batch, pos), got shape {tuple(tokens.shape)}")
        batch, n_pos = tokens.shape
        if n_pos > self.cfg.n_positions:
            raise ValueError(f"sequence length {n_pos} exceeds n_positions={self.cfg.n_positions}")
        device = self.embed.weight.device
        tokens = tokens.to(device)
        # Positions looked up once, (1, pos, d_model), then copied over the batch: the
        # backward pass sums over the batch as the reference's broadcast addition does,
        # so the gradients (and training runs, on the CPU) match it bit for bit.
        pos_embed = self.pos_embed(torch.arange(n_pos, device=device)[None])
        pos_embed = pos_embed.expand(batch, n_pos, self.cfg.d_model).contiguous()
        x = self.embed_dropout(self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(pos_embed))
        mask = _causal_mask(n_pos, device)
        for block in self.blocks:
            x = block(x, mask)
        if self.cfg.variant.norm == "pre":
            x = self.ln_final(x)
        return self.unembed(x)


@torch.no_grad()
def _small_init_(model: nn.Module, cfg: PaperModelConfig) -> None:
    """TransformerLens's ``init_mode="gpt2"`` on a PaperTransformer's parameters, in place.

    Every weight matrix (embeddings, attention in/out projections, FFN, readout) drawn
    from N(0, 0.8/sqrt(d_model)), the residual writes (``out_proj`` and ``linear2``) with
    that std divided by sqrt(2 n_layers); biases zero; LayerNorms left at (1, 0). Draws
    from the global RNG, which the caller has seeded.
    """
    std = 0.8 / math.sqrt(cfg.d_model)
    for name, param in model.named_parameters():
        if ".norm" in name or name.startswith("ln_final"):
            continue
        if param.ndim >= 2:
            writes = name.endswith("out_proj.weight") or name.endswith("linear2.weight")
            param.normal_(0.0, std / math.sqrt(2 * cfg.n_layers) if writes else std)
        else:
            param.zero_()


def stacked_last_logits(
    params: Mapping[str, Tensor],
    x: Tensor,
    n_heads: int,
    dropout: float = 0.0,
    gen: torch.Generator | Sequence[torch.Generator] | None = None,
) -> Tensor:
    """Last-position logits (M, N, n_outputs) of M stacked :class:`PaperTransformer` s, batched.

    ``params``: name -> (M, ...), slice ``i`` a model's ``state_dict()``; ``x`` (M, N, pos)
    int64 tokens, one batch per model. The module's forward (post-LN
    ``TransformerEncoderLayer`` blocks, causal attention, ReLU, readout with bias) as one
    batched computation over the models, in which the last block is evaluated only at the
    last position (its keys and values still see every position). Without dropout it gives
    the module's logits and gradients up to float32 round-off (a test checks both). With
    ``dropout > 0`` and ``gen`` (one generator per model, or one for the stack), dropout
    acts where PyTorch's layer puts it (attention probabilities, attention output, FFN
    hidden activation, FFN output) with masks drawn from ``gen``, not from the global RNG
    as the module's are. The faster path for sweeps of many short runs. The paper's model only: a :class:`ModelVariant` other than the
    default is refused where its parameters show it (a final LayerNorm, no readout bias).
    """
    if "ln_final.weight" in params or "unembed.bias" not in params:
        raise ValueError("stacked_last_logits computes the paper's model only (no ModelVariant)")
    M, N, T = x.shape
    D = params["embed.weight"].shape[-1]
    H, dh = n_heads, D // n_heads
    n_layers = sum(1 for k in params if k.endswith(".layer.linear1.weight"))
    h = torch.gather(params["embed.weight"], 1, x.reshape(M, -1, 1).expand(-1, -1, D)).reshape(M, N, T, D)
    h = h + params["pos_embed.weight"][:, None, :T]
    blocked = _causal_mask(T, x.device)
    for layer in range(n_layers):
        g = lambda k: params[f"blocks.{layer}.layer.{k}"]  # noqa: E731
        w_in, b_in = g("self_attn.in_proj_weight"), g("self_attn.in_proj_bias")
        hq = h[:, :, -1:] if layer == n_layers - 1 else h  # queries: only where the output is read
        Tq = hq.shape[2]
        kv = stacked.linear(h.reshape(M, N * T, D), w_in[:, D:], b_in[:, D:]).reshape(M, N, T, 2, H, dh)
        q = stacked.linear(hq.reshape(M, N * Tq, D), w_in[:, :D], b_in[:, :D]).reshape(M, N, Tq, H, dh)
        s = torch.einsum("mnqhd,mnkhd->mnhqk", q, kv[:, :, :, 0]) / math.sqrt(dh)
        s = s.masked_fill(blocked[T - Tq :], float("-inf"))
        a = stacked.dropout(s.softmax(-1), dropout, gen)
        z = torch.einsum("mnhqk,mnkhd->mnqhd", a, kv[:, :, :, 1]).reshape(M, N * Tq, D)
        attn = stacked.linear(z, g("self_attn.out_proj.weight"), g("self_attn.out_proj.bias"))
        r = stacked.layer_norm(hq.reshape(M, N * Tq, D) + stacked.dropout(attn, dropout, gen),
                               g("norm1.weight"), g("norm1.bias"))
        f = stacked.dropout(torch.relu(stacked.linear(r, g("linear1.weight"), g("linear1.bias"))), dropout, gen)
        f = stacked.linear(f, g("linear2.weight"), g("linear2.bias"))
        h = stacked.layer_norm(r + stacked.dropout(f, dropout, gen), g("norm2.weight"), g("norm2.bias"))
        h = h.reshape(M, N, Tq, D)
    return stacked.linear(h[:, :, -1], params["unembed.weight"], params["unembed.bias"])


def paper_to_payload(model: PaperTransformer) -> dict[str, Any]:
    """``{"config": model.cfg.to_dict(), "state_dict": CPU tensors}``: a cacheable model.

    The ``save=`` of the book's model cache (``cached`` in ``book/cache.py``), with
    :func:`paper_from_payload` as ``load=``.
    """
    return {"config": model.cfg.to_dict(), "state_dict": save_model_state(model)}


def paper_from_payload(payload: Mapping[str, Any], device: str | torch.device = "cpu") -> PaperTransformer:
    """Rebuild a model from :func:`paper_to_payload` output (strict key check), on ``device``."""
    model = PaperTransformer(PaperModelConfig.from_dict(payload["config"]), device="cpu")
    load_model_state(model, payload["state_dict"], strict=True)
    return move_model(model, device)


def paper_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW as in the reference code: betas (0.9, 0.999), eps 1e-8, decay on every parameter.

    One parameter group holding all of ``model``'s parameters, LayerNorm scales and
    biases included, with the given ``weight_decay``. As ``optimizer_factory`` for
    :func:`ace_utils.models.training.train`: ``lambda m: paper_optimizer(m, lr, wd)``.
    """
    return torch.optim.AdamW(
        list(model.parameters()), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay
    )


def build_model(cfg: "PaperModelConfig | SmallModelConfig"):
    """A fresh model of ``cfg``: a :class:`PaperTransformer` (train mode, as PyTorch builds
    it) for a :class:`PaperModelConfig`, a TransformerLens-native bridge
    (:func:`ace_utils.models.native.build_native_model`) for a ``SmallModelConfig``."""
    return PaperTransformer(cfg) if isinstance(cfg, PaperModelConfig) else build_native_model(cfg)
