"""An integrity-checked on-disk cache of trained models and other results.

The cache stores one file per (name, config) pair, ``<cache_dir>/<name>/<key>.pt``,
where ``key`` is the SHA-256 of the canonical JSON of the config. A file is written
to a temporary name in the same folder, fsynced, then renamed into place, so an
interrupted write never produces a file under the final name. Each file carries the
SHA-256 and length of its payload; a truncated or corrupt file is detected, reported
with :func:`warnings.warn`, deleted and rebuilt, never used. The cache root
(:func:`cache_dir`), the atomic write and a module's state as CPU tensors
(:func:`save_model_state`, :func:`load_model_state`) come from
:mod:`ace_utils.models.state_io` and are importable from here too.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import torch
from torch import Tensor

# the generic file helpers live with the models (which use them without the cache); re-exported
from ace_utils.models.state_io import (  # noqa: F401
    cache_dir,
    fsync_dir,
    load_model_state,
    save_model_state,
    write_bytes_atomic,
)

__all__ = [
    "CacheCorrupt",
    "cache_dir",
    "cached",
    "config_key",
    "load_checked",
    "load_model_state",
    "save_atomic",
    "save_model_state",
    "write_bytes_atomic",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- cache


class CacheCorrupt(RuntimeError):
    """A cache file exists but is truncated, corrupt or not one of ours. Chapters 01-05 (through :func:`cached`)."""


_MAGIC = b"ACEBOOK-CACHE\x00v1"  # 16 bytes
_HEADER = struct.Struct(f"<{len(_MAGIC)}s32sQ")  # magic, sha256(payload), len(payload)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _canonical(obj: Any) -> Any:
    """Turn ``obj`` into plain JSON types, deterministically (dict keys must be strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"config keys must be strings, got {k!r}")
            out[k] = _canonical(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_canonical(v) for v in obj)
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            return repr(value)  # JSON has no inf/nan; keep them distinct and stable
        return value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    raise TypeError(f"cannot put {type(obj).__name__} {obj!r} in a cache key")


def _canonical_json(config: Mapping[str, Any]) -> str:
    return json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_key(config: Mapping[str, Any]) -> str:
    """SHA-256 (64 hex characters) of the canonical JSON of ``config``.

    ``config`` must hold a ``"version"`` entry that the caller bumps whenever the code
    that builds the cached object changes meaning. Values may be JSON types, tuples,
    dataclasses, Paths, NumPy scalars or torch dtypes; key order does not matter.
    Used in every chapter (through :func:`cached`).
    """
    if "version" not in config:
        raise KeyError("config must contain a 'version' entry (bump it when the builder changes)")
    return hashlib.sha256(_canonical_json(config).encode("ascii")).hexdigest()


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically, with an integrity header.

    The bytes are written to ``.<name>.<random>.tmp`` in the same folder, fsynced and
    renamed over ``path`` (``os.replace``), so readers see either the old file, no file
    or the complete new one. The file is a 56-byte header (magic, SHA-256 and length of
    the payload) followed by the ``torch.save`` payload. Returns ``path``.
    Used in every chapter (through :func:`cached`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    header = _HEADER.pack(_MAGIC, hashlib.sha256(payload).digest(), len(payload))
    write_bytes_atomic(path, header + payload)
    fsync_dir(path.parent)
    return path


def load_checked(path: str | os.PathLike[str], *, weights_only: bool = True) -> Any:
    """Load a file written by :func:`save_atomic`, verifying its length and SHA-256.

    Raises ``FileNotFoundError`` if absent and :class:`CacheCorrupt` if the header,
    length or hash do not match or the payload does not unpickle. ``weights_only=True``
    (default) restricts the payload to tensors, containers and primitive types.
    Used in every chapter (through :func:`cached`).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise CacheCorrupt(f"{path}: {len(data)} bytes, shorter than the header")
    magic, digest, length = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CacheCorrupt(f"{path}: not an ace-book cache file (bad magic)")
    payload = memoryview(data)[_HEADER.size :]
    if len(payload) != length:
        raise CacheCorrupt(f"{path}: payload is {len(payload)} bytes, header says {length}")
    if hashlib.sha256(payload).digest() != digest:
        raise CacheCorrupt(f"{path}: payload SHA-256 does not match")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # checksum fine but unreadable: wrong torch version, etc.
        raise CacheCorrupt(f"{path}: payload does not load ({type(exc).__name__}: {exc})") from exc


def _identity(x: Any) -> Any:
    return x


_ND_TAG = "__ace_ndarray__"
_PRIMITIVES = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def _encode(obj: Any, strict: bool, where: str = "payload") -> Any:
    """Make ``obj`` loadable with ``weights_only=True``: NumPy arrays become tagged tensors,
    NumPy scalars Python numbers; other unsupported types raise TypeError when ``strict``."""
    if isinstance(obj, np.generic):  # before the primitives: np.float64 subclasses float
        return obj.item()
    if isinstance(obj, (Tensor, *_PRIMITIVES)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"{where}: NumPy array of dtype {obj.dtype} cannot be cached")
        try:
            return {_ND_TAG: torch.from_numpy(np.array(obj, copy=True, order="C"))}
        except TypeError as exc:
            raise TypeError(f"{where}: NumPy array of dtype {obj.dtype} cannot be cached") from exc
    if isinstance(obj, Mapping):
        kind = type(obj) if type(obj) in (dict, collections.OrderedDict) else dict
        return kind((k, _encode(v, strict, f"{where}[{k!r}]")) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_encode(v, strict, f"{where}[{i}]") for i, v in enumerate(obj))
    if strict:
        raise TypeError(
            f"{where}: {type(obj).__name__} cannot be cached with weights_only=True "
            "(use tensors, NumPy arrays, dicts, lists, tuples, numbers and strings)"
        )
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        if len(obj) == 1 and _ND_TAG in obj:
            return obj[_ND_TAG].numpy()
        return type(obj)((k, _decode(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def cached(
    config: Mapping[str, Any],
    build: Callable[[], T],
    *,
    name: str,
    save: Callable[[T], Any] = _identity,
    load: Callable[[Any], T] = _identity,
    directory: str | os.PathLike[str] | None = None,
    weights_only: bool = True,
    refresh: bool = False,
) -> T:
    """Return ``load(payload)`` from the cache entry for ``config``, or build and store it.

    ``config`` identifies the object completely (including a ``"version"``; see
    :func:`config_key`). ``build()`` makes the object; ``save(obj)`` turns it into a
    payload of tensors, NumPy arrays, dicts, lists, tuples, numbers and strings, and
    ``load(payload)`` turns a stored payload back into the object (both default to the
    identity; NumPy arrays come back as NumPy arrays). The entry lives at
    ``<directory or cache_dir()>/<name>/<key>.pt``. An entry that is corrupt, holds another
    config, or that ``load`` fails on is reported with ``warnings.warn`` (naming the path),
    deleted and rebuilt. If the result cannot be stored (unsupported type, read-only or
    full disk) a warning is given and the built object is returned uncached.
    ``weights_only=False`` allows arbitrary pickled objects (trusted caches only).
    ``refresh=True`` rebuilds unconditionally. Used in chapters 01_markov_cores to
    05_agreement_axis.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"cache name {name!r} must match {_NAME_RE.pattern}")
    config_json = _canonical_json(config)
    key = config_key(config)
    path = Path(directory) if directory is not None else cache_dir()
    path = path.expanduser() / name / f"{key}.pt"

    if not refresh and path.exists():
        try:
            entry = load_checked(path, weights_only=weights_only)
            if not isinstance(entry, dict) or entry.get("config_json") != config_json:
                raise CacheCorrupt("stored config does not match the requested one")
            return load(_decode(entry["payload"]))
        except FileNotFoundError:  # deleted between exists() and read
            pass
        except Exception as exc:  # corrupt, foreign, or stale (load() no longer accepts it)
            warnings.warn(
                f"ace-book cache entry {path} is unusable ({type(exc).__name__}: {exc}); rebuilding",
                stacklevel=2,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    obj = build()
    try:
        payload = _encode(save(obj), strict=weights_only)
        save_atomic({"name": name, "key": key, "config_json": config_json, "payload": payload}, path)
    except (TypeError, OSError) as exc:
        warnings.warn(f"ace-book cache: result not stored at {path} ({exc})", stacklevel=2)
    return obj
