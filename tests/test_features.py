import numpy as np
import pytest
import torch

from helpers_series import random_walk_frame, sine_frame
from lstmcast import features as F
from lstmcast.errors import ConfigError, DataError, ModelError


def test_prepare_is_causal():
    frame = random_walk_frame(200)
    cfg = F.FeatureConfig(lookback=10)
    full = F.prepare(frame, kind="price", features=cfg)
    part = F.prepare(frame.iloc[:120], kind="price", features=cfg)
    np.testing.assert_array_equal(full.raw[:120], part.raw)
    np.testing.assert_array_equal(full.target[:120], part.target)
    assert full.names == ("log_return", "log_range", "log_volume_change")
    np.testing.assert_allclose(full.raw[5, 0], np.log(frame.close.iloc[5] / frame.close.iloc[4]), rtol=1e-6)


def test_value_series_features_and_level_for_price_target():
    p = F.prepare(sine_frame(100), kind="value", features=F.FeatureConfig(lookback=10, target="price"))
    assert p.names == ("diff", "level")
    np.testing.assert_allclose(p.target, sine_frame(100).close.to_numpy())


def test_negative_values_need_price_target():
    with pytest.raises(ModelError, match="--target price") as e:
        F.prepare(sine_frame(100), kind="value", features=F.FeatureConfig(lookback=10))
    assert "the value is 0 at 2020-01-01T00:00:00+00:00 (row 0, 50 such rows)" in str(e.value)


def test_nan_close_is_named():
    frame = random_walk_frame(100)
    frame.iloc[42, frame.columns.get_loc("close")] = np.nan
    with pytest.raises(DataError, match=r"NaN or infinite close at 2020-02-12.*row 42"):
        F.prepare(frame, kind="price", features=F.FeatureConfig())


def test_nan_volume_names_feature():
    frame = random_walk_frame(100)
    frame.iloc[7, frame.columns.get_loc("volume")] = np.nan
    with pytest.raises(DataError, match="feature log_volume_change is NaN or infinite at 2020-01-08"):
        F.prepare(frame, kind="price", features=F.FeatureConfig())


def test_bad_configs_name_the_culprit():
    with pytest.raises(ConfigError, match="unknown feature 'rsi'"):
        F.FeatureConfig(features=("log_return", "rsi"))
    with pytest.raises(ConfigError, match="target 'level'"):
        F.FeatureConfig(target="level")
    with pytest.raises(ConfigError, match="lookback must be at least 2 \\(got 0\\)"):
        F.FeatureConfig(lookback=0)


def test_split_is_chronological_with_gap_for_horizon():
    cfg = F.FeatureConfig(lookback=10, horizon=3)
    sp = F.split(200, features=cfg, val_fraction=0.2, start=20, end=150)
    assert sp.train_origins[0] == 20 + 10 - 1
    assert sp.val_origins[-1] == 150 - 1 - 3  # the last target row is 149 < end
    assert np.all(np.diff(sp.train_origins) == 1) and np.all(np.diff(sp.val_origins) == 1)
    # no training target row is also a validation target row
    assert sp.train_origins[-1] + 3 < sp.val_origins[0] + 1
    assert sp.train_end == sp.train_origins[-1] + 1 + 3


def test_too_little_history_says_how_many_bars():
    cfg = F.FeatureConfig(lookback=60, horizon=1)
    need = F.bars_needed(cfg, val_fraction=0.2)
    F.split(need, features=cfg, val_fraction=0.2)  # exactly enough works
    with pytest.raises(ModelError, match=rf"too little history: {need - 1} bars.*needs at least {need} bars"):
        F.split(need - 1, features=cfg, val_fraction=0.2)


def test_windows_are_views_with_the_right_rows():
    x = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    w = F.windows(x, 4)
    assert w.shape == (7, 4, 3)
    assert w.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()  # no copy
    torch.testing.assert_close(w[2], x[2:6])


def test_scaler_round_trip_and_constant_feature():
    raw = np.c_[np.arange(10.0), np.ones(10)].astype("float32")
    s = F.Scaler.fit(raw, np.arange(10.0))
    assert s.std[1] == 1.0  # constant column: no division by zero
    t = F.Scaler.from_dict(s.to_dict())
    np.testing.assert_array_equal(t.transform(raw), s.transform(raw))
    np.testing.assert_allclose(t.inverse_target(t.transform_target(np.array([3.0]))), [3.0], rtol=1e-6)
