"""The residual family: depth arithmetic, parameter counts, plain twins without additions, checkpointing."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from archlab.errors import ConfigError
from archlab.models import count_parameters, create_model
from archlab.models.resnet import ResidualMLP, ResNet, blocks_per_stage
from archlab.nn import ACTIVATIONS, INIT_SCHEMES, ZeroPadShortcut, init_weights, make_activation
from archlab.nn.init import NONLINEARITY

TINY_CONV = {"depth": 8, "widths": (4, 8, 8)}
TINY_MLP = {"depth": 4, "width": 16}


def weight_layers(model: nn.Module) -> int:
    """Conv and Linear layers outside shortcuts: what the papers count as depth."""
    return sum(
        isinstance(module, (nn.Conv2d, nn.Linear)) and "shortcut" not in name
        for name, module in model.named_modules()
    )


def additions(model: nn.Module) -> int:
    """Add nodes in the traced graph of ``model`` (modules like BN and ReLU are leaves)."""
    graph = fx.symbolic_trace(model).graph
    adds = {operator.add, operator.iadd, torch.add}
    return sum(
        (node.op == "call_function" and node.target in adds)
        or (node.op == "call_method" and node.target in ("add", "add_"))
        for node in graph.nodes
    )


# --- depth ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "block", "n"), [(8, "basic", 1), (20, "basic", 3), (56, "basic", 9),
                                                     (110, "basic", 18), (1202, "basic", 200),
                                                     (29, "bottleneck", 3), (164, "bottleneck", 18)])
def test_depth_is_6n_plus_2_or_9n_plus_2(depth, block, n):
    assert blocks_per_stage(depth, block) == n


@pytest.mark.parametrize(("kwargs", "depth"), [({"depth": 20}, 20), ({"depth": 8}, 8),
                                               ({"depth": 29, "block": "bottleneck"}, 29),
                                               ({"depth": 20, "preact": True}, 20),
                                               ({"depth": 29, "block": "bottleneck", "preact": True}, 29)])
def test_resnet_has_as_many_weight_layers_as_its_depth(kwargs, depth):
    assert weight_layers(ResNet(widths=(4, 8, 8), **kwargs)) == depth


@pytest.mark.parametrize("depth", [4, 10, 50])
def test_mlp_depth_counts_every_linear_layer(depth):
    model = ResidualMLP(depth=depth, width=8)
    assert weight_layers(model) == depth
    assert len(model.blocks) == (depth - 2) // 2


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("resnet", {"depth": 21}, "6n \\+ 2.*nearest valid depth: 20 or 26"),
    ("plain", {"depth": 3}, "nearest valid depth: 8 \\(the smallest\\)"),
    ("resnet", {"depth": 30, "block": "bottleneck"}, "9n \\+ 2.*nearest valid depth: 29 or 38"),
    ("resmlp", {"depth": 11}, "must be even.*nearest valid depth: 10 or 12"),
    ("resnet", {"block": "dense"}, "block must be one of \\['basic', 'bottleneck'\\]"),
    ("resnet", {"shortcut": "conv"}, "shortcut must be one of \\['projection', 'zeros'\\]"),
    ("resnet", {"activation": "swish"}, "activation must be one of .*'gelu'"),
    ("plain-mlp", {"init": "lecun"}, "init must be one of .*'orthogonal'"),
    ("resnet", {"init_scale": 0.0}, "init_scale must be a positive"),
    ("resnet", {"width": -1}, "width .* must be positive"),
])
def test_invalid_configurations_say_what_is_accepted(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, **kwargs)


# --- parameter counts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "published"), [
    ({"depth": 20}, 0.27e6),  # He et al. 2015, Table 6
    ({"depth": 110}, 1.7e6),  # ibid.
    ({"depth": 164, "block": "bottleneck", "preact": True, "shortcut": "projection"}, 1.7e6),  # He et al. 2016
])
def test_parameter_counts_match_the_papers(kwargs, published):
    assert count_parameters(create_model("resnet", **kwargs)) == pytest.approx(published, rel=0.03)


def test_width_multiplier_scales_every_stage():
    model = create_model("resnet", width=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert {c.out_channels for c in convs} == {32, 64, 128}
    assert model.classifier.in_features == 128


# --- plain twins ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "kwargs", "blocks"), [
    (("resnet", "plain"), {"depth": 20}, 9),
    (("resnet", "plain"), {"depth": 29, "block": "bottleneck", "preact": True}, 9),
    (("resmlp", "plain-mlp"), {"depth": 10}, 4),
])
def test_plain_twin_has_no_additions_and_the_same_parameters(family, kwargs, blocks):
    residual, plain = (create_model(name, **kwargs) for name in family)
    assert additions(residual) == blocks
    assert additions(plain) == 0
    shapes = lambda model: [(n, p.shape) for n, p in model.named_parameters()]  # noqa: E731
    assert shapes(plain) == shapes(residual)


def test_plain_twin_with_projections_differs_only_by_the_shortcuts():
    residual = dict(create_model("resnet", shortcut="projection").named_parameters())
    plain = dict(create_model("plain", shortcut="projection").named_parameters())
    assert set(plain) < set(residual)
    assert all(".shortcut." in name for name in set(residual) - set(plain))


def test_plain_block_output_does_not_carry_its_input():
    """Zero the branch: a residual block then passes its input through, a plain block outputs constants."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    for residual in (True, False):
        model = ResNet(residual=residual, batch_norm=False, preact=True, **TINY_CONV)
        block = model.stages[0][0]
        nn.init.zeros_(block.branch[-1].weight)
        out = block(x)
        if residual:
            torch.testing.assert_close(out, x)
        else:
            assert torch.count_nonzero(out) == 0


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.randn(2, 3, 7, 7)
    out = ZeroPadShortcut(3, 5, stride=2)(x)
    assert out.shape == (2, 5, 4, 4)
    torch.testing.assert_close(out[:, :3], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 3:]) == 0
    with pytest.raises(ValueError, match="use 'projection'"):
        ZeroPadShortcut(5, 3, stride=1)


# --- activations and initialisation ---------------------------------------------------------------------


def test_every_activation_has_an_init_gain():
    assert set(ACTIVATIONS) == set(NONLINEARITY)
    with pytest.raises(ValueError, match="activation must be one of .*'leaky_relu'.*'sigmoid'"):
        make_activation("swish")


@pytest.mark.parametrize("init", sorted(INIT_SCHEMES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_and_init_builds_and_runs(activation, init):
    torch.manual_seed(0)
    x = torch.randn(3, 1, 28, 28)
    for model in (ResNet(activation=activation, init=init, **TINY_CONV),
                  ResidualMLP(activation=activation, init=init, residual=False, **TINY_MLP)):
        assert any(isinstance(m, ACTIVATIONS[activation]) for m in model.modules())
        logits = model(x)
        assert logits.shape == (3, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize(("scheme", "activation", "std"), [
    ("he", "relu", (2 / 400) ** 0.5),
    ("he", "tanh", 5 / 3 * (1 / 400) ** 0.5),
    ("glorot", "sigmoid", (2 / 1000) ** 0.5),
    ("glorot", "gelu", 2**0.5 * (2 / 1000) ** 0.5),
    ("default", "relu", (1 / 1200) ** 0.5),  # U(±1/sqrt(fan_in)) has variance 1/(3·fan_in)
])
def test_init_schemes_draw_the_documented_scale(scheme, activation, std):
    torch.manual_seed(0)
    layer = init_weights(nn.Linear(400, 600), scheme, activation)
    assert layer.weight.std().item() == pytest.approx(std, rel=0.03)
    if scheme != "default":
        assert torch.count_nonzero(layer.bias) == 0


def test_orthogonal_init_has_orthogonal_rows_times_the_gain():
    layer = init_weights(nn.Linear(64, 32), "orthogonal", "tanh")
    torch.testing.assert_close(layer.weight @ layer.weight.T, (5 / 3) ** 2 * torch.eye(32), atol=1e-4, rtol=0)


@pytest.mark.parametrize("init", ["he", "default"])
def test_init_scale_multiplies_every_weight(init):
    def build(scale, cls, kwargs):
        torch.manual_seed(0)
        return dict(cls(init=init, init_scale=scale, **kwargs).named_parameters())

    for cls, kwargs in ((ResNet, TINY_CONV), (ResidualMLP, TINY_MLP)):
        base, scaled = build(1.0, cls, kwargs), build(3.0, cls, kwargs)
        weights = [n for n, p in base.items() if n.endswith("weight") and p.dim() > 1]
        assert weights
        for name, param in base.items():
            factor = 3.0 if name in weights else 1.0  # biases and BN parameters are left alone
            torch.testing.assert_close(scaled[name], factor * param)


# --- gradient flow --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("activation", "depth", "plain_below"), [("sigmoid", 10, 1e-5), ("relu", 50, 1e-12)])
def test_plain_mlp_gradients_vanish_and_residual_ones_do_not(activation, depth, plain_below):
    """First/last weight-gradient norm: tiny for the plain MLP, order one with identity shortcuts."""
    x, y = torch.randn(32, 1, 28, 28), torch.arange(32) % 10

    def ratio(name):
        torch.manual_seed(0)
        model = create_model(name, depth=depth, activation=activation)
        F.cross_entropy(model(x), y).backward()
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        return (weights[0].grad.norm() / weights[-1].grad.norm()).item()

    assert ratio("plain-mlp") < plain_below
    assert ratio("resmlp") > 1e-2


def test_parameters_are_registered_in_forward_order():
    for name, kwargs in (("resnet", {"preact": True}), ("plain", {}), ("resmlp", {})):
        names = [n for n, _ in create_model(name, **kwargs).named_parameters()]
        assert names[0].startswith("stem.") and names[-1] == "classifier.bias"


def test_head_is_global_pooling_then_linear():
    model = create_model("resnet", **TINY_CONV)
    features = model.features(torch.randn(2, 1, 28, 28))
    assert features.shape == (2, 8, 7, 7)
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d) and isinstance(model.classifier, nn.Linear)
    seen = []
    model.final.register_forward_hook(lambda module, inputs, output: seen.append(output))
    model(torch.randn(2, 1, 20, 20))  # global pooling: any input size
    assert seen[0].shape == (2, 8, 5, 5)


# --- checkpointing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "kwargs"), [(ResNet, {"depth": 14, "widths": (4, 8, 8)}),
                                              (ResNet, {"depth": 29, "block": "bottleneck", "widths": (2, 4, 4),
                                                        "preact": True, "shortcut": "projection"}),
                                              (ResidualMLP, {"depth": 8, "width": 16, "batch_norm": True})])
def test_checkpointing_changes_nothing_but_memory(cls, kwargs):
    torch.manual_seed(0)
    plain_run, checkpointed = cls(**kwargs), cls(checkpoint=True, **kwargs)
    checkpointed.load_state_dict(plain_run.state_dict())
    x, y = torch.randn(4, 1, 28, 28), torch.arange(4)
    outputs = []
    for model in (plain_run, checkpointed):
        logits = model(x)
        F.cross_entropy(logits, y).backward()
        outputs.append(logits)
    torch.testing.assert_close(outputs[0], outputs[1])
    grads = [dict((n, p.grad) for n, p in m.named_parameters()) for m in (plain_run, checkpointed)]
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
    # Recomputation must not fold the batch into the BN running statistics a second time.
    buffers = dict(checkpointed.named_buffers())
    for name, buffer in plain_run.named_buffers():
        torch.testing.assert_close(buffers[name], buffer, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(checkpointed.eval()(x), plain_run.eval()(x))


def test_resnet_1202_trains_one_step_with_checkpointing():
    """1202 layers (600 blocks): forward and backward on CPU, and the gradient reaches the stem."""
    torch.manual_seed(0)
    model = create_model("resnet", depth=1202, checkpoint=True)
    assert weight_layers(model) == 1202
    F.cross_entropy(model(torch.randn(2, 1, 28, 28)), torch.tensor([3, 7])).backward()
    stem_grad = model.stem[0].weight.grad
    assert torch.isfinite(stem_grad).all() and stem_grad.norm() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
