"""Wiring the new scores onto a real walk-forward result (what the backtest and leaderboard will do)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_series import ar1_close
from lstmcast.errors import UsageError
from lstmcast.evaluate import significance
from lstmcast.evaluate.backtest import BacktestConfig, walk_forward
from lstmcast.evaluate.probabilistic import probabilistic_scores
from lstmcast.evaluate.reference import ar1_forecaster
from lstmcast.jsonable import to_jsonable


@pytest.fixture(scope="module")
def result():
    c = ar1_close(900, phi=0.3, seed=21)
    fit, predict = ar1_forecaster(c, horizon=2)
    res = walk_forward(c, origins=np.arange(150, 897), config=BacktestConfig(horizon=2, refit_every=100),
                       fit=fit, predict=predict)
    return c, res


def test_scores_for_model_and_every_baseline(result):
    c, res = result
    preds = {"model": res.forecast, **res.baselines}
    rep = probabilistic_scores(c, origins=res.origins, actual=res.actual, preds=preds)
    assert set(rep.forecasters) == {"model", "naive", "drift", "moving_average", "mean_return"}
    m, n = rep.forecasters["model"], rep.forecasters["naive"]
    assert n.crps_skill == 0.0 and m.crps_skill > 0.01 and m.crps_dm_stat < 0
    assert m.rps_skill > 0.0 and abs(n.rps_skill) < 0.03
    for f in rep.forecasters.values():
        assert f.scores.coverage["0.8"].observed == pytest.approx(0.8, abs=0.04)
    d = to_jsonable(rep.to_dict())
    json.dumps(d, allow_nan=False)
    assert d["forecasters"]["model"]["coverage"]["0.95"]["kupiec_p"] is not None
    with pytest.raises(UsageError, match="naive"):
        probabilistic_scores(c, origins=res.origins, actual=res.actual, preds={"model": res.forecast})


def test_value_series_get_additive_scores_without_rps():
    rng = np.random.default_rng(3)
    v = np.cumsum(rng.standard_normal(400))
    o = np.arange(50, 398)
    actual = v[o + 1][:, None]
    preds = {"naive": v[o][:, None], "model": v[o][:, None] + 0.1}
    rep = probabilistic_scores(v, origins=o, actual=actual, preds=preds, kind="value")
    assert not rep.scaled and np.isnan(rep.forecasters["model"].rps)
    assert rep.forecasters["model"].scores.crps > 0


def test_strategy_rows_carry_sharpe_intervals_and_never_in_market(result):
    _, res = result
    st = significance.strategy_significance(res.strategies)
    assert st["naive"].status == significance.NEVER_IN_MARKET and st["naive"].sharpe is None
    bh = st["buy_and_hold"]
    assert bh.in_market and bh.sharpe_low < bh.sharpe < bh.sharpe_high
    assert st["model"].benchmark_sharpe == pytest.approx(bh.sharpe)
    assert st["model"].time_in_market == pytest.approx(res.strategies["model"].exposure)
