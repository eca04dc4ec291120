"""Tests for ace_utils.tasks.modular (chapter 03_grokking_core)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ace_utils.method.ace import ace, observability_from_readout
from ace_utils.method.interventions import subspace_hook
from ace_utils.models import readout_matrix
from ace_utils.models.training import torch_threads
from ace_utils.tasks import modular as mod


@pytest.fixture(scope="module")
def data():
    return mod.make_data(53, 0.5, 42)


def test_make_data_split(data):
    assert data.train_x.shape == (1404, 2) and data.test_x.shape == (1405, 2)
    allx = torch.cat([data.train_x, data.test_x])
    codes = allx[:, 0] * 53 + allx[:, 1]
    assert torch.equal(torch.sort(codes).values, torch.arange(53 * 53))  # a partition of all pairs
    assert torch.equal(data.train_y, (data.train_x[:, 0] + data.train_x[:, 1]) % 53)
    again = mod.make_data(53, 0.5, 42)
    assert torch.equal(again.train_x, data.train_x)
    assert not torch.equal(mod.make_data(53, 0.5, 43).train_x, data.train_x)


def _small_run(**kw):
    return mod.GrokRun(**{"n_models": 2, "d_model": 32, "n_heads": 4, "d_mlp": 64, "p": 11, **kw})


def test_forward_last_equals_bridge():
    run = _small_run()
    params = mod.init_stacked(run)
    g = torch.Generator().manual_seed(0)
    params = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in params.items()}  # non-trivial LN/bias values
    bridges = mod.to_models(params, run)
    d = mod.make_data(11, 0.5, 42)
    logits = mod.forward_last(params, d.test_x.expand(2, -1, -1), run.n_heads)
    for i, m in enumerate(bridges):
        torch.testing.assert_close(logits[i], mod.bridge_last_logits(m, d.test_x), atol=2e-5, rtol=1e-5)
    assert not torch.allclose(logits[0], logits[1])  # the two seeds differ


def test_stacked_training_equals_single_model_training():
    # at one thread, as every training process runs: with two threads under AVX2 kernels the
    # batched and the single matmuls reduce in other orders, and AdamW's normalisation turns
    # those roundings in near-zero gradients into differences of up to 8.2e-5 (measured, Dec 2026)
    d = mod.make_data(11, 0.5, 42)
    run2 = _small_run(dropout=0.0, eval_every=1, checkpoint_epochs=())
    run1 = replace(run2, n_models=1)
    p2, p1 = mod.init_stacked(run2), mod.init_stacked(run1)
    with torch_threads(1):
        mod.train_stacked(run2, d, p2, start_epoch=0, end_epoch=3, weight_decay=1.0)
        mod.train_stacked(run1, d, p1, start_epoch=0, end_epoch=3, weight_decay=1.0)
    for k in p1:
        torch.testing.assert_close(p2[k][:1], p1[k], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(p2["embed.weight"][0], mod.init_stacked(run1)["embed.weight"][0])  # it trained


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_is_deterministic_with_dropout(precision):
    d = mod.make_data(11, 0.5, 42)
    run = _small_run(dropout=0.1, precision=precision, checkpoint_epochs=())
    a, b = mod.init_stacked(run), mod.init_stacked(run)
    la = mod.train_stacked(run, d, a, start_epoch=0, end_epoch=2, weight_decay=1.0)
    mod.train_stacked(run, d, b, start_epoch=0, end_epoch=2, weight_decay=1.0)
    for k in a:
        assert torch.equal(a[k], b[k])
    assert la["test_acc"].shape == (2, 2) and list(la["epoch"]) == [0, 2]


@pytest.mark.parametrize("architecture", ["pre-ln", "paper"])
def test_scan_matches_hooks(data, architecture):
    from ace_utils.models import readout_bias

    run = mod.GrokRun(n_models=1, architecture=architecture)
    model = mod.to_models(mod.init_stacked(run), run)[0]
    if architecture == "paper":
        with torch.no_grad():
            model.unembed.bias.mul_(50.0)  # make the bias decide: the scan must keep it as the hooks do
    H = mod.last_position_activations(model, data.test_x)
    W = readout_matrix(model)
    res = ace(H, observability_from_readout(W), threshold=0.99)
    keep, remove, base = mod.scan_keep_remove(H, res.basis, W, data.test_y, readout_bias(model))
    y = data.test_y
    assert base == pytest.approx(float((mod.bridge_last_logits(model, data.test_x).argmax(1) == y).double().mean()))
    for r in (5, 40):
        for mode, arr in (("keep", keep), ("remove", remove)):
            hook = subspace_hook(res.core(r).float(), mode, positions=-1)
            out = mod.bridge_last_logits(model, data.test_x, [(mod.ACE_HOOK, hook)])
            assert float((out.argmax(1) == y).double().mean()) == pytest.approx(arr[r], abs=1.5 / len(y))
    assert remove[0] == base and keep.shape == (129,)


def test_redundancy_profile_known_answers(data):
    """Scaling the readout by c = 2 (exact in floating point) scales the margin and W_U's norm by c and leaves every
    accuracy, dimension and energy share alone; the energy outside the energy rank is below
    the threshold's complement; the norm is all parameters' norm."""
    run = mod.GrokRun(n_models=1, architecture="paper")
    model = mod.to_models(mod.init_stacked(run), run)[0]
    a = mod.redundancy_profile(model, data)
    assert 0 < a["energy_beyond"] <= 1 - mod.ENERGY_THRESHOLD
    assert a["param_norm"] == pytest.approx(float(torch.nn.utils.parameters_to_vector(model.parameters()).double().norm()))
    scan = mod.analyse_checkpoint(model, data)
    assert a["acc_without_energy"] == scan["remove_acc"][scan["r_energy"]] and a["r_nec"] == scan["r_nec"]
    with torch.no_grad():
        model.unembed.weight.mul_(2.0)
        model.unembed.bias.mul_(2.0)
    b = mod.redundancy_profile(model, data)
    assert b["median_margin"] == pytest.approx(2 * a["median_margin"], rel=1e-12)
    assert b["readout_norm"] == pytest.approx(2 * a["readout_norm"], rel=1e-12)
    for key in ("r_energy", "r_nec", "r_suf", "test_acc", "acc_without_energy"):
        assert b[key] == a[key], key
    assert b["energy_beyond"] == pytest.approx(a["energy_beyond"], rel=1e-6)


def test_core_dimensions_known_answer():
    D, p = 6, 53
    keep = np.array([np.nan, 0.1, 0.5, 0.9995, 1.0, 1.0, 1.0])
    remove = np.array([1.0, 0.9, 0.5, 0.2, 0.03, 0.01, 0.0])
    dims = mod.core_dimensions(keep, remove, 1.0, r_energy=5, p=p)
    assert dims == {"r_energy": 5, "r_nec": 4, "r_suf": 3, "r_core": 5}
    dims = mod.core_dimensions(keep, np.ones(D + 1), 1.0, r_energy=2, p=p)
    assert dims["r_nec"] == D + 1 and dims["r_core"] == D + 1  # never necessary


def _fourier_protos(p, freqs, noise=0.0, seed=0):
    c = np.arange(p)
    cols = []
    for k in freqs:
        cols += [np.cos(2 * np.pi * k * c / p), np.sin(2 * np.pi * k * c / p)]
    X = np.stack(cols, 1)
    rng = np.random.default_rng(seed)
    return X @ rng.normal(size=(X.shape[1], X.shape[1] + 3)) + noise * rng.normal(size=(p, X.shape[1] + 3))


def test_shift_operator_recovers_rotations():
    p = 53
    # scale 5: like real core coordinates (norm ~10), so the absolute ridge of 1 barely shrinks
    op = mod.shift_operator(5 * _fourier_protos(p, [1, 7, 20]), p)
    assert op["k"] == 6 and op["modes"] == 3
    assert op["r2_h"] > 0.99
    ang = np.sort(np.abs(np.angle(op["eigenvalues"])))
    np.testing.assert_allclose(ang[::2], 2 * np.pi * np.array([1, 7, 20]) / p, atol=0.02)
    np.testing.assert_allclose(np.abs(op["eigenvalues"]), 1.0, atol=0.01)  # ridge 1 shrinks slightly


def test_shift_operator_random_prototypes_are_not_rotations():
    p = 53
    rng = np.random.default_rng(1)
    op = mod.shift_operator(rng.normal(size=(p, 10)), p)
    assert op["r2_h"] < 0.5
    assert op["modes"] <= 2


def test_grok_epoch_and_schedule():
    e = np.array([0, 10, 20, 30])
    assert mod.grok_epoch(e, np.array([0.0, 0.5, 0.995, 1.0])) == 20
    assert mod.grok_epoch(e, np.array([0.0, 0.5, 0.9, 0.98])) is None
    s = mod.checkpoint_schedule(3000, 100)
    assert s[:3] == (0, 100, 200) and 2000 in s and 2500 in s and 2100 not in s and s[-1] == 3000
    assert mod.checkpoint_schedule(1500, 50)[-2:] == (1450, 1500)


def test_run_experiment_shapes_cache_and_branch(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    run = _small_run(epochs=4, eval_every=2, checkpoint_epochs=(0, 2, 4), branch_epoch=2)
    out = mod.run_experiment(run, progress=False)
    main, branch = out["main"], out["branch"]
    assert main["ckpt_epoch"].tolist() == [0, 2, 4] and branch["ckpt_epoch"].tolist() == [2, 4]
    assert main["ckpt"]["keep_acc"].shape == (3, 2, 33) and main["log"]["test_acc"].shape == (3, 2)
    # the branch starts from the main run's epoch-2 parameters: same analysis at epoch 2
    np.testing.assert_array_equal(branch["ckpt"]["remove_acc"][0], main["ckpt"]["remove_acc"][1])
    # ... and then differs (weight decay 0 vs 1)
    assert not np.array_equal(branch["ckpt"]["energies"][1], main["ckpt"]["energies"][2])
    again = mod.run_experiment(run, progress=False)  # from the cache
    np.testing.assert_array_equal(again["main"]["ckpt"]["energies"], main["ckpt"]["energies"])
    assert len(list(tmp_path.rglob("*.pt"))) == 2  # the main run and the branch, cached apart


def test_precision_is_float32_by_default_and_validated():
    assert mod.GrokRun().precision == "fp32" and mod.preset_run("default").precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        mod.GrokRun(precision="fp16")


def test_run_models_gives_each_models_own_run_whatever_the_workers(tmp_path, monkeypatch):
    """Models trained one per process (2 workers) = the same one-model runs in this process,
    stacked on the model axis; the branch starts from each model's own epoch-2 parameters."""
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    run = _small_run(epochs=4, eval_every=2, checkpoint_epochs=(0, 2, 4), branch_epoch=2)
    par = mod.run_models(run, "main", workers=2)
    singles = [mod.run_main(r) for r in mod.single_runs(run)]
    assert [r.seed for r in mod.single_runs(run)] == run.model_seeds()
    for i, one in enumerate(singles):
        np.testing.assert_array_equal(par["main"]["log"]["test_loss"][:, i], one["main"]["log"]["test_loss"][:, 0])
        np.testing.assert_array_equal(par["main"]["ckpt"]["energies"][:, i], one["main"]["ckpt"]["energies"][:, 0])
        for k in one["final_params"]:
            assert torch.equal(par["final_params"][k][i], one["final_params"][k][0])
    seq = mod.run_models(run, "main", workers=1)  # now from the cache
    np.testing.assert_array_equal(seq["main"]["ckpt"]["r_core"], par["main"]["ckpt"]["r_core"])
    br = mod.run_models(run, "branch", workers=2)
    assert br["branch"]["ckpt_epoch"].tolist() == [2, 4] and br["branch"]["log"]["test_acc"].shape[1] == 2
    np.testing.assert_array_equal(br["branch"]["ckpt"]["remove_acc"][0], par["main"]["ckpt"]["remove_acc"][1])
    assert mod.run_models(replace(run, branch_epoch=0), "branch") is None


# --------------------------------------------------------------------------- the paper's models


def test_paper_architecture_run_builds_the_papers_module():
    from ace_utils.models.paper import PaperModelConfig, PaperTransformer

    run = _small_run(architecture="paper")
    cfg = mod.model_config(run, 7)
    assert isinstance(cfg, PaperModelConfig) and (cfg.d_vocab, cfg.n_outputs, cfg.dropout, cfg.seed) == (11, 11, 0.1, 7)
    params = mod.init_stacked(run)
    ref = [PaperTransformer(mod.model_config(run, s)).state_dict() for s in run.model_seeds()]
    assert list(params) == list(ref[0]) and "unembed.bias" in params  # every parameter, the readout bias too
    assert all(torch.equal(params[k][i], ref[i][k]) for i in range(2) for k in params)
    models = mod.to_models(params, run)
    assert all(isinstance(m, PaperTransformer) and not m.training for m in models)
    for bad in (dict(architecture="post-ln"), dict(architecture="paper", precision="bf16")):
        with pytest.raises(ValueError, match="architecture|precision"):
            _small_run(**bad)


def test_paper_last_logits_and_gradients_are_the_modules():
    run = _small_run(architecture="paper")
    d = mod.make_data(11, 0.5, 42)
    params = {k: v.clone().requires_grad_(True) for k, v in mod.init_stacked(run).items()}
    models = mod.to_models({k: v.detach() for k, v in params.items()}, run)
    x = d.train_x[:20].expand(2, -1, -1)
    logits = mod.paper_last_logits(params, x, run.n_heads)
    for i, m in enumerate(models):
        torch.testing.assert_close(logits[i], m(x[i])[:, -1], rtol=0, atol=0)
    # gradients into the stacked tensors are each module's own (train mode, the same dropout masks)
    states = []
    with torch.random.fork_rng(devices=[]):
        for s in run.model_seeds():
            torch.manual_seed(s)
            states.append(torch.get_rng_state())
    first = list(states)
    with torch.random.fork_rng(devices=[]):
        out = mod.paper_last_logits(params, x, run.n_heads, run.dropout, states)
    torch.nn.functional.cross_entropy(out.reshape(-1, 11), d.train_y[:20].repeat(2), reduction="sum").backward()
    for i, m in enumerate(models):
        m.train()
        m.zero_grad()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(first[i])
            own = m(x[i])[:, -1]
        torch.nn.functional.cross_entropy(own, d.train_y[:20], reduction="sum").backward()
        for k, p in m.named_parameters():
            torch.testing.assert_close(params[k].grad[i], p.grad, rtol=0, atol=0)
        torch.testing.assert_close(out[i], own, rtol=0, atol=0)
    assert not torch.equal(out[0], logits[0])  # dropout was on


def test_train_stacked_on_paper_models_is_training_the_module_itself():
    run = _small_run(architecture="paper", n_models=1, seed=5, checkpoint_epochs=(), eval_every=1)
    d = mod.make_data(11, 0.5, 42)
    params = mod.init_stacked(run)
    module = mod.to_models(params, run)[0].train()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    log = mod.train_stacked(run, d, params, start_epoch=0, end_epoch=2, weight_decay=1.0)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's global RNG is left alone
    # the same two epochs by hand on the module: AdamW, the same batches and dropout seed
    opt = torch.optim.AdamW(module.parameters(), lr=run.lr, weight_decay=1.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed * 7919)
        for epoch in range(2):
            perm = mod._batch_perms(run, epoch, d.train_x.shape[0])[0]
            for s in range(0, d.train_x.shape[0], run.batch_size):
                idx = perm[s : s + run.batch_size]
                loss = torch.nn.functional.cross_entropy(module(d.train_x[idx])[:, -1], d.train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    for k, p in module.named_parameters():
        assert torch.equal(params[k][0], p.detach()), k
    module.eval()
    acc = float((module(d.test_x)[:, -1].argmax(-1) == d.test_y).float().mean())
    assert log["test_acc"][-1, 0] == pytest.approx(acc, abs=1e-7)


@pytest.mark.parametrize("architecture", ["paper", "pre-ln"])
def test_resumable_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, architecture):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    run = _small_run(architecture=architecture, epochs=40, eval_every=10, checkpoint_epochs=(0, 10, 20, 30, 40),
                     branch_epoch=20)
    whole = mod.run_experiment(run)
    path = tmp_path / "long.pt"
    assert mod.run_experiment_resumable(run, path, segment_epochs=10, max_segments=3) is None  # interrupted
    assert path.exists()
    parts = mod.run_experiment_resumable(run, path, segment_epochs=10)  # continued in a later call
    for stage in ("main", "branch"):
        a, b = whole[stage], parts[stage]
        assert a["ckpt_epoch"].tolist() == b["ckpt_epoch"].tolist()
        for k in mod.LOG_KEYS:
            assert np.array_equal(a["log"][k], b["log"][k]), (stage, k)
        for k in a["ckpt"]:
            assert np.array_equal(a["ckpt"][k], b["ckpt"][k], equal_nan=True), (stage, k)
    for k in whole["final_params"]:
        assert torch.equal(whole["final_params"][k], parts["final_params"][k])
        assert torch.equal(whole["branch_params"][k], parts["branch_params"][k])
    # the finished file answers at once; another run's file is refused
    again = mod.run_experiment_resumable(run, path, segment_epochs=10)
    assert np.array_equal(again["main"]["log"]["test_acc"], parts["main"]["log"]["test_acc"])
    with pytest.raises(ValueError, match="another run"):
        mod.run_experiment_resumable(replace(run, seed=1), path, segment_epochs=10)
    with pytest.raises(ValueError, match="multiple of eval_every"):
        mod.run_experiment_resumable(run, tmp_path / "x.pt", segment_epochs=15)


def test_in_sample_r2_known_answers():
    p = 53
    c = np.arange(p)[:, None]
    circles = np.concatenate([np.cos(2 * np.pi * k * c / p) for k in (1, 4, 9)]
                             + [np.sin(2 * np.pi * k * c / p) for k in (1, 4, 9)], axis=1)
    assert mod.in_sample_r2(circles @ np.random.default_rng(0).standard_normal((6, 20)) + 3.0, p) == pytest.approx(1.0, abs=1e-9)
    noise = np.random.default_rng(1).standard_normal((p, 10))
    assert mod.in_sample_r2(noise, p) < 0.5  # 10 random coordinates: no shift structure
    # the reference code's pooled definition, computed by hand on a 2-D example
    X = noise[:, :2] - noise[:, :2].mean(0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    Xk, Yk = X @ Vt.T, np.roll(X, -1, axis=0) @ Vt.T
    A = np.linalg.lstsq(Xk, Yk, rcond=None)[0]
    want = 1 - ((Yk - Xk @ A) ** 2).sum() / ((Yk - Yk.mean(0)) ** 2).sum()
    assert mod.in_sample_r2(noise[:, :2], p) == pytest.approx(want, abs=1e-9)


def test_run_models_resumable_over_calls_equals_run_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path))
    run = _small_run(architecture="paper", epochs=40, eval_every=10, checkpoint_epochs=(0, 20, 40), branch_epoch=20)
    assert mod.run_models_resumable(run, workers=1, segment_epochs=20, max_segments=1) is None  # epochs 0-20
    first = mod.run_models_resumable(run, workers=1, segment_epochs=20, stop_after_main=True)  # 20-40: main done
    assert first["branch"] is None and first["main"]["ckpt_epoch"].tolist() == [0, 20, 40]
    parts = mod.run_models_resumable(run, workers=1, segment_epochs=20)  # the branch 20-40
    assert np.array_equal(first["main"]["log"]["test_acc"], parts["main"]["log"]["test_acc"])
    main, branch = mod.run_models(run, "main", workers=1), mod.run_models(run, "branch", workers=1)
    for a, b in ((main["main"], parts["main"]), (branch["branch"], parts["branch"])):
        for k in mod.LOG_KEYS:
            assert np.array_equal(a["log"][k], b["log"][k]), k
        for k in a["ckpt"]:
            assert np.array_equal(a["ckpt"][k], b["ckpt"][k], equal_nan=True), k
    for k in main["final_params"]:
        assert torch.equal(main["final_params"][k], parts["final_params"][k])


def test_model_variants_train_through_the_modules_own_forward():
    from ace_utils.models.paper import ModelVariant

    variant = ModelVariant(norm="pre", dropout_sites="embed-resid", init="small", readout_bias=False)
    run = _small_run(architecture="paper", variant=variant)
    assert "variant" not in _small_run(architecture="paper").to_dict()  # the paper's runs keep their cache keys
    assert run.to_dict()["variant"]["norm"] == "pre"
    with pytest.raises(ValueError, match="architecture='paper' only"):
        _small_run(variant=variant)
    params = {k: v.clone().requires_grad_(True) for k, v in mod.init_stacked(run).items()}
    assert "ln_final.weight" in params and "unembed.bias" not in params
    models = mod.to_models({k: v.detach() for k, v in params.items()}, run)
    assert all(m.cfg.variant == variant for m in models)
    d = mod.make_data(11, 0.5, 42)
    x = d.train_x[:20].expand(2, -1, -1)
    logits = mod.paper_last_logits(params, x, run.n_heads, variant=variant)
    for i, m in enumerate(models):
        torch.testing.assert_close(logits[i], m(x[i])[:, -1], rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # the paper's module with these parameters: the names do not match
        mod.paper_last_logits(params, x, run.n_heads)
    acc, _ = mod.evaluate_stacked({k: v.detach() for k, v in params.items()}, d.test_x, d.test_y, run.n_heads, variant)
    assert acc.shape == (2,)
    log = mod.train_stacked(replace(run, epochs=2, checkpoint_epochs=(0,)), d, params, start_epoch=0, end_epoch=2,
                            weight_decay=1.0)
    assert log["train_loss"][-1].max() < log["train_loss"][0].min()


def test_fourier_power_share_known_answers():
    p = 53
    a = np.arange(p)[:, None]
    waves = np.hstack([np.cos(2 * np.pi * 3 * a / p), np.sin(2 * np.pi * 7 * a / p)])  # two frequencies
    assert mod.fourier_power_share(waves, top=2) == pytest.approx(1.0)
    assert mod.fourier_power_share(waves, top=1) == pytest.approx(0.5)
    noise = np.random.default_rng(0).standard_normal((p, 400))  # power spread evenly over the 26 frequencies
    assert mod.fourier_power_share(noise, top=5) == pytest.approx(5 / (p // 2), abs=0.03)


def test_readout_scorer_is_the_whole_subspace_end_of_the_scan():
    g = torch.Generator().manual_seed(0)
    H, W, b = torch.randn(200, 8, generator=g), torch.randn(5, 8, generator=g), torch.randn(5, generator=g)
    y = (H @ W.T + b).argmax(1)  # the readout is right on every row
    Q = torch.linalg.qr(torch.randn(8, 3, generator=g)).Q
    score = mod.readout_scorer(H, W, y, b)
    keep, remove, base = mod.scan_keep_remove(H, Q, W, y, b)
    assert (score(Q, "keep"), score(Q, "remove")) == (keep[-1], remove[-1])
    full = torch.eye(8)
    assert score(full, "keep") == base == 1.0  # keeping everything changes nothing
    assert score(full, "remove") == float((b.argmax() == y).double().mean())  # only the bias is left
