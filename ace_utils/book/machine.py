"""Where and from what a number was made: CPU model, the instruction sets PyTorch uses, a
fingerprint that says whether two files can be expected to agree to the last bit, the machine in
one line (:func:`machine_info`) and the commit of the code (:func:`git_commit`).

Floating-point results are bit-identical only on the same CPU kind with the same kernels
(PyTorch's ATen capability, oneDNN's and MKL's instruction sets) and the same thread
count. Files made here record :func:`fingerprint`; a check of a file re-run elsewhere
compares within measured tolerances instead of exactly.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["cpu_model", "cpu_capability", "isa_flags", "kernel_settings", "fingerprint", "describe", "machine_info",
           "git_commit"]

ROOT = Path(__file__).resolve().parents[2]  # the repository (git_commit's default)

# CPU flags that decide which vector kernels PyTorch, oneDNN and MKL pick
_ISA_PREFIXES = ("avx", "amx", "fma", "f16c", "sse4")
# environment variables that lower those choices (used to imitate an older CPU)
_KERNEL_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, ...]:
    """The lines of /proc/cpuinfo, read once (empty where there is none)."""
    try:
        return tuple(Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return ()


def _cpuinfo_field(prefix: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with ``prefix`` (None if absent)."""
    return next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith(prefix)), None)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else the platform's processor name)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_capability() -> str:
    """The vector instruction set of PyTorch's CPU kernels here (``"AVX2"``, ``"AVX512"``, ...), as
    ``torch.backends.cpu.get_cpu_capability()`` reports it (``ATEN_CPU_CAPABILITY`` can lower it)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def isa_flags() -> list[str]:
    """The CPU's vector-instruction flags (AVX*, AMX*, FMA, ...) from /proc/cpuinfo, sorted."""
    return sorted(f for f in (_cpuinfo_field("flags") or "").split() if f.startswith(_ISA_PREFIXES))


def kernel_settings() -> dict[str, str]:
    """The set environment variables among ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, MKL_CBWR."""
    return {k: os.environ[k] for k in _KERNEL_VARS if os.environ.get(k)}


def fingerprint(threads: int) -> str:
    """16 hex digits identifying the CPU kind, kernel choices, ``threads`` and torch version:
    files with equal fingerprints are expected to agree bit for bit."""
    import torch

    parts = [cpu_model(), " ".join(isa_flags()), cpu_capability(), repr(sorted(kernel_settings().items())),
             str(int(threads)), torch.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def describe() -> str:
    """One line: CPU model, logical cores, PyTorch's CPU capability and any kernel overrides."""
    forced = ", ".join(f"{k}={v}" for k, v in kernel_settings().items())
    return (f"{cpu_model()}, {os.cpu_count()} logical cores, PyTorch CPU capability {cpu_capability()}"
            + (f" ({forced})" if forced else ""))


def machine_info() -> str:
    """CPU model, logical cores, PyTorch's CPU capability, load average, GPU (or none), Python and
    torch versions, in one line."""
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load n/a"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = f"torch {torch.__version__}"
    except ImportError:  # pragma: no cover
        gpu, tv = "GPU unknown", "torch not installed"
    return f"{describe()}, {gpu}; {load} at the start; Python {platform.python_version()}, {tv}"


def git_commit(root: Path = ROOT) -> str:
    """HEAD commit (12 hex digits), with '+dirty' if tracked files differ from it; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
