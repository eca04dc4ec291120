"""Tests for ace_utils.tasks.markov: the chains, sampling, the dynamics fit, and the cached training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ace_utils.method.operators import match_eigenvalues
from ace_utils.models.training import torch_threads
from ace_utils.tasks import markov as mk


def _sorted(z: np.ndarray) -> np.ndarray:
    return np.sort_complex(np.round(np.asarray(z, complex), 10))


def test_lazy_cycle_spectrum():
    T = mk.lazy_cycle()
    assert T.shape == (4, 4) and np.allclose(T.sum(1), 1) and np.allclose(T.sum(0), 1)
    assert np.allclose(_sorted(np.linalg.eigvals(T)), _sorted([1, 0.75 + 0.25j, 0.75 - 0.25j, 0.5]))
    lam = mk.nontrivial_eigenvalues(T)
    assert len(lam) == 3 and np.all(np.abs(lam - 1) > 0.1)  # the Perron eigenvalue is excluded
    assert np.allclose(_sorted(lam), _sorted([0.75 + 0.25j, 0.75 - 0.25j, 0.5]))
    assert np.all(np.diff(np.abs(lam)) <= 1e-12)  # by decreasing modulus: the pair, then 0.5


def test_bayes_accuracy_of_the_paper_chain():
    assert mk.bayes_accuracy(mk.lazy_cycle()) == pytest.approx(0.75, abs=1e-12)


def test_sample_sequences_frequencies_and_determinism():
    T = mk.lazy_cycle()
    x = mk.sample_sequences(T, 3000, 32, seed=3)
    assert x.shape == (3000, 32) and x.dtype == torch.int64
    counts = np.zeros((4, 4))
    np.add.at(counts, (x[:, :-1].reshape(-1).numpy(), x[:, 1:].reshape(-1).numpy()), 1)
    freq = counts / counts.sum(1, keepdims=True)
    assert np.abs(freq - T).max() < 0.01
    assert torch.equal(x, mk.sample_sequences(T, 3000, 32, seed=3))
    assert not torch.equal(x, mk.sample_sequences(T, 3000, 32, seed=4))


@pytest.mark.parametrize("n", [3, 5, 8])
def test_random_chain(n):
    T = mk.random_chain(n, seed=11)
    assert T.shape == (n, n) and np.all(T >= 0) and np.allclose(T.sum(1), 1)
    lam = mk.nontrivial_eigenvalues(T)
    assert len(lam) == n - 1
    gaps = np.abs(lam[:, None] - lam[None, :])[~np.eye(n - 1, dtype=bool)]
    assert gaps.min() >= 0.1
    assert np.array_equal(T, mk.random_chain(n, seed=11))
    assert not np.array_equal(T, mk.random_chain(n, seed=12))


@pytest.mark.parametrize("n", [2, 9])
def test_random_chain_rejects_sizes_outside_3_to_8(n):
    with pytest.raises(ValueError, match="n_states"):
        mk.random_chain(n, seed=0)


def test_chance_accuracy_on_a_known_tensor():
    # targets (positions 1..3): 1 1 2 / 1 0 1 -> state 1 is most frequent, 4 of 6
    tokens = torch.tensor([[0, 1, 1, 2], [3, 1, 0, 1]])
    assert mk.chance_accuracy(tokens) == pytest.approx(4 / 6)


@pytest.mark.parametrize("chain", ["paper", "random5"])
def test_core_dynamics_recovers_the_spectrum_of_an_exact_state_code(chain):
    # coordinates that are an exact linear code of the current state: z = B onehot(x),
    # B (n-1, n) random, injective on the sum-zero subspace that centring leaves
    T = mk.lazy_cycle() if chain == "paper" else mk.random_chain(5, seed=2)
    n = T.shape[0]
    x = mk.sample_sequences(T, 2000, 32, seed=1).numpy()
    B = np.random.default_rng(0).standard_normal((n - 1, n))
    Z = np.eye(n)[x] @ B.T  # (2000, 32, n-1)
    fit = mk.core_dynamics(Z)
    assert fit.A.shape == (n - 1, n - 1)
    _, err = match_eigenvalues(fit.eigenvalues, mk.nontrivial_eigenvalues(T))
    assert err.max() < 0.02, (fit.eigenvalues, err)


def test_train_markov_model_second_call_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    data = mk.make_data(mk.lazy_cycle(), n_train=64, n_test=16, length=8)
    run = mk.MarkovRun(seed=0, d_model=16, n_heads=2, d_mlp=32, epochs=1, lr=1e-3)
    first = mk.train_markov_model(run, data, progress=False)
    assert len(list((tmp_path / "markov").glob("*.pt"))) == 1

    def forbidden(*args, **kwargs):
        raise AssertionError("the cached model was rebuilt or retrained")

    monkeypatch.setattr(mk, "train", forbidden)  # the training loop of the build step
    second = mk.train_markov_model(run, data, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    # the loaded model predicts like the trained one
    tokens = data.test[:, :-1]
    with torch.no_grad():
        assert torch.allclose(first(tokens), second(tokens))
    # another run configuration is a different cache entry (and would train)
    with pytest.raises(AssertionError, match="rebuilt or retrained"):
        mk.train_markov_model(mk.MarkovRun(seed=1, d_model=16, n_heads=2, d_mlp=32, epochs=1), data, progress=False)


def test_train_markov_models_in_two_processes_equals_training_here(tmp_path, monkeypatch):
    """Three runs (both architectures) trained two at a time in worker processes give the
    parameters of training each in this process with one thread, bit for bit; a second
    call trains nothing."""
    data = mk.make_data(mk.lazy_cycle(), n_train=64, n_test=16, length=8)
    runs = [mk.MarkovRun(seed=s, d_model=16, n_heads=2, d_mlp=32, epochs=1, architecture=a)
            for s, a in ((0, "paper"), (1, "paper"), (2, "pre-ln"))]
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "here"))
    with torch_threads(1):
        here = [mk.train_markov_model(r, data, progress=False) for r in runs]
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "workers"))
    there = mk.train_markov_models(runs, data, workers=2)
    assert len(list((tmp_path / "workers" / "markov").glob("*.pt"))) == 3
    for a, b in zip(here, there):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    monkeypatch.setattr(mk, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    mk.train_markov_models(runs, [data] * 3, workers=2)  # all cached: loads, never trains
    with pytest.raises(ValueError, match="3 runs but 2 data sets"):
        mk.train_markov_models(runs, [data] * 2)


def test_markov_run_architecture_is_validated_and_sets_the_model():
    from ace_utils.models.paper import PaperModelConfig

    assert mk.MarkovRun(seed=0).architecture == "paper" == mk.ARCHITECTURES[0]
    with pytest.raises(ValueError, match="architecture"):
        mk.MarkovRun(seed=0, architecture="post-ln")
    cfg = mk.MarkovRun(seed=3).model_config(4, 32)
    assert isinstance(cfg, PaperModelConfig) and (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp) == (1, 64, 4, 256)
    assert (cfg.d_vocab, cfg.n_outputs, cfg.n_positions, cfg.dropout, cfg.seed) == (4, 4, 64, 0.1, 3)
    native = mk.MarkovRun(seed=3, architecture="pre-ln").model_config(4, 32)
    assert not isinstance(native, PaperModelConfig) and native.n_ctx == 31
    # dropout and variant: the paper's values stay out of the dict (cache keys unchanged)
    from ace_utils.models.paper import ModelVariant

    assert set(mk.MarkovRun(seed=3).to_dict()) == {"seed", "architecture", "n_layers", "d_model", "n_heads", "d_mlp",
                                                   "lr", "batch_size", "epochs", "weight_decay"}
    pre = mk.MarkovRun(seed=3, dropout=0.0, variant=ModelVariant(norm="pre"))
    assert pre.to_dict()["dropout"] == 0.0 and pre.to_dict()["variant"]["norm"] == "pre"
    cfg = pre.model_config(4, 32)
    assert cfg.dropout == 0.0 and cfg.variant == ModelVariant(norm="pre")
    with pytest.raises(ValueError, match="architecture='paper' only"):
        mk.MarkovRun(seed=3, architecture="pre-ln", dropout=0.0)


@pytest.mark.parametrize("architecture", mk.ARCHITECTURES)
def test_both_architectures_train_and_read_out_linearly_at_the_ace_hook(tmp_path, monkeypatch, architecture):
    from ace_utils.models import readout_bias, readout_matrix
    from ace_utils.models.paper import PaperTransformer

    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    data = mk.make_data(mk.lazy_cycle(), n_train=64, n_test=16, length=8)
    run = mk.MarkovRun(seed=0, architecture=architecture, d_model=16, n_heads=2, d_mlp=32, epochs=2, lr=1e-3)
    model = mk.train_markov_model(run, data, progress=False)
    assert isinstance(model, PaperTransformer) == (architecture == "paper") and not model.training
    again = mk.train_markov_model(run, data, progress=False)  # from the cache, same weights
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    tokens = data.test[:, :-1]
    logits, cache = model.run_with_cache(tokens, names_filter=mk.ACE_HOOK)
    recon = cache[mk.ACE_HOOK] @ readout_matrix(model).T + readout_bias(model)
    torch.testing.assert_close(recon, logits, rtol=0, atol=1e-5)
    # removing everything at the ACE hook leaves the bias alone: the constant prediction argmax(b)
    everything = torch.eye(16, dtype=torch.float64)
    acc = mk.intervention_accuracy(model, data, everything, "remove")
    majority = float((data.test[:, 1:] == readout_bias(model).argmax()).double().mean())
    assert acc == pytest.approx(majority, abs=1e-12)


def test_training_the_paper_model_is_deterministic_and_uses_dropout(tmp_path, monkeypatch):
    import dataclasses

    from ace_utils.models.paper import PaperTransformer, paper_optimizer
    from ace_utils.models.training import train
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    data = mk.make_data(mk.lazy_cycle(), n_train=64, n_test=16, length=8)
    run = mk.MarkovRun(seed=1, d_model=16, n_heads=2, d_mlp=32, epochs=2, lr=1e-3)
    a = mk.train_markov_model(run, data, progress=False)
    torch.manual_seed(12345)  # the global RNG before training does not matter: training seeds it
    b = mk.train_markov_model(run, data, progress=False, refresh=True)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    def fit(dropout: float, seed: int) -> list[torch.Tensor]:
        m = PaperTransformer(dataclasses.replace(run.model_config(4, 8), dropout=dropout))
        train(m, mk._loss, lambda e: [data.train], epochs=1, optimizer_factory=lambda m: paper_optimizer(m, 1e-3, 0.0),
              seed=seed, progress=False)
        return list(m.state_dict().values())

    same = lambda u, v: all(torch.equal(x, y) for x, y in zip(u, v))  # noqa: E731
    assert same(fit(0.1, 1), fit(0.1, 1))
    assert not same(fit(0.1, 1), fit(0.1, 2))  # dropout masks come from the seeded RNG
    assert same(fit(0.0, 1), fit(0.0, 2))  # and are the only randomness of a step
