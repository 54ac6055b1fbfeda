"""Recurrent forecasters: an RNN, LSTM or GRU reading a series and forecasting, at every step, the next H values.

Many-to-many with equal lengths: the input is ``x[0 .. L-1]`` (``[B, L, F]``, scaled) and the output at step
``i`` is the forecast of the target column at ``i+1 .. i+H`` (``[B, L, H]``)::

    h_i      = cell(x_i, h_{i-1})                       (stacked RNN / LSTM / GRU, see models/rnn.py)
    yhat_i   = x_i[target] + W h_i + b                  (residual=True: a correction of the naive forecast)
    yhat_i   =               W h_i + b                  (residual=False: the level itself)

The residual form starts as the naive "tomorrow = today" forecast (the linear head is initialised at zero)
and learns the correction. It matters for series with a trend (co2): the test years lie above every training
value, and a tanh network asked for the level itself saturates there, while a change from the last value
stays in the range it was trained on. For the same reason ``differences=True`` lets the recurrent layers
read the changes ``x_i - x_{i-1}`` (0 at the first step) instead of the levels: a trending series' test
levels lie outside the training range, its changes do not (the classic differencing of Box & Jenkins,
*Time Series Analysis*, 1970). Without a trend, levels carry information (mean reversion): keep the default.

Recurrent networks for forecasting: Elman, "Finding structure in time", Cognitive Science 14, 1990;
Hochreiter & Schmidhuber, "Long short-term memory", 1997; Cho et al. 2014 (GRU); the many-to-many training
(a loss at every step of the window, teacher forcing by the observed inputs) as in Hewamalage, Bergmeir &
Bandara, "Recurrent neural networks for time series forecasting: current status and future directions",
IJF 37, 2021 (their "moving window" scheme with a dense output of H values).

Stateful use (one long series read chunk by chunk): ``model.step(x, state)`` returns the forecasts and the
final state, which the caller passes to the next chunk (detached: :func:`detach_state`); ``model(x)`` starts
from a zero state.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model
from archlab.models.rnn import CELLS

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def detach_state(state: State | None) -> State | None:
    """The same state cut from the graph that made it (truncated backpropagation at a chunk boundary)."""
    if state is None:
        return None
    return tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()


class RecurrentForecaster(nn.Module):
    """Stacked RNN/LSTM/GRU over ``[B, L, F]`` → the next ``horizon`` values of one column at every step."""

    def __init__(
        self,
        input_size: int = 1,
        horizon: int = 1,
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 1,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        target_index: int = 0,
        residual: bool = True,
        differences: bool = False,
    ) -> None:
        super().__init__()
        checks = [
            (cell in CELLS, f"cell must be one of {sorted(CELLS)}, got {cell!r}"),
            (min(input_size, horizon, hidden, layers) >= 1,
             f"input_size, horizon, hidden and layers must be ≥ 1, got {input_size}, {horizon}, {hidden}, {layers}"),
            (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
            (nonlinearity in ("tanh", "relu"), f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"),
            (nonlinearity == "tanh" or cell == "rnn", "nonlinearity applies to cell='rnn' only"),
            (0 <= target_index < input_size, f"target_index must be in [0, {input_size}), got {target_index}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        # nn.RNNBase applies dropout between stacked layers only (never on the recurrent connection).
        self.recurrent = CELLS[cell](input_size, hidden, num_layers=layers, batch_first=True,
                                     dropout=dropout if layers > 1 else 0.0, **options)
        self.head = nn.Linear(hidden, horizon)
        self.horizon, self.target_index, self.residual, self.differences = horizon, target_index, residual, differences
        if residual:  # start as the naive forecast; the gradient still reaches every weight through W
            nn.init.zeros_(self.head.bias)
            nn.init.normal_(self.head.weight, std=1e-3)

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Forecasts ``[B, L, horizon]`` from ``x`` ``[B, L, F]`` and ``state`` (None: zeros); the final state."""
        outputs, state = self.recurrent(self.changes(x) if self.differences else x, state)
        forecast = self.head(outputs)
        if self.residual:
            forecast = forecast + x[..., self.target_index : self.target_index + 1]
        return forecast, state

    @staticmethod
    def changes(x: torch.Tensor) -> torch.Tensor:
        """``x_i - x_{i-1}`` per column, 0 at the first step of the sequence."""
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)

    def forward(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor:
        return self.step(x, state)[0]


_TINY = {"hidden": 8, "horizon": 3}
_WINDOW = 24


def _example(batch: int) -> tuple[torch.Tensor]:
    return (torch.randn(batch, _WINDOW, 1),)


for _name, _cell in (("rnn-forecast", "rnn"), ("lstm-forecast", "lstm"), ("gru-forecast", "gru")):
    register_model(
        _name, family="rnn", defaults={"cell": _cell}, tiny=_TINY, grad_clip=1.0, task="forecast",
        tasks=("forecast",), input_kind="series", input_shape=(_WINDOW, 1), example=_example,
        description=f"{_cell.upper()} forecaster: at every step of a window, the next H values (many-to-many)",
    )(RecurrentForecaster)
