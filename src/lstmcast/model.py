"""The LSTM network's old home: it lives in ``forecasters.rnn.module`` now (with the GRU)."""

from lstmcast.forecasters.rnn.module import GRUForecaster, LSTMForecaster, RecurrentNet
from lstmcast.settings import ModelConfig

__all__ = ["GRUForecaster", "LSTMForecaster", "ModelConfig", "RecurrentNet"]
