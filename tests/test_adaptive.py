"""Volatility-normalised conformal quantiles with adaptive conformal inference (ACI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmcast.errors import UsageError
from lstmcast.evaluate import adaptive, conformal, volatility


def _walk(n, *, seed, jump=1.0):
    rng = np.random.default_rng(seed)
    sig = np.full(n, 0.01)
    sig[n // 2 :] *= jump
    return 100 * np.exp(np.cumsum(sig * rng.standard_normal(n)))


def _naive(c, origins, h):
    pred = np.repeat(c[origins][:, None], h, axis=1)
    actual = c[origins[:, None] + np.arange(1, h + 1)[None, :]]
    return pred, actual


def test_quantile_grid_and_levels():
    g = adaptive.QUANTILE_GRID
    assert len(g) == 19 and g[0] == 0.05 and g[-1] == 0.95
    lv = adaptive.levels_for((0.8, 0.95))
    assert lv[0] == 0.025 and lv[-1] == 0.975 and 0.1 in lv and 0.9 in lv and len(lv) == 21


def test_split_quantiles_by_hand():
    # 30 origins one bar apart, h = 1; at origin i the residuals of origins < i are known
    origins = np.arange(30)
    z = np.linspace(-0.1, 0.1, 30)
    pred = np.full((30, 1), 100.0)
    actual = pred * np.exp(z)[:, None]
    d = adaptive.causal_distribution(pred, actual, origins, quantiles=(0.1, 0.5, 0.9), method="split",
                                     min_calibration=20)
    assert np.isnan(d.quantiles[:20]).all() and d.counts[:, 0].tolist() == list(range(30))
    for i in (20, 25, 29):
        want = 100 * np.exp(np.quantile(z[:i], [0.1, 0.5, 0.9]))
        assert d.quantiles[i, 0] == pytest.approx(want)
    # scale: residuals are divided by their own origin's volatility and multiplied by the current one
    scale = np.linspace(1.0, 2.0, 30)
    d2 = adaptive.causal_distribution(pred, actual, origins, scale=scale, quantiles=(0.1, 0.9), method="split")
    want = 100 * np.exp(scale[25] * np.quantile(z[:25] / scale[:25], [0.1, 0.9]))
    assert d2.quantiles[25, 0] == pytest.approx(want)


def test_aci_update_by_hand():
    # gamma * (tau - 1{y <= q}) accumulates over the forecasts whose target is known
    origins = np.arange(25)
    rng = np.random.default_rng(0)
    pred = np.full((25, 1), 100.0)
    actual = pred * np.exp(0.01 * rng.standard_normal((25, 1)))
    g = 0.05
    d = adaptive.causal_distribution(pred, actual, origins, quantiles=(0.5,), gamma=g, min_calibration=20)
    assert d.effective[20, 0, 0] == pytest.approx(0.5)  # nothing scored yet
    below = actual[20, 0] <= d.quantiles[20, 0, 0]
    assert d.effective[21, 0, 0] == pytest.approx(0.5 + g * (0.5 - below))
    split = adaptive.causal_distribution(pred, actual, origins, quantiles=(0.5,), method="split")
    assert (split.effective[20:] == 0.5).all()


@pytest.mark.parametrize("h", [1, 3])
def test_truncation_garbage_after_origin_k_changes_nothing_up_to_k(h):
    c = _walk(400, seed=1)
    origins = np.arange(50, 400 - h)
    pred, actual = _naive(c, origins, h)
    vol = volatility.ewma_volatility(c)
    d = adaptive.causal_distribution(pred, actual, origins, scale=vol[origins])
    k = 200
    dirty_c = c.copy()
    dirty_c[k + 1 :] = 1e6
    dpred, dact = _naive(dirty_c, origins, h)
    keep = origins <= k
    dpred[~keep] = 5.0  # forecasts after k are garbage too
    with np.errstate(over="ignore", invalid="ignore"):  # the garbage overflows; only rows <= k matter
        dd = adaptive.causal_distribution(dpred, dact, origins, scale=volatility.ewma_volatility(dirty_c)[origins])
    np.testing.assert_array_equal(dd.quantiles[keep], d.quantiles[keep])
    np.testing.assert_array_equal(dd.effective[keep], d.effective[keep])


def test_multi_step_residuals_wait_for_their_target():
    c = _walk(100, seed=2)
    origins = np.arange(10, 90)
    pred, actual = _naive(c, origins, 3)
    d = adaptive.causal_distribution(pred, actual, origins, min_calibration=2)
    for s in range(3):
        assert d.counts[:, s].tolist() == [max(0, i - s) for i in range(len(origins))]


def test_nan_targets_are_not_scored_and_prior_counts_first():
    c = _walk(80, seed=3)
    origins = np.arange(10, 79)
    pred, actual = _naive(c, origins, 1)
    actual[-5:] = np.nan  # not observed yet
    prior = np.random.default_rng(1).normal(0, 0.01, (30, 1))
    d = adaptive.causal_distribution(pred, actual, origins, prior=prior, window=40)
    assert d.counts[0, 0] == 30 and d.counts[-1, 0] == 40
    assert np.isfinite(d.quantiles).all()  # forecasts exist even where targets do not


def test_regime_switch_adaptive_covers_where_split_fails():
    c = _walk(1600, seed=4, jump=3.0)
    origins = np.arange(250, 1599)
    pred, actual = _naive(c, origins, 1)
    split, _ = conformal.causal_intervals(pred, actual, origins, levels=(0.8, 0.95))
    d = adaptive.causal_distribution(pred, actual, origins, scale=volatility.ewma_volatility(c)[origins])
    for lv in (0.8, 0.95):
        lo, hi = d.interval(lv)
        assert conformal.coverage(actual, lo, hi) == pytest.approx(lv, abs=0.02)
        assert conformal.coverage(actual, *split[lv]) < lv - 0.05
    # the calm half is narrower than the wild half, as it should be
    lo, hi = d.interval(0.8)
    w = np.log(hi[:, 0] / lo[:, 0])
    half = origins < 800
    assert np.nanmean(w[~half]) > 2.0 * np.nanmean(w[half])


def test_additive_mode_for_value_series():
    rng = np.random.default_rng(5)
    v = np.cumsum(rng.standard_normal(300))  # crosses zero
    origins = np.arange(30, 299)
    pred, actual = v[origins][:, None], v[origins + 1][:, None]
    d = adaptive.causal_distribution(pred, actual, origins, mode="additive")
    lo, hi = d.interval(0.8)
    assert conformal.coverage(actual, lo, hi) == pytest.approx(0.8, abs=0.06)
    assert np.all(d.median()[np.isfinite(d.median())] == pytest.approx(pred[np.isfinite(d.median())], abs=0.5))


def test_errors_name_the_culprit():
    origins = np.arange(5)
    p = np.ones((5, 1))
    with pytest.raises(UsageError, match="method"):
        adaptive.causal_distribution(p, p, origins, method="bayes")
    with pytest.raises(UsageError, match="strictly increasing"):
        adaptive.causal_distribution(p, p, origins, quantiles=(0.9, 0.1))
    with pytest.raises(UsageError, match="origin 3 has"):
        adaptive.causal_distribution(p, p, origins, scale=np.array([1.0, 1, 1, 0, 1]))
    with pytest.raises(UsageError, match="do not match"):
        adaptive.causal_distribution(p, np.ones((4, 1)), origins)
    d = adaptive.causal_distribution(p, p, origins, quantiles=(0.1, 0.9), min_calibration=2)
    with pytest.raises(UsageError, match="not among"):
        d.interval(0.95)


def test_live_state_round_trip_and_update():
    st = adaptive.AdaptiveLevels.start((0.1, 0.9), gamma=0.01)
    st = st.update(np.array([True, True]))  # target fell below both quantiles
    assert st.effective == pytest.approx((0.1 + 0.01 * (0.1 - 1), 0.9 + 0.01 * (0.9 - 1)))
    again = adaptive.AdaptiveLevels.from_dict(json.loads(json.dumps(st.to_dict())))
    assert again == st
    with pytest.raises(UsageError, match="one outcome per level"):
        st.update(np.array([True]))


def test_baselines_get_their_own_distribution_the_same_way():
    c = _walk(300, seed=6)
    origins = np.arange(20, 299)
    pred, actual = _naive(c, origins, 1)
    noisy = pred * np.exp(np.random.default_rng(0).normal(0, 0.01, pred.shape))
    both = adaptive.causal_distributions({"model": noisy, "naive": pred}, actual, origins)
    alone = adaptive.causal_distribution(pred, actual, origins)
    np.testing.assert_array_equal(both["naive"].quantiles, alone.quantiles)
    # a noisier forecaster has wider residuals, hence a wider distribution of its own
    lo, hi = both["model"].interval(0.8)
    nlo, nhi = alone.interval(0.8)
    assert np.nanmean(np.log(hi / lo)) > np.nanmean(np.log(nhi / nlo))
