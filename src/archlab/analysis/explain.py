"""Seeing inside an image classifier: first-layer filters, activation maps, Grad-CAM and CAM.

Every function takes a plain ``nn.Module`` that maps normalized images ``[B, C, H, W]`` to logits
``[B, classes]``, and leaves it as it was: hooks are removed, each module's training flag is restored, and
no parameter's ``requires_grad`` (nor ``.grad``) is touched.

- **Filters.** The first convolution's weights ``[out, in, kh, kw]`` are small images: on digits they
  become stroke and edge detectors.
- **Activation maps.** The output ``A`` of a layer for one input, ``[channels, h, w]``: where in the image
  each learned feature fires.
- **Grad-CAM** (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
  Localization", ICCV 2017). With ``A_k`` the k-th channel of a layer's output and ``y_c`` the logit of
  class c: ``alpha_k = mean over (i, j) of dy_c / dA_k(i, j)`` (how much channel k matters to class c),
  ``map = ReLU(sum_k alpha_k A_k)`` (only evidence *for* the class), upsampled bilinearly to the input's
  H×W and scaled to [0, 1]. Works for any differentiable network with a spatial layer.
- **CAM** (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016). When the
  logits are ``y_c = sum_k w_ck mean(A_k) + b_c`` (global average pooling then one linear layer), the map
  ``sum_k w_ck A_k`` needs no gradient. It is then Grad-CAM exactly: ``dy_c / dA_k(i, j) = w_ck / (h w)``,
  so ``alpha_k`` is ``w_ck`` up to the constant ``1 / (h w)``, which the [0, 1] scaling removes. We apply
  the same ReLU, upsampling and scaling, so the two maps can be compared directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.analysis.tracing import (
    as_batch,
    check_layer,
    evaluating,
    feature_map_layers,
    hooked,
    last_feature_map_layer,
    model_device,
)
from archlab.errors import ConfigError

CAM_NEEDS_GAP = "CAM needs global average pooling before the classifier; use grad_cam"


@dataclass
class ClassMaps:
    """Heat maps of a batch: ``maps`` [B, H, W] in [0, 1] for ``target_class`` [B], drawn at ``layer``.

    ``predicted`` [B] and ``probs`` [B, classes] are the model's own outputs on the same inputs.
    """

    maps: torch.Tensor
    target_class: torch.Tensor
    predicted: torch.Tensor
    probs: torch.Tensor
    layer: str


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The weights ``[out, in, kh, kw]`` of the model's first ``nn.Conv2d`` (in registration order), on CPU."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight.detach().float().cpu().clone()
    raise ConfigError(f"{type(model).__name__} has no nn.Conv2d layer, so it has no filters to show as images.")


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def stage_layers(model: nn.Module) -> list[str]:
    """Names of the top-level convolutional stages: each top-level child holding a convolution, except
    that a container (``nn.Sequential``/``nn.ModuleList``) of two or more such children stands for its
    children (``stages`` → ``stages.0``, ``stages.1``; ``features`` → its conv layers)."""
    names = []
    for name, child in model.named_children():
        if not _has_conv(child):
            continue
        inner = [f"{name}.{sub}" for sub, grandchild in child.named_children() if _has_conv(grandchild)]
        is_container = isinstance(child, (nn.Sequential, nn.ModuleList))
        names.extend(inner if is_container and len(inner) >= 2 else [name])
    return names


def default_activation_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The stages of :func:`stage_layers` that output feature maps; failing that, every conv layer that does."""
    spatial = feature_map_layers(model, x)
    stages = [name for name in stage_layers(model) if name in spatial]
    if stages:
        return stages
    modules = dict(model.named_modules())
    convs = [name for name in spatial if isinstance(modules[name], nn.Conv2d)]
    if not convs:
        last_feature_map_layer(model, x)  # raises the "no feature map" error
    return convs or spatial


def activation_maps(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Feature maps ``{layer name: [channels, h, w]}`` of one input ``x`` ([C, H, W] or [1, C, H, W]).

    ``layers`` are module names (``stem``, ``stages.0``, ...); by default each top-level convolutional
    stage (see :func:`stage_layers`). Captured by forward hooks on one no-grad pass in eval mode.
    """
    x = as_batch(x).to(model_device(model))
    if x.shape[0] != 1:
        raise ConfigError(f"activation_maps shows one input; got a batch of {x.shape[0]}. Pass x[i].")
    names = [check_layer(model, x, name) for name in layers] if layers else default_activation_layers(model, x)
    captured: dict[str, torch.Tensor] = {}

    def store(name: str):
        def hook(module, inputs, output):
            captured[name] = output.detach().clone()  # a later in-place ReLU must not rewrite it
        return hook

    with evaluating(model), torch.no_grad(), hooked(model, {name: store(name) for name in names}):
        model(x)
    return {name: captured[name][0] for name in names}


def _targets(target_class: int | Sequence[int] | torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """Per-sample class indices: the predicted class (None), one class for all, or one per sample."""
    batch, classes = logits.shape
    if target_class is None:
        return logits.argmax(1)
    targets = torch.as_tensor(target_class, device=logits.device).long().reshape(-1)
    if targets.numel() == 1:
        targets = targets.expand(batch)
    if targets.numel() != batch or targets.min() < 0 or targets.max() >= classes:
        raise ConfigError(f"target_class must be a class index in 0..{classes - 1} (one, or one per input of "
                          f"the batch of {batch}); got {target_class!r}.")
    return targets


def heatmaps(raw: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``[B, h, w]`` class evidence → ReLU → bilinear upsampling to ``size`` → each map scaled to [0, 1].

    A map with no positive evidence (all zero after the ReLU) stays all zero.
    """
    upsampled = F.interpolate(raw.relu().unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    low = upsampled.amin(dim=(1, 2), keepdim=True)
    span = upsampled.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (upsampled - low) / span.clamp_min(1e-12), torch.zeros_like(upsampled))


def grad_cam(model: nn.Module, x: torch.Tensor, target_class: int | Sequence[int] | torch.Tensor | None = None,
             layer: str | None = None) -> ClassMaps:
    """Grad-CAM maps [B, H, W] of a batch of normalized images ``x`` for ``target_class`` (default: the
    predicted class), at ``layer`` (default: the last module whose output is a feature map).

    The gradient is taken with ``torch.autograd.grad`` with respect to the layer's output only, so no
    parameter gradient is accumulated; the input is made to require grad so the graph exists even when
    every parameter is frozen.
    """
    x = as_batch(x).to(model_device(model))
    layer = check_layer(model, x, layer) if layer else last_feature_map_layer(model, x)
    captured: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        captured["A"] = output
        return output.clone()  # downstream in-place ops (ReLU(inplace=True)) then leave A and its graph intact

    with evaluating(model), torch.enable_grad(), hooked(model, {layer: hook}):
        logits = model(x.detach().clone().requires_grad_(True))
        targets = _targets(target_class, logits)
        score = logits.gather(1, targets[:, None]).sum()  # samples are independent in eval mode
        (gradient,) = torch.autograd.grad(score, captured["A"])
    features = captured["A"].detach()
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    maps = heatmaps((alpha * features).sum(1), x.shape[-2:])
    logits = logits.detach()
    return ClassMaps(maps, targets, logits.argmax(1), logits.float().softmax(1), layer)


def cam(model: nn.Module, x: torch.Tensor, target_class: int | Sequence[int] | torch.Tensor | None = None,
        layer: str | None = None) -> ClassMaps:
    """Class activation maps [B, H, W] (Zhou et al. 2016) for nets ending in global average pooling + linear.

    The structure is checked on the same forward pass, whatever the model's code looks like: the last
    ``nn.Linear`` to run must produce the logits, and its input must equal the spatial mean of ``layer``'s
    output (default: the last feature map). Otherwise a ConfigError says to use :func:`grad_cam`.
    """
    x = as_batch(x).to(model_device(model))
    layer = check_layer(model, x, layer) if layer else last_feature_map_layer(model, x)
    seen: dict[str, object] = {}

    def store_features(module, inputs, output):
        seen["A"] = output.detach().clone()

    def store_linear(module, inputs, output):
        seen["linear"] = (module, inputs[0].detach(), output.detach())

    linears = {name: store_linear for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    with evaluating(model), torch.no_grad(), hooked(model, {**linears, layer: store_features}):
        logits = model(x)
    classifier = _gap_classifier(model, seen, logits, layer)
    targets = _targets(target_class, logits)
    weights = classifier.weight.detach()[targets].to(seen["A"].dtype)
    maps = heatmaps(torch.einsum("bk,bkhw->bhw", weights, seen["A"]), x.shape[-2:])
    return ClassMaps(maps, targets, logits.argmax(1), logits.float().softmax(1), layer)


def _gap_classifier(model: nn.Module, seen: dict, logits: torch.Tensor, layer: str) -> nn.Linear:
    """The final ``nn.Linear`` if it maps the global average of ``layer``'s output to the logits."""
    features = seen["A"]
    if "linear" in seen:
        classifier, linear_in, linear_out = seen["linear"]
        pooled = features.mean(dim=(2, 3))
        if (linear_out.shape == logits.shape and torch.allclose(linear_out, logits)
                and linear_in.shape == pooled.shape and torch.allclose(linear_in, pooled, rtol=1e-3, atol=1e-5)):
            return classifier
    raise ConfigError(
        f"{CAM_NEEDS_GAP}. {type(model).__name__} does not compute its logits as one nn.Linear applied to the "
        f"spatial mean of layer {layer!r} (e.g. it flattens the feature map instead), so the class weights "
        "cannot be read as weights of the feature maps."
    )
