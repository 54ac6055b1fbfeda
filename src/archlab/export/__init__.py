"""Making a trained model cheaper: int8 quantization and magnitude pruning (export formats come later)."""

from archlab.export.prune import prune_heads, prune_neurons, prune_unstructured, sparsity
from archlab.export.quantize import dynamic_int8, serialized_bytes

__all__ = ["dynamic_int8", "prune_heads", "prune_neurons", "prune_unstructured", "serialized_bytes", "sparsity"]
