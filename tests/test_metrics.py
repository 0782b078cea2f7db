"""Point metrics, the Wilson interval and the Diebold-Mariano test against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lstmcast.evaluate.baselines import baseline_forecasts
from lstmcast.evaluate.metrics import (
    diebold_mariano,
    direction_hits,
    mae,
    mape,
    mase,
    naive_scale,
    point_metrics,
    rmse,
    wilson_interval,
)

# A tiny series, small enough to check by hand.
CLOSE = np.array([10.0, 12.0, 11.0, 13.0, 12.0, 15.0])


def test_baseline_metrics_by_hand():
    origins = np.array([2, 3, 4])  # forecasts for bars 3, 4, 5: actual 13, 12, 15
    actual = CLOSE[origins + 1][:, None]
    preds = baseline_forecasts(CLOSE, origins, 1, ma_window=2)
    # naive: 11, 13, 12 -> errors 2, -1, 3
    assert preds["naive"][:, 0].tolist() == [11.0, 13.0, 12.0]
    assert mae(actual, preds["naive"]) == pytest.approx(2.0)
    assert rmse(actual, preds["naive"]) == pytest.approx(math.sqrt((4 + 1 + 9) / 3))
    assert mape(actual, preds["naive"]) == pytest.approx(100 * (2 / 13 + 1 / 12 + 3 / 15) / 3)
    # in-sample naive scale on rows 0..2 (the data before the first origin): |2|, |-1| -> 1.5
    scale = naive_scale(CLOSE[:3])
    assert scale == pytest.approx(1.5)
    assert mase(actual, preds["naive"], scale=scale) == pytest.approx(2.0 / 1.5)
    # drift: close[t] + (close[t] - close[0]) / t -> 11 + 1/2, 13 + 3/3, 12 + 2/4
    assert preds["drift"][:, 0] == pytest.approx([11.5, 14.0, 12.5])
    assert mae(actual, preds["drift"]) == pytest.approx((1.5 + 2.0 + 2.5) / 3)
    # moving average of the last 2 closes: (12+11)/2, (11+13)/2, (13+12)/2
    assert preds["moving_average"][:, 0] == pytest.approx([11.5, 12.0, 12.5])
    assert mae(actual, preds["moving_average"]) == pytest.approx((1.5 + 0.0 + 2.5) / 3)
    # mean log return compounded: close[t] * (close[t] / close[0]) ** (1 / t)
    assert preds["mean_return"][:, 0] == pytest.approx([11 * 1.1**0.5, 13 * 1.3 ** (1 / 3), 12 * 1.2**0.25])


def test_direction_hits_count_zero_moves_as_misses():
    last = np.array([10.0, 10.0, 10.0, 10.0])
    actual = np.array([11.0, 9.0, 10.0, 11.0])
    pred = np.array([10.5, 10.5, 10.5, 10.0])  # up/up: hit; down/up: miss; flat actual; flat forecast
    assert direction_hits(actual, pred, last)[:, 0].tolist() == [True, False, False, False]
    m = point_metrics(actual, pred, last=last, scale=1.0)
    assert m.hit_rate == 0.25 and m.n == 4
    assert (m.hit_low, m.hit_high) == pytest.approx(wilson_interval(1, 4))


def test_naive_mase_is_exactly_one_when_scaled_by_its_own_span():
    rng = np.random.default_rng(3)
    close = 50 + np.cumsum(rng.standard_normal(200))
    origins = np.arange(100, 199)
    naive = baseline_forecasts(close, origins, 1)["naive"]
    actual = close[origins + 1][:, None]
    span = close[origins[0] : origins[-1] + 2]  # the evaluation span: first origin .. last target
    assert mase(actual, naive, scale=naive_scale(span)) == pytest.approx(1.0, abs=1e-12)


def _wilson_by_quadratic(k: int, n: int, z: float) -> tuple[float, float]:
    # The score interval is the set of p with (phat - p)^2 <= z^2 p (1 - p) / n: solve the quadratic.
    phat = k / n
    a = 1 + z * z / n
    b = -(2 * phat + z * z / n)
    c = phat * phat
    disc = math.sqrt(b * b - 4 * a * c)
    return ((-b - disc) / (2 * a), (-b + disc) / (2 * a))


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score, no correction)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_published_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)
    assert got == pytest.approx(_wilson_by_quadratic(k, n, stats.norm.ppf(0.975)), abs=1e-12)


def test_wilson_interval_empty():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_dm_one_step_equals_paired_t_test():
    # With h = 1 the HLN-corrected DM statistic is exactly the paired t statistic on the loss
    # differential, with n - 1 degrees of freedom: scipy's ttest_rel is an independent reference.
    rng = np.random.default_rng(7)
    e1, e2 = rng.standard_normal(60), 1.2 * rng.standard_normal(60)
    for power in (1, 2):
        ref = stats.ttest_rel(np.abs(e1) ** power, np.abs(e2) ** power)
        stat, p = diebold_mariano(e1, e2, horizon=1, power=power)
        assert stat == pytest.approx(ref.statistic, rel=1e-10)
        assert p == pytest.approx(ref.pvalue, rel=1e-10)


def _dm_reference(e1, e2, h, power):
    # A line-by-line transcription of R forecast::dm.test (Hyndman), written independently.
    d = np.abs(e1) ** power - np.abs(e2) ** power
    n = len(d)
    dc = d - d.mean()
    acov = [float(np.sum(dc[k:] * dc[: n - k]) / n) for k in range(h)]
    var = (acov[0] + 2 * sum(acov[1:])) / n
    stat = d.mean() / math.sqrt(var)
    k = math.sqrt((n + 1 - 2 * h + (h / n) * (h - 1)) / n)
    stat *= k
    return stat, 2 * stats.t.cdf(-abs(stat), df=n - 1)


def test_dm_multi_step_matches_reference_formula():
    rng = np.random.default_rng(11)
    noise = rng.standard_normal(83)
    e1 = noise[2:] + 0.6 * noise[1:-1] + 0.3 * noise[:-2]  # MA(2) errors, as from 3-step forecasts
    e2 = 1.1 * rng.standard_normal(81)
    ref = _dm_reference(e1, e2, 3, 2)
    assert diebold_mariano(e1, e2, horizon=3, power=2) == pytest.approx(ref, rel=1e-10)


def test_dm_sign_and_significance():
    rng = np.random.default_rng(0)
    good, bad = 0.5 * rng.standard_normal(300), 2 * rng.standard_normal(300)
    stat, p = diebold_mariano(good, bad)
    assert stat < 0 and p < 1e-6


def test_dm_negative_long_run_variance_falls_back_to_one_step():
    # Strongly alternating loss differentials make the lag-1 autocovariance negative enough that
    # the h=2 long-run variance is <= 0. R's dm.test then falls back to h = 1; an infinite
    # statistic with p = 0 would claim certainty the data do not support.
    d = np.array([1.0, -0.9] * 20) + 0.05
    e1 = np.sqrt(np.abs(d) * (d > 0) + 1.0)
    e2 = np.sqrt(np.abs(d) * (d < 0) + 1.0)
    stat, p = diebold_mariano(e1, e2, horizon=2, power=2)
    assert (stat, p) == pytest.approx(diebold_mariano(e1, e2, horizon=1, power=2))
    assert 0 < p < 1


def test_dm_identical_errors_is_undefined():
    e = np.arange(10.0)
    assert all(math.isnan(x) for x in diebold_mariano(e, e))


def test_dm_rejects_an_error_matrix():
    e = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ValueError, match="1-d"):
        diebold_mariano(e, e + 1, horizon=2)
