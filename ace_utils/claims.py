"""Recording a chapter's claims: checked, printed, asserted where they are made, saved.

Every chapter creates one :class:`Claims` after its parameters are validated,
calls :meth:`Claims.check` for each claim it makes, and :meth:`Claims.save` at
the end. A claim that fails raises ``AssertionError`` when the chapter runs at
the settings its claims are made for (``strict=True``, typically the default
parameters with any seed), and is only reported elsewhere (other presets or
sizes, where some claims are expected to break). If the environment variable
``ACE_BOOK_CLAIMS`` names a directory, :meth:`Claims.save` writes
``<dir>/<chapter>.json`` with every claim's outcome and numbers and the
chapter's parameters, which the seed-robustness runner collects.
Used in every chapter.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["Claims"]


def _plain(x: Any) -> Any:
    """JSON-friendly copy: numpy scalars/arrays to Python, complex to [re, im], NaN to None."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.generic,)):
        return _plain(x.item())
    if isinstance(x, complex):
        return [_plain(x.real), _plain(x.imag)]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:  # 0-d torch tensor
        return _plain(x.item())
    return x


class Claims:
    """A chapter's claim ledger. ``Claims("01_markov_cores", params, strict=...)``."""

    def __init__(self, chapter: str, params: Mapping[str, Any] | None = None, *, strict: bool = True) -> None:
        self.chapter = chapter
        self.params = dict(params or {})
        self.strict = strict
        self.checks: dict[str, dict[str, Any]] = {}
        self.values: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    def check(self, name: str, ok: bool, value: Any = None, *, expected: str = "", asserted: bool = True) -> None:
        """Record claim ``name``: whether it holds, the measured ``value``, the ``expected`` rule.

        Prints one line. Raises ``AssertionError`` if it fails and both ``self.strict``
        and ``asserted`` are true. Returns None, so a check that ends a notebook cell
        prints nothing more (read the outcome from :attr:`checks`).
        """
        ok = bool(ok)
        self.checks[name] = {"holds": ok, "value": _plain(value), "expected": expected, "asserted": asserted}
        status = "holds" if ok else "DOES NOT HOLD"
        print(f"{status}: {name}  (value {_plain(value)!r}; expected {expected or 'see text'})")
        if not ok and self.strict and asserted:
            raise AssertionError(f"claim '{name}' does not hold: value {_plain(value)!r}, expected {expected}")

    def record(self, **values: Any) -> None:
        """Record numbers that are reported but not claims (timings, sizes)."""
        self.values.update({k: _plain(v) for k, v in values.items()})

    def summary(self) -> dict[str, Any]:
        """The ledger as a plain dict."""
        return {
            "chapter": self.chapter,
            "params": _plain(self.params),
            "strict": self.strict,
            "checks": self.checks,
            "values": self.values,
            "all_hold": all(c["holds"] for c in self.checks.values()),
            "seconds": round(time.perf_counter() - self._t0, 2),
        }

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path | None:
        """Write ``<directory or $ACE_BOOK_CLAIMS>/<chapter>.json``; no-op if neither is set."""
        directory = directory or os.environ.get("ACE_BOOK_CLAIMS")
        if not directory:
            return None
        path = Path(directory) / f"{self.chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.summary(), indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path
