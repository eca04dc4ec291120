"""scripts/reference_run_analysis.py reads the reference code's checkpoints into this book's
PaperTransformer: a state dict in the reference's names gives the same logits in both forwards,
and a renamed state that misses a tensor is refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("reference_run_analysis", ROOT / "scripts" / "reference_run_analysis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_state(seed: int) -> dict[str, torch.Tensor]:
    """A random state in the reference module's parameter names (token_emb, pos_emb, layer1/2, lm_head)."""
    torch.manual_seed(seed)
    state = {"token_emb.weight": torch.randn(53, 128), "pos_emb.weight": torch.randn(64, 128)}
    for i in (1, 2):
        layer = torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, batch_first=True)
        for name, value in layer.state_dict().items():
            state[f"layer{i}.{name}"] = value + 0.01 * torch.randn_like(value)
    head = torch.nn.Linear(128, 53)
    state["lm_head.weight"], state["lm_head.bias"] = head.weight.detach(), head.bias.detach() + 0.1
    return state


def test_renamed_state_gives_the_reference_logits():
    script = _script()
    state = _reference_state(0)
    x = torch.randint(0, 53, (64, 2))
    with torch.no_grad():
        ours = script.load_model(state)(x)
    theirs = script.reference_logits(state, x)
    assert ours.shape == (64, 2, 53)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    # a different state gives different logits: the check can fail
    other = script.reference_logits(_reference_state(1), x)
    assert (other - theirs).abs().max() > 1e-2


def test_missing_tensor_is_refused():
    script = _script()
    state = _reference_state(0)
    del state["layer2.norm2.weight"]
    with pytest.raises(RuntimeError, match="blocks.1.layer.norm2.weight"):
        script.load_model(state)
