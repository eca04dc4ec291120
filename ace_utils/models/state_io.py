"""The files the models leave on disk: where they go, how they are written, what a model's state is.

:func:`cache_dir` is the root folder of trained models and tokenizer files (``$ACE_BOOK_CACHE``,
else the user cache); :func:`write_bytes_atomic` writes a file so that a reader never sees it
half written; :func:`save_model_state` and :func:`load_model_state` turn a module into CPU
tensors and back. The book's integrity-checked cache (``book/cache.py``) is built on these.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Mapping, TypeVar

from torch import Tensor, nn

__all__ = ["cache_dir", "fsync_dir", "load_model_state", "save_model_state", "write_bytes_atomic"]

M = TypeVar("M", bound=nn.Module)


def cache_dir() -> Path:
    """Root folder of the ace-book cache (trained models, tokenizer files).

    ``$ACE_BOOK_CACHE`` if set; else ``$XDG_CACHE_HOME/ace-book``; else
    ``~/.cache/ace-book``. Independent of the repository checkout, so every clone,
    the book build and papermill runs share one cache. Created on first use by writers,
    not here.
    """
    env = os.environ.get("ACE_BOOK_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ace-book"


def fsync_dir(directory: Path) -> None:
    """Flush a folder's entries to disk (after a rename into it); a no-op where that is not allowed."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a fsynced temp file in the same folder and ``os.replace``.

    Readers see the old file, no file, or the complete new one, never a partial write.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; these are ordinary cache files
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path


def save_model_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of ``model.state_dict()`` (name -> tensor), safe to cache.

    For a TransformerBridge the keys are the bridge's TransformerLens-style names
    (``embed.weight``, ``blocks.0.attn.q.weight``, ..., ``unembed.weight``,
    ``unembed.bias``), and :func:`load_model_state` accepts them back.
    """
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def load_model_state(model: M, state: Mapping[str, Tensor], *, strict: bool = True) -> M:
    """Copy ``state`` (from :func:`save_model_state`) into ``model`` in place; returns ``model``.

    ``strict=True`` fails on missing or unexpected keys.
    """
    model.load_state_dict(dict(state), strict=strict)
    return model
