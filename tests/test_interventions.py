"""Known answers for keep / remove / flip, and their TransformerLens hooks."""

import pytest
import torch

from ace_utils.method.activations import collect_activations, collect_activations_and_gradients
from ace_utils.method.interventions import apply_subspace, random_subspace, subspace_hook


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    Q = random_subspace(10, 3, generator=g)
    h = torch.randn(5, 7, 10, generator=g, dtype=torch.float64)
    mu = torch.randn(10, generator=g, dtype=torch.float64)
    return Q, h, mu


@pytest.mark.parametrize("centred", [False, True])
def test_flip_twice_is_identity_and_negates_core(setup, centred):
    Q, h, mu = setup
    mean = mu if centred else None
    ref = mu if centred else torch.zeros(10, dtype=torch.float64)
    f = apply_subspace(h, Q, "flip", mean)
    torch.testing.assert_close(apply_subspace(f, Q, "flip", mean), h)
    torch.testing.assert_close((f - ref) @ Q, -((h - ref) @ Q))
    # the complement is untouched
    P_perp = torch.eye(10, dtype=torch.float64) - Q @ Q.T
    torch.testing.assert_close((f - ref) @ P_perp, (h - ref) @ P_perp)


@pytest.mark.parametrize("centred", [False, True])
def test_keep_plus_remove_recovers_input(setup, centred):
    Q, h, mu = setup
    mean = mu if centred else None
    ref = mu if centred else 0.0
    kept = apply_subspace(h, Q, "keep", mean)
    removed = apply_subspace(h, Q, "remove", mean)
    torch.testing.assert_close(kept + removed - ref, h)
    # removal leaves no core coordinate; keeping leaves nothing outside the core
    torch.testing.assert_close((removed - ref) @ Q, torch.zeros(5, 7, 3, dtype=torch.float64))
    P_perp = torch.eye(10, dtype=torch.float64) - Q @ Q.T
    torch.testing.assert_close((kept - ref) @ P_perp, torch.zeros(5, 7, 10, dtype=torch.float64))


def test_strength_interpolates(setup):
    Q, h, _ = setup
    half = apply_subspace(h, Q, "flip", strength=0.5)
    torch.testing.assert_close(half, apply_subspace(h, Q, "remove"))  # flipping halfway removes
    torch.testing.assert_close(apply_subspace(h, Q, "keep", strength=0.0), h)
    with pytest.raises(ValueError):
        apply_subspace(h, Q, "erase")


def test_hook_changes_only_requested_positions(setup):
    Q, h, mu = setup
    for positions in (-1, [0, 3], torch.tensor([0, 1, 2, 6, 5])):
        out = subspace_hook(Q, "flip", mean=mu, positions=positions)(h.clone(), None)
        changed = (out != h).any(-1)  # (batch, pos)
        expected = torch.zeros_like(changed)
        if isinstance(positions, torch.Tensor):
            expected[torch.arange(5), positions] = True
        else:
            expected[:, positions] = True
        assert torch.equal(changed, expected), positions
        torch.testing.assert_close(out[expected], apply_subspace(h[expected], Q, "flip", mu))


def test_random_subspace_is_orthonormal_and_seeded():
    a = random_subspace(64, 3, torch.Generator().manual_seed(1))
    b = random_subspace(64, 3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.T @ a, torch.eye(3, dtype=torch.float64))


@pytest.fixture(scope="module")
def bridge():
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    torch.manual_seed(0)
    cfg = TransformerBridgeConfig(
        d_model=16, d_head=4, n_layers=2, n_ctx=8, n_heads=4, d_vocab=5, d_mlp=32, act_fn="relu", normalization_type="LN"
    )
    return TransformerBridge.boot_native(cfg)


def test_hooks_work_in_run_with_hooks_on_a_bridge(bridge):
    tokens = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(0))
    clean = bridge(tokens)
    Q = random_subspace(16, 2, torch.Generator().manual_seed(2))
    # an edit at the last position changes only the last position's logits (causal model)
    hooked = bridge.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_out", subspace_hook(Q, "remove", positions=-1))])
    assert torch.equal(hooked[:, :-1], clean[:, :-1])
    assert not torch.allclose(hooked[:, -1], clean[:, -1])
    # flipping twice through two hooks on the same point is the identity
    twice = bridge.run_with_hooks(
        tokens,
        fwd_hooks=[("blocks.0.hook_out", subspace_hook(Q, "flip")), ("blocks.0.hook_out", subspace_hook(Q, "flip"))],
    )
    torch.testing.assert_close(twice, clean, atol=1e-5, rtol=1e-5)


def test_collected_gradients_equal_per_sample_autograd(bridge):
    tokens = torch.randint(0, 5, (6, 8), generator=torch.Generator().manual_seed(3))
    names = ["blocks.0.hook_out", "blocks.1.hook_out"]

    def metric(logits, sl):
        return logits[:, -1, 1] - logits[:, -1, 2]

    acts, grads = collect_activations_and_gradients(bridge, tokens, names, metric, positions=-1, batch_size=4)
    plain = collect_activations(bridge, tokens, names, positions=-1, batch_size=5)
    for n in names:
        torch.testing.assert_close(acts[n], plain[n])
    # reference: one sample at a time, gradient by autograd through a single hook
    for i in range(6):
        for n in names:
            box = {}

            def grab(act, hook=None):
                act.retain_grad()
                box["a"] = act
                return act

            logits = bridge.run_with_hooks(tokens[i : i + 1], fwd_hooks=[(n, grab)])
            metric(logits, None).sum().backward()
            torch.testing.assert_close(grads[n][i], box["a"].grad[0, -1], atol=1e-5, rtol=1e-4)
    bridge.zero_grad()
