"""Magnitude pruning: zero the weights (or whole neurons, or whole attention heads) that matter least.

- unstructured (Han et al. 2015, "Learning both Weights and Connections"): the ``amount`` fraction of all
  Linear weights with the smallest |w|, chosen globally across layers (``torch.nn.utils.prune``);
- neurons: in each feed-forward expansion layer, the ``amount`` fraction of hidden units whose incoming
  weight rows have the smallest L2 norm; their outputs become 0 (and GELU(0) = 0), so they drop out of
  the network exactly;
- heads (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): in each attention layer, the
  ``amount`` fraction of heads with the smallest weight norm ‖W_q,h‖ + ‖W_k,h‖ + ‖W_v,h‖ + ‖W_o[:, h]‖;
  zeroing the head's value rows and its output-projection columns removes its contribution exactly.

Zeroed weights still take the same memory in a dense tensor: pruning pays in size only once stored
sparse or compressed, and in speed only with structured removal or sparse kernels; the loss it costs is
what ``bench/cheaper_transformers.py`` measures. Every function works on a copy and leaves ``model`` as it is.

Structured pruning needs to know which layers are feed-forward expansions and which are attention: a model
that supports it has ``pruning_groups() -> {"neurons": [nn.Linear, ...], "heads": [(qkv, proj, heads), ...]}``
where ``qkv`` is the fused [3·dim, dim] query/key/value projection, ``proj`` the [dim, dim] output
projection and ``heads`` the number of heads.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from archlab.errors import ConfigError


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise ConfigError(f"The pruning amount is a fraction in [0, 1), got {amount}.")


def _tied_to_an_embedding(model: nn.Module, weight: torch.Tensor) -> bool:
    return any(weight is module.weight for module in model.modules() if isinstance(module, nn.Embedding))


def prunable_linears(model: nn.Module) -> list[nn.Linear]:
    """Linear layers whose weight is not an embedding's (a tied output layer would prune the embedding too)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear) and not _tied_to_an_embedding(model, m.weight)]


def prune_unstructured(model: nn.Module, amount: float) -> nn.Module:
    """A copy with the smallest ``amount`` fraction of all (untied) Linear weights set to 0, chosen globally."""
    _check_amount(amount)
    pruned = copy.deepcopy(model)
    layers = prunable_linears(pruned)
    if not layers:
        raise ConfigError("The model has no Linear layer to prune.")
    targets = [(layer, "weight") for layer in layers]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in targets:
        prune.remove(layer, name)  # make the zeros permanent: a plain weight tensor again
    return pruned


def _groups(model: nn.Module) -> dict:
    if not hasattr(model, "pruning_groups"):
        raise ConfigError(f"{type(model).__name__} does not say which layers are feed-forward neurons or attention "
                          "heads (no pruning_groups()); use unstructured pruning for it.")
    return model.pruning_groups()


def prune_neurons(model: nn.Module, amount: float) -> nn.Module:
    """A copy with the ``amount`` fraction of each feed-forward layer's hidden units (smallest L2 rows) removed."""
    _check_amount(amount)
    pruned = copy.deepcopy(model)
    for layer in _groups(pruned)["neurons"]:
        rows = layer.weight.detach().norm(dim=1)
        drop = rows.argsort()[: int(round(amount * len(rows)))]
        with torch.no_grad():
            layer.weight[drop] = 0.0
            if layer.bias is not None:
                layer.bias[drop] = 0.0
    return pruned


def head_norms(qkv: nn.Linear, proj: nn.Linear, heads: int) -> torch.Tensor:
    """‖W_q,h‖ + ‖W_k,h‖ + ‖W_v,h‖ + ‖W_o[:, h]‖ for each head h."""
    dim = proj.in_features
    size = dim // heads
    q, k, v = qkv.weight.detach().view(3, heads, size, -1).norm(dim=(2, 3))
    out = proj.weight.detach().view(proj.out_features, heads, size).norm(dim=(0, 2))
    return q + k + v + out


def prune_heads(model: nn.Module, amount: float) -> nn.Module:
    """A copy with the ``amount`` fraction of each attention layer's heads (smallest weight norm) removed."""
    _check_amount(amount)
    pruned = copy.deepcopy(model)
    for qkv, proj, heads in _groups(pruned)["heads"]:
        size = proj.in_features // heads
        drop = head_norms(qkv, proj, heads).argsort()[: int(round(amount * heads))]
        with torch.no_grad():
            for head in drop.tolist():
                columns = slice(head * size, (head + 1) * size)
                value_rows = slice(2 * proj.in_features + head * size, 2 * proj.in_features + (head + 1) * size)
                qkv.weight[value_rows] = 0.0
                if qkv.bias is not None:
                    qkv.bias[value_rows] = 0.0
                proj.weight[:, columns] = 0.0
    return pruned


def sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the weights of the (untied) Linear layers."""
    weights = [layer.weight.detach() for layer in prunable_linears(model)]
    total = sum(w.numel() for w in weights)
    return float(sum((w == 0).sum().item() for w in weights) / total) if total else 0.0
