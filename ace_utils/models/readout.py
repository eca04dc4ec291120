"""The readout of any model the book uses, as a matrix and a bias: ``logits = h @ W.T + b``.

Works for TransformerBridges (native or pretrained: ``unembed.W_U``, ``unembed.b_U``) and for
:class:`ace_utils.models.paper.PaperTransformer` (``unembed.weight``, ``unembed.bias``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["readout_bias", "readout_matrix"]


def readout_matrix(model: torch.nn.Module) -> Tensor:
    """The readout as a (n_outputs, d_model) matrix ``W``: logits = h @ W.T + b.

    For a TransformerBridge (native or pretrained) ``h`` is the activation at
    ``unembed.hook_in`` = ``ln_final.hook_out`` (after the final LayerNorm, including its
    learned scale and bias); for :class:`ace_utils.models.paper.PaperTransformer` it is
    ``unembed.hook_in``, the last block's output. ``b`` is :func:`readout_bias`.
    Returned detached; it shares storage with the model's weight (training the model
    changes it).
    """
    unembed = model.unembed
    W_U = getattr(unembed, "W_U", None)  # bridges: (d_model, n_outputs)
    return W_U.detach().T if W_U is not None else unembed.weight.detach()


def readout_bias(model: torch.nn.Module) -> Tensor:
    """The readout bias, shape (n_outputs,): zeros for native and GPT-2 bridges, learned for
    the paper's models (:class:`ace_utils.models.paper.PaperTransformer`)."""
    unembed = model.unembed
    b_U = getattr(unembed, "b_U", None)
    if b_U is not None:
        return b_U.detach()
    if unembed.bias is None:  # a PaperTransformer variant without readout bias
        return unembed.weight.new_zeros(unembed.weight.shape[0])
    return unembed.bias.detach()


