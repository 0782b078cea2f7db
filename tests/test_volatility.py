"""EWMA and GARCH(1,1) volatility: hand-computed recursion, causality, training-rows-only fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmcast.errors import DataError, ModelError, UsageError
from lstmcast.evaluate import volatility


def _garch_series(n, *, omega=1e-6, alpha=0.1, beta=0.85, seed=0):
    rng = np.random.default_rng(seed)
    v = omega / (1 - alpha - beta)
    r = np.empty(n)
    for t in range(n):
        r[t] = math.sqrt(v) * rng.standard_normal()
        v = omega + alpha * r[t] ** 2 + beta * v
    return 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))


def test_ewma_by_hand():
    c = np.array([100.0, 101.0, 99.0, 99.5, 102.0])
    r = np.diff(np.log(c))
    vol = volatility.ewma_volatility(c, lam=0.9, warmup=2)
    assert math.isnan(vol[0])
    v1 = r[0] ** 2
    v2 = (r[0] ** 2 + r[1] ** 2) / 2  # expanding mean over the warm-up
    v3 = 0.9 * v2 + 0.1 * r[2] ** 2
    v4 = 0.9 * v3 + 0.1 * r[3] ** 2
    assert vol[1:] == pytest.approx(np.sqrt([v1, v2, v3, v4]))


def test_ewma_tracks_a_volatility_jump():
    rng = np.random.default_rng(1)
    sig = np.r_[np.full(500, 0.01), np.full(500, 0.03)]
    c = 100 * np.exp(np.cumsum(sig * rng.standard_normal(1000)))
    vol = volatility.ewma_volatility(c)
    assert np.median(vol[200:500]) == pytest.approx(0.01, rel=0.15)
    assert np.median(vol[700:]) == pytest.approx(0.03, rel=0.15)


@pytest.mark.parametrize("k", [1, 30, 250])
def test_ewma_truncation(k):
    c = _garch_series(400, seed=2)
    dirty = c.copy()
    dirty[k + 1 :] = 1e6 * np.arange(1, len(c) - k)  # garbage after bar k
    np.testing.assert_array_equal(volatility.ewma_volatility(dirty)[: k + 1], volatility.ewma_volatility(c)[: k + 1])
    np.testing.assert_array_equal(volatility.ewma_volatility(c[: k + 1]), volatility.ewma_volatility(c)[: k + 1])


def test_garch_recovers_parameters_and_persistence():
    c = _garch_series(4000, seed=3)
    g = volatility.fit_garch(c)
    assert g.alpha == pytest.approx(0.1, abs=0.04)
    assert g.beta == pytest.approx(0.85, abs=0.06)
    assert g.omega / (1 - g.persistence) == pytest.approx(1e-6 / 0.05, rel=0.3)  # unconditional variance


def test_garch_fit_uses_training_rows_only_and_filter_is_causal():
    c = _garch_series(1200, seed=4)
    g = volatility.fit_garch(c, end=800)
    dirty = c.copy()
    dirty[800:] *= np.exp(np.random.default_rng(9).normal(0, 0.5, len(c) - 800))  # wild bars after training
    assert volatility.fit_garch(dirty, end=800) == g
    k = 900
    np.testing.assert_array_equal(g.volatility(dirty)[: 800], g.volatility(c)[: 800])
    v_full, v_cut = g.volatility(c), g.volatility(c[: k + 1])
    np.testing.assert_array_equal(v_cut, v_full[: k + 1])
    # the filter's one-step recursion, by hand at one bar
    r = np.diff(np.log(c))
    e = r - g.mu
    assert v_full[k + 1] ** 2 == pytest.approx(g.omega + g.alpha * e[k] ** 2 + g.beta * v_full[k] ** 2)


def test_errors_name_the_culprit():
    with pytest.raises(DataError, match="row 2"):
        volatility.ewma_volatility(np.array([1.0, 2.0, -1.0]))
    with pytest.raises(DataError, match="row 1"):
        volatility.log_returns(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(UsageError, match="decay"):
        volatility.ewma_volatility(np.ones(5), lam=1.0)
    with pytest.raises(ModelError, match="at least 50 returns"):
        volatility.fit_garch(np.linspace(1, 2, 30))
    with pytest.raises(ModelError, match="constant prices"):
        volatility.fit_garch(np.ones(100))
    with pytest.raises(UsageError, match=r"\[0, 500\)"):
        volatility.fit_garch(np.ones(100), end=500)
