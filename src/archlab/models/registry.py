"""The model registry: names → constructors, with metadata.

A model is a plain ``nn.Module`` whose constructor arguments are its whole configuration. Registering it
under a name (``@register_model(...)``) makes it reachable from ``create_model``, the CLI, the run directory
(which stores the name and the resolved arguments) and the generated tests (which build the ``tiny``
variant of every registered model and check a forward/backward pass).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from archlab.errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model name."""

    name: str
    family: str
    builder: Callable[..., nn.Module]
    description: str
    input_kind: str = "image"
    input_shape: tuple[int, ...] = (1, 28, 28)
    task: str = "classify"
    defaults: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    grad_clip: float | None = None  # training default: clip gradients at this norm unless the run says otherwise
    tasks: tuple[str, ...] = ("classify",)  # every task the model can serve; ``task`` is the default one
    example: Callable[[int], tuple[torch.Tensor, ...]] | None = None

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Inputs for a forward pass of the ``tiny`` variant: ``example(batch)``, else ``randn(batch, *input_shape)``."""
        if self.example is not None:
            return tuple(self.example(batch))
        return (torch.randn(batch, *self.input_shape),)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    input_kind: str = "image",
    input_shape: tuple[int, ...] = (1, 28, 28),
    task: str = "classify",
    defaults: dict[str, Any] | None = None,
    tiny: dict[str, Any] | None = None,
    description: str | None = None,
    grad_clip: float | None = None,
    tasks: tuple[str, ...] | None = None,
    example: Callable[[int], tuple[torch.Tensor, ...]] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model class or factory under ``name``.

    ``defaults`` are constructor arguments that differ from the builder's own signature for this name
    (e.g. one class registered twice with different depths). ``tiny`` are overrides giving a very small
    variant for fast generated tests. ``grad_clip`` is the gradient-norm clipping a run of this model gets
    when its configuration does not set one (recurrent models: 1.0). ``tasks`` are all the tasks the model
    serves (default: just ``task``); ``example(batch)`` gives inputs for the generated forward/backward test
    when they are not ``randn(batch, *input_shape)`` (token ids, lengths...).
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} registered twice")
        doc = inspect.getdoc(builder) or ""
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            builder=builder,
            description=description or (doc.splitlines()[0] if doc else ""),
            input_kind=input_kind,
            input_shape=tuple(input_shape),
            task=task,
            defaults=dict(defaults or {}),
            tiny=dict(tiny or {}),
            grad_clip=grad_clip,
            tasks=tuple(tasks) if tasks else (task,),
            example=example,
        )
        return builder

    return decorate


def _ensure_loaded() -> None:
    # Importing the family modules runs their @register_model decorators.
    from archlab.models import bow, cnn, mlp, resnet, rnn, rnn_lm, seed  # noqa: F401
    from archlab.models import forecast  # noqa: F401
    from archlab.models import seq2seq  # noqa: F401
    from archlab.models import bert  # noqa: F401
    from archlab.models import transformer  # noqa: F401
    from archlab.models import vit  # noqa: F401
    from archlab.models import transformer_xl  # noqa: F401
    from archlab.models import diffusion  # noqa: F401
    from archlab.models import gan  # noqa: F401
    from archlab.models import cyclegan  # noqa: F401
    from archlab.models import autoencoder  # noqa: F401


def list_models() -> list[ModelInfo]:
    """Every registered model, sorted by family then name."""
    _ensure_loaded()
    return sorted(_REGISTRY.values(), key=lambda info: (info.family, info.name))


def get_model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; a clear error listing the names when it is unknown."""
    _ensure_loaded()
    if name not in _REGISTRY:
        names = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"Unknown model {name!r}. Known models: {names}. Run `archlab models` for details.")
    return _REGISTRY[name]


def resolve_model_args(name: str, **kwargs: Any) -> dict[str, Any]:
    """The full constructor arguments of ``name``: signature defaults, then registry defaults, then kwargs.

    Unknown argument names are rejected with the list of accepted ones, so a typo in a recipe never
    passes silently.
    """
    info = get_model_info(name)
    params = inspect.signature(info.builder).parameters
    accepted = {k: p for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Model {name!r} does not accept argument(s) {', '.join(unknown)}. "
            f"Accepted: {', '.join(accepted)}."
        )
    resolved = {k: p.default for k, p in accepted.items() if p.default is not inspect.Parameter.empty}
    resolved.update(info.defaults)
    resolved.update(kwargs)
    missing = [k for k in accepted if k not in resolved]
    if missing:
        raise ConfigError(f"Model {name!r} needs argument(s) {', '.join(missing)}.")
    return resolved


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with its defaults overridden by ``kwargs``."""
    info = get_model_info(name)
    args = resolve_model_args(name, **kwargs)
    try:
        return info.builder(**args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"Cannot build model {name!r} with {args}: {err}") from err


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_mflops(model: nn.Module, inputs: tuple[int, ...] | tuple[torch.Tensor, ...]) -> float:
    """Forward-pass MFLOPs per sample (a multiply-add counts 2), measured by PyTorch's FLOP counter.

    ``inputs`` is the shape of one sample (a zero image is used) or the tensors of a batch of one.

    Recurrent layers (nn.RNN/LSTM/GRU) are counted from their shapes, ``2 · T · Σ numel(W)`` over their weight
    matrices: some backends run them as one fused kernel (e.g. oneDNN's LSTM) that the counter does not see.
    """
    from torch.utils.flop_counter import FlopCounterMode

    recurrent: dict[str, int] = {}
    hooks = [module.register_forward_hook(_count_recurrent(f"{type(model).__name__}.{name}", recurrent))
             for name, module in model.named_modules() if isinstance(module, nn.RNNBase)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*_one_sample(inputs))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    seen_inside = sum(sum(counts.get(name, {}).values()) for name in recurrent)
    return (counter.get_total_flops() - seen_inside + sum(recurrent.values())) / 1e6


def _one_sample(inputs: tuple[int, ...] | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    if all(isinstance(size, int) for size in inputs):
        return (torch.zeros(1, *inputs),)
    return tuple(inputs)


def _count_recurrent(name: str, flops: dict[str, int]):
    def hook(module: nn.RNNBase, inputs: tuple, _output) -> None:
        x = inputs[0]
        if isinstance(x, nn.utils.rnn.PackedSequence):
            steps_times_batch = x.data.shape[0]
        else:
            steps_times_batch = x.shape[0] * x.shape[1] if x.ndim == 3 else x.shape[0]
        weights = sum(p.numel() for n, p in module.named_parameters() if n.startswith("weight"))
        flops[name] = flops.get(name, 0) + 2 * steps_times_batch * weights

    return hook


def model_summary(name: str, **kwargs: Any) -> dict[str, Any]:
    """Metadata of ``name`` built with ``kwargs``: family, input, task, parameters and MFLOPs/sample."""
    info = get_model_info(name)
    model = create_model(name, **kwargs)
    return {
        "name": info.name,
        "family": info.family,
        "input_kind": info.input_kind,
        "input_shape": list(info.input_shape),
        "task": info.task,
        "params": count_parameters(model),
        "tasks": list(info.tasks),
        "mflops": forward_mflops(model, info.example_inputs(1)),
        "description": info.description,
    }
