"""The two forecasting paths end to end on the real library: predict_series and backtest_series.

No-leak (truncation) tests for both, the random-walk canary for the LSTM's walk-forward, and the
calendar of predicted timestamps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_series import random_walk_frame
from lstmcast import forecast
from lstmcast.data.store import SeriesKey
from lstmcast.errors import DataError, UsageError
from lstmcast.evaluate.backtest import BacktestConfig
from lstmcast.features import FeatureConfig
from lstmcast.model import ModelConfig
from lstmcast.train import TrainConfig, train_series

FEAT = FeatureConfig(lookback=10, horizon=2)
MODEL = ModelConfig(hidden=8, layers=1, dropout=0.0)
TRAIN = TrainConfig(epochs=3, batch_size=32, patience=3, seed=0, threads=1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _put(store, frame, *, symbol="RW", market="crypto"):
    key = SeriesKey("import", symbol, "1d")
    store.upsert(key, frame, market=market, replace=True)
    return key


def _train(store, symbol="RW"):
    return train_series(store, symbol, features=FEAT, model=MODEL, train=TRAIN)


def test_predict_truncation_matches_forecast_made_at_t(store):
    """Deleting every bar after t does not change the forecast made at t."""
    frame = random_walk_frame(300, seed=3)
    _put(store, frame.iloc[:250])
    _train(store)
    at_250 = forecast.predict_series(store, "RW", now=frame.index[249])
    # Now the store grows by 50 bars (some of them garbage-sized moves); the same model at t=249
    # must give the same numbers when the data is cut back to t.
    later = frame.copy()
    later.iloc[250:, :4] *= 7.0
    _put(store, later)
    _put(store, later.iloc[:250])
    again = forecast.predict_series(store, "RW", now=frame.index[249])
    assert [s.predicted for s in again.steps] == [s.predicted for s in at_250.steps]
    assert again.steps[0].intervals == at_250.steps[0].intervals
    assert at_250.warnings == []


def test_predict_report_steps_intervals_and_naive(store):
    frame = random_walk_frame(300, seed=4)
    _put(store, frame)
    _train(store)
    rep = forecast.predict_series(store, "RW", now=frame.index[-1], levels=(0.8, 0.95))
    assert [s.step for s in rep.steps] == [1, 2]
    last = float(frame["close"].iloc[-1])
    for s in rep.steps:
        assert s.naive == last
        (lo80, hi80), (lo95, hi95) = s.intervals[0.8], s.intervals[0.95]
        assert lo95 <= lo80 < s.predicted < hi80 <= hi95
        assert s.change_pct == pytest.approx(100 * (s.predicted / last - 1))
    # step 2's interval is calibrated on step-2 residuals, wider than step 1's on a random walk
    w1 = rep.steps[0].intervals[0.8][1] - rep.steps[0].intervals[0.8][0]
    w2 = rep.steps[1].intervals[0.8][1] - rep.steps[1].intervals[0.8][0]
    assert w2 > w1
    one = forecast.predict_series(store, "RW", now=frame.index[-1], horizon=1)
    assert len(one.steps) == 1 and one.steps[0].predicted == rep.steps[0].predicted
    # beyond the trained horizon: recursive, not refused
    three = forecast.predict_series(store, "RW", now=frame.index[-1], horizon=3)
    assert [s.method for s in three.steps] == ["direct", "direct", "recursive"]
    assert [s.predicted for s in three.steps[:2]] == [s.predicted for s in rep.steps]
    assert three.steps[2].intervals[0.8][0] < three.steps[2].predicted < three.steps[2].intervals[0.8][1]
    with pytest.raises(UsageError, match="at least 1"):
        forecast.predict_series(store, "RW", horizon=0)


def test_predict_calendar_equity_skips_weekend_and_holiday(store):
    # An equity series whose last bar is Wednesday 2024-07-03: next come Fri 07-05 (07-04 is a
    # NYSE holiday), then Mon 07-08.
    days = pd.bdate_range(end="2024-07-03", periods=200, tz="UTC", name="time")
    frame = random_walk_frame(200, seed=5)
    frame.index = days
    _put(store, frame, symbol="EQ", market="equity")
    _train(store, "EQ")
    rep = forecast.predict_series(store, "EQ", now=pd.Timestamp("2024-07-03 20:00", tz="UTC"))
    assert [s.time.date().isoformat() for s in rep.steps] == ["2024-07-05", "2024-07-08"]


def test_predict_calendar_crypto_every_day(store):
    frame = random_walk_frame(200, seed=6)  # daily, 24/7, ends 2020-07-18 (a Saturday)
    _put(store, frame, symbol="CC", market="crypto")
    _train(store, "CC")
    rep = forecast.predict_series(store, "CC", now=frame.index[-1])
    assert [s.time for s in rep.steps] == [frame.index[-1] + pd.Timedelta(days=k) for k in (1, 2)]


def test_predict_warns_stale_data_and_lagging_model(store):
    frame = random_walk_frame(300, seed=7)
    _put(store, frame.iloc[:250])
    _train(store)
    _put(store, frame)  # 50 newer bars the model never saw
    rep = forecast.predict_series(store, "RW", now=frame.index[-1] + pd.Timedelta(days=10))
    text = " | ".join(rep.warnings)
    assert "data is stale" in text and "9 complete 1d bar(s)" in text
    assert "store has 50 newer bars" in text


def test_backtest_no_leak_garbage_after_origin(store):
    """Replacing every value after an origin with garbage leaves the forecasts up to it unchanged."""
    frame = random_walk_frame(260, seed=8)
    _put(store, frame)
    cfg = BacktestConfig(horizon=2, refit_every=15, intervals="model", scale_window=100)
    kw = dict(features=FEAT, model=MODEL, train=TRAIN, config=cfg, start=str(frame.index[200].date()))
    clean = forecast.backtest_series(store, "RW", **kw).result
    cut = 230  # origin position; garbage from cut+1 on
    bad = frame.copy()
    rng = np.random.default_rng(0)
    bad.iloc[cut + 1 :, :4] = rng.uniform(1, 1e4, size=(len(bad) - cut - 1, 1))
    bad["high"] = bad[["open", "high", "low", "close"]].max(axis=1)
    bad["low"] = bad[["open", "high", "low", "close"]].min(axis=1)
    _put(store, bad)
    dirty = forecast.backtest_series(store, "RW", **kw).result
    keep = clean.origins <= cut
    assert keep.sum() >= 30
    np.testing.assert_array_equal(clean.forecast[keep], dirty.forecast[keep])
    for name in clean.baselines:
        np.testing.assert_array_equal(clean.baselines[name][keep], dirty.baselines[name][keep])
    for lv in clean.intervals:
        np.testing.assert_array_equal(clean.intervals[lv][0][keep], dirty.intervals[lv][0][keep])
    assert not np.array_equal(clean.forecast[~keep], dirty.forecast[~keep])  # the garbage does reach later ones


def test_backtest_reproducible_with_seed(store):
    frame = random_walk_frame(220, seed=9)
    _put(store, frame)
    cfg = BacktestConfig(horizon=2, refit_every=20, intervals="model", scale_window=100)
    kw = dict(features=FEAT, model=MODEL, train=TRAIN, config=cfg)
    a = forecast.backtest_series(store, "RW", **kw).result
    b = forecast.backtest_series(store, "RW", **kw).result
    np.testing.assert_array_equal(a.forecast, b.forecast)


@pytest.mark.slow
def test_canary_random_walk_has_no_skill(store):
    """On a pure random walk no forecaster can beat naive: the LSTM's walk-forward MAE ratio must be ~1.

    Tolerance set from ten seeds (100-109) of this exact setup: MAE ratios 0.981-1.069, never a
    "beats naive" verdict. A pipeline that peeks one bar ahead scores far below 1.
    """
    feat = FeatureConfig(lookback=20, horizon=1)
    train = TrainConfig(epochs=4, batch_size=64, patience=2, seed=0, threads=1)
    ratios = []
    for seed in (0, 1, 2):
        _put(store, random_walk_frame(700, seed=100 + seed))
        cfg = BacktestConfig(horizon=1, refit_every=100, intervals="none", scale_window=250)
        r = forecast.backtest_series(store, "RW", features=feat, model=MODEL, train=train, config=cfg).result
        ratios.append(r.mae_ratio)
        assert not r.beats_naive
    assert all(0.95 < x < 1.12 for x in ratios), ratios


def test_backtest_errors_name_the_culprit(store):
    frame = random_walk_frame(60, seed=10)
    _put(store, frame)
    with pytest.raises(DataError, match="no backtest origins"):
        forecast.backtest_series(store, "RW", features=FeatureConfig(lookback=55, horizon=1), model=MODEL,
                                 train=TRAIN, config=BacktestConfig(horizon=1))
    with pytest.raises(UsageError, match="not a date"):
        forecast.backtest_series(store, "RW", features=FEAT, model=MODEL, train=TRAIN,
                                 config=BacktestConfig(horizon=2), start="yesterday-ish")


def test_predict_with_another_series_model_warns_mismatch(store):
    frame = random_walk_frame(200, seed=11)
    _put(store, frame, symbol="AAA")
    _put(store, frame, symbol="BBB")
    run_a = _train(store, "AAA").run.run_id
    rep = forecast.predict_series(store, "BBB", run_id=run_a, now=frame.index[-1])
    assert any("trained on import:AAA, not import:BBB" in w for w in rep.warnings)
    assert rep.run_id == run_a
