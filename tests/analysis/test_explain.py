"""Filters, activation maps, Grad-CAM and CAM on small trained models: shapes, ranges, localization,
CAM = Grad-CAM on a GAP net, clear errors, and a model handed back untouched (no hooks, same modes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.analysis.explain import (
    CAM_NEEDS_GAP,
    activation_maps,
    cam,
    first_layer_filters,
    grad_cam,
    stage_layers,
)
from archlab.errors import ConfigError
from archlab.models import create_model
from archlab.models.registry import _REGISTRY
from tinymodels import GapNet, normalize


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


@pytest.fixture
def blob_x(blob_data):
    images, labels = blob_data["test"]
    return normalize(images[:10]), torch.from_numpy(labels[:10])


@pytest.fixture
def bar_x(bar_data):
    images, labels = bar_data["test"]
    return normalize(images), torch.from_numpy(labels), torch.from_numpy(images[:, 0] == 255)


def test_first_layer_filters_are_the_stem_weights(blob_cnn):
    filters = first_layer_filters(blob_cnn)
    assert filters.shape == (8, 1, 5, 5)
    assert torch.equal(filters, blob_cnn.stem[0].weight.detach())
    with pytest.raises(ConfigError, match="no nn.Conv2d"):
        first_layer_filters(create_model("mlp"))


def test_activation_maps_of_each_stage(blob_cnn, blob_x):
    x, _ = blob_x
    assert stage_layers(blob_cnn) == ["stem", "stages.0", "stages.1"]
    maps = activation_maps(blob_cnn, x[0])
    assert {name: tuple(a.shape) for name, a in maps.items()} == {
        "stem": (8, 14, 14), "stages.0": (16, 7, 7), "stages.1": (16, 4, 4)}
    assert all(a.min() >= 0 for a in maps.values())  # each stage ends in a ReLU (and max-pool)
    chosen = activation_maps(blob_cnn, x[:1], layers=["stem.1"])  # batch norm output: before the in-place ReLU
    assert list(chosen) == ["stem.1"] and chosen["stem.1"].min() < 0
    with pytest.raises(ConfigError, match="one input"):
        activation_maps(blob_cnn, x[:2])


def test_grad_cam_maps_have_the_input_size_and_range(blob_cnn, blob_x):
    x, labels = blob_x
    result = grad_cam(blob_cnn, x, layer="stages.0")
    assert result.maps.shape == (10, 28, 28) and result.layer == "stages.0"
    assert result.maps.min() >= 0 and result.maps.max() <= 1
    spread = result.maps.amax(dim=(1, 2)) - result.maps.amin(dim=(1, 2))
    assert (spread == 1).float().mean() >= 0.8  # non-constant maps, scaled to exactly [0, 1]
    assert torch.equal(result.predicted, labels) and torch.equal(result.target_class, labels)
    assert torch.allclose(result.probs.sum(1), torch.ones(10))


def test_grad_cam_default_layer_is_the_last_feature_map(blob_cnn, blob_x):
    result = grad_cam(blob_cnn, blob_x[0][:2])
    assert result.layer == "stages" and result.maps.shape == (2, 28, 28)


def test_grad_cam_finds_the_evidence(bar_gapnet, bar_x):
    """On bars, the map of the true class lies on the bar: its mean there is several times its mean elsewhere."""
    x, labels, bar = bar_x
    maps = grad_cam(bar_gapnet, x, labels).maps
    inside = (maps * bar).sum((1, 2)) / bar.sum((1, 2))
    outside = (maps * ~bar).sum((1, 2)) / (~bar).sum((1, 2))
    assert (inside > 4 * outside).all(), (inside, outside)


def test_cam_equals_grad_cam_on_a_gap_net(bar_gapnet, bar_x):
    x, labels, _ = bar_x
    for target in (labels, 1 - labels, None):
        cam_maps, grad_maps = cam(bar_gapnet, x, target), grad_cam(bar_gapnet, x, target)
        assert cam_maps.layer == grad_maps.layer == "features"
        assert torch.allclose(cam_maps.maps, grad_maps.maps, atol=1e-5)
        assert torch.equal(cam_maps.target_class, grad_maps.target_class)
    assert (cam(bar_gapnet, x).maps.amax((1, 2)) == 1).all()


def test_cam_detects_the_pooling_whatever_the_code():
    class FunctionalMean(GapNet):  # a global mean written in forward, no pooling module
        def forward(self, x):
            return self.classifier(self.features(x).mean(dim=(2, 3)))

    torch.manual_seed(0)
    x = torch.randn(3, 1, 28, 28)
    assert cam(FunctionalMean().eval(), x).maps.shape == (3, 28, 28)


def test_cam_needs_global_average_pooling(blob_cnn, blob_x):
    with pytest.raises(ConfigError, match=CAM_NEEDS_GAP):
        cam(blob_cnn, blob_x[0][:2], 0)
    assert no_hooks(blob_cnn)


@pytest.mark.skipif("resnet" not in _REGISTRY, reason="the resnet family is not registered")
def test_cam_on_the_registry_resnet():
    torch.manual_seed(0)
    model = create_model("resnet", depth=8, widths=(4, 8, 8)).eval()
    x = torch.randn(2, 1, 28, 28)
    cam_maps, grad_maps = cam(model, x, 3), grad_cam(model, x, 3)
    assert cam_maps.maps.shape == (2, 28, 28)
    assert torch.allclose(cam_maps.maps, grad_maps.maps, atol=1e-4)


def test_the_model_is_handed_back_untouched(bar_gapnet, bar_x):
    x, labels, _ = bar_x
    bar_gapnet.train()
    bar_gapnet.classifier.weight.requires_grad_(False)
    try:
        grad_cam(bar_gapnet, x[:4], labels[:4])
        cam(bar_gapnet, x[:4])
        activation_maps(bar_gapnet, x[0])
        assert no_hooks(bar_gapnet)
        assert all(m.training for m in bar_gapnet.modules())
        assert not bar_gapnet.classifier.weight.requires_grad
        assert all(p.requires_grad for name, p in bar_gapnet.named_parameters() if name != "classifier.weight")
        assert all(p.grad is None for p in bar_gapnet.parameters())
    finally:
        bar_gapnet.classifier.weight.requires_grad_(True)
        bar_gapnet.eval()


def test_grad_cam_works_with_every_parameter_frozen_and_under_no_grad(bar_gapnet, bar_x):
    x, labels, _ = bar_x
    frozen = GapNet().eval()
    frozen.load_state_dict(bar_gapnet.state_dict())
    frozen.requires_grad_(False)
    with torch.no_grad():
        maps = grad_cam(frozen, x[:4], labels[:4]).maps
    assert torch.allclose(maps, grad_cam(bar_gapnet, x[:4], labels[:4]).maps)


def test_hooks_are_removed_when_an_error_is_raised(blob_cnn, blob_x):
    x, _ = blob_x
    with pytest.raises(ConfigError, match="target_class must be a class index in 0..9"):
        grad_cam(blob_cnn, x[:2], 12)
    with pytest.raises(ConfigError, match=r"Unknown layer 'nope'.*stem, .*stages\.0"):
        grad_cam(blob_cnn, x[:2], layer="nope")
    assert no_hooks(blob_cnn)


def test_models_without_feature_maps_are_refused():
    with pytest.raises(ConfigError, match="no layer whose output is a feature map"):
        grad_cam(create_model("mlp"), torch.zeros(1, 1, 28, 28))
    with pytest.raises(ConfigError, match="must be an image"):
        grad_cam(create_model("mlp"), torch.zeros(28, 28))
