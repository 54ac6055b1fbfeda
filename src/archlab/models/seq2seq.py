"""Sequence to sequence of unequal lengths: a time-distributed CNN reads frames, an attention decoder writes tokens.

``td-cnn`` maps a sequence of T images to a sequence of U tokens (T and U differ and vary per example)::

    f_t  = CNN(x_t)                                   the same small CNN on every frame (time-distributed)
    h_t  = BiGRU/LSTM(f_1..f_T)                        encoder; packed, so padded frames are never read
    s_0  = tanh(W_b [h→_T; h←_1])                      decoder's first state from the encoder's final states
    decoder step u, reading the previous token y_{u-1} (<sos> at u = 1):
      bahdanau: c_u = Σ_t α_ut h_t, α_u = softmax_t(vᵀ tanh(W_q s_{u-1} + W_k h_t));  s_u = cell([E y_{u-1}; c_u], s_{u-1})
      luong:    s_u = cell([E y_{u-1}; h̃_{u-1}], s_{u-1});  c_u = Σ_t α_ut h_t, α_u = softmax_t(s_uᵀ W h_t)
      none:     s_u = cell(E y_{u-1}, s_{u-1});  c_u = ∅    (everything must pass through s_0)
    h̃_u = tanh(W_c [s_u; c_u]),   p(y_u | y_<u, x) = softmax(W_o h̃_u)

The time-distributed CNN is TimeDistributed (Keras's name for it): fold time into the batch, apply the CNN, unfold.
Training uses teacher forcing (``forward`` reads the true previous tokens); ``greedy_decode`` feeds back its own
argmax until ``<eos>``. Papers: Sutskever, Vinyals & Le 2014 and Cho et al. 2014 (encoder–decoder), Bahdanau,
Cho & Bengio 2015 (additive attention, previous state as the query), Luong, Pham & Manning 2015 ("general"
attention, new state as the query, input feeding of h̃). The Luong decoder here is one layer, not the paper's
stack, and both variants share the output layer ``W_o tanh(W_c [s; c])``.

The defaults (8/16-channel CNN, 64-unit biGRU) were chosen by measurement on a 2-core CPU: they learn the digit
sums as fast per step as a 16/32-channel CNN with 128 units, in less than half the time per step (27 ms vs 62 ms
for a training step on 64 sequences, one core).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from archlab.models.cnn import ConvNet
from archlab.models.registry import register_model
from archlab.models.rnn import CELLS
from archlab.nn.attention import ATTENTIONS

DECODER_CELLS: dict[str, type[nn.RNNCellBase]] = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
ATTENTION_CHOICES = (*ATTENTIONS, "none")


def frame_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, steps]`` bool, True at the frames that exist (``t < lengths[b]``)."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


class TimeDistributed(nn.Module):
    """Apply ``module`` to every time step of ``[B, T, ...]`` (time folded into the batch): ``y_t = module(x_t)``.

    With ``lengths`` only the frames that exist go through ``module`` (outputs past a sequence's end are 0):
    padded frames cost nothing and cannot reach batch-norm statistics.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        batch, steps = x.shape[:2]
        if lengths is None:
            return self.module(x.flatten(0, 1)).unflatten(0, (batch, steps))
        mask = frame_mask(lengths.to(x.device), steps)
        outputs = self.module(x[mask])
        full = outputs.new_zeros(batch, steps, *outputs.shape[1:])
        full[mask] = outputs
        return full


class Seq2SeqDigits(nn.Module):
    """Time-distributed CNN → (bi)RNN encoder → attention decoder (bahdanau | luong | none) over tokens.

    ``forward(frames [B, T, C, H, W], lengths [B], targets [B, U])`` → ``(logits [B, U, vocab], attention
    [B, U, T] or None)`` with teacher forcing; ``greedy_decode(frames, lengths, max_len)`` → ``(tokens [B, L],
    attention [B, L, T] or None)``.
    """

    def __init__(
        self,
        vocab_size: int = 12,
        sos_token: int = 11,
        eos_token: int = 10,
        max_output_len: int = 3,
        in_channels: int = 1,
        input_size: int = 28,
        cnn_channels: tuple[int, ...] | list[int] = (8, 16),
        frame_features: int = 64,
        cell: str = "gru",
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        attention: str = "bahdanau",
        attention_hidden: int = 64,
        embed_dim: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        checks = [
            (cell in CELLS, f"cell must be one of {sorted(CELLS)}, got {cell!r}"),
            (attention in ATTENTION_CHOICES, f"attention must be one of {ATTENTION_CHOICES}, got {attention!r}"),
            (0 <= sos_token < vocab_size and 0 <= eos_token < vocab_size and sos_token != eos_token,
             f"sos_token and eos_token must be two different tokens below vocab_size={vocab_size}"),
            (min(hidden, layers, frame_features, embed_dim, max_output_len) >= 1, "sizes must be >= 1"),
            (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.cell, self.sos_token, self.eos_token = cell, sos_token, eos_token
        self.max_output_len = max_output_len
        # The registered CNN, its classifier used as the frame's feature projection.
        self.frame_encoder = TimeDistributed(ConvNet(num_classes=frame_features, in_channels=in_channels,
                                                     input_size=input_size, channels=tuple(cnn_channels)))
        directions = 2 if bidirectional else 1
        self.encoder = CELLS[cell](frame_features, hidden, num_layers=layers, batch_first=True,
                                   bidirectional=bidirectional)
        encoded = hidden * directions
        state_copies = 2 if cell == "lstm" else 1
        self.bridge = nn.Linear(encoded, hidden * state_copies)
        self.attention = ATTENTIONS[attention](hidden, encoded, attention_hidden) if attention != "none" else None
        context = encoded if self.attention is not None else 0
        # Bahdanau feeds the context into the cell; Luong feeds the previous h̃ (input feeding); none feeds nothing.
        self.query_is_previous = bool(self.attention is not None and self.attention.query_is_previous_state)
        feed = context if self.query_is_previous else (hidden if self.attention is not None else 0)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.decoder = DECODER_CELLS[cell](embed_dim + feed, hidden)
        self.combine = nn.Linear(hidden + context, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, vocab_size)

    # --- encoder ----------------------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor, lengths: torch.Tensor):
        """Encoder outputs ``[B, T, hidden · directions]``, the frame mask ``[B, T]`` and the decoder's first state."""
        if frames.ndim != 5:
            raise ValueError(f"frames must be [batch, time, channels, height, width], got {tuple(frames.shape)}")
        lengths = lengths.to(frames.device)
        if lengths.min() < 1 or lengths.max() > frames.shape[1]:
            raise ValueError(f"lengths must be in 1..{frames.shape[1]} (the frames given), got {lengths.tolist()}")
        features = self.frame_encoder(frames, lengths)
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=frames.shape[1])
        final_h = final[0] if self.cell == "lstm" else final
        directions = 2 if self.encoder.bidirectional else 1
        last_layer = final_h.view(self.encoder.num_layers, directions, *final_h.shape[1:])[-1]
        summary = torch.tanh(self.bridge(torch.cat(list(last_layer), dim=-1)))
        state = tuple(summary.chunk(2, dim=-1)) if self.cell == "lstm" else summary
        return outputs, frame_mask(lengths, frames.shape[1]), state

    # --- decoder ----------------------------------------------------------------------------------------
    def _attend(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor):
        if self.attention is None:
            return query.new_zeros(query.shape[0], 0), None
        return self.attention(query, keys, mask)

    def step(self, token: torch.Tensor, state, feed: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor):
        """One decoder step: ``(logits [B, V], new state, next feed, attention [B, T] or None)``."""
        top = state[0] if isinstance(state, tuple) else state
        embedded = self.embedding(token)
        if self.query_is_previous:
            context, weights = self._attend(top, keys, mask)
            feed = context
        state = self.decoder(torch.cat([embedded, feed], dim=-1), state)
        top = state[0] if isinstance(state, tuple) else state
        if not self.query_is_previous:
            context, weights = self._attend(top, keys, mask)
        attentional = torch.tanh(self.combine(torch.cat([top, context], dim=-1)))
        next_feed = attentional if (self.attention is not None and not self.query_is_previous) else feed
        return self.output(self.dropout(attentional)), state, next_feed, weights

    def _first_feed(self, keys: torch.Tensor, batch: int) -> torch.Tensor:
        return keys.new_zeros(batch, self.decoder.input_size - self.embedding.embedding_dim)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor):
        """Teacher forcing: step ``u`` reads the true token ``targets[:, u-1]`` (``<sos>`` at ``u = 0``)."""
        keys, mask, state = self.encode(frames, lengths)
        batch = frames.shape[0]
        start = targets.new_full((batch, 1), self.sos_token)
        inputs = torch.cat([start, targets[:, :-1]], dim=1)
        feed = self._first_feed(keys, batch)
        logits, attention = [], []
        for u in range(inputs.shape[1]):
            step_logits, state, feed, weights = self.step(inputs[:, u], state, feed, keys, mask)
            logits.append(step_logits)
            attention.append(weights)
        stacked = torch.stack(attention, dim=1) if self.attention is not None else None
        return torch.stack(logits, dim=1), stacked

    @torch.no_grad()
    def greedy_decode(self, frames: torch.Tensor, lengths: torch.Tensor, max_len: int | None = None):
        """Feed back the most likely token until every sequence has written ``<eos>`` or ``max_len`` tokens.

        Returns tokens ``[B, L]`` (``<eos>`` repeated after the first one) and attention ``[B, L, T]`` (None
        without attention), ``L <= max_len`` (default: ``max_output_len``).
        """
        keys, mask, state = self.encode(frames, lengths)
        batch = frames.shape[0]
        token = torch.full((batch,), self.sos_token, dtype=torch.long, device=frames.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=frames.device)
        feed = self._first_feed(keys, batch)
        tokens, attention = [], []
        for _ in range(max_len or self.max_output_len):
            logits, state, feed, weights = self.step(token, state, feed, keys, mask)
            token = logits.argmax(dim=-1).masked_fill(finished, self.eos_token)
            finished = finished | (token == self.eos_token)
            tokens.append(token)
            attention.append(weights)
            if bool(finished.all()):
                break
        stacked = torch.stack(attention, dim=1) if self.attention is not None else None
        return torch.stack(tokens, dim=1), stacked


def _example(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames of 2..5 steps (lengths cycling so that padding is exercised) and 3-token targets."""
    lengths = 2 + torch.arange(batch) % 4
    lengths[0] = 5
    targets = torch.randint(0, 11, (batch, 3))
    return torch.randn(batch, 5, 1, 28, 28), lengths, targets


_TINY = {"cnn_channels": (4, 8), "frame_features": 16, "hidden": 16, "attention_hidden": 8, "embed_dim": 8}
register_model("td-cnn", family="seq2seq", input_kind="image-sequence", input_shape=(5, 1, 28, 28),
               task="seq2seq", tasks=("seq2seq",), tiny=_TINY, example=_example, grad_clip=1.0,
               description="time-distributed CNN per frame → biGRU encoder → attention decoder (seq2seq)")(
    Seq2SeqDigits)
