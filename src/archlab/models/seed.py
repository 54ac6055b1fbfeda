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


from archlab.models.gan import GanModel, gan_example  # noqa: E402  (the seed GAN keeps the GAN models' contract)


@register_model("seed-gan", family="seed", task="gan", tasks=("gan",), input_kind="latent", input_shape=(100,),
                tiny={}, example=gan_example(100),
                description="the seed listing, faithful: MLP GAN 100→256→512→784 (tanh) / 784→512→256→1 (sigmoid), BCE")
class SeedGan(GanModel):
    """The seed GAN listing: two MLPs, BCE loss, the generator updated first.

    Generator: z ∈ R^100 ~ N(0, I) → Linear(100→256) → ReLU → Linear(256→512) → ReLU → Linear(512→784) → Tanh →
    reshape (1, 28, 28). Discriminator: flatten 784 → Linear(784→512) → LeakyReLU(0.2) → Linear(512→256) →
    LeakyReLU(0.2) → Linear(256→1) → Sigmoid. Trained (recipe ``mnist-seed-gan``, task loss ``seed``) with BCELoss, Adam
    2e-4, betas (0.5, 0.999) for both networks, images in [-1, 1], batch 64, 10 epochs; in each step first the
    generator (fresh z, target 1), then the discriminator on real (target 1) and on the same generated batch
    detached (target 0), its loss the mean of the two.

    As written, ``discriminate`` returns the Sigmoid's probabilities, not logits (the ``seed`` loss takes them
    through BCELoss); ``discriminator_features`` are the 256 activations before the last Linear.
    """

    default_loss = "seed"

    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, 0
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, 512), nn.ReLU(),
            nn.Linear(512, 784), nn.Tanh(),
        )
        self.discriminator = nn.Sequential(
            nn.Linear(784, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 1), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z).view(-1, 1, 28, 28)

    def discriminator_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator[:4](images.flatten(1))

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator(images.flatten(1)).squeeze(1)


@register_model("seed-diffuser", family="seed", task="diffusion", tasks=("diffusion",),
                example=lambda batch: (torch.randn(batch, 1, 28, 28), torch.randint(1, 1000, (batch,))),
                tiny={"model_dim": 4},
                description="the seed 'diffuser' listing, faithful: three 3×3 convs, output scaled by t/1000 "
                            "(no time embedding), trained to predict the noise")
class SeedDiffuser(nn.Module):
    """The seed listing ``DiffusionModel(model_dim)``: not a diffusion model by itself, kept as written.

    Conv2d(1→model_dim, 3×3, pad 1) → ReLU → Conv2d(model_dim→2·model_dim, 3×3, pad 1) → ReLU →
    Conv2d(2·model_dim→1, 3×3, pad 1), the output multiplied by t/1000 ("scale output according to the diffusion
    time step t"). "Training and details omitted": archlab trains it the only sensible way, as the noise
    predictor of a standard schedule (``--task diffusion``), t being the 0-based timestep index. The network never
    sees t except through that final scale, so it cannot tell a slightly noisy image from pure noise, and its
    prediction is forced towards 0 at small t whatever the input: see the report section of a seed-diffuser run.
    ``model_dim`` is not given in the listing; 64 here. Labels are accepted and ignored (unconditional).
    """

    num_classes = 0

    def __init__(self, model_dim: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, model_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(model_dim, model_dim * 2, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(model_dim * 2, 1, kernel_size=3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.conv3(x)
        return x * (t.to(x.dtype).reshape(-1, 1, 1, 1) / 1000)
