"""Dynamic int8 quantization of a model's Linear layers, for CPU inference.

Dynamic quantization (PyTorch's ``quantize_dynamic``) stores each ``nn.Linear`` weight as int8 with one
scale per tensor and quantizes the activations on the fly, batch by batch::

    W_q = round(W / s_W),  s_W = max|W| / 127;   y ≈ s_x s_W (x_q W_qᵀ) + b

so the weights take a quarter of their float32 size and the matrix products run in int8 (x86: fbgemm /
oneDNN). Nothing else changes: embeddings, layer norms and the attention's softmax stay float32. Whether it
pays depends on the shapes: large Linear layers at batch 1 gain most; small ones can lose to the cost of
quantizing activations (measure: ``bench/cheaper_transformers.py``).

PyTorch marks its eager-mode quantization API as deprecated in favour of torchao; it is still the one
that runs here without another dependency, and its warnings are silenced inside :func:`dynamic_int8`.
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import nn


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose ``nn.Linear`` layers run in dynamic int8; the original is untouched."""
    from torch.ao.quantization import quantize_dynamic

    copied = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the eager-mode quantization API
        return quantize_dynamic(copied, {nn.Linear}, dtype=torch.qint8)


def serialized_bytes(model: nn.Module) -> int:
    """Size of the model's state as written to disk (quantized layers included), in bytes."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
