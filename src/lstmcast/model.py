"""The forecaster: an ``nn.LSTM`` over look-back windows and a linear head, one output per horizon step."""

from __future__ import annotations

import torch
from torch import nn

from lstmcast.settings import ModelConfig  # noqa: F401  (its old home)


class LSTMForecaster(nn.Module):
    """``[batch, lookback, n_features]`` -> ``[batch, horizon]`` (scaled targets)."""

    def __init__(self, *, n_features: int, horizon: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.horizon = horizon
        # nn.LSTM applies dropout between stacked layers only; with one layer it would only warn
        self.lstm = nn.LSTM(
            input_size=n_features,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(config.hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :])
