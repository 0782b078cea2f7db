"""The forecast-driven trading rule and buy-and-hold, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmcast.errors import UsageError
from lstmcast.evaluate.strategy import buy_and_hold, positions, run_strategy

CLOSE = np.array([100.0, 110.0, 99.0, 99.0, 108.9, 100.0])
ORIGINS = np.arange(5)
# forecast returns: +5%, -9.1%, +0.505%, +0.0505% (below the 0.1% fee), +10.2%
PRED = np.array([105.0, 100.0, 99.5, 99.05, 120.0])
R = CLOSE[1:] / CLOSE[:-1] - 1  # 0.1, -0.1, 0, 0.1, -0.0817


def test_long_flat_by_hand():
    res = run_strategy(CLOSE, ORIGINS, PRED, fee_bps=10, bars_per_year=252)
    assert res.position.tolist() == [1, 0, 1, 0, 1]
    assert res.trades == 5  # every bar changes position
    growth = [0.999 * 1.1, 0.999 * 1.0, 0.999 * 1.0, 0.999 * 1.0, 0.999 * (100 / 108.9)]
    assert res.equity == pytest.approx(np.concatenate([[1.0], np.cumprod(growth)]))
    assert res.total_return == pytest.approx(np.prod(growth) - 1)
    assert res.annual_return == pytest.approx(np.prod(growth) ** (252 / 5) - 1)
    net = np.array(growth) - 1
    assert res.annual_volatility == pytest.approx(np.std(net, ddof=1) * math.sqrt(252))
    assert res.sharpe == pytest.approx(net.mean() / np.std(net, ddof=1) * math.sqrt(252))
    peak = 0.999 * 1.1  # the equity high after the first bar; the last bar is the trough
    assert res.max_drawdown == pytest.approx(np.prod(growth) / peak - 1)
    assert res.exposure == pytest.approx(0.6)


def test_long_short_pays_twice_on_a_flip():
    res = run_strategy(CLOSE, ORIGINS, PRED, fee_bps=10, long_short=True)
    assert res.position.tolist() == [1, -1, 1, 0, 1]
    growth = [0.999 * 1.1, 0.998 * 1.1, 0.998 * 1.0, 0.999 * 1.0, 0.999 * (100 / 108.9)]
    assert res.equity[-1] == pytest.approx(np.prod(growth))
    assert res.trades == 5


def test_fee_threshold_keeps_small_forecasts_flat():
    f = np.array([0.0011, 0.001, 0.0, -0.0011])
    assert positions(f, fee_bps=10).tolist() == [1, 0, 0, 0]
    assert positions(f, fee_bps=10, long_short=True).tolist() == [1, 0, 0, -1]
    assert positions(f, fee_bps=0).tolist() == [1, 1, 0, 0]


def test_buy_and_hold_pays_one_entry():
    res = buy_and_hold(CLOSE, ORIGINS, fee_bps=10)
    assert res.total_return == pytest.approx(0.999 * 100 / 100 - 1)
    assert res.trades == 1
    assert res.max_drawdown == pytest.approx(0.999 * 99 / (0.999 * 110) - 1)


def test_naive_forecast_never_trades():
    res = run_strategy(CLOSE, ORIGINS, CLOSE[ORIGINS], fee_bps=10)
    assert (res.trades, res.total_return, res.sharpe, res.max_drawdown) == (0, 0.0, 0.0, 0.0)


def test_to_dict_is_plain():
    d = run_strategy(CLOSE, ORIGINS, PRED).to_dict()
    assert d["equity"][0] == 1.0 and len(d["equity"]) == 6 and d["name"] == "model"
    assert "equity" not in run_strategy(CLOSE, ORIGINS, PRED).to_dict(series=False)


def test_errors_name_the_culprit():
    with pytest.raises(UsageError, match=r"origin 5 has no next bar"):
        run_strategy(CLOSE, np.arange(6), np.ones(6))
    with pytest.raises(UsageError, match="one forecast per origin"):
        run_strategy(CLOSE, ORIGINS, np.ones((5, 2)))
    with pytest.raises(UsageError, match="fee must not be negative"):
        run_strategy(CLOSE, ORIGINS, PRED, fee_bps=-1)
