"""Validation of notebook (papermill) parameters: fail at once, with one clear line.

Every chapter's cell after the ``parameters`` cell calls :func:`validate`.
An unknown name, a wrong type or an out-of-range value raises
:class:`ParameterError` naming the parameter and what is allowed.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["ParameterError", "Int", "Float", "Choice", "Fixed", "Bool", "Device", "IntList", "FloatList", "NameList", "validate"]


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True)
class Int:
    """An integer in ``[lo, hi]``."""

    lo: int
    hi: int

    def check(self, name: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParameterError(f"parameter {name!r} must be an int in [{self.lo}, {self.hi}], got {v!r}")
        if not self.lo <= v <= self.hi:
            raise ParameterError(f"parameter {name!r} = {v} is out of range: allowed ints in [{self.lo}, {self.hi}]")
        return v


@dataclass(frozen=True)
class Float:
    """A real number in ``[lo, hi]`` (ints accepted)."""

    lo: float
    hi: float

    def check(self, name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParameterError(f"parameter {name!r} must be a number in [{self.lo}, {self.hi}], got {v!r}")
        if not self.lo <= v <= self.hi:
            raise ParameterError(f"parameter {name!r} = {v} is out of range: allowed numbers in [{self.lo}, {self.hi}]")
        return float(v)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    values: tuple

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def check(self, name: str, v: Any) -> Any:
        if v not in self.values or type(v) not in {type(x) for x in self.values}:
            allowed = ", ".join(repr(x) for x in self.values)
            raise ParameterError(f"parameter {name!r} = {v!r} is not allowed: choose one of {allowed}")
        return v


@dataclass(frozen=True)
class Fixed:
    """One allowed value, for a parameter a page must have but cannot vary (a page that reads
    files made from one seed); ``why`` says why, in the message of a refused value."""

    value: Any
    why: str

    def check(self, name: str, v: Any) -> Any:
        if v != self.value or type(v) is not type(self.value):
            raise ParameterError(f"parameter {name!r} = {v!r}: {self.why}; allowed: {self.value!r}")
        return v


@dataclass(frozen=True)
class Device:
    """Where the chapter computes: ``"cpu"``, ``"cuda"`` or ``"auto"``, checked and resolved by
    :func:`ace_utils.models.device.resolve_device` into ``"cpu"`` or ``"cuda"`` (the validated
    value). ``"cuda"`` where no CUDA device is present fails here, at once."""

    def check(self, name: str, v: Any) -> str:
        from ace_utils.models.device import resolve_device

        try:
            return resolve_device(v, name)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None


@dataclass(frozen=True)
class Bool:
    """True or False."""

    def check(self, name: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise ParameterError(f"parameter {name!r} must be True or False, got {v!r}")
        return v


def _check_list(name: str, v: Any, lo: float, hi: float, min_len: int, max_len: int, kinds: tuple, noun: str) -> list:
    """The shared check of :class:`IntList` and :class:`FloatList`: ``v`` is a list or tuple
    of ``kinds`` (bools excluded), of length in ``[min_len, max_len]``, each in ``[lo, hi]``."""
    desc = f"a list of {min_len}..{max_len} {noun} in [{lo}, {hi}]"
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, kinds) and not isinstance(x, bool) for x in v):
        raise ParameterError(f"parameter {name!r} must be {desc}, got {v!r}")
    if not min_len <= len(v) <= max_len or not all(lo <= x <= hi for x in v):
        raise ParameterError(f"parameter {name!r} = {v!r} is out of range: allowed {desc}")
    return list(v)


@dataclass(frozen=True)
class IntList:
    """A non-empty list of ints, each in ``[lo, hi]``, of length in ``[min_len, max_len]``."""

    lo: int
    hi: int
    min_len: int = 1
    max_len: int = 64

    def check(self, name: str, v: Any) -> list[int]:
        return _check_list(name, v, self.lo, self.hi, self.min_len, self.max_len, (int,), "ints")


@dataclass(frozen=True)
class FloatList:
    """A non-empty list of numbers (ints accepted), each in ``[lo, hi]``, of length in
    ``[min_len, max_len]``; returned as floats."""

    lo: float
    hi: float
    min_len: int = 1
    max_len: int = 64

    def check(self, name: str, v: Any) -> list[float]:
        return [float(x) for x in _check_list(name, v, self.lo, self.hi, self.min_len, self.max_len, (int, float), "numbers")]


_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


@dataclass(frozen=True)
class NameList:
    """A comma-separated string of 1..``max_n`` names without spaces (e.g. model ids);
    checked into a list of the names."""

    max_n: int = 6
    noun: str = "model ids"

    def check(self, name: str, v: Any) -> list[str]:
        if not isinstance(v, str) or not v.strip():
            raise ParameterError(f"parameter {name!r} must be a comma-separated string of {self.noun}, got {v!r}")
        ids = [s.strip() for s in v.split(",") if s.strip()]
        if not 1 <= len(ids) <= self.max_n or any(" " in s for s in ids):
            raise ParameterError(f"parameter {name!r} = {v!r}: give 1..{self.max_n} {self.noun} without spaces")
        return ids


def _is_user_value(name: str, value: Any) -> bool:
    if name.startswith("_") or name in _IPYTHON_NAMES:
        return False
    return not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))


def validate(
    spec: Mapping[str, Any],
    namespace: Mapping[str, Any],
    *,
    ignore: Sequence[str] = (),
) -> dict[str, Any]:
    """Check the parameters found in ``namespace`` (a notebook's ``globals()``).

    Every name in ``spec`` must be present and pass its check; any other plain
    (non-module, non-function, non-private) value in the namespace is an
    unknown parameter, e.g. a misspelt ``papermill -p`` name. Returns the
    validated values by name. Raises :class:`ParameterError` with one line.
    """
    unknown = sorted(
        n for n, v in namespace.items() if n not in spec and n not in ignore and _is_user_value(n, v)
    )
    if unknown:
        raise ParameterError(
            f"unknown parameter {unknown[0]!r}: allowed parameters are {', '.join(sorted(spec))}"
        )
    out = {}
    for name, check in spec.items():
        if name not in namespace:
            raise ParameterError(f"parameter {name!r} is missing: allowed parameters are {', '.join(sorted(spec))}")
        out[name] = check.check(name, namespace[name])
    return out
