"""The course material's reference listings, kept faithful (specification: shared SEEDS.md).

These are deliberately *not* improved: they are the textbook baselines that archlab's own models are
measured against. Deviations from the listing would make the comparison meaningless.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archlab.models.registry import register_model


@register_model("seed-cnn", family="seed", tiny={},
                description="the seed listing, faithful: conv32-conv64-pool-fc128 (1.6M params)")
class SeedCNN(nn.Module):
    """The seed CNN listing: conv32 → conv64 → max-pool → dropout .25 → fc128 → dropout .5 → fc10.

    Conv2d(1→32, 3×3, pad 1) → ReLU → Conv2d(32→64, 3×3, pad 1) → ReLU → MaxPool2d(2) → Dropout(0.25)
    → flatten (64·14·14 = 12,544) → Linear(12,544→128) → ReLU → Dropout(0.5) → Linear(128→10).
    1,625,866 parameters. Trained in the listing with batch 64, Adam 1e-3, inputs normalized to [-1, 1]
    (recipe ``seed-cnn``).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 14 * 14, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("seed-lstm", family="seed", tiny={}, grad_clip=None,
                description="the seed listing, faithful: LSTM(28→128, 2 layers) over rows, last step → fc10")
class SeedLSTM(nn.Module):
    """The seed LSTM listing: each image is 28 time steps of 28 pixels (its rows).

    LSTM(input 28, hidden 128, 2 layers, batch_first) → output of the last time step → Linear(128→10).
    214,282 parameters. Trained in the listing with batch 64, Adam 1e-3, 10 epochs, inputs as tensors
    in [0, 1] with no normalization (recipe ``seed-lstm``); the listing clips no gradients.
    """

    def __init__(self, num_classes: int = 10, input_size: int = 28) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, 128, 2, batch_first=True)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x.reshape(x.shape[0], -1, x.shape[-1]))  # [B, 1, 28, 28] → [B, 28 rows, 28]
        return self.fc(out[:, -1, :])


@register_model("seed-transformer", family="seed", task="language", tasks=("language",), input_kind="tokens",
                input_shape=(20,), example=lambda batch: (torch.randint(0, 16, (batch, 20)),),
                tiny={"vocab_size": 16, "ninp": 16, "nhead": 2, "nhid": 32, "nlayers": 2},
                description="the seed listing, faithful: TransformerModel (sinusoidal PE, nn.TransformerEncoder, "
                            "causal mask), trained as a character LM")
class SeedTransformer(nn.Module):
    """The seed Transformer listing: ``TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)``.

    Embedding(ntoken, ninp) · √ninp → sinusoidal positional encoding + dropout (``nn.positional``; the listing
    uses a ``PositionalEncoding`` it does not define: the standard table, max_len 5000) → ``nn.TransformerEncoder``
    of ``nlayers`` × ``TransformerEncoderLayer(ninp, nhead, nhid, dropout)`` (post-LN, ReLU) under a square
    causal mask (−inf above the diagonal, 0 elsewhere; rebuilt when the length changes) → Linear(ninp → ntoken).
    Embedding and decoder weights uniform in [−0.1, 0.1], decoder bias zero. Sequence-first inside, as listed.

    "Parameters and training omitted for brevity": ``ntoken`` is ``vocab_size`` (set by the language task),
    the other defaults are those of the PyTorch tutorial the listing comes from (ninp = nhid = 200, 2 heads,
    2 layers) with the listing's dropout 0.5, and it is trained as a causal character language model.
    To fit the language contract ``logits [B, T, V], state = model(tokens [B, T], state)`` it takes batch-first
    tokens and transposes them; the listing has no key/value cache, so its state is simply the tokens read so
    far (at most the last ``max_len``) and every call recomputes the whole sequence: generation costs O(T)
    work per new token, against the O(1) of ``gpt``'s cache.
    """

    max_len = 5000

    def __init__(self, vocab_size: int = 65, ninp: int = 200, nhead: int = 2, nhid: int = 200, nlayers: int = 2,
                 dropout: float = 0.5) -> None:
        from archlab.nn.positional import SinusoidalPositionalEncoding

        super().__init__()
        self.model_type = "Transformer"
        self.src_mask: torch.Tensor | None = None
        self.pos_encoder = SinusoidalPositionalEncoding(ninp, dropout, self.max_len, batch_first=False)
        encoder_layers = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers, enable_nested_tensor=False)
        self.encoder = nn.Embedding(vocab_size, ninp)
        self.ninp, self.context = ninp, self.max_len
        self.decoder = nn.Linear(ninp, vocab_size)
        self.init_weights()

    @staticmethod
    def _generate_square_subsequent_mask(size: int, device: torch.device) -> torch.Tensor:
        allowed = torch.ones(size, size, device=device).tril() == 1
        return torch.zeros(size, size, device=device).masked_fill(~allowed, float("-inf"))

    def init_weights(self) -> None:
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be [batch, time] integer ids, got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"{tokens.shape[1]} tokens in one call, but the positional table has {self.max_len} rows; "
                             f"feed at most {self.max_len} at a time")
        history = tokens if state is None else torch.cat([state, tokens], dim=1)[:, -self.max_len:]
        src = history.t()  # [T, B]: the listing is sequence-first
        if self.src_mask is None or self.src_mask.size(0) != len(src) or self.src_mask.device != src.device:
            self.src_mask = self._generate_square_subsequent_mask(len(src), src.device)
        src = self.encoder(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, self.src_mask)
        output = self.decoder(output)
        return output.transpose(0, 1)[:, -tokens.shape[1]:], history
