"""A bag-of-words text classifier: the order-blind baseline a recurrent text model has to beat.

    e = mean_{t < length} E[token_t]        (EmbeddingBag, mode "mean"; <pad> = id 0 is skipped)
    logits = W e + b

The averaged-embedding linear model of Joulin et al. 2017 ("Bag of Tricks for Efficient Text
Classification", fastText) without its n-grams: fast, strong on topical tasks such as spam, and blind to
word order, so the gap to an RNN measures what reading the sequence buys.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model


def _example(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 64, (batch, 12))
    return ids, torch.full((batch,), 12)


@register_model("bow", family="linear", input_kind="tokens", input_shape=(12,), tiny={"embedding_dim": 128, "vocab_size": 64},
                example=_example)
class BagOfWords(nn.Module):
    """Mean of the word embeddings of a text (padding skipped) → linear."""

    def __init__(self, num_classes: int = 10, vocab_size: int = 20000, embedding_dim: int = 64) -> None:
        super().__init__()
        if vocab_size < 2 or embedding_dim < 1:
            raise ValueError(f"vocab_size must be ≥ 2 and embedding_dim ≥ 1, got {vocab_size} and {embedding_dim}")
        self.embedding = nn.EmbeddingBag(vocab_size, embedding_dim, mode="mean", padding_idx=0)
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        # padding_idx makes EmbeddingBag leave <pad> out of each mean, so lengths are implied by the ids.
        return self.classifier(self.embedding(ids))
