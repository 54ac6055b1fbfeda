"""Recurrent classifiers: vanilla RNN, LSTM and GRU reading an image or a text as a sequence (many-to-one).

The recurrence carries a memory ``h_t`` along the sequence:

    RNN  (Elman 1990):               h_t = act(W_ih x_t + W_hh h_{t-1} + b)      act = tanh, or ReLU
    LSTM (Hochreiter & Schmidhuber 1997): gates i, f, o = σ(W x_t + U h_{t-1} + b), g = tanh(...),
                                     c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)
    GRU  (Cho et al. 2014):          z, r = σ(...), n = tanh(W x_t + r ⊙ (U h_{t-1})),
                                     h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

The LSTM's additive cell update (and the GRU's interpolation) give the gradient a path through time that
is not a product of squashing derivatives: that is what lets them learn long dependencies where a tanh
RNN's gradients vanish. The IRNN (Le, Jaitly & Hinton 2015) is the other answer: a ReLU RNN whose
recurrent matrix starts as the identity (and biases at zero), so at first the state is carried unchanged.

How an image becomes a sequence (``view``):

    rows      28 steps of 28 pixels (the seed's setting)
    pixels    784 steps of 1 pixel (sequential MNIST, Le et al. 2015)
    permuted  784 steps of 1 pixel in one fixed random order (permuted MNIST); the permutation is a
              buffer, so it is saved with the weights and a loaded run uses the same order

Texts (``vocab_size > 0``): token ids ``[B, T]`` pass through an embedding (id 0 = ``<pad>``, a zero vector),
and with ``lengths [B]`` every layer reads a *packed* sequence (``pack_padded_sequence``): the recurrence
stops at each text's last real token, so padding changes neither the states nor the output. The readout
then takes each text's last real step, and attention pooling gives padded steps zero weight.

Layers are stacked one module per layer so that dropout can sit between them: ``dropout`` draws a fresh
mask at every time step (as ``nn.LSTM(dropout=...)``), ``variational_dropout`` one mask per sequence,
shared by all time steps (Gal & Ghahramani 2016; applied to each layer's input, not to the recurrent
connection, which would need an unrolled cell). ``bptt = K`` truncates backpropagation through time to
the last K steps (long sequences, e.g. 784 pixels). Readout: the last time step (for a bidirectional net,
the forward direction's last step and the backward direction's first), or attention pooling
``c = Σ_t α_t h_t, α = softmax_t(vᵀ tanh(W h_t))`` (Bahdanau et al. 2015, as pooling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
VIEWS = ("rows", "pixels", "permuted")
READOUTS = ("last", "attention")
INITIAL_STATES = ("zeros", "learned")


def _detached(state):
    return tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()


def image_to_sequence(x: torch.Tensor, view: str, permutation: torch.Tensor | None) -> torch.Tensor:
    """``[B, C, H, W]`` → ``[B, T, F]``: rows (T=H, F=C·W) or pixels (T=H·W, F=C), optionally permuted."""
    if x.ndim == 3:  # already a sequence [B, T, F]
        return x
    batch, channels, height, width = x.shape
    if view == "rows":
        return x.permute(0, 2, 1, 3).reshape(batch, height, channels * width)
    pixels = x.reshape(batch, channels, height * width).transpose(1, 2)
    return pixels[:, permutation] if permutation is not None else pixels


class AttentionPool(nn.Module):
    """Additive attention over time steps: ``c = Σ_t softmax_t(vᵀ tanh(W h_t)) h_t``."""

    def __init__(self, features: int, hidden: int | None = None) -> None:
        super().__init__()
        self.project = nn.Linear(features, hidden or features)
        self.score = nn.Linear(hidden or features, 1, bias=False)

    def weights(self, outputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """α, ``[B, T]``: how much each time step contributes (0 where ``mask`` is False: padding)."""
        scores = self.score(torch.tanh(self.project(outputs))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=1)

    def forward(self, outputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bt,btf->bf", self.weights(outputs, mask), outputs)


class RecurrentClassifier(nn.Module):
    """Image rows/pixels or embedded tokens → stacked (bi)directional RNN/LSTM/GRU → readout → linear."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        cell: str = "lstm",
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        variational_dropout: float = 0.0,
        nonlinearity: str = "tanh",
        initial_state: str = "zeros",
        readout: str = "last",
        view: str = "rows",
        permutation_seed: int = 0,
        bptt: int = 0,
        vocab_size: int = 0,
        embedding_dim: int = 64,
    ) -> None:
        super().__init__()
        self._check(cell, hidden, layers, dropout, variational_dropout, nonlinearity, initial_state, readout, view)
        if bptt < 0 or (bptt and bidirectional):
            raise ValueError(f"bptt must be 0 (full backpropagation through time) or a number of steps ≥ 1, and "
                             f"cannot be combined with bidirectional (the backward direction reads the future); "
                             f"got bptt={bptt}, bidirectional={bidirectional}")
        self.cell, self.view, self.readout_kind, self.bptt = cell, view, readout, bptt
        self.directions = 2 if bidirectional else 1
        steps = input_size * input_size
        features = in_channels * input_size if view == "rows" else in_channels
        # Token ids (texts) go through an embedding; <pad> (id 0) embeds to zeros and gets no gradient.
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0) if vocab_size else None
        if vocab_size:
            features = embedding_dim
        if view == "permuted" and not vocab_size:
            generator = torch.Generator().manual_seed(permutation_seed)
            self.register_buffer("permutation", torch.randperm(steps, generator=generator))
        else:
            self.permutation = None
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        sizes = [features] + [hidden * self.directions] * (layers - 1)
        self.layers = nn.ModuleList(
            CELLS[cell](size, hidden, batch_first=True, bidirectional=bidirectional, **options) for size in sizes
        )
        self.dropout, self.variational_dropout = dropout, variational_dropout
        state_copies = 2 if cell == "lstm" else 1  # (h0, c0) for an LSTM
        self.initial_state = nn.ParameterList(
            nn.Parameter(torch.zeros(state_copies, self.directions, 1, hidden)) for _ in range(layers)
        ) if initial_state == "learned" else None
        self.attention = AttentionPool(hidden * self.directions) if readout == "attention" else None
        self.classifier = nn.Linear(hidden * self.directions, num_classes)
        if cell == "rnn" and nonlinearity == "relu":
            self._identity_init()

    @staticmethod
    def _check(cell, hidden, layers, dropout, variational_dropout, nonlinearity, initial_state, readout, view) -> None:
        checks = [
            (cell in CELLS, f"cell must be one of {sorted(CELLS)}, got {cell!r}"),
            (hidden >= 1 and layers >= 1, f"hidden and layers must be ≥ 1, got {hidden} and {layers}"),
            (0 <= dropout < 1 and 0 <= variational_dropout < 1, "dropout and variational_dropout must be in [0, 1)"),
            (nonlinearity in ("tanh", "relu"), f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"),
            (nonlinearity == "tanh" or cell == "rnn", "nonlinearity applies to cell='rnn' only (LSTM/GRU gates are fixed)"),
            (initial_state in INITIAL_STATES, f"initial_state must be one of {INITIAL_STATES}, got {initial_state!r}"),
            (readout in READOUTS, f"readout must be one of {READOUTS}, got {readout!r}"),
            (view in VIEWS, f"view must be one of {VIEWS}, got {view!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def _identity_init(self) -> None:
        """IRNN (Le et al. 2015): W_hh = I, biases 0, W_ih ~ N(0, 0.001²)."""
        for layer in self.layers:
            for name, param in layer.named_parameters():
                with torch.no_grad():
                    if name.startswith("weight_hh"):
                        param.copy_(torch.eye(param.shape[0]))
                    elif name.startswith("weight_ih"):
                        param.normal_(0.0, 0.001)
                    else:
                        param.zero_()

    def _state(self, index: int, batch: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None:
        if self.initial_state is None:
            return None
        state = self.initial_state[index].expand(-1, -1, batch, -1).contiguous()
        return (state[0], state[1]) if self.cell == "lstm" else state[0]

    def _variational_masks(self, sequence: torch.Tensor) -> list[torch.Tensor | None]:
        """One dropout mask per sequence and layer input, ``[B, 1, F]``, shared by every time step."""
        if not (self.training and self.variational_dropout):
            return [None] * len(self.layers)
        keep = 1.0 - self.variational_dropout
        sizes = [sequence.shape[2]] + [layer.hidden_size * self.directions for layer in self.layers[:-1]]
        return [torch.bernoulli(torch.full((sequence.shape[0], 1, size), keep, device=sequence.device,
                                           dtype=sequence.dtype)) / keep for size in sizes]

    def _drop(self, x: torch.Tensor, index: int, masks: list[torch.Tensor | None]) -> torch.Tensor:
        """Variational dropout on every layer's input; per-step dropout between layers only."""
        if masks[index] is not None:
            x = x * masks[index]
        if index > 0 and self.dropout and self.training:
            x = F.dropout(x, self.dropout, training=True)
        return x

    def as_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the model reads it, ``[B, T, F]`` (a sequence passed in is used as it is)."""
        if self.embedding is not None and not torch.is_floating_point(x):
            return self.embedding(x)
        return image_to_sequence(x, self.view, self.permutation)

    def _packed_outputs(self, sequence: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Every layer over packed sequences; outputs re-padded with zeros, ``[B, T, hidden · directions]``."""
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        masks = self._variational_masks(sequence)
        lengths = lengths.to("cpu", torch.long).clamp_min(1)
        h = sequence
        for index, layer in enumerate(self.layers):
            packed = pack_padded_sequence(self._drop(h, index, masks), lengths, batch_first=True, enforce_sorted=False)
            out, _ = layer(packed, self._state(index, sequence.shape[0]))
            h, _ = pad_packed_sequence(out, batch_first=True, total_length=sequence.shape[1])
        return h

    def sequence_outputs(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's outputs at every time step, ``[B, T, hidden · directions]``.

        With ``lengths`` (texts) the sequences are packed: the outputs at padded steps are zeros.

        With ``bptt = K`` the sequence is read in chunks of K steps; the state is carried from chunk to chunk
        but detached, so gradients reach back at most K steps (truncated BPTT, Williams & Peng 1990). The
        outputs are the same as without truncation; only the gradient changes.
        """
        sequence = self.as_sequence(x)
        if lengths is not None:
            if self.bptt:
                raise ValueError("bptt (truncated BPTT) is for long fixed-length sequences; it cannot be "
                                 "combined with packed variable-length inputs (lengths). Set bptt=0.")
            return self._packed_outputs(sequence, lengths)
        masks = self._variational_masks(sequence)
        states = [self._state(index, sequence.shape[0]) for index in range(len(self.layers))]
        chunk = self.bptt or sequence.shape[1]
        outputs = []
        for start in range(0, sequence.shape[1], chunk):
            h = sequence[:, start : start + chunk]
            for index, layer in enumerate(self.layers):
                h, states[index] = layer(self._drop(h, index, masks), states[index])
            outputs.append(h)
            if self.bptt:
                states = [_detached(state) for state in states]
        if len(outputs) == 1:
            return outputs[0]
        return torch.cat([o.detach() for o in outputs[:-1]] + outputs[-1:], dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs = self.sequence_outputs(x, lengths)
        steps = outputs.shape[1]
        if lengths is None:
            last = torch.full((outputs.shape[0],), steps - 1, device=outputs.device, dtype=torch.long)
        else:
            last = lengths.to(outputs.device, torch.long).clamp(1, steps) - 1
        if self.attention is not None:
            mask = None if lengths is None else torch.arange(steps, device=outputs.device) <= last[:, None]
            pooled = self.attention(outputs, mask)
        else:
            # The forward direction has read the whole sequence at its last real step; the backward one at step 0.
            hidden = outputs.shape[-1] // self.directions
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            pooled = outputs[rows, last, :hidden]
            if self.directions == 2:
                pooled = torch.cat([pooled, outputs[:, 0, hidden:]], dim=1)
        return self.classifier(pooled)


_TINY = {"hidden": 32}
# Recurrent nets clip gradients at norm 1 by default: one long product through time can explode.
register_model("rnn", family="rnn", defaults={"cell": "rnn"}, tiny=_TINY, grad_clip=1.0,
               description="vanilla RNN (tanh; nonlinearity=relu gives the IRNN), image rows as time steps")(
    RecurrentClassifier)
register_model("lstm", family="rnn", defaults={"cell": "lstm"}, tiny=_TINY, grad_clip=1.0,
               description="LSTM over image rows (view=pixels|permuted for sequential MNIST) or words of a text")(
    RecurrentClassifier)
register_model("gru", family="rnn", defaults={"cell": "gru"}, tiny=_TINY, grad_clip=1.0,
               description="GRU over image rows (view=pixels|permuted for sequential MNIST) or words of a text")(
    RecurrentClassifier)
