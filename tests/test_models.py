"""Tests for ace_utils.models: native builds, readout, GPT-2 tokenizer, offline loading."""

from __future__ import annotations

import time

import pytest
import torch

from ace_utils import models as M

CFG = M.SmallModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=12, d_vocab=11, d_vocab_out=7, seed=0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep tokenizer files etc. out of the user's cache; one folder for the whole session."""
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path_factory.getbasetemp() / "ace-cache"))


def _tokens(cfg: M.SmallModelConfig, batch: int = 3, pos: int = 9) -> torch.Tensor:
    return torch.randint(0, cfg.d_vocab, (batch, pos), generator=torch.Generator().manual_seed(123))


def test_config_validation_and_dict():
    with pytest.raises(ValueError, match="divisible"):
        M.SmallModelConfig(n_layers=1, d_model=30, n_heads=4, d_mlp=8, n_ctx=4, d_vocab=5)
    with pytest.raises(ValueError, match="act_fn"):
        M.SmallModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=8, n_ctx=4, d_vocab=5, act_fn="tanh")
    assert M.SmallModelConfig.from_dict(CFG.to_dict()) == CFG
    assert CFG.d_head == 8 and CFG.n_outputs == 7
    assert hash(CFG) == hash(M.SmallModelConfig(**CFG.to_dict()))


def test_native_seeding_is_deterministic_and_private():
    rng_before = torch.random.get_rng_state()
    a, b = M.build_native_model(CFG), M.build_native_model(CFG)
    c = M.build_native_model(M.SmallModelConfig(**{**CFG.to_dict(), "seed": 1}))
    assert torch.equal(rng_before, torch.random.get_rng_state()), "build must not touch the global RNG"
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for k in ("embed.weight", "blocks.0.attn.q.weight", "blocks.1.mlp.out.weight", "unembed.weight"):
        assert not torch.equal(sa[k], sc[k]), k


def test_native_logits_shape_hooks_and_readout():
    model = M.build_native_model(CFG)
    tokens = _tokens(CFG)
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (3, 9, CFG.n_outputs)
    for name in ("blocks.0.hook_out", "blocks.1.hook_out", "ln_final.hook_out", "blocks.0.attn.hook_pattern"):
        assert name in cache, name
    assert cache["blocks.1.hook_out"].shape == (3, 9, CFG.d_model)
    W, b = M.readout_matrix(model), M.readout_bias(model)
    assert W.shape == (CFG.n_outputs, CFG.d_model) and b.shape == (CFG.n_outputs,)
    recon = cache["ln_final.hook_out"] @ W.T + b
    torch.testing.assert_close(recon, logits.detach(), atol=1e-5, rtol=0)
    # the readout is the live weight: changing the model's unembedding changes it
    W0 = W.clone()
    with torch.no_grad():
        model.unembed.W_U.mul_(2.0)
    assert torch.equal(M.readout_matrix(model), 2 * W0)


def test_native_payload_roundtrip(tmp_path):
    model = M.build_native_model(CFG)
    with torch.no_grad():  # make the state differ from a fresh build
        for p in model.parameters():
            p.add_(0.01)
    payload = M.native_to_payload(model, CFG)
    assert {"embed.weight", "pos_embed.weight", "ln_final.weight", "unembed.weight"} <= payload["state_dict"].keys()
    torch.save(payload, tmp_path / "p.pt")
    back = M.native_from_payload(torch.load(tmp_path / "p.pt", weights_only=True))
    tokens = _tokens(CFG)
    with torch.no_grad():
        assert torch.equal(back(tokens), model(tokens))


def test_gpt2_tokenizer_known_ids(tmp_path):
    from transformers import AutoTokenizer

    tok = M.load_gpt2_tokenizer(tmp_path / "tok")
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert tok("<|endoftext|>")["input_ids"] == [50256]
    assert tok.eos_token_id == 50256 and len(tok) == 50257
    auto = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert auto(" Hello world")["input_ids"] == [18435, 995]
    # a damaged folder (marker gone, a file truncated) is rewritten
    (tmp_path / "tok" / "ace_book_tokenizer.json").unlink()
    (tmp_path / "tok" / "tokenizer.json").write_text("{")
    assert M.load_gpt2_tokenizer(tmp_path / "tok")("Hello world")["input_ids"] == [15496, 995]


def test_load_pretrained_local_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf, tok = M.build_gpt2_like(n_layers=2, d_model=64, n_heads=4, n_ctx=64, seed=0)
    assert tok.pad_token_id == 50256
    path = M.save_pretrained_model(hf, tok, tmp_path / "tiny-gpt2")
    bridge = M.load_pretrained(path)
    assert not bridge.training
    ids = tok(["The keys to the cabinet are", "Hello world"], return_tensors="pt", padding=True)["input_ids"]
    with torch.no_grad():
        ref = hf(ids).logits
    logits, cache = bridge.run_with_cache(ids)
    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=0)
    assert "blocks.0.hook_out" in cache and "blocks.1.hook_out" in cache
    recon = cache["ln_final.hook_out"] @ M.readout_matrix(bridge).T + M.readout_bias(bridge)
    torch.testing.assert_close(recon, logits, atol=1e-4, rtol=0)
    # same seed, same weights; different seed, different weights
    hf_same, _ = M.build_gpt2_like(n_layers=2, d_model=64, n_heads=4, n_ctx=64, seed=0)
    hf_other, _ = M.build_gpt2_like(n_layers=2, d_model=64, n_heads=4, n_ctx=64, seed=1)
    w = "transformer.h.0.attn.c_attn.weight"
    assert torch.equal(hf.state_dict()[w], hf_same.state_dict()[w])
    assert not torch.equal(hf.state_dict()[w], hf_other.state_dict()[w])


def test_load_pretrained_hub_unavailable_fails_fast(monkeypatch):
    import transformer_lens.model_bridge  # noqa: F401  (import time is not what is measured)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert M.hub_available() is False
    t0 = time.perf_counter()
    with pytest.raises(M.HubUnavailableError) as info:
        M.load_pretrained("gpt2")
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, elapsed
    msg = str(info.value)
    assert "'gpt2'" in msg and "Hugging Face hub" in msg and 'model_source="hub"' in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, RuntimeError)


def test_load_pretrained_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        M.load_pretrained(str(tmp_path / "nope") + "/")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        M.load_pretrained(tmp_path / "empty")
