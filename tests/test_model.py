import pytest
import torch

from lstmcast.errors import ConfigError
from lstmcast.model import LSTMForecaster, ModelConfig


def test_output_has_one_value_per_horizon_step():
    net = LSTMForecaster(n_features=3, horizon=5, config=ModelConfig(hidden=8, layers=2, dropout=0.1))
    assert net(torch.zeros(4, 12, 3)).shape == (4, 5)
    assert net.lstm.batch_first and net.lstm.dropout == 0.1


def test_single_layer_has_no_dropout():
    net = LSTMForecaster(n_features=1, horizon=1, config=ModelConfig(hidden=4, layers=1, dropout=0.5))
    assert net.lstm.dropout == 0.0


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"hidden": 0}, "hidden must be at least 1"),
        ({"layers": 0}, "layers"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_model_config(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        ModelConfig(**kwargs)


def test_config_round_trip():
    c = ModelConfig(hidden=7, layers=3, dropout=0.2)
    assert ModelConfig.from_dict(c.to_dict()) == c
