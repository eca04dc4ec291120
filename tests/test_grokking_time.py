"""Grokking-time sweeps (ace_utils.tasks.grokking_time): the stacked AdamW is torch's AdamW,
a run does not depend on its stack mates, and the fits recover planted laws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ace_utils.tasks import grokking_time as gt
from ace_utils.tasks import modular as mod


def test_stacked_adamw_equals_torch_adamw_per_run():
    torch.manual_seed(0)
    shapes = {"a": (3, 4), "b": (5,)}
    omegas = [0.5, 3.0]
    init = {k: torch.randn(2, *s) for k, s in shapes.items()}
    grads = [{k: torch.randn(2, *s) for k, s in shapes.items()} for _ in range(5)]
    stacked = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = gt._StackedAdamW(stacked, lr=1e-2, omega=torch.tensor(omegas))
    for g in grads:
        for k in stacked:
            stacked[k].grad = g[k].clone()
        opt.step()
    for i, om in enumerate(omegas):
        ref = {k: v[i].clone().requires_grad_(True) for k, v in init.items()}
        ropt = torch.optim.AdamW(list(ref.values()), lr=1e-2, weight_decay=om)
        for g in grads:
            for k in ref:
                ref[k].grad = g[k][i].clone()
            ropt.step()
        for k in ref:
            torch.testing.assert_close(opt.params[k][i], ref[k].detach(), rtol=1e-6, atol=1e-7)


def test_dropping_a_model_keeps_the_others_state():
    params = {"w": torch.arange(6.0).reshape(3, 2).requires_grad_(True)}
    opt = gt._StackedAdamW(params, lr=0.1, omega=torch.tensor([1.0, 2.0, 3.0]))
    params["w"].grad = torch.ones(3, 2)
    opt.step()
    before = opt.params["w"].detach().clone()
    opt.keep(torch.tensor([0, 2]))
    assert torch.equal(opt.params["w"].detach(), before[[0, 2]])
    assert torch.equal(opt.omega, torch.tensor([1.0, 3.0], dtype=torch.float64))


def test_per_model_dropout_masks_do_not_depend_on_stack_mates():
    run = mod.GrokRun(p=11, n_layers=1, n_models=2)
    params = mod.init_stacked(run)
    x = torch.randint(0, 11, (2, 8, 2))
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    both = mod.forward_last(params, x, 4, 0.1, gens())
    alone = mod.forward_last({k: v[1:] for k, v in params.items()}, x[1:], 4, 0.1, gens()[1:])
    torch.testing.assert_close(both[1:], alone)


def test_init_params_are_the_native_models():
    spec = gt.SweepSpec(p=11, omegas=(1.0, 2.0), seeds=(3, 3))
    params = gt.init_params(spec)
    assert torch.equal(params["embed.weight"][0], params["embed.weight"][1])
    ref = mod.init_stacked(mod.GrokRun(p=11, n_layers=1, n_models=1, seed=3))
    assert torch.equal(params["blocks.0.attn.q.weight"][0], ref["blocks.0.attn.q.weight"][0])


def test_small_modulus_groks_and_result_is_independent_of_stacking():
    # p = 53, batch 512, omega = 8: grokking within ~250 steps (measured)
    kw = dict(p=53, batch_size=512, max_steps=600, eval_every=10)
    alone, _ = gt.train_until_grokked(gt.SweepSpec(omegas=(8.0,), seeds=(1,), **kw))
    both, timing = gt.train_until_grokked(gt.SweepSpec(omegas=(0.1, 8.0), seeds=(0, 1), **kw))
    r = alone[0]
    assert r.step_grok is not None and r.step_mem is not None and r.tau == r.step_grok - r.step_mem >= 0
    assert (both[1].step_mem, both[1].step_grok) == (r.step_mem, r.step_grok)
    assert both[0].step_grok is None and both[0].steps_run == kw["max_steps"]  # omega = 0.1 is far slower
    # the grokked run left the stack: only the slow run kept training after it
    assert timing["model_steps"] == kw["max_steps"] + r.step_grok


def test_power_law_fit_recovers_exponent_and_interval_covers_it():
    rng = np.random.default_rng(0)
    w = np.repeat([2.0, 3.0, 5.0, 8.0], 3)
    tau = 700 * w ** -1.0 * np.exp(rng.normal(0, 0.05, w.size))
    fit = gt.fit_power_law(w, tau)
    assert abs(fit["beta"] + 1) < 0.1
    assert fit["beta_ci"][0] < -1 < fit["beta_ci"][1]
    assert fit["beta_ci"][1] - fit["beta_ci"][0] < 0.3
    assert fit["C"] == pytest.approx(700, rel=0.15)


def test_log_law_fit_recovers_planted_parameters():
    p = np.array([31, 43, 53, 61, 79, 89, 101], float)
    tau = gt.log_law(p, 400.0, 20.0)
    fit = gt.fit_log_law(p, tau)
    assert fit["Omega"] == pytest.approx(400, rel=1e-3)
    assert fit["p_crit"] == pytest.approx(20, rel=1e-3)
    assert fit["r2"] > 0.999
    assert np.all(np.diff(gt.log_law(p, 400.0, 20.0)) < 0)  # decreasing in p


def test_delay_and_units():
    assert gt.delay_steps(100, 350) == 250
    assert gt.delay_steps(None, 350) is None and gt.delay_steps(100, None) is None
    assert gt.harmonics(53) == 27
    assert gt.decay_time_units(np.array([1000]), 1e-3, np.array([2.0]))[0] == pytest.approx(2.0)


def test_paper_model_sweep_equals_a_plain_loop_of_the_module():
    """The stacked sweep on the paper's models (two runs, two weight decays; dropout off,
    since the batched forward draws its masks from its own generators) equals each module
    trained alone with torch.optim.AdamW on the same batches."""
    from ace_utils.models.paper import PaperModelConfig, PaperTransformer

    spec = gt.SweepSpec(p=23, omegas=(0.5, 2.0), seeds=(4, 9), batch_size=100, max_steps=7, eval_every=3,
                        level=2.0, dropout=0.0, architecture="paper")  # level 2: no run leaves the stack
    final: dict = {}
    runs, timing = gt.train_until_grokked(spec, final_params=final)
    assert timing["model_steps"] == 2 * spec.max_steps and all(r.step_grok is None for r in runs)
    data = mod.make_data(spec.p, spec.train_frac, spec.split_seed)
    n = data.train_x.shape[0]
    for i, (omega, s) in enumerate(zip(spec.omegas, spec.seeds)):
        cfg = PaperModelConfig(n_layers=1, d_model=128, n_heads=4, d_mlp=512, d_vocab=spec.p, dropout=0.0, seed=s)
        model = PaperTransformer(cfg).train()
        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=omega)
        batches = torch.Generator().manual_seed(1_000_003 * s + 17)
        order, cursor = torch.randperm(n, generator=batches), 0
        for _ in range(spec.max_steps):
            if cursor >= n:
                order, cursor = torch.randperm(n, generator=batches), 0
            idx = order[cursor : cursor + spec.batch_size]
            cursor += spec.batch_size
            loss = torch.nn.functional.cross_entropy(model(data.train_x[idx])[:, -1], data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for k, v in model.state_dict().items():
            got = final[i][k]
            if k.endswith("in_proj_bias"):
                # the key bias has zero gradient (softmax ignores a constant per query): Adam
                # normalises its round-off, so it wanders differently in the two; no logit sees it
                d = cfg.d_model
                got, v = torch.cat([got[:d], got[2 * d:]]), torch.cat([v[:d], v[2 * d:]])
            # two float32 computations of one model: Adam turns gradient round-off into
            # parameter differences of a small fraction of its largest possible move, lr * steps
            torch.testing.assert_close(got, v, rtol=0, atol=0.01 * spec.lr * spec.max_steps, msg=f"run {i}, {k}")


def test_paper_architecture_needs_float32():
    with pytest.raises(ValueError, match="precision"):
        gt.SweepSpec(architecture="paper", precision="bf16")
    with pytest.raises(ValueError, match="architecture"):
        gt.SweepSpec(architecture="post-ln")


def test_preset_config_and_separate_modulus_seeds():
    cfg = gt.preset_config("default", "paper")
    assert cfg == gt.DEFAULT_PAPER_MODELS and gt.preset_config("default", "pre-ln") == gt.PRESETS["default"]
    assert gt.preset_config("paper", "paper") == gt.PRESETS["paper"]
    with pytest.raises(ValueError, match="preset"):
        gt.preset_config("fast", "paper")
    specs = gt.sweep_specs(seed=1, architecture="paper", **cfg)
    assert [s.seeds for s in specs["wd"]] == [(1000, 1001)] * len(cfg["omegas"])
    assert [s.seeds for s in specs["modulus"]] == [(1000,)] * len(cfg["moduli"])
    assert all(s.architecture == "paper" for v in specs.values() for s in v)


def test_single_runs_split_stacks_and_keep_settings():
    specs = gt.sweep_specs(seed=0, **gt.PRESETS["default"])["wd"]
    single = gt.single_runs(specs)
    assert [(s.omegas, s.seeds) for s in single] == [((w,), (sd,)) for s in specs for w, sd in zip(s.omegas, s.seeds)]
    assert all(s.batch_size == 512 and s.max_steps == specs[0].max_steps for s in single)


def test_run_sweeps_in_two_processes_equals_one_process(tmp_path, monkeypatch):
    # two single-run stacks of 60 steps (p = 31, full batch), in two processes and in this one
    specs = gt.single_runs([gt.SweepSpec(p=31, batch_size=0, max_steps=60, eval_every=10, omegas=(8.0, 6.0), seeds=(1, 2))])
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "two"))
    two, cost_two = gt.run_sweeps(specs, workers=2, first=[1])
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "one"))
    one, cost_one = gt.run_sweeps(specs, workers=1)
    key = [(r.omega, r.seed, r.step_mem, r.step_grok, r.steps_run) for r in two]
    assert key == [(r.omega, r.seed, r.step_mem, r.step_grok, r.steps_run) for r in one]
    assert [r.omega for r in two] == [8.0, 6.0]  # in the order of the specs, whatever ran first
    assert cost_two["model_steps"] == cost_one["model_steps"] > 0


def test_modulus_table_rows():
    summary = {"value": np.array([43.0, 53.0]), "n_grokked": np.array([2, 0]), "n": np.array([2, 2]),
               "mem": np.array([120.0, 90.0]), "mean": np.array([800.0, np.nan]), "std": np.array([50.0, np.nan]),
               "min": np.array([750.0, np.nan]), "max": np.array([850.0, np.nan])}
    fit = {"Omega": 100.0, "p_crit": 40.0}
    lines = gt.modulus_table(summary, fit).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| p | harmonics")
    law = -100.0 * np.log1p(-40.0 / 43.0)
    assert lines[2] == f"| 43 | 22 | 2/2 | 120 | 800 ± 50 | 750-850 | {law:.0f} |"
    assert lines[3] == f"| 53 | 27 | 0/2 | 90 | not grokked | - | {-100.0 * np.log1p(-40.0 / 53.0):.0f} |"
    assert gt.modulus_table({k: v[:1] for k, v in summary.items()}, {"Omega": 1.0, "p_crit": 50.0}).endswith("∞ (p ≤ p_crit) |")
