"""The models the book trains and reads, and their training.

``native`` (TransformerLens-native pre-LN transformers), ``paper`` (the paper's post-LN
encoder models as a ``HookedRootModule``), ``hub`` (pretrained models, the GPT-2
tokenizer offline, GPT-2-shaped models), ``readout`` (any model's readout matrix and
bias), ``stacked`` (functional layers for training several models as one),
``precision`` (the training arithmetic), ``device`` (the device parameter resolved once, and
placement), ``state_io`` (the cache root, atomic writes, a model's state as CPU tensors),
``training`` (seeding and the one training loop, :func:`~ace_utils.models.training.run_loop`,
every task trains with). Nothing here imports the book's tooling (the ``book`` folder).
The native, readout and hub names are also importable from ``ace_utils.models`` itself.
"""

from ace_utils.models.hub import (
    GPT2_EOS_ID,
    HubUnavailableError,
    build_gpt2_like,
    gpt2_tokenizer_dir,
    hub_available,
    load_gpt2_tokenizer,
    load_pretrained,
    save_pretrained_model,
)
from ace_utils.models.native import (
    ModelShape,
    SmallModelConfig,
    build_native_model,
    native_from_payload,
    native_to_payload,
)
from ace_utils.models.readout import readout_bias, readout_matrix

__all__ = [
    "GPT2_EOS_ID",
    "HubUnavailableError",
    "ModelShape",
    "SmallModelConfig",
    "build_gpt2_like",
    "build_native_model",
    "gpt2_tokenizer_dir",
    "hub_available",
    "load_gpt2_tokenizer",
    "load_pretrained",
    "native_from_payload",
    "native_to_payload",
    "readout_bias",
    "readout_matrix",
    "save_pretrained_model",
]
