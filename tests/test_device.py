"""The ``device`` parameter and the device code path.

The device code path is the same functions the CPU runs, with the tensors placed elsewhere and
(off the CPU, or on request here) the batched program. Every test below runs on the CPU;
the ones parametrised over ``DEVICES`` also run on CUDA where a CUDA device is present
(``benchmarks/gpu.py`` runs this file first on a GPU machine).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ace_utils.book.cache import config_key
from ace_utils.book.params import Device, ParameterError, validate
from ace_utils.models import device as dev
from ace_utils.models import training
from ace_utils.tasks import agreement as ag
from ace_utils.tasks.agreement import training as ag_training
from ace_utils.tasks import grokking_time as gt
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod
from ace_utils.tasks.modular import training as mod_training

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.py"))
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# --------------------------------------------------------------------------- the parameter


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.resolve_device("cpu") == "cpu"
    assert dev.resolve_device("auto") == "cpu"
    with pytest.raises(ValueError) as err:
        dev.resolve_device("cuda")
    message = str(err.value)
    assert "'device'" in message and "'cuda'" in message and "\n" not in message
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == "cuda"
    assert dev.resolve_device("cuda") == "cuda"
    for bad in ("gpu", "cuda:0", "", None, 0):
        with pytest.raises(ValueError, match=r"'cpu', 'cuda', 'auto'"):
            dev.resolve_device(bad)


def test_device_parameter_fails_at_once_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = {"device": Device()}
    assert validate(spec, {"device": "auto"}) == {"device": "cpu"}
    for bad, words in (("tpu", ("'device'", "'cpu', 'cuda', 'auto'")), ("cuda", ("'device'", "no CUDA device"))):
        with pytest.raises(ParameterError) as err:
            validate(spec, {"device": bad})
        assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_takes_a_real_device(path):
    """Each chapter has a ``device = "cpu"`` parameter, checks it with the one check and uses
    the resolved value from then on."""
    text = path.read_text()
    params = text.split('# %% tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    assert re.search(r'^device = "cpu"  # ', params, re.M), "no device parameter defaulting to 'cpu'"
    assert '"device": Device()' in text
    assert re.search(r'^device = P\["device"\]', text, re.M), "the resolved device is not used"
    assert 'Choice("cpu", "cuda"' not in text


# --------------------------------------------------------------------------- placement and keys


def test_cpu_placement_is_the_identity():
    x = torch.arange(6)
    assert dev.to_device(x, "cpu") is x
    data = mod.make_data(11)
    assert data.to("cpu") is data
    assert dev.cache_tag("cpu") == {} and dev.cache_tag(torch.device("cpu")) == {}
    assert dev.cache_tag("cuda") == {"device": "cuda"} and dev.cache_tag("cuda:1") == {"device": "cuda"}
    assert dev.batched_default("cpu") is False and dev.batched_default("cuda") is True


def test_cache_keys_keep_the_device_kinds_apart():
    """The CPU program keeps the keys it always had; another device kind, or the batched
    program, gets keys of its own."""
    run = mod.GrokRun(architecture="paper", n_models=1, p=11, epochs=2)
    assert mod._program("cpu", None)[2] == {}
    assert mod._program("cpu", True)[2] == {"program": "batched"}
    assert mod._program("cuda", None)[2] == {"device": "cuda", "program": "batched"}
    paths = {mod.resumable_path(run), mod.resumable_path(run, "cpu", True), mod.resumable_path(run, "cuda")}
    assert len(paths) == 3
    data = mk.make_data(mk.lazy_cycle(), n_train=20, n_test=20)
    m_run = mk.MarkovRun(seed=0)
    assert "device" not in mk._model_key(m_run, data)
    assert config_key(mk._model_key(m_run, data)) != config_key(mk._model_key(m_run, data, "cuda"))
    a_run = ag.AgreementRun(1, 16)
    assert ag._run_key(a_run) == ag.asdict(a_run)
    assert ag.partial_state_path(a_run) != ag.partial_state_path(a_run, "cuda")


# --------------------------------------------------------------------------- the batched program


def _short_run(**kw) -> mod.GrokRun:
    base = dict(architecture="paper", n_models=2, p=23, epochs=6, eval_every=3, checkpoint_epochs=(), branch_epoch=0)
    return mod.GrokRun(**(base | kw))


def test_batched_program_trains_the_papers_model_as_the_module_does():
    """Without dropout the batched forward is the module's up to float32 round-off: the logged
    losses agree to 1e-5 and the parameters after six AdamW steps to 1e-3."""
    run = _short_run(dropout=0.0)
    data = mod.make_data(run.p)
    out = {}
    for batched in (False, True):
        params = mod.init_stacked(run)
        out[batched] = params, mod.train_stacked(run, data, params, start_epoch=0, end_epoch=run.epochs,
                                                 weight_decay=1.0, batched=batched)
    for k in ("train_loss", "test_loss"):
        np.testing.assert_allclose(out[True][1][k], out[False][1][k], atol=1e-5)
    for k in ("train_acc", "test_acc"):
        assert np.abs(out[True][1][k] - out[False][1][k]).max() <= 2 / 264
    for k, v in out[True][0].items():
        torch.testing.assert_close(v, out[False][0][k], atol=1e-3, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_dropout_streams_are_per_model(device):
    """With dropout, model 0 of a stack of two trains as model 0 alone: the same dropout masks and
    batches, so the same numbers up to the round-off of a batched matrix product over two models
    instead of one (bit for bit on some CPUs; 6e-5 in the parameters after four epochs with AVX2
    kernels on an Intel Xeon). Another dropout stream and batch order moves them by 8e-3."""
    data = mod.make_data(23)
    logs, params = [], []
    for n in (2, 1):
        run = _short_run(n_models=n, epochs=4, eval_every=2)
        p = mod.init_stacked(run, device=device)
        logs.append(mod.train_stacked(run, data, p, start_epoch=0, end_epoch=4, weight_decay=1.0, batched=True))
        params.append(p)
    for k in params[1]:
        torch.testing.assert_close(params[0][k][:1], params[1][k], atol=1e-3, rtol=0)
    np.testing.assert_allclose(logs[0]["train_loss"][:, :1], logs[1]["train_loss"], atol=1e-5, rtol=0)
    other = mod.init_stacked(run, device=device)  # the tolerance tells streams apart
    mod.train_stacked(run, data, other, start_epoch=0, end_epoch=4, weight_decay=1.0, batched=True, stream=1)
    assert max(float((other[k] - params[1][k]).abs().max()) for k in other) > 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_batched_run_in_segments_equals_one_run(device, cache, tmp_path):
    """The batched program's state (optimizer, one dropout generator per model) carries across
    segments: a resumable run equals the uninterrupted one, and both come back on the host."""
    run = _short_run(epochs=8, eval_every=2, checkpoint_epochs=(0, 4, 8), branch_epoch=4)
    whole = mod.run_experiment(run, device=device, batched=True)
    parts = mod.run_experiment_resumable(run, tmp_path / "state.pt", segment_epochs=2, device=device, batched=True)
    for br in ("main", "branch"):
        for k in ("train_loss", "test_acc"):
            np.testing.assert_array_equal(whole[br]["log"][k], parts[br]["log"][k])
        for k in ("r_core", "test_acc", "keep_acc"):
            np.testing.assert_array_equal(whole[br]["ckpt"][k], parts[br]["ckpt"][k])
    assert all(v.device.type == "cpu" for v in whole["final_params"].values())
    torch.testing.assert_close(whole["final_params"], parts["final_params"], atol=0, rtol=0)


def test_run_models_batched_has_the_per_model_layout(cache):
    """One batched stack in this process gives the record the per-model processes give
    (same keys and shapes), under cache entries of its own."""
    run = _short_run(epochs=4, eval_every=2, checkpoint_epochs=(0, 4), branch_epoch=2)
    per_model = mod.run_models(run, "main", workers=1)
    stacked = mod.run_models(run, "main", device="cpu", batched=True)
    assert set(per_model) == set(stacked)
    for k, v in per_model["main"]["log"].items():
        assert np.shape(v) == np.shape(stacked["main"]["log"][k]), k
    for k, v in per_model["main"]["ckpt"].items():
        assert v.shape[:2] == stacked["main"]["ckpt"][k].shape[:2], k
    branch = mod.run_models(run, "branch", device="cpu", batched=True)
    assert branch["branch"]["log"]["train_loss"].shape[1] == 2
    assert len(list((cache / "modular").glob("*.pt"))) == 2 + 1 + 1  # two one-model mains, the batched main and branch


@pytest.mark.parametrize("device", DEVICES)
def test_checkpoint_analysis_on_the_device_equals_the_cpus(device):
    run = _short_run(n_models=1)
    params = mod.init_stacked(run)
    data = mod.make_data(run.p)
    on_cpu = mod.analyse_checkpoint(mod.to_models(params, run)[0], data)
    there = mod.analyse_checkpoint(mod.to_models(params, run, device)[0], data)
    if device == "cpu":  # the same function with the same data: the same numbers
        assert all(np.array_equal(on_cpu[k], there[k], equal_nan=True) for k in ("keep_acc", "remove_acc", "energies"))
    for k in ("r_energy", "r_nec", "r_suf", "r_core"):  # elsewhere float32 forwards round differently
        assert abs(on_cpu[k] - there[k]) <= 1, k
    np.testing.assert_allclose(there["keep_acc"], on_cpu["keep_acc"], atol=2 / len(data.test_y))


def test_grokking_stacks_merge_without_changing_a_run():
    specs = gt.sweep_specs(seed=0, n_seeds=2, modulus_seeds=1, omegas=(1.0, 3.0), moduli=(23,), modulus_omega=3.0,
                           wd_max_steps=30, p_max_steps=30, eval_every=10, wd_p=23)
    singles = gt.single_runs(specs["wd"])
    stacks, members = gt.merge_stacks(singles + specs["modulus"])
    assert [len(s.seeds) for s in stacks] == [4, 1] and members == [[0, 1, 2, 3], [4]]
    assert stacks[0].omegas == (1.0, 1.0, 3.0, 3.0)
    level = 0.2  # low enough for the short runs to pass it
    singles = [replace(s, level=level) for s in singles]
    apart = [gt.train_until_grokked(s)[0][0] for s in singles]
    together, _ = gt.train_until_grokked(gt.merge_stacks(singles)[0][0])
    assert [(r.step_mem, r.step_grok, r.seed, r.omega) for r in apart] == \
           [(r.step_mem, r.step_grok, r.seed, r.omega) for r in together]


def test_run_sweeps_merged_returns_the_runs_in_order(cache):
    specs = [gt.SweepSpec(p=23, omegas=(w,), seeds=(s,), max_steps=20, eval_every=10, architecture="paper")
             for w in (1.0, 2.0) for s in (0, 1)]
    runs, timing = gt.run_sweeps(specs, device="cpu", merged=True)
    assert [(r.omega, r.seed) for r in runs] == [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert timing["model_steps"] == 4 * 20


# --------------------------------------------------------------------------- the other tasks


@pytest.mark.parametrize("device", DEVICES)
def test_markov_model_trains_and_is_read_on_the_device(device, cache):
    data = mk.make_data(mk.lazy_cycle(), n_train=128, n_test=64)
    run = mk.MarkovRun(seed=0, lr=1e-3, epochs=1)
    model = mk.train_markov_model(run, data, progress=False, device=device)
    assert all(p.device.type == device for p in model.parameters())
    res, H = mk.markov_core(model, data)
    assert H.device.type == device and res.basis.device.type == device
    acc = mk.intervention_accuracy(model, data, res.core(3), "remove", centred=True)
    spec = mk.core_spectrum(res, H, data)
    assert 0.0 <= acc <= 1.0 and spec.eigenvalues.shape == (3,)
    again = mk.train_markov_model(run, data, progress=False, device=device)  # from the cache
    torch.testing.assert_close(again.state_dict(), model.state_dict(), atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_agreement_training_runs_on_the_device(device):
    run = ag.AgreementRun(n_layers=1, d_model=16, steps=4, batch_size=4, n_sentences=60)
    tm = ag.train_agreement_model(run, device=device)
    assert len(tm.losses) == 4 and all(isinstance(x, float) for x in tm.losses)
    assert all(v.device.type == "cpu" for v in tm.state_dict.values())
    if device == "cpu":
        same = ag.train_agreement_model(run)
        assert same.losses == tm.losses


# --------------------------------------------------------------------------- no host sync per step


def _no_sync_in_updates(monkeypatch, module, caught: list):
    """Patch ``module.run_loop`` so that every training update runs under CUDA's sync debug mode
    'warn', the warnings of the steps collected in ``caught``."""
    real = training.run_loop

    def checked(update, **kw):
        def watched(t):
            before = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    update(t)
                caught.extend(seen)
            finally:
                torch.cuda.set_sync_debug_mode(before)
        return real(watched, **kw)

    monkeypatch.setattr(module, "run_loop", checked)


@cuda_only
def test_no_training_step_waits_for_the_device(monkeypatch, cache):
    """No line of the package makes a training step wait for the device (a synchronising call
    inside a library the step calls, e.g. Hugging Face's model, is reported, not failed)."""
    caught: list = []
    for module in (mod_training, gt, training, ag_training):
        _no_sync_in_updates(monkeypatch, module, caught)
    run = _short_run(epochs=3, eval_every=3)
    params = mod.init_stacked(run, device="cuda")
    mod.train_stacked(run, mod.make_data(run.p), params, start_epoch=0, end_epoch=3, weight_decay=1.0)
    spec = gt.SweepSpec(p=23, omegas=(1.0, 2.0), seeds=(0, 1), max_steps=20, eval_every=20, architecture="paper")
    gt.train_until_grokked(spec, device="cuda")
    mk.train_markov_model(mk.MarkovRun(seed=0, lr=1e-3, epochs=1), mk.make_data(mk.lazy_cycle(), n_train=128, n_test=64),
                          progress=False, device="cuda")
    ag.train_agreement_model(ag.AgreementRun(n_layers=1, d_model=16, steps=3, batch_size=4, n_sentences=60),
                             device="cuda")
    syncs = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if "synchroniz" in str(w.message).lower()]
    ours = [s for s in syncs if "ace_utils" in s]
    print("synchronising calls in libraries the steps call:", sorted(set(syncs) - set(ours)) or "none")
    assert not ours, ours
