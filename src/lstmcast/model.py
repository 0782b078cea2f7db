"""The forecaster: an ``nn.LSTM`` over look-back windows and a linear head, one output per horizon step."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from lstmcast.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"hidden size must be at least 1 (got {self.hidden})")
        if self.layers < 1:
            raise ConfigError(f"layers must be at least 1 (got {self.layers})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(hidden=int(d["hidden"]), layers=int(d["layers"]), dropout=float(d["dropout"]))


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
