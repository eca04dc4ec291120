"""Tests for ace_utils.models.paper: the paper's post-LN transformer with TransformerLens hooks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ace_utils.method import activations as A
from ace_utils.method import interventions as I
from ace_utils.models import paper as P
from ace_utils.models.readout import readout_bias, readout_matrix

CFG = P.PaperModelConfig(n_layers=2, d_model=16, n_heads=4, d_mlp=32, d_vocab=11, d_vocab_out=7, n_positions=12)
HOOKS = {
    "hook_embed": 16,
    "hook_pos_embed": 16,
    "blocks.0.hook_in": 16,
    "blocks.0.hook_out": 16,
    "blocks.1.hook_in": 16,
    "blocks.1.hook_out": 16,
    "unembed.hook_in": 16,
    "unembed.hook_out": 7,
}


def _tokens(cfg: P.PaperModelConfig = CFG, batch: int = 3, pos: int = 9) -> torch.Tensor:
    return torch.randint(0, cfg.d_vocab, (batch, pos), generator=torch.Generator().manual_seed(123))


@pytest.fixture(scope="module")
def model() -> P.PaperTransformer:
    return P.PaperTransformer(CFG).eval()


def test_config_validation_and_dict():
    for bad, field in [
        (dict(d_model=30), "divisible"),
        (dict(n_layers=0), "n_layers"),
        (dict(d_mlp=2.5), "d_mlp"),
        (dict(d_vocab_out=0), "d_vocab_out"),
        (dict(n_positions=0), "n_positions"),
        (dict(dropout=1.0), "dropout"),
        (dict(seed=True), "seed"),
    ]:
        with pytest.raises(ValueError, match=field):
            P.PaperModelConfig(**{**CFG.to_dict(), **bad})
    assert P.PaperModelConfig.from_dict(CFG.to_dict()) == CFG
    assert hash(CFG) == hash(P.PaperModelConfig(**CFG.to_dict()))
    assert CFG.d_head == 4 and CFG.n_outputs == 7
    assert P.PaperModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=8, d_vocab=5).n_outputs == 5
    default = P.PaperModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=8, d_vocab=5)
    assert (default.n_positions, default.dropout, default.seed) == (64, 0.1, 0)


def test_architecture_is_pytorch_post_ln_defaults(model):
    layer = model.blocks[0].layer
    assert isinstance(layer, torch.nn.TransformerEncoderLayer)
    assert layer.norm_first is False and layer.self_attn.batch_first is True
    assert layer.activation is F.relu and layer.norm1.eps == layer.norm2.eps == 1e-5
    assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == layer.self_attn.dropout == 0.1
    assert not hasattr(model, "ln_final")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_shapes_and_cache_hook_names(model):
    tokens = _tokens()
    logits = model(tokens)
    assert logits.shape == (3, 9, 7)
    out, cache = model.run_with_cache(tokens)
    assert torch.equal(out, logits)
    assert set(cache.keys()) == set(HOOKS)
    for name, width in HOOKS.items():
        assert cache[name].shape == (3, 9, width), name
    assert torch.equal(cache["unembed.hook_out"], logits)
    assert torch.equal(cache["blocks.0.hook_out"], cache["blocks.1.hook_in"])
    assert torch.equal(cache["blocks.1.hook_out"], cache["unembed.hook_in"])  # no final LayerNorm
    with pytest.raises(ValueError, match="n_positions"):
        model(torch.zeros(1, CFG.n_positions + 1, dtype=torch.long))


def test_run_with_hooks_on_readout_input_changes_logits(model):
    tokens = _tokens()
    clean = model(tokens)
    edited = model.run_with_hooks(tokens, fwd_hooks=[("unembed.hook_in", lambda act, hook: act * 2.0)])
    assert not torch.allclose(clean, edited)
    W, b = readout_matrix(model), readout_bias(model)
    h = model.run_with_cache(tokens)[1]["unembed.hook_in"]
    torch.testing.assert_close(edited, (2.0 * h) @ W.T + b)
    assert torch.equal(model(tokens), clean)  # hooks removed afterwards


def _hand_block(layer: torch.nn.TransformerEncoderLayer, x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Post-LN block from the raw weights: norm1(x + attn(x)), then norm2(x + ff(x))."""
    batch, n_pos, d = x.shape
    d_head = d // n_heads
    q, k, v = F.linear(x, layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias).chunk(3, dim=-1)

    def heads(t):
        return t.reshape(batch, n_pos, n_heads, d_head).transpose(1, 2)

    scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(d_head)
    causal = torch.triu(torch.ones(n_pos, n_pos, dtype=torch.bool), diagonal=1)
    pattern = scores.masked_fill(causal, float("-inf")).softmax(-1)
    z = (pattern @ heads(v)).transpose(1, 2).reshape(batch, n_pos, d)
    attn = layer.self_attn.out_proj(z)
    ln1, ln2 = layer.norm1, layer.norm2
    x = F.layer_norm(x + attn, (d,), ln1.weight, ln1.bias, 1e-5)
    hidden = torch.relu(F.linear(x, layer.linear1.weight, layer.linear1.bias))
    ff = F.linear(hidden, layer.linear2.weight, layer.linear2.bias)
    return F.layer_norm(x + ff, (d,), ln2.weight, ln2.bias, 1e-5)


def test_block_equals_hand_computed_post_ln(model):
    _, cache = model.run_with_cache(_tokens())
    with torch.no_grad():
        for l in range(CFG.n_layers):
            expected = _hand_block(model.blocks[l].layer, cache[f"blocks.{l}.hook_in"], CFG.n_heads)
            torch.testing.assert_close(cache[f"blocks.{l}.hook_out"], expected, rtol=1e-5, atol=1e-5)


def test_causal(model):
    tokens = _tokens()
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % CFG.d_vocab
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_no_embedding_dropout_but_block_dropout_in_train_mode():
    m = P.PaperTransformer(CFG)
    assert m.training  # PyTorch's default mode after construction
    tokens = _tokens()
    torch.manual_seed(0)
    out1, cache = m.run_with_cache(tokens)
    out2 = m(tokens)
    assert torch.equal(cache["blocks.0.hook_in"], cache["hook_embed"] + cache["hook_pos_embed"])
    assert torch.equal(cache["hook_embed"], m.embed.weight[tokens])
    assert torch.equal(cache["hook_pos_embed"][1], m.pos_embed.weight[: tokens.shape[1]])
    assert not torch.allclose(out1, out2)  # dropout active
    m.eval()
    assert torch.equal(m(tokens), m(tokens))


def test_eval_identical_with_and_without_grad_and_flag_restored(model):
    """The fused inference path is off inside blocks: no_grad and grad reads agree exactly."""
    tokens = _tokens(batch=8)
    try:
        for previous in (True, False):
            torch.backends.mha.set_fastpath_enabled(previous)
            with torch.no_grad():
                a, cache_a = model.run_with_cache(tokens)
            b, cache_b = model.run_with_cache(tokens)
            assert torch.backends.mha.get_fastpath_enabled() is previous
            assert torch.equal(a, b.detach())
            for name in HOOKS:
                assert torch.equal(cache_a[name], cache_b[name]), name
        # (a hook on the layer itself would also block the fused path, so it is added only now)
        torch.backends.mha.set_fastpath_enabled(True)
        seen: list[bool] = []
        handle = model.blocks[0].layer.register_forward_pre_hook(
            lambda mod, args: seen.append(torch.backends.mha.get_fastpath_enabled())
        )
        with torch.no_grad():
            model(tokens)
        handle.remove()
        assert seen == [False] and torch.backends.mha.get_fastpath_enabled() is True
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_init_is_seeded_private_and_pytorch_default():
    rng_before = torch.random.get_rng_state()
    a, b = P.PaperTransformer(CFG), P.PaperTransformer(CFG)
    c = P.PaperTransformer(P.PaperModelConfig(**{**CFG.to_dict(), "seed": 1}))
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    key = "blocks.0.layer.self_attn.in_proj_weight"
    assert not torch.equal(sa[key], sc[key])
    # the same weights as PyTorch's modules built in the same order after manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CFG.seed)
        tok = torch.nn.Embedding(CFG.d_vocab, CFG.d_model)
        pos = torch.nn.Embedding(CFG.n_positions, CFG.d_model)
        layer0 = torch.nn.TransformerEncoderLayer(CFG.d_model, CFG.n_heads, CFG.d_mlp, batch_first=True)
    assert torch.equal(sa["embed.weight"], tok.weight) and torch.equal(sa["pos_embed.weight"], pos.weight)
    assert all(torch.equal(sa[f"blocks.0.layer.{k}"], v) for k, v in layer0.state_dict().items())
    # N(0, 1) embeddings, biased readout
    big = P.PaperTransformer(P.PaperModelConfig(n_layers=1, d_model=64, n_heads=4, d_mlp=8, d_vocab=53))
    assert 0.9 < big.embed.weight.std().item() < 1.1
    assert 0.9 < big.pos_embed.weight.std().item() < 1.1
    assert abs(big.embed.weight.mean().item()) < 0.05
    assert big.unembed.bias is not None and readout_bias(big).shape == (53,)
    assert readout_bias(big).abs().max() > 0
    assert readout_matrix(big).shape == (53, 64)
    assert not readout_matrix(big).requires_grad and not readout_bias(big).requires_grad


def test_subspace_hook_on_readout_input_keeps_bias(model):
    tokens = _tokens()
    clean = model(tokens)
    basis = torch.eye(CFG.d_model, dtype=torch.float64)
    kept = model.run_with_hooks(tokens, fwd_hooks=[("unembed.hook_in", I.subspace_hook(basis, "keep"))])
    torch.testing.assert_close(kept, clean, rtol=0, atol=1e-6)
    removed = model.run_with_hooks(tokens, fwd_hooks=[("unembed.hook_in", I.subspace_hook(basis, "remove"))])
    torch.testing.assert_close(removed, readout_bias(model).expand_as(removed), rtol=0, atol=1e-6)
    assert readout_bias(model).abs().max() > 1e-3  # so the check above is not trivially zero


def test_closed_form_scan_keeps_the_readout_bias_as_the_hooks_do():
    from ace_utils.models import readout_bias, readout_matrix
    from ace_utils.tasks.modular import scan_keep_remove

    m = P.PaperTransformer(CFG).eval()
    with torch.no_grad():
        m.unembed.bias.mul_(30.0)  # a bias large enough to decide many argmaxes
    tokens = _tokens(batch=60)
    _, cache = m.run_with_cache(tokens, names_filter="unembed.hook_in")
    H = cache["unembed.hook_in"].reshape(-1, CFG.d_model)
    y = torch.randint(0, CFG.n_outputs, (H.shape[0],), generator=torch.Generator().manual_seed(5))
    Q = torch.linalg.qr(torch.randn(CFG.d_model, CFG.d_model, generator=torch.Generator().manual_seed(6),
                                    dtype=torch.float64))[0]
    W, b = readout_matrix(m), readout_bias(m)
    assert torch.equal(W, m.unembed.weight) and torch.equal(b, m.unembed.bias)
    keep, remove, base = scan_keep_remove(H, Q, W, y, b)
    keep_nb, remove_nb, _ = scan_keep_remove(H, Q, W, y)

    def hooked(r: int, mode: str) -> float:
        out = m.run_with_hooks(tokens, fwd_hooks=[("unembed.hook_in", I.subspace_hook(Q[:, :r], mode))])
        return float((out.reshape(-1, CFG.n_outputs).argmax(1) == y).double().mean())

    assert base == pytest.approx(float((m(tokens).reshape(-1, CFG.n_outputs).argmax(1) == y).double().mean()))
    for r in (1, 4, 10):
        assert keep[r] == pytest.approx(hooked(r, "keep"), abs=1.5 / len(y))
        assert remove[r] == pytest.approx(hooked(r, "remove"), abs=1.5 / len(y))
    # without the bias the closed form would not be the model's accuracy
    assert max(abs(keep_nb[r] - keep[r]) for r in (1, 4)) > 5 / len(y)


def test_activation_readers(model):
    tokens = _tokens(batch=5)
    _, cache = model.run_with_cache(tokens)
    # one batch of all 5 rows, as the cache read: with several threads a different batch
    # shape changes the matmul's summation order, which is not what this test is about
    acts = A.collect_activations(model, tokens, ["unembed.hook_in"], positions=-1, batch_size=5)
    assert torch.equal(acts["unembed.hook_in"], cache["unembed.hook_in"][:, -1])

    def metric(logits: torch.Tensor, sl: slice) -> torch.Tensor:
        return logits[:, -1, 3]

    acts_g, grads = A.collect_activations_and_gradients(
        model, tokens, ["unembed.hook_in", "blocks.0.hook_out"], metric, positions=None, batch_size=5
    )
    # read with gradients = read without (no fused path); d logit_3 / dh = readout row 3 at the last position
    assert torch.equal(acts_g["unembed.hook_in"], cache["unembed.hook_in"].reshape(-1, CFG.d_model))
    g = grads["unembed.hook_in"].reshape(5, 9, CFG.d_model)
    torch.testing.assert_close(g[:, -1], readout_matrix(model)[3].expand(5, -1))
    assert torch.equal(g[:, :-1], torch.zeros_like(g[:, :-1]))
    assert grads["blocks.0.hook_out"].abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_paper_optimizer_decays_every_parameter(model):
    opt = P.paper_optimizer(model, lr=1e-3, weight_decay=0.7)
    assert isinstance(opt, torch.optim.AdamW)
    assert len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert group["weight_decay"] == 0.7 and group["lr"] == 1e-3
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    ids = {id(p) for p in group["params"]}
    assert ids == {id(p) for p in model.parameters()} and len(group["params"]) == len(list(model.parameters()))
    # LayerNorm and bias parameters are among them
    assert id(model.blocks[0].layer.norm1.bias) in ids and id(model.unembed.bias) in ids
    # with zero gradient, one step shrinks every parameter by (1 - lr * wd)
    m = P.PaperTransformer(CFG)
    before = {k: v.clone() for k, v in m.named_parameters()}
    opt = P.paper_optimizer(m, lr=0.1, weight_decay=0.5)
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for k, p in m.named_parameters():
        torch.testing.assert_close(p.detach(), before[k] * (1 - 0.1 * 0.5), msg=k)


def test_payload_round_trip(model):
    payload = P.paper_to_payload(model)
    assert payload["config"] == CFG.to_dict()
    assert all(v.device.type == "cpu" for v in payload["state_dict"].values())
    trained = P.PaperTransformer(CFG).eval()
    with torch.no_grad():
        trained.unembed.bias.add_(1.0)
    back = P.paper_from_payload(P.paper_to_payload(trained)).eval()
    tokens = _tokens()
    assert torch.equal(back(tokens), trained(tokens))
    assert not torch.equal(back(tokens), model(tokens))
    bad = P.paper_to_payload(trained)
    bad["state_dict"] = {**bad["state_dict"], "extra": torch.zeros(1)}
    with pytest.raises(RuntimeError, match="extra"):
        P.paper_from_payload(bad)


def test_stacked_last_logits_are_the_modules_logits_and_gradients():
    """The batched forward of stacked paper models (no dropout) gives each module's own
    last-position logits and parameter gradients, for one and two layers."""
    for n_layers, T in ((1, 2), (2, 5)):
        cfgs = [P.PaperModelConfig(n_layers=n_layers, d_model=32, n_heads=4, d_mlp=64, d_vocab=7, seed=s) for s in (1, 2)]
        models = [P.PaperTransformer(c).eval() for c in cfgs]
        x = torch.randint(0, 7, (2, 9, T), generator=torch.Generator().manual_seed(0))
        y = torch.randint(0, 7, (2, 9), generator=torch.Generator().manual_seed(1))
        params = {k: torch.stack([m.state_dict()[k] for m in models]).requires_grad_(True)
                  for k in models[0].state_dict()}
        logits = P.stacked_last_logits(params, x, 4)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 7), y.reshape(-1), reduction="sum").backward()
        for i, m in enumerate(models):
            out = m(x[i])[:, -1]
            torch.testing.assert_close(logits[i], out, rtol=1e-5, atol=1e-5)
            torch.nn.functional.cross_entropy(out, y[i], reduction="sum").backward()
            for k, p in m.named_parameters():
                torch.testing.assert_close(params[k].grad[i], p.grad, rtol=1e-4, atol=1e-5, msg=f"{n_layers} layers, {k}")


def test_stacked_last_logits_dropout_masks_do_not_depend_on_stack_mates():
    models = [P.PaperTransformer(P.PaperModelConfig(n_layers=1, d_model=32, n_heads=4, d_mlp=64, d_vocab=7, seed=s))
              for s in (1, 2)]
    params = {k: torch.stack([m.state_dict()[k] for m in models]) for k in models[0].state_dict()}
    x = torch.randint(0, 7, (2, 6, 2), generator=torch.Generator().manual_seed(0))
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    both = P.stacked_last_logits(params, x, 4, 0.1, gens())
    alone = P.stacked_last_logits({k: v[1:] for k, v in params.items()}, x[1:], 4, 0.1, gens()[1:])
    torch.testing.assert_close(both[1:], alone)
    assert not torch.allclose(both, P.stacked_last_logits(params, x, 4))  # dropout acted


# --------------------------------------------------------------------------- variants

def _variant_cfg(**changes) -> P.PaperModelConfig:
    return P.PaperModelConfig(**{**CFG.to_dict(), "variant": P.ModelVariant(**changes)})


def test_variant_validation_and_dicts():
    assert "variant" not in CFG.to_dict()  # the paper's configs keep their dicts and cache keys
    assert P.ModelVariant().is_paper and P.ModelVariant().changes() == {}
    pre = _variant_cfg(norm="pre", readout_bias=False)
    assert pre.to_dict()["variant"] == {"norm": "pre", "dropout_sites": "paper", "init": "pytorch",
                                        "readout_bias": False}
    assert P.PaperModelConfig.from_dict(pre.to_dict()) == pre and hash(pre) != hash(CFG)
    assert pre.variant.changes() == {"norm": "pre", "readout_bias": False}
    for bad, field in [(dict(norm="sandwich"), "norm"), (dict(dropout_sites="all"), "dropout_sites"),
                       (dict(init="xavier"), "init"), (dict(readout_bias=1), "readout_bias")]:
        with pytest.raises(ValueError, match=field):
            P.ModelVariant(**bad)
    with pytest.raises(ValueError, match="variant"):
        P.PaperModelConfig(**{**CFG.to_dict(), "variant": {"norm": "pre"}})


def test_pre_ln_variant_has_norm_first_blocks_and_a_final_layernorm():
    paper, pre = P.PaperTransformer(CFG).eval(), P.PaperTransformer(_variant_cfg(norm="pre")).eval()
    assert pre.blocks[0].layer.norm_first and isinstance(pre.ln_final, torch.nn.LayerNorm)
    sp, sq = paper.state_dict(), pre.state_dict()
    assert set(sq) - set(sp) == {"ln_final.weight", "ln_final.bias"}
    assert all(torch.equal(sp[k], sq[k]) for k in sp)  # same seed, same draws (LayerNorms draw nothing)
    tokens = _tokens()
    logits, cache = pre.run_with_cache(tokens)
    h = cache["blocks.1.hook_out"]
    # pre-LN block by hand: x + attn(norm1 x), then + ffn(norm2 x); the readout reads ln_final's output
    layer = pre.blocks[1].layer
    x = cache["blocks.1.hook_in"]
    mask = torch.triu(torch.ones(9, 9, dtype=torch.bool), 1)
    a = layer.norm1(x)
    x = x + layer.self_attn(a, a, a, attn_mask=mask, need_weights=False)[0]
    x = x + layer.linear2(torch.relu(layer.linear1(layer.norm2(x))))
    torch.testing.assert_close(h, x, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cache["unembed.hook_in"], pre.ln_final(h), rtol=0, atol=0)
    torch.testing.assert_close(logits, pre.ln_final(h) @ pre.unembed.weight.T + pre.unembed.bias, rtol=1e-6, atol=1e-6)


def test_embed_resid_dropout_sites():
    m = P.PaperTransformer(_variant_cfg(dropout_sites="embed-resid"))
    layer = m.blocks[0].layer
    assert layer.dropout.p == 0.0 and layer.self_attn.dropout == 0.0
    assert layer.dropout1.p == layer.dropout2.p == m.embed_dropout.p == 0.1
    tokens = _tokens()
    torch.manual_seed(0)
    _, cache = m.run_with_cache(tokens)
    summed = cache["hook_embed"] + cache["hook_pos_embed"]
    dropped = cache["blocks.0.hook_in"]
    zero = dropped == 0
    assert zero.any() and torch.allclose(dropped[~zero], summed[~zero] / 0.9)  # inverted dropout on the embeddings
    # in eval mode the sites do not matter: the paper's model with the same weights
    paper = P.PaperTransformer(CFG).eval()
    assert torch.equal(m.eval()(tokens), paper(tokens))
    no_dropout = P.PaperTransformer(P.PaperModelConfig(**{**CFG.to_dict(), "dropout": 0.0,
                                                          "variant": P.ModelVariant(dropout_sites="embed-resid")}))
    assert isinstance(no_dropout.embed_dropout, torch.nn.Identity)


def test_small_init_is_transformerlens_gpt2_scale_and_seeded():
    rng_before = torch.random.get_rng_state()
    cfg = P.PaperModelConfig(n_layers=2, d_model=128, n_heads=4, d_mlp=512, d_vocab=53,
                             variant=P.ModelVariant(init="small"))
    a, b = P.PaperTransformer(cfg), P.PaperTransformer(cfg)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    std = 0.8 / math.sqrt(128)
    for name in ("embed.weight", "pos_embed.weight", "blocks.0.layer.self_attn.in_proj_weight",
                 "blocks.1.layer.linear1.weight", "unembed.weight"):
        assert abs(a.get_parameter(name).std().item() / std - 1) < 0.05, name
    for name in ("blocks.0.layer.self_attn.out_proj.weight", "blocks.1.layer.linear2.weight"):
        assert abs(a.get_parameter(name).std().item() / (std / 2) - 1) < 0.05, name  # / sqrt(2 n_layers)
    for name in ("blocks.0.layer.self_attn.in_proj_bias", "blocks.0.layer.linear1.bias", "unembed.bias",
                 "blocks.0.layer.norm1.bias"):
        assert torch.count_nonzero(a.get_parameter(name)) == 0, name
    assert torch.equal(a.blocks[0].layer.norm2.weight, torch.ones(128))


def test_no_readout_bias_variant():
    paper, m = P.PaperTransformer(CFG), P.PaperTransformer(_variant_cfg(readout_bias=False))
    assert m.unembed.bias is None and "unembed.bias" not in m.state_dict()
    assert torch.equal(m.unembed.weight, paper.unembed.weight)  # the bias is drawn after the weight
    assert torch.equal(readout_bias(m), torch.zeros(7))
    with pytest.raises(ValueError, match="paper's model only"):
        P.stacked_last_logits({k: v[None] for k, v in m.state_dict().items()}, _tokens()[None], CFG.n_heads)
