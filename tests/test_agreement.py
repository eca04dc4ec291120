"""Tests of the agreement task (chapter 05_agreement_axis): corpus, parser, margin, the
compact->full vocabulary expansion, and the whole pipeline on a locally saved random
GPT-2-architecture model loaded through the hub path of the chapter's loader."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from ace_utils.models import HubUnavailableError, build_gpt2_like, save_pretrained_model
from ace_utils.tasks import agreement as ag
from ace_utils.tasks import agreement_corpus as ac

# --------------------------------------------------------------------------- corpus and prompts


def test_pairs_disjoint_and_cover_every_noun():
    train, test = ac.split_pairs(0)
    assert len(train) == 54 and len(test) == 27
    assert not set(train) & set(test)
    for split in (train, test):
        assert {h for h, _ in split} == set(range(9)) and {a for _, a in split} == set(range(9))
    assert ac.split_pairs(0) == ac.split_pairs(0)
    assert ac.split_pairs(1) != ac.split_pairs(0)


def test_prompts_balanced_opposite_attractor_and_held_out():
    train, test = ac.split_pairs(3)
    prompts = ac.make_prompts(200, test, seed=5)
    assert sum(p.plural for p in prompts) == 100
    assert {(p.i_head, p.i_attr) for p in prompts} <= set(test)
    assert {p.style for p in prompts} == set(ac.STYLES)
    for p in prompts:
        attr = ac.ATTRACTORS[p.i_attr][int(not p.plural)]  # attractor of the opposite number
        assert f" {attr}" in p.text, p
        assert p.head in p.text.split(), p
        assert p.text.startswith(ac.PAST_PREFIX) == p.past
    assert [p.text for p in ac.make_prompts(50, test, seed=5)] == [p.text for p in ac.make_prompts(50, test, seed=5)]
    assert [p.text for p in ac.make_prompts(50, test, seed=6)] != [p.text for p in ac.make_prompts(50, test, seed=5)]


def test_corpus_agrees_everywhere_and_is_deterministic():
    train, test = ac.split_pairs(0)
    corpus = ac.make_corpus(2000, train, seed=0)
    assert corpus == ac.make_corpus(2000, train, seed=0)
    assert corpus != ac.make_corpus(2000, train, seed=1)
    n_verbs = []
    for s in corpus:
        verbs = ac.parse_verbs(s)
        assert verbs and all(v.agrees for v in verbs), s
        n_verbs.append(len(verbs))
        past = s.startswith(ac.PAST_PREFIX)
        assert all(ac.VERBS[v.verb][1] == past for v in verbs), s  # one tense, selected by the prefix
    assert np.mean(n_verbs) > 1.5  # sentences continue after the verb: several verbs
    # no test (head, attractor) pair appears as a subject phrase of the corpus
    test_phrases = {f" {ac.HEADS[h][ph]} {c} {ac.ATTRACTORS[a][pa]} "
                    for h, a in test for ph in (0, 1) for pa in (0, 1) for c in ac.CONNECTORS}
    assert not any(any(t in f" {s} " for t in test_phrases) for s in corpus[:500])


def test_parser_on_known_sentences():
    v = ac.parse_verbs("The keys to the cabinet is old and they are red.")
    assert [(x.verb, x.subject, x.agrees) for x in v] == [("is", "keys", False), ("are", "they", True)]
    v = ac.parse_verbs("In the past, in a busy laboratory, the man near the doors were here because the mice was lost.")
    assert [(x.subject, x.agrees) for x in v] == [("man", False), ("mice", False)]
    v = ac.parse_verbs("There children near the box are quiet.")
    assert [(x.subject, x.verb_plural, x.agrees) for x in v] == [("children", True, True)]
    v = ac.parse_verbs("The woman that hides the guards is here and she is ready.")
    assert all(x.agrees for x in v) and v[0].subject == "woman"
    assert ac.parse_verbs("Something else is here.")[0].subject is None


def test_verb_inversion_counts():
    p = ac.Prompt("The keys to the cabinet", True, False, "base", 0, 0, "to the")
    r = ag.verb_inversion([p, p], ["The keys to the cabinet is old and they is red.",
                                   "The keys to the cabinet are old and they are red."])
    assert r["n_verbs"] == 4 and r["all_wrong"] == 0.5
    assert r["main_found"] == 2 and r["main_wrong"] == 0.5


# --------------------------------------------------------------------------- tokens, margin, AUC


class _SplitTok:
    """A stub tokenizer that splits ' were' into two pieces."""

    def encode(self, text, add_special_tokens=False):
        return [7, 8] if text == " were" else [len(text)]

    def convert_ids_to_tokens(self, ids):
        return [f"<{i}>" for i in ids]


def test_multi_token_verb_is_refused_clearly():
    with pytest.raises(ag.MultiTokenVerbError, match=r"' were' is 2 tokens"):
        ag.verb_token_ids(_SplitTok())


def test_gpt2_verbs_are_single_tokens():
    from ace_utils.models import load_gpt2_tokenizer

    assert ag.verb_token_ids(load_gpt2_tokenizer()) == {"is": 318, "are": 389, "was": 373, "were": 547}


def test_number_margin_and_agreement_score():
    v = {"is": 0, "are": 1, "was": 2, "were": 3}
    z = torch.tensor([[1.0, 4.0, 0.5, 2.0, 9.0]])
    assert ag.number_margin(z, v).item() == pytest.approx(4.0 + 2.0 - 1.0 - 0.5)
    s = ag.agreement_score(z, v, np.array([True]))
    assert s[0] == pytest.approx(math.log(math.exp(4.0) + math.exp(2.0)) - 4.0)
    assert ag.agreement_score(z, v, np.array([False]))[0] < 0


def test_roc_auc_known_answers():
    y = np.array([0, 0, 1, 1])
    assert ag.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert ag.roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert ag.roc_auc(np.array([0.1, 0.5, 0.5, 0.9]), y) == 0.875
    assert ag.roc_auc(np.ones(4), y) == 0.5


def test_separation_keeps_ordering_where_auc_saturates():
    y = np.array([0, 0, 1, 1])
    a, b = np.array([0.0, 0.1, 1.0, 1.1]), np.array([0.0, 0.1, 5.0, 5.1])
    assert ag.roc_auc(a, y) == ag.roc_auc(b, y) == 1.0
    assert ag.separation(b, y) > ag.separation(a, y) > 0
    assert ag.separation(-b, y) < 0


def test_factor_share():
    z = np.array([1.0, 1.0, -1.0, -1.0])
    s = ag.factor_share(z, {"a": [0, 0, 1, 1], "b": [0, 1, 0, 1]})
    assert s["a"] == pytest.approx(1.0) and s["b"] == pytest.approx(0.0)


# --------------------------------------------------------------------------- training / expansion


def test_compact_model_expands_to_the_same_distribution(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    run = ag.AgreementRun(n_layers=1, d_model=16, n_heads=2, steps=3, batch_size=8, n_sentences=100)
    tm = ag.train_agreement_model(run)
    assert len(tm.losses) == 3 and all(np.isfinite(tm.losses))
    full = ag.expand_to_full_vocab(tm)
    from transformers import GPT2LMHeadModel

    compact = GPT2LMHeadModel(ag._gpt2_config(run, len(tm.used_ids) + 1))
    compact.load_state_dict(tm.state_dict)
    compact.eval()
    used = torch.tensor(tm.used_ids)
    remap = torch.full((50257,), -1, dtype=torch.long)
    remap[used] = torch.arange(len(used))
    ids = torch.tensor([[464, 8251, 284, 262]])  # "The keys to the"
    with torch.no_grad():
        lc = compact(remap[ids]).logits[0, -1]
        lc[-1] += math.log(50257 - len(used))
        lf = full(ids).logits[0, -1]
    torch.testing.assert_close(torch.log_softmax(lf, -1)[used], torch.log_softmax(lc, -1)[:-1], atol=2e-4, rtol=0)
    # float32 sums of 50k terms differ by ~5e-5; without the log(n_unused) offset the gap is ~10


def test_train_models_fills_the_cache_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    run = ag.AgreementRun(n_layers=1, d_model=16, n_heads=2, steps=2, batch_size=4, n_sentences=50)
    first = ag.train_models([run], workers=1)
    assert list(first) == [run] and first[run] > 0
    assert ag.train_models([run], workers=1) == {}  # cached now
    model, tok, tm = ag.load_agreement_model("trained", run=run)
    assert tm.run == run and model.cfg.n_layers == 1 and len(tok) == 50257


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_training_in_segments_equals_one_call(tmp_path, monkeypatch, dropout):
    """Stopping after 2 and 3 more steps and continuing from the saved state gives the model,
    losses and every parameter of one uninterrupted 7-step call, bit for bit (dropout on:
    its masks come from the saved torch generator state)."""
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    run = ag.AgreementRun(n_layers=1, d_model=16, n_heads=2, steps=7, batch_size=4, n_sentences=50, dropout=dropout)
    whole = ag.train_agreement_model(run)
    state = tmp_path / "partial.pt"
    assert ag.train_agreement_model(run, state_path=state, max_steps=2) is None and state.exists()
    assert ag.train_agreement_model(run, state_path=state, max_steps=3) is None
    parts = ag.train_agreement_model(run, state_path=state, max_steps=10)
    assert not state.exists()
    assert parts.losses == whole.losses and len(parts.losses) == 7
    assert parts.state_dict.keys() == whole.state_dict.keys()
    for k, v in whole.state_dict.items():
        assert torch.equal(parts.state_dict[k], v), k
    with pytest.raises(ValueError, match="state_path"):
        ag.train_agreement_model(run, max_steps=2)


def test_train_models_in_two_calls_fills_the_cache_with_the_one_call_model(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_BOOK_CACHE", str(tmp_path / "cache"))
    run = ag.AgreementRun(n_layers=1, d_model=16, n_heads=2, steps=5, batch_size=4, n_sentences=50)
    whole = ag.train_agreement_model(run)
    assert list(ag.train_models([run], workers=1, max_steps=3)) == [run]
    assert ag.partial_state_path(run).exists()
    assert list(ag.train_models([run], workers=1, max_steps=3)) == [run]  # finishes: 2 steps left
    assert not ag.partial_state_path(run).exists() and ag.train_models([run], workers=1) == {}
    _, _, tm = ag.load_agreement_model("trained", run=run)
    assert tm.losses == whole.losses
    assert all(torch.equal(tm.state_dict[k], v) for k, v in whole.state_dict.items())


# --------------------------------------------------------------------------- the whole pipeline, hub path


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    hf, tok = build_gpt2_like(n_layers=2, d_model=32, n_heads=2, n_ctx=64, seed=0)
    return save_pretrained_model(hf, tok, tmp_path_factory.mktemp("tiny-gpt2"))


def test_pipeline_end_to_end_on_a_local_gpt2(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok, tm = ag.load_agreement_model("hub", name=str(tiny_model_dir))
    assert tm is None
    v = ag.verb_token_ids(tok)
    train_pairs, test_pairs = ac.split_pairs(0)
    train = ag.prompt_batch(tok, ac.make_prompts(40, train_pairs, seed=0))
    test = ag.prompt_batch(tok, ac.make_prompts(40, test_pairs, seed=1))
    assert train.tokens.shape[0] == 40 and int(train.last.max()) < train.tokens.shape[1]

    # margins from last-token-only logits equal those of a plain full forward
    base = ag.margins(model, test, v)
    with torch.no_grad():
        full = model(test.tokens)
    direct = ag.number_margin(full[torch.arange(40), test.last], v).double().numpy()
    np.testing.assert_allclose(base, direct, atol=1e-4)

    cores = ag.ace_all_layers(model, train, v, batch_size=16)
    assert cores.hooks == ["blocks.0.hook_in", "blocks.1.hook_in", "blocks.1.hook_out"]
    for l in range(3):
        q = cores.q(l)
        assert q.shape == (32,) and abs(float(q.norm()) - 1) < 1e-9

    # strength 0 is the identity; a flip applied to the last layer changes the margins
    L = 2
    same = ag.intervention_margins(model, test, v, cores.hooks[L], cores.q(L), cores.results[L].mean, "flip", strength=0.0)
    np.testing.assert_allclose(same, base, atol=1e-5)
    flipped = ag.intervention_margins(model, test, v, cores.hooks[L], cores.q(L), cores.results[L].mean, "flip")
    assert np.abs(flipped - base).max() > 1e-4
    # the scorer the baselines chapter compares finders with: the AUC of exactly those margins
    score = ag.auc_scorer(model, test, v, cores.hooks[L], cores.results[L].mean)
    assert score(cores.q(L)[:, None], "flip") == ag.roc_auc(flipped, test.labels)
    assert score(cores.q(L)[:, None], "keep") != score(cores.q(L)[:, None], "remove")

    sweep = ag.layer_sweep(model, cores, test, v, seed=0)
    for key in ("keep", "remove", "flip", "random_flip"):
        assert sweep[key].shape == (3,) and np.all((sweep[key] >= 0) & (sweep[key] <= 1))
    assert sweep["flip"][sweep["layer"]] == sweep["flip"].min()
    assert sweep["layer_first_min"] == int(np.argmin(sweep["flip"]))

    prompts = [p.text for p in test.prompts[:3]]
    clean = ag.generate(model, tok, prompts, n_new=5, seed=3)
    again = ag.generate(model, tok, prompts, n_new=5, seed=3)
    assert clean.texts == again.texts  # seeded
    zero = ag.generate(model, tok, prompts, hook=cores.hooks[1], q=cores.q(1), mean=cores.results[1].mean,
                       strength=0.0, n_new=5, seed=3)
    assert zero.texts == clean.texts
    for strength in (1.0, "adaptive"):
        g = ag.generate(model, tok, prompts, hook=cores.hooks[1], q=cores.q(1), mean=cores.results[1].mean,
                        strength=strength, n_new=5, seed=3)
        assert len(g.texts) == 3 and all(f.startswith(p) for f, p in zip(g.full, prompts))
        assert (g.strengths > 0).any() and (g.strengths <= 50).all()


def test_hub_path_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="hub"):
        ag.load_agreement_model("hub", name="gpt2")
    assert time.perf_counter() - t0 < 10
