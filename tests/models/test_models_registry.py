"""Generated from the registry: every model builds, has the right output shape, and gets finite gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.errors import ConfigError
from archlab.models import count_parameters, create_model, get_model_info, list_models, model_summary

NAMES = [info.name for info in list_models()]
CLASSIFIERS = [info.name for info in list_models() if info.task == "classify"]


def tiny(name: str) -> torch.nn.Module:
    return create_model(name, **get_model_info(name).tiny)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite(name):
    torch.manual_seed(0)
    model = tiny(name)
    info = get_model_info(name)
    inputs = info.example_inputs(4)
    outputs = model(*inputs)
    out = outputs[0] if isinstance(outputs, tuple) else outputs
    assert out.shape[0] == 4 and torch.isfinite(out).all()
    if info.task == "classify":
        assert out.shape == (4, 10)
        F.cross_entropy(out, torch.arange(4)).backward()
    elif hasattr(model, "discriminate"):  # a GAN: through the discriminator too, so that both networks are reached
        (out.float().pow(2).mean() + model.discriminate(out, *inputs[1:]).float().pow(2).mean()).backward()
    else:  # any scalar that depends on every output reaches every parameter
        out.float().pow(2).mean().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_overfits_a_small_batch(name):
    """Each classifier can drive the loss on 32 fixed samples to a fraction of its start: it can learn.

    (Models of the other tasks have their learning tests next to their task's tests.)"""
    torch.manual_seed(0)
    model = tiny(name)
    x = get_model_info(name).example_inputs(32)
    y = torch.arange(32) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.eval()  # dropout off, batch norm on running stats: the same function at every step
    with torch.no_grad():
        start = F.cross_entropy(model(*x), y).item()
    model.train()
    for _ in range(80):
        optimizer.zero_grad()
        F.cross_entropy(model(*x), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        end = F.cross_entropy(model(*x), y).item()
    assert end < 0.25 * start, f"{name}: loss {start:.3f} → {end:.3f}"


@pytest.mark.parametrize("name", NAMES)
def test_summary_metadata(name):
    summary = model_summary(name)
    assert summary["params"] > 0 and summary["mflops"] > 0
    assert summary["family"] and summary["task"] in summary["tasks"]


def test_seed_cnn_parameter_count_matches_the_listing():
    assert count_parameters(create_model("seed-cnn")) == 1_625_866


def test_seed_cnn_layers_are_the_listing():
    model = create_model("seed-cnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))]
    assert [(m.in_features, m.out_features) for m in linears] == [(12544, 128), (128, 10)]
    dropouts = sorted(m.p for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert dropouts == [0.25, 0.5]


def test_unknown_model_lists_the_names():
    with pytest.raises(ConfigError, match="Known models:.*cnn"):
        create_model("resnet-9000")


def test_unknown_argument_lists_the_accepted_ones():
    with pytest.raises(ConfigError, match="does not accept.*widht.*Accepted"):
        create_model("cnn", widht=3)


def test_bad_argument_value_is_a_config_error():
    with pytest.raises(ConfigError, match="block must be one of"):
        create_model("cnn", block="transformer")


def test_variants_differ_in_the_advertised_way():
    dilated = create_model("cnn-dilated")
    assert any(isinstance(m, torch.nn.Conv2d) and m.dilation == (2, 2) for m in dilated.modules())
    nobn = create_model("cnn-nobn")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nobn.modules())
    inception = create_model("cnn-inception")
    kernels = {m.kernel_size for m in inception.modules() if isinstance(m, torch.nn.Conv2d)}
    assert {(1, 1), (3, 3), (5, 5)} <= kernels
    strided = create_model("cnn-stride")
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in strided.modules())


def test_cnn_crop_looks_at_the_centre_only():
    torch.manual_seed(0)
    model = create_model("cnn", crop=20).eval()
    x = torch.randn(2, 1, 28, 28)
    border_changed = x.clone()
    border_changed[..., :4, :] = 5.0  # rows outside the central 20×20
    border_changed[..., :, -4:] = -5.0
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(border_changed))
    centre_changed = x.clone()
    centre_changed[..., 14, 14] += 5.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(centre_changed))
    with pytest.raises(ConfigError, match="crop must be"):
        create_model("cnn", crop=40)
