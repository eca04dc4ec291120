"""Subject-verb agreement in language models: training, prompts, ACE at every layer, the flip.

Explained in chapter ``05_agreement_axis``. One code path for two model sources:

- ``"trained"``: our own small GPT-2-architecture models (Hugging Face ``GPT2LMHeadModel``),
  trained here on the synthetic corpus of :mod:`ace_utils.tasks.agreement_corpus`, saved
  with the real GPT-2 tokenizer and loaded through :func:`ace_utils.models.hub.load_pretrained`
  like any checkpoint;
- ``"hub"``: GPT-2 Small / Medium / Large or any causal LM id TransformerBridge supports
  (needs the Hugging Face hub; fails at once offline with :class:`HubUnavailableError`).

**Compact-vocabulary training, full-vocabulary model.** The corpus uses ~110 of GPT-2's
50257 token ids. A softmax over all 50257 ids would cost ~99% of the training compute, so
the model is trained with a *compact* vocabulary: the used ids plus one "other" class whose
logit gets ``+log(n_unused)``. Afterwards the compact model is expanded into an exact
50257-token GPT-2 model whose unused rows all equal the "other" row: its full softmax then
equals the compact one, probability for probability (``test_agreement`` checks this), so the
exported model lives in GPT-2's token space and goes through the same loader as GPT-2.

**Sites.** ``hidden_states[l]`` for ``l = 0..L`` are read at ``blocks.{l}.hook_in`` (l < L)
and ``blocks.{L-1}.hook_out`` (l = L), at each prompt's last token. Note: in Hugging Face
``hidden_states[L]`` is *after* the final LayerNorm; we read and edit the residual stream
before it, so extraction and intervention share one space at every layer.

The package's modules, one job each (every name below is also importable from here):

- :mod:`ace_utils.tasks.agreement.prompts`: verb token ids, encoded prompts and prompt batches.
- :mod:`ace_utils.tasks.agreement.training`: the run configuration (:class:`AgreementRun`),
  training, export, the cache of trained models and loading.
- :mod:`ace_utils.tasks.agreement.cores`: margins, ACE at every layer, interventions and the
  layer sweep.
- :mod:`ace_utils.tasks.agreement.generation`: generation with the core flipped, and the number
  errors of the generated verbs.
"""

from __future__ import annotations

from dataclasses import asdict  # noqa: F401  (read by the tests as ag.asdict)

from ace_utils.tasks.agreement.cores import (
    LayerCores,
    ace_all_layers,
    agreement_score,
    core_coordinate,
    edit_hooks_for,
    intervention_margins,
    auc_scorer,
    knob_fit,
    last_logits,
    last_token_logits,
    layer_sweep,
    margin_acts_and_grads,
    margins,
    number_margin,
    roc_auc,
    separation,
)
from ace_utils.tasks.agreement.generation import GenerationResult, factor_share, generate, verb_inversion
from ace_utils.tasks.agreement.prompts import (
    VERB_WORDS,
    MultiTokenVerbError,
    PromptBatch,
    encode_texts,
    layer_hooks,
    prompt_batch,
    verb_token_ids,
)
from ace_utils.tasks.agreement.training import (
    CACHE_VERSION,
    AgreementRun,
    TrainedModel,
    expand_to_full_vocab,
    export_trained_model,
    load_agreement_model,
    partial_state_path,
    train_agreement_model,
    train_models,
)

# Internals the tests read (the model's GPT-2 config, the cached model, its cache key).
from ace_utils.tasks.agreement.training import _cached_model, _gpt2_config, _run_key  # noqa: E402,F401

__all__ = [
    "AgreementRun",
    "TrainedModel",
    "MultiTokenVerbError",
    "verb_token_ids",
    "encode_texts",
    "PromptBatch",
    "prompt_batch",
    "layer_hooks",
    "train_agreement_model",
    "train_models",
    "partial_state_path",
    "expand_to_full_vocab",
    "export_trained_model",
    "load_agreement_model",
    "number_margin",
    "margins",
    "last_token_logits",
    "margin_acts_and_grads",
    "roc_auc",
    "LayerCores",
    "ace_all_layers",
    "intervention_margins",
    "auc_scorer",
    "layer_sweep",
    "edit_hooks_for",
    "agreement_score",
    "separation",
    "GenerationResult",
    "generate",
    "verb_inversion",
    "factor_share",
    "knob_fit",
    "core_coordinate",
    "last_logits",
]
