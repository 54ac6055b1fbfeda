"""The model registry and the model families (plain ``nn.Module``s that know nothing of training)."""

from archlab.models.registry import (
    ModelInfo,
    count_parameters,
    create_model,
    forward_mflops,
    get_model_info,
    list_models,
    model_summary,
    register_model,
    resolve_model_args,
)

__all__ = [
    "ModelInfo",
    "count_parameters",
    "create_model",
    "forward_mflops",
    "get_model_info",
    "list_models",
    "model_summary",
    "register_model",
    "resolve_model_args",
]
