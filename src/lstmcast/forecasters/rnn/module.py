"""The recurrent network: ``nn.LSTM`` or ``nn.GRU`` over look-back windows and a linear head.

The submodule is named after its cell (``lstm`` / ``gru``) and the head ``head``, so the saved
tensors are ``weights.lstm.weight_ih_l0`` ... ``weights.head.weight``: other code (a numpy
forward pass) reads exactly these names.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmcast.settings import ModelConfig


class RecurrentNet(nn.Module):
    """``[batch, lookback, n_features]`` -> ``[batch, horizon]`` (scaled targets)."""

    def __init__(self, *, n_features: int, horizon: int, config: ModelConfig, cell: str = "lstm") -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.horizon = horizon
        self.cell = cell
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        # dropout applies between stacked layers only; with one layer torch would only warn
        layer = rnn(
            input_size=n_features,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        setattr(self, cell, layer)  # the attribute name is the tensor-name prefix
        self.head = nn.Linear(config.hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = getattr(self, self.cell)(x)
        return self.head(out[:, -1, :])


class LSTMForecaster(RecurrentNet):
    """The LSTM family's network (the class ``lstmcast.model`` always exported)."""

    def __init__(self, *, n_features: int, horizon: int, config: ModelConfig) -> None:
        super().__init__(n_features=n_features, horizon=horizon, config=config, cell="lstm")


class GRUForecaster(RecurrentNet):
    def __init__(self, *, n_features: int, horizon: int, config: ModelConfig) -> None:
        super().__init__(n_features=n_features, horizon=horizon, config=config, cell="gru")
