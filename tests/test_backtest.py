"""The walk-forward engine, driven by a real (AR(1) least-squares) forecaster."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_series import ar1_close
from lstmcast.errors import ModelError, UsageError
from lstmcast.evaluate import conformal
from lstmcast.evaluate.backtest import BacktestConfig, plan, walk_forward
from lstmcast.evaluate.reference import AR1, ar1_forecaster, fit_ar1


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))


def run(close, origins, config, **kw):
    fit, predict = ar1_forecaster(close, horizon=config.horizon)
    return walk_forward(close, origins=origins, config=config, fit=fit, predict=predict, **kw)


def test_plan_is_known_before_fitting():
    cfg = BacktestConfig(horizon=2, refit_every=10)
    p = plan(100, origins=np.arange(50, 98), config=cfg)
    assert p.n_refits == 5 and p.n_origins == 48
    assert [(f.start, f.end) for f in p.folds] == [(0, 51), (0, 61), (0, 71), (0, 81), (0, 91)]
    rolling = plan(100, origins=np.arange(50, 98), config=BacktestConfig(horizon=2, refit_every=25,
                                                                          window="rolling", train_size=40))
    assert [(f.start, f.end) for f in rolling.folds] == [(11, 51), (36, 76)]
    assert rolling.to_dict()["folds"][1] == {"start": 36, "end": 76, "first_origin": 75,
                                             "last_origin": 97, "n_origins": 23}


def test_config_and_plan_errors_name_the_culprit():
    with pytest.raises(UsageError, match="refit-every must be at least 1, got 0"):
        BacktestConfig(refit_every=0)
    with pytest.raises(UsageError, match="window must be one of expanding, rolling, got 'sliding'"):
        BacktestConfig(window="sliding")
    with pytest.raises(UsageError, match="MASE scale window must be at least 2 rows, got 1"):
        BacktestConfig(scale_window=1)
    with pytest.raises(UsageError, match="rolling window needs a train size"):
        BacktestConfig(window="rolling")
    with pytest.raises(UsageError, match=r"rolling train size \(60\) is larger than the 51 rows"):
        plan(100, origins=np.arange(50, 90), config=BacktestConfig(window="rolling", train_size=60))
    past_end = r"last origin \(98\) \+ horizon \(2\) goes past the last row \(99\)"
    with pytest.raises(UsageError, match=past_end):
        plan(100, origins=np.arange(50, 99), config=BacktestConfig(horizon=2))
    with pytest.raises(UsageError, match="intervals='model' needs a calibrate"):
        run(random_walk(100, 0), np.arange(50, 90), BacktestConfig(intervals="model"))


def test_fit_sees_rows_up_to_the_origin_and_models_are_reused_between_refits():
    close = random_walk(300, 1)
    calls: list[tuple[int, int]] = []
    used: list[tuple[int, np.ndarray]] = []

    def fit(start: int, end: int) -> AR1:
        calls.append((start, end))
        return fit_ar1(close, start=start, end=end)

    def predict(model: AR1, origins: np.ndarray) -> np.ndarray:
        used.append((model.end, origins.copy()))
        return model.predict_close(close, origins, 3)

    cfg = BacktestConfig(horizon=3, refit_every=30, window="rolling", train_size=100)
    res = walk_forward(close, origins=np.arange(150, 297), config=cfg, fit=fit, predict=predict)
    assert calls == [(f.start, f.end) for f in res.plan.folds]
    assert calls[0] == (51, 151) and all(e - s == 100 for s, e in calls)
    for end, origins in used:  # every forecast comes from a model fitted no later than its origin
        assert origins[0] == end - 1 and len(origins) <= 30
    assert len(res.fit_seconds) == res.plan.n_refits == 5


def test_no_leakage_garbage_after_an_origin_changes_nothing_before_it():
    close = ar1_close(400, seed=3)
    origins = np.arange(200, 396)
    cfg = BacktestConfig(horizon=3, refit_every=15)
    clean = run(close, origins, cfg)
    k = 260
    dirty_close = close.copy()
    dirty_close[k + 1 :] = np.random.default_rng(9).uniform(1, 1e6, len(close) - k - 1)
    dirty = run(dirty_close, origins, cfg)
    upto = origins <= k
    np.testing.assert_array_equal(clean.forecast[upto], dirty.forecast[upto])
    for name, pred in clean.baselines.items():
        np.testing.assert_array_equal(pred[upto], dirty.baselines[name][upto], err_msg=name)
    for level, (lo, hi) in clean.intervals.items():
        np.testing.assert_array_equal(lo[upto], dirty.intervals[level][0][upto])
        np.testing.assert_array_equal(hi[upto], dirty.intervals[level][1][upto])
    pos_clean, pos_dirty = clean.strategies["model"].position, dirty.strategies["model"].position
    np.testing.assert_array_equal(pos_clean[upto], pos_dirty[upto])
    assert not np.array_equal(clean.forecast[~upto], dirty.forecast[~upto])  # the garbage was used later


# Canary tolerance: over seeds 0..19 the AR(1) reference's walk-forward MAE relative to naive on
# a pure random walk ranged 0.996 .. 1.016 (estimation noise can only hurt). A forecaster that
# peeks one bar ahead scores ~0.1; a real AR(1) effect of 0.5 scores ~0.85-0.91.
CANARY_SEEDS = range(5)


def _relative_mae(res) -> float:
    return res.metrics["model"].mae / res.metrics["naive"].mae


def test_canary_no_skill_on_a_random_walk():
    cfg = BacktestConfig(horizon=1, refit_every=20, intervals="none")
    ratios = []
    for seed in CANARY_SEEDS:
        close = random_walk(600, seed)
        res = run(close, np.arange(200, 599), cfg)
        ratios.append(_relative_mae(res))
        assert 0.98 < ratios[-1] < 1.03, (seed, ratios[-1])
        assert not res.beats_naive and res.verdict.startswith("beats naive: no, MASE ")
    assert 0.99 < np.mean(ratios) < 1.02


def test_canary_catches_a_forecaster_that_peeks():
    close = random_walk(600, 0)
    cfg = BacktestConfig(horizon=1, refit_every=20, intervals="none")

    def peek(model, origins):  # deliberately leaky: reads the target bar
        return (0.1 * close[origins] + 0.9 * close[origins + 1])[:, None]

    res = walk_forward(close, origins=np.arange(200, 599), config=cfg, fit=lambda s, e: None, predict=peek)
    assert _relative_mae(res) < 0.5 and res.beats_naive
    assert res.verdict.startswith("beats naive: yes")


def test_real_skill_is_detected():
    close = ar1_close(600, seed=0)
    res = run(close, np.arange(200, 599), BacktestConfig(horizon=1, refit_every=20, intervals="none"))
    assert _relative_mae(res) < 0.95 and res.beats_naive and res.dm["p"] < 0.01 and res.dm["stat"] < 0
    # and the rule trades on it: long after up-moves earns more than a never-trading naive
    assert res.strategies["model"].trades > 10


def test_metrics_baselines_and_coverage_are_on_the_same_origins():
    close = random_walk(500, 4)
    origins = np.arange(150, 495)
    res = run(close, origins, BacktestConfig(horizon=5, refit_every=50, ma_window=10))
    assert set(res.metrics) == {"model", "naive", "drift", "moving_average", "mean_return"}
    assert all(m.n == len(origins) * 5 for m in res.metrics.values())
    assert res.actual.shape == res.forecast.shape == (len(origins), 5)
    np.testing.assert_array_equal(res.actual[:, 0], close[origins + 1])
    np.testing.assert_array_equal(res.baselines["naive"][:, 4], close[origins])
    assert res.scale == pytest.approx(np.mean(np.abs(np.diff(close[:151]))))
    assert res.mae_ratio == pytest.approx(res.metrics["model"].mae / res.metrics["naive"].mae)
    recent = run(close, origins, BacktestConfig(horizon=5, refit_every=50, intervals="none", scale_window=30))
    assert recent.scale == pytest.approx(np.mean(np.abs(np.diff(close[121:151]))))
    assert len(res.dm["by_step"]) == 5 and len(res.metrics_by_step["model"]) == 5
    for level, cov in res.coverage.items():
        assert cov["nominal"] == level
        assert cov["observed"] == pytest.approx(level, abs=0.06)  # causal conformal on a random walk
        assert len(cov["by_step"]) == 5
    assert set(res.strategies) == {"model", "naive", "drift", "moving_average", "mean_return", "buy_and_hold"}


def test_model_calibrated_intervals():
    close = random_walk(700, 6)
    h = 2

    def calibrate(model: AR1) -> conformal.Conformal:
        # residuals of the model's own forecasts whose targets lie inside its training rows
        val = np.arange(model.end - 1 - h - 200, model.end - h)
        pred = model.predict_close(close, val, h)
        actual = close[val[:, None] + np.arange(1, h + 1)[None, :]]
        assert actual.shape == pred.shape and val[-1] + h <= model.end - 1
        return conformal.fit(conformal.residuals(actual, pred, mode="log"), mode="log")

    cfg = BacktestConfig(horizon=h, refit_every=50, intervals="model")
    fit, predict = ar1_forecaster(close, horizon=h)
    res = walk_forward(close, origins=np.arange(300, 697), config=cfg, fit=fit, predict=predict,
                       calibrate=calibrate)
    assert not np.isnan(res.intervals[0.95][0]).any()
    assert res.coverage[0.8]["observed"] == pytest.approx(0.8, abs=0.06)
    assert res.coverage[0.95]["observed"] == pytest.approx(0.95, abs=0.04)


def test_value_series_use_additive_intervals():
    rng = np.random.default_rng(2)
    v = np.cumsum(rng.standard_normal(300))  # crosses zero
    cfg = BacktestConfig(horizon=1, refit_every=50, intervals="causal")  # symmetric by construction

    def fit(start, end):
        return float(np.mean(np.diff(v[start:end])))

    def predict(mu, origins):
        return (v[origins] + mu)[:, None]

    res = walk_forward(v, origins=np.arange(100, 298), config=cfg, fit=fit, predict=predict, kind="value")
    assert "mean_return" not in res.baselines
    lo, hi = res.intervals[0.8]
    valid = ~np.isnan(lo[:, 0])
    np.testing.assert_allclose(hi[valid, 0] - res.forecast[valid, 0], res.forecast[valid, 0] - lo[valid, 0])


def test_bad_predictions_raise_model_error():
    close = random_walk(200, 0)
    cfg = BacktestConfig(horizon=2, refit_every=10)
    with pytest.raises(ModelError, match=r"predict returned shape \(10, 1\), expected \(10, 2\)"):
        walk_forward(close, origins=np.arange(100, 150), config=cfg, fit=lambda s, e: None,
                     predict=lambda m, o: np.ones((len(o), 1)))

    def nan_at_120(model, origins):
        out = np.repeat(close[origins][:, None], 2, axis=1)
        out[origins == 120] = np.nan
        return out

    with pytest.raises(ModelError, match="non-finite forecast at origin 120"):
        walk_forward(close, origins=np.arange(100, 150), config=cfg, fit=lambda s, e: None,
                     predict=nan_at_120)


def test_progress_and_json():
    close = random_walk(300, 8)
    seen: list[tuple[int, int]] = []
    cfg = BacktestConfig(horizon=2, refit_every=64)
    res = run(close, np.arange(100, 298), cfg, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 198), (64, 198), (128, 198), (192, 198), (198, 198)]
    full = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert full["plan"]["n_refits"] == 4 and full["verdict"] == res.verdict
    assert len(full["series"]["forecast"]) == 198 and set(full["coverage"]) == {"0.8", "0.95"}
    assert full["series"]["intervals"]["0.95"]["lo"][0][0] is None  # too few residuals yet: no interval
    brief = json.loads(json.dumps(res.to_dict(series=False), allow_nan=False))
    assert "series" not in brief and "equity" not in brief["strategies"]["model"]


def test_value_series_have_no_trading_strategy():
    """A value series (may be 0 or negative) has no price to trade: close[t+1]/close[t] - 1 is meaningless
    there (it reported returns of 1e69 and drawdowns below -100% on a sine wave)."""
    t = np.arange(400)
    v = np.sin(2 * np.pi * t / 50)
    cfg = BacktestConfig(horizon=1, refit_every=100)
    res = walk_forward(v, origins=np.arange(100, 398), config=cfg, fit=lambda s, e: None,
                       predict=lambda m, o: v[o][:, None], kind="value")
    assert res.strategies == {}
    assert json.loads(json.dumps(res.to_dict(), allow_nan=False))["strategies"] == {}
