"""Tests for the integrity-checked cache (ace_utils.book.cache) and for seeding and the training loop
(ace_utils.models.training)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ace_utils.book import cache as C
from ace_utils.models import training as T

CONFIG = {"version": 1, "task": "toy", "p": 7, "lrs": (1e-3, 1e-2), "dtype": torch.float32}


class Counter:
    """A build function that counts its calls and returns a known payload."""

    def __init__(self, scale: float = 1.0) -> None:
        self.calls = 0
        self.scale = scale

    def __call__(self) -> dict:
        self.calls += 1
        return {"w": torch.arange(1000, dtype=torch.float32) * self.scale, "note": "ok"}


def _entry(directory: Path, name: str, config: dict) -> Path:
    return directory / name / f"{C.config_key(config)}.pt"


def _check(value: dict, scale: float = 1.0) -> None:
    assert value["note"] == "ok"
    assert torch.equal(value["w"], torch.arange(1000, dtype=torch.float32) * scale)


def test_seed_everything_and_deterministic():
    T.seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    T.seed_everything(5)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
    before = torch.are_deterministic_algorithms_enabled()
    with T.deterministic():
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_config_key():
    k = C.config_key(CONFIG)
    assert len(k) == 64 and k == C.config_key(dict(reversed(list(CONFIG.items()))))
    assert k != C.config_key({**CONFIG, "p": 11})
    assert k != C.config_key({**CONFIG, "version": 2})
    assert C.config_key({"version": 1, "x": 1}) != C.config_key({"version": 1, "x": 1.5})
    with pytest.raises(KeyError, match="version"):
        C.config_key({"p": 7})
    with pytest.raises(TypeError):
        C.config_key({"version": 1, "f": object()})


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "c"))
    assert C.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ACE_BOOK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_dir() == tmp_path / "xdg" / "ace-book"


def test_cached_builds_once_and_keys_by_config(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    build = Counter()
    _check(C.cached(CONFIG, build, name="toy"))
    _check(C.cached(CONFIG, build, name="toy"))
    assert build.calls == 1
    assert _entry(tmp_path, "toy", CONFIG).is_file()
    other = Counter(scale=2.0)
    _check(C.cached({**CONFIG, "p": 11}, other, name="toy"), scale=2.0)
    assert other.calls == 1 and len(list((tmp_path / "toy").glob("*.pt"))) == 2
    # custom save/load hooks
    got = C.cached(CONFIG, lambda: 3, name="hooked", save=lambda x: {"x": torch.tensor(x)}, load=lambda d: int(d["x"]))
    assert got == 3 and C.cached(CONFIG, lambda: 99, name="hooked", save=lambda x: {"x": torch.tensor(x)},
                                 load=lambda d: int(d["x"])) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_cached_corrupt_entry_is_rebuilt(tmp_path, damage):
    build = Counter()
    C.cached(CONFIG, build, name="toy", directory=tmp_path)
    path = _entry(tmp_path, "toy", CONFIG)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        mid = len(data) - 100
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(os.urandom(len(data)))
    with pytest.raises(C.CacheCorrupt, match="SHA-256" if damage == "flip" else None):
        C.load_checked(path)
    with pytest.warns(UserWarning, match=path.name):
        value = C.cached(CONFIG, build, name="toy", directory=tmp_path)
    assert build.calls == 2
    _check(value)
    assert C.load_checked(path)["payload"]["note"] == "ok"  # the rebuilt file is valid
    C.cached(CONFIG, build, name="toy", directory=tmp_path)
    assert build.calls == 2


def test_interrupted_write_never_loaded(tmp_path, monkeypatch):
    path = _entry(tmp_path, "toy", CONFIG)
    # 1. a write killed before the rename: os.replace never happens
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(C.os, "replace", crash)
    build = Counter()
    with pytest.raises(KeyboardInterrupt):
        C.cached(CONFIG, build, name="toy", directory=tmp_path)
    monkeypatch.undo()
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # the temp file was cleaned up
    # 2. a leftover temp file from a process killed hard (no cleanup), even a complete one
    good = tmp_path / "good.pt"
    C.save_atomic({"config_json": "x", "payload": {"w": torch.zeros(3)}}, good)
    (path.parent / f".{path.name}.abc123.tmp").write_bytes(good.read_bytes()[:40])
    value = C.cached(CONFIG, build, name="toy", directory=tmp_path)
    assert build.calls == 2
    _check(value)


def test_cached_numpy_payload_and_unstorable_results(tmp_path):
    value = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "s": np.float64(0.5), "t": (1, [np.ones(2)])}
    C.cached(CONFIG, lambda: value, name="np", directory=tmp_path)
    back = C.cached(CONFIG, lambda: pytest.fail("rebuilt"), name="np", directory=tmp_path)
    assert isinstance(back["a"], np.ndarray) and back["a"].dtype == np.int16
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["s"] == 0.5 and isinstance(back["t"], tuple) and np.array_equal(back["t"][1][0], np.ones(2))

    class Opaque:
        pass

    with pytest.warns(UserWarning, match="not stored"):
        obj = C.cached(CONFIG, Opaque, name="opaque", directory=tmp_path)
    assert isinstance(obj, Opaque) and not _entry(tmp_path, "opaque", CONFIG).exists()
    # a stale entry that the current load() rejects is rebuilt, not an error
    C.cached(CONFIG, lambda: {"old": torch.zeros(1)}, name="stale", directory=tmp_path)
    with pytest.warns(UserWarning, match="unusable"):
        assert C.cached(CONFIG, lambda: 7, name="stale", directory=tmp_path,
                        save=lambda x: {"new": x}, load=lambda d: d["new"]) == 7


def test_cached_mismatched_config_is_rebuilt(tmp_path):
    build = Counter()
    C.cached(CONFIG, build, name="toy", directory=tmp_path)
    path = _entry(tmp_path, "toy", CONFIG)
    entry = C.load_checked(path)
    entry["config_json"] = '{"version":0}'
    C.save_atomic(entry, path)
    with pytest.warns(UserWarning, match="config"):
        _check(C.cached(CONFIG, build, name="toy", directory=tmp_path))
    assert build.calls == 2


# --------------------------------------------------------------------------- training loop


def _tiny_model(seed: int = 0):
    from ace_utils.models import SmallModelConfig, build_native_model

    cfg = SmallModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=4, d_vocab=5, seed=seed)
    return cfg, build_native_model(cfg)


_DATA = torch.randint(0, 5, (64, 4), generator=torch.Generator().manual_seed(0))


def _batches(epoch: int):
    order = torch.randperm(len(_DATA), generator=torch.Generator().manual_seed(epoch))
    for i in range(0, len(_DATA), 16):
        yield _DATA[order[i : i + 16]]


def _loss(model, tokens):
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _run(seed: int, **kw):
    _, model = _tiny_model(seed)
    log = T.train(
        model,
        _loss,
        _batches,
        epochs=kw.pop("epochs", 3),
        optimizer_factory=lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=1.0),
        seed=seed,
        progress=False,
        **kw,
    )
    return model, log


def test_train_is_bitwise_reproducible():
    (m1, log1), (m2, log2) = _run(0), _run(0)
    _, fresh = _tiny_model(0)
    s1, s2, s0 = m1.state_dict(), m2.state_dict(), fresh.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1["embed.weight"], s0["embed.weight"])  # it did train
    assert log1.steps == 12 and log1.epochs == 3
    assert [r.metrics["train_loss"] for r in log1.rows] == [r.metrics["train_loss"] for r in log2.rows]
    assert log1.rows[-1].metrics["train_loss"] < log1.rows[0].metrics["train_loss"]


def test_train_logs_every_log_every_epochs_and_the_last():
    _, log = _run(0, epochs=5, log_every=2)
    assert [(r.epoch, r.step) for r in log.rows] == [(2, 8), (4, 16), (5, 20)]
    epochs, values = log.series("train_loss")
    assert list(epochs) == [2, 4, 5] and values[-1] == log.last("train_loss")
    with pytest.raises(KeyError):
        log.last("test_loss")
    with pytest.raises(ValueError, match="log_every"):
        _run(0, epochs=1, log_every=0)


def test_cached_trained_native_model_roundtrip(tmp_path):
    from ace_utils.models import native_from_payload, native_to_payload

    cfg, _ = _tiny_model(0)
    built: list[int] = []

    def build():
        built.append(1)
        model, _ = _run(0, epochs=1)
        return model

    config = {"version": 1, "model": cfg.to_dict(), "epochs": 1}
    kw = dict(name="native", directory=tmp_path, save=lambda m: native_to_payload(m, cfg), load=native_from_payload)
    first = C.cached(config, build, **kw)
    second = C.cached(config, build, **kw)
    assert len(built) == 1
    with torch.no_grad():
        assert torch.equal(first(_DATA), second(_DATA))


# --------------------------------------------------------------------------- the loop every task uses


def test_run_loop_calls_updates_then_due_events_in_order():
    calls: list[tuple[str, int]] = []
    last = T.run_loop(lambda t: calls.append(("update", t)), start=2, stop=7, events=[
        T.Event(lambda t: calls.append(("every 2", t)), every=2, at=frozenset({7})),
        T.Event(lambda t: calls.append(("when", t)), when=lambda t: t == 5),
    ])
    assert last == 7
    assert calls == [("update", 3), ("update", 4), ("every 2", 4), ("update", 5), ("when", 5), ("update", 6),
                     ("every 2", 6), ("update", 7), ("every 2", 7)]


def test_run_loop_stops_when_until_holds_before_an_update():
    done: list[int] = []
    last = T.run_loop(done.append, start=0, stop=100, until=lambda: len(done) == 3)
    assert last == 3 and done == [1, 2, 3]
    assert T.run_loop(done.append, start=5, stop=5) == 5  # nothing to run


def test_clock_leaves_untimed_events_out():
    import time

    clock = T.Clock()
    T.run_loop(lambda t: None, start=0, stop=2, clock=clock,
               events=[T.Event(lambda t: time.sleep(0.05), every=1, timed=False)])
    wall, _ = clock.elapsed()
    total, _ = clock.total()
    assert total >= 0.1 and wall < 0.02
