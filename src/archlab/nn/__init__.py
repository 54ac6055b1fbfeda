"""Building blocks shared by several model families: activations, attention, initialisation, residual blocks."""

from archlab.nn.activations import ACTIVATIONS, check_activation, make_activation
from archlab.nn.attention import ATTENTIONS, BahdanauAttention, LuongAttention, masked_softmax
from archlab.nn.positional import SinusoidalPositionalEncoding, sinusoidal_table
from archlab.nn.sparse_attention import PATTERNS, causal_attention, pattern_mask
from archlab.nn.unet import SelfAttention2d, TimeEmbedding, TimeResBlock, timestep_embedding
from archlab.nn.init import INIT_SCHEMES, activation_gain, check_init, init_weights
from archlab.nn.residual import (
    SHORTCUTS,
    BasicBlock,
    BlockStack,
    Bottleneck,
    ConvResidualBlock,
    ResidualMLPBlock,
    ZeroPadShortcut,
    make_shortcut,
)

__all__ = [
    "ATTENTIONS",
    "BahdanauAttention",
    "LuongAttention",
    "masked_softmax",
    "ACTIVATIONS",
    "INIT_SCHEMES",
    "SHORTCUTS",
    "BasicBlock",
    "BlockStack",
    "Bottleneck",
    "ConvResidualBlock",
    "ResidualMLPBlock",
    "ZeroPadShortcut",
    "activation_gain",
    "check_activation",
    "check_init",
    "init_weights",
    "make_activation",
    "make_shortcut",
    "SinusoidalPositionalEncoding",
    "sinusoidal_table",
    "PATTERNS",
    "causal_attention",
    "pattern_mask",
    "SelfAttention2d", "TimeEmbedding", "TimeResBlock", "timestep_embedding",
]
