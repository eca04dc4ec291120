"""The curves record of a run: the small, exactly reproducible part of its result under flat
keys, and its compressed ``.npz`` file."""

from __future__ import annotations

import numpy as np

__all__ = ["CURVE_KEYS", "LOG_KEYS", "curves_record", "load_curves", "save_curves"]

# per-checkpoint scalars kept in a curves record (the full scans and spectra are dropped)
CURVE_KEYS = ("test_acc", "r_energy", "r_nec", "r_suf", "r_core", "core_only_acc", "core_removed_acc",
              "r2_h", "r2_train", "k", "modes", "r2_in")
LOG_KEYS = ("epoch", "train_acc", "test_acc", "train_loss", "test_loss")


def curves_record(result: dict) -> dict[str, np.ndarray]:
    """The small, exactly reproducible part of a :func:`run_experiment` result, flat.

    Keys ``"{branch}/log/{name}"`` for ``name`` in :data:`LOG_KEYS` ((T,) epochs, else
    (T, M)) and ``"{branch}/ckpt/{name}"`` for ``"epoch"`` (C,) and :data:`CURVE_KEYS`
    (C, M), with ``branch`` in ``main`` and (if present) ``wd0`` (the weight-decay-0
    branch). Timings are left out: they are not reproducible.
    """
    out: dict[str, np.ndarray] = {}
    for name, br in (("main", result["main"]), ("wd0", result.get("branch"))):
        if br is None:
            continue
        for k in LOG_KEYS:
            out[f"{name}/log/{k}"] = np.asarray(br["log"][k])
        out[f"{name}/ckpt/epoch"] = np.asarray(br["ckpt_epoch"])
        for k in CURVE_KEYS:
            out[f"{name}/ckpt/{k}"] = np.asarray(br["ckpt"][k])
    return out


def save_curves(path, record: dict[str, np.ndarray]) -> None:
    """Write a :func:`curves_record` as a compressed ``.npz`` (atomically)."""
    import io

    from ace_utils.book.cache import write_bytes_atomic
    buf = io.BytesIO()
    np.savez_compressed(buf, **record)
    write_bytes_atomic(path, buf.getvalue())


def load_curves(path) -> dict[str, np.ndarray]:
    """Read a record written by :func:`save_curves`."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
