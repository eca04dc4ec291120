"""Known-answer tests of the one-call API (ace_utils.find_core) on a small hooked model with a
planted core, on a TransformerBridge, and its refusals of bad input (one line naming it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint
from transformer_lens.utilities import get_act_name

import ace_utils as au
from ace_utils.method.ace import ACEResult
from ace_utils.method.alignment import principal_angles

D, K, V, T = 12, 4, 24, 6  # width, classes, vocabulary, sequence length


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.hook_resid_post = HookPoint()

    def forward(self, x):
        return self.hook_resid_post(x)


class Unembed(nn.Module):
    def __init__(self, W: torch.Tensor):
        super().__init__()
        self.hook_in = HookPoint()
        self.weight = nn.Parameter(W)

    def forward(self, x):
        return self.hook_in(x) @ self.weight.T


class Planted(HookedRootModule):
    """Token embeddings: a 3-D class code (4 classes, tetrahedron vertices) in the planted core
    Q*, a 10x louder decoy direction the readout ignores, small noise in the rest; the readout
    reads the core and, 10x more strongly, a silent direction the embeddings never move along.
    PCA finds the decoy, output sensitivity the silent direction; the core is Q*."""

    def __init__(self, seed: int = 0, dropout: float = 0.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        U, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
        self.Q_star, decoy, silent = U[:, :3], U[:, 3], U[:, 4]
        verts = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
        self.cls = torch.arange(V) % K  # the class of each token
        # the decoy's values average to zero within each class, so that over inputs in which every
        # token is equally frequent (TOKENS) it is uncorrelated with the class code
        loud = 10 * torch.tensor([1.0, -1, 2, -2, 0.5, -0.5], dtype=torch.float64).repeat_interleave(K)[:V]
        E = (verts[self.cls] @ self.Q_star.T + loud[:, None] * decoy
             + 0.01 * torch.randn(V, D - 5, generator=g, dtype=torch.float64) @ U[:, 5:].T)
        W = 2 * verts @ self.Q_star.T + 20 * torch.randn(K, 1, generator=g, dtype=torch.float64) * silent
        self.embed = nn.Embedding(V, D, _weight=E.float())
        self.hook_embed = HookPoint()
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block()])
        self.unembed = Unembed(W.float())
        self.setup()

    def forward(self, tokens):
        x = self.drop(self.hook_embed(self.embed(tokens)))
        return self.unembed(self.blocks[0](x))


@pytest.fixture(scope="module")
def planted():
    model = Planted()
    tokens = (torch.arange(240)[:, None] + 7 * torch.arange(T)) % V  # each token 10 times at each position
    targets = model.cls[tokens]

    def log_prob(logits, batch):  # the behaviour: log-probability of each token's class, summed over positions
        return logits.log_softmax(-1).gather(-1, targets[batch][..., None]).squeeze(-1).sum(-1)

    return model, tokens, targets, log_prob


def _accuracy(model, tokens, targets, fwd_hooks=()):
    with torch.no_grad():
        return (model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks)).argmax(-1) == targets).double().mean().item()


def test_the_planted_core_is_found_at_a_hook_spelled_as_transformer_lens_spells_it(planted):
    model, tokens, targets, log_prob = planted
    hook = get_act_name("resid_post", 0)
    core = au.find_core(model, tokens, hook=hook, metric=log_prob)
    assert isinstance(core, au.Core) and isinstance(core.result, ACEResult)
    assert core.hook == "blocks.0.hook_resid_post" and core.rank == 3 and core.basis.shape == (D, 3)
    assert principal_angles(core.basis, model.Q_star).max() < 0.5  # degrees
    assert core.energies.shape == (D,) and bool((core.energies[:-1] >= core.energies[1:]).all())
    assert core.energy_fraction[2] > 0.999 and core.energy_fraction[1] < 0.99  # three directions, not fewer
    # the same core from a tuple, as ActivationCache indexing takes it
    assert au.find_core(model, tokens, hook=("resid_post", 0), metric=log_prob).hook == hook


def test_keep_remove_flip_hooks_are_ready_to_run(planted):
    model, tokens, targets, log_prob = planted
    core = au.find_core(model, tokens, hook="blocks.0.hook_resid_post", metric=log_prob)
    assert _accuracy(model, tokens, targets) == 1.0
    assert _accuracy(model, tokens, targets, core.keep) == 1.0  # sufficient
    with torch.no_grad():
        clean = model(tokens)
        removed = model.run_with_hooks(tokens, fwd_hooks=core.remove)
        flipped = model.run_with_hooks(tokens, fwd_hooks=core.flip)
    # necessary: without the core every token gets the same logits (those of the mean activation)
    assert (removed - removed[:1, :1]).abs().max() < 1e-3 * clean.abs().max()
    # flipped: the core coordinates, hence the logits about the mean's, are negated
    centre = removed[0, 0]
    assert torch.allclose(flipped - centre, -(clean - centre), atol=1e-3 * float(clean.abs().max()))
    # a random subspace of the same dimension is no core: removing it leaves most answers right
    assert _accuracy(model, tokens, targets, core.control("remove")) > 0.5
    assert core.keep[0][0] == core.hook and len(core.hooks("keep", rank=D)) == 1


def test_logits_metric_at_the_readout_input_and_an_activation_cache(planted):
    model, tokens, _, log_prob = planted
    core = au.find_core(model, tokens, hook="unembed.hook_in", metric="logits")
    assert core.rank == 3 and principal_angles(core.basis, model.Q_star).max() < 0.5
    _, cache = model.run_with_cache(tokens)
    from_cache = au.find_core(model, None, hook="unembed.hook_in", metric="logits", cache=cache)
    assert torch.allclose(from_cache.basis, core.basis) and torch.allclose(from_cache.energies, core.energies)
    with_metric = au.find_core(model, tokens, hook="blocks.0.hook_resid_post", metric=log_prob, cache=cache)
    assert principal_angles(with_metric.basis, model.Q_star).max() < 0.5
    with pytest.raises(ValueError, match="differs from the model's activations"):
        au.find_core(model, tokens.flip(0), hook="blocks.0.hook_resid_post", metric=log_prob, cache=cache)


def test_positions_are_read_and_edited(planted):
    model, tokens, targets, log_prob = planted

    def last(logits, batch):
        return logits[:, -1].log_softmax(-1).gather(-1, targets[batch][:, -1:]).squeeze(-1)

    core = au.find_core(model, tokens, hook="blocks.0.hook_resid_post", metric=last, positions=-1, rank=3)
    assert principal_angles(core.basis, model.Q_star).max() < 0.5
    with torch.no_grad():
        clean = model(tokens)
        removed = model.run_with_hooks(tokens, fwd_hooks=core.remove)
    assert torch.equal(removed[:, :-1], clean[:, :-1])  # other positions untouched
    assert not torch.allclose(removed[:, -1], clean[:, -1])


def test_dropout_is_off_while_reading_and_the_mode_is_restored(planted):
    _, tokens, targets, log_prob = planted
    model = Planted(dropout=0.5).train()
    core = au.find_core(model, tokens, hook="blocks.0.hook_resid_post", metric=log_prob)
    assert model.training and core.rank == 3 and principal_angles(core.basis, model.Q_star).max() < 0.5


def test_a_transformer_bridge():
    from ace_utils.models.native import SmallModelConfig, build_native_model

    model = build_native_model(SmallModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=8, d_vocab=10))
    tokens = torch.randint(0, 10, (32, 8), generator=torch.Generator().manual_seed(0))

    def margin(logits, batch):
        return (logits[:, -1, 0] - logits[:, -1, 1])

    core = au.find_core(model, tokens, hook="blocks.0.hook_resid_post", metric=margin, positions=-1, rank=2)
    assert core.basis.shape == (16, 2) and core.hook == "blocks.0.hook_resid_post"
    with torch.no_grad():
        clean = model(tokens)
        kept_all = model.run_with_hooks(tokens, fwd_hooks=core.hooks("keep", rank=16))  # the identity
        removed = model.run_with_hooks(tokens, fwd_hooks=core.remove)
    assert torch.allclose(kept_all, clean, atol=1e-5)
    assert not torch.allclose(removed[:, -1], clean[:, -1], atol=1e-3)
    full = au.find_core(model, tokens, hook="unembed.hook_in", metric="logits")
    assert full.basis.shape[0] == 16 and 1 <= full.rank <= 16


# --- bad input fails at once, with one line that names it ---------------------------------------

def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    return msg


def test_unknown_hook(planted):
    model, tokens, _, log_prob = planted
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="blocks.0.hook_resid_pots", metric=log_prob)
    assert "blocks.0.hook_resid_pots" in _one_line(e) and "'blocks.0.hook_resid_post'" in str(e.value)
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook=("resid_post", 7), metric=log_prob)
    assert "blocks.7.hook_resid_post" in _one_line(e)


def test_wrong_shapes(planted):
    model, tokens, _, log_prob = planted
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens[0], hook="hook_embed", metric=log_prob)
    assert "tokens" in _one_line(e)
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="hook_embed", metric=log_prob, positions=torch.zeros(3, dtype=torch.long))
    assert "positions" in _one_line(e)
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="hook_embed", metric=lambda logits, b: logits.sum((1, 2))[:, None])
    assert "metric must return one value per sequence" in _one_line(e)
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="hook_embed", metric=log_prob, rank=D + 1)
    assert "rank must be at most the hook's dimension 12" in _one_line(e)
    _, cache = model.run_with_cache(tokens[:10])
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="unembed.hook_in", metric="logits", cache=cache)
    assert "cache" in _one_line(e)


def test_a_metric_without_gradient(planted):
    model, tokens, targets, log_prob = planted

    def accuracy(logits, batch):
        return (logits.argmax(-1) == targets[batch]).float().mean(-1)

    def detached(logits, batch):
        return log_prob(logits, batch).detach()

    def flat(logits, batch):
        return 0 * logits.sum((1, 2))

    for metric, words in ((accuracy, "metric returned no gradient"), (detached, "metric returned no gradient"),
                          (flat, "gradient at 'hook_embed' is zero")):
        with pytest.raises(ValueError) as e:
            au.find_core(model, tokens, hook="hook_embed", metric=metric)
        assert words in _one_line(e)


def test_other_refusals(planted):
    model, tokens, _, log_prob = planted
    with pytest.raises(ValueError) as e:
        au.find_core(model, tokens, hook="hook_embed", metric="logits")
    assert "unembed.hook_in" in _one_line(e)
    with pytest.raises(TypeError) as e:
        au.find_core(nn.Linear(3, 3), tokens, hook="hook_embed", metric=log_prob)
    assert "HookedRootModule" in _one_line(e)
    with pytest.raises(ValueError) as e:
        au.find_core(model, None, hook="hook_embed", metric=log_prob)
    assert "tokens" in _one_line(e)


def test_import_ace_utils_stays_light():
    """The top-level names load on first use: importing the package does not import torch."""
    import subprocess
    import sys

    code = "import sys, ace_utils; assert 'torch' not in sys.modules; ace_utils.find_core; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
