"""Split-conformal intervals: finite-sample quantile, coverage on known noise, causality."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lstmcast.errors import DataError, UsageError
from lstmcast.evaluate import conformal


def test_finite_sample_quantile_rank():
    r = np.arange(1.0, 10.0)  # n = 9
    assert conformal.conformal_quantile(r, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal.conformal_quantile(r, 0.5) == 5.0
    assert conformal.conformal_quantile(r, 0.95) == math.inf  # ceil(9.5) = 10 > 9
    assert conformal.conformal_quantile(np.append(r, np.nan), 0.8) == 8.0
    assert conformal.min_calibration(0.95) == 19 and conformal.min_calibration(0.8) == 4


@pytest.mark.parametrize("mode", ["log", "additive"])
def test_nominal_coverage_on_known_gaussian_noise(mode):
    # Targets = forecast + N(0, sigma_s) noise per step (in log space for mode="log"). Calibrate on
    # 4000 draws, check on 20000 fresh ones: split conformal promises >= nominal, and with
    # continuous noise at most nominal + 1/(n+1); the rest is sampling error of the test set.
    rng = np.random.default_rng(42)
    sig = np.array([0.01, 0.02, 0.03])

    def draw(n):
        pred = 100 * np.exp(rng.normal(0, 0.1, (n, 3)))
        noise = rng.standard_normal((n, 3)) * sig
        actual = pred * np.exp(noise) if mode == "log" else pred + 100 * noise
        return pred, actual

    p_cal, a_cal = draw(4000)
    cal = conformal.fit(conformal.residuals(a_cal, p_cal, mode=mode), levels=(0.8, 0.95), mode=mode)
    assert cal.n == (4000, 4000, 4000)
    p, a = draw(20000)
    for level, (lo, hi) in cal.interval(p).items():
        by_step = conformal.coverage(a, lo, hi, axis=0)
        assert by_step == pytest.approx([level] * 3, abs=0.02), level
        # the half-width approximates the Gaussian quantile z * sigma
        z = 1.2815515655446004 if level == 0.8 else 1.959963984540054
        scale = 1.0 if mode == "log" else 100.0
        assert np.array(cal.width[cal.levels.index(level)]) == pytest.approx(z * sig * scale, rel=0.1)


def test_log_interval_is_multiplicative_and_positive():
    cal = conformal.fit(np.array([[0.1], [-0.2], [0.05], [0.3], [-0.1]]), levels=(0.8,), mode="log")
    assert cal.width[0][0] == pytest.approx(0.3)  # ceil(6 * .8) = 5th smallest |r|
    lo, hi = cal.interval(np.array([[50.0], [200.0]]))[0.8]
    assert lo[:, 0] == pytest.approx([50 * math.exp(-0.3), 200 * math.exp(-0.3)])
    assert hi[:, 0] == pytest.approx([50 * math.exp(0.3), 200 * math.exp(0.3)])


def test_round_trip_through_json_keeps_infinite_widths():
    r = np.random.default_rng(0).standard_normal((10, 2))
    cal = conformal.fit(r, levels=(0.8, 0.95), mode="additive")
    assert math.isinf(cal.width[1][0])  # 10 residuals cannot give a finite 95% interval
    text = json.dumps(cal.to_dict(), allow_nan=False)
    assert conformal.Conformal.from_dict(json.loads(text)) == cal


def test_errors_name_the_culprit():
    with pytest.raises(DataError, match="positive prices"):
        conformal.residuals(np.array([1.0, -1.0]), np.array([1.0, 1.0]), mode="log")
    with pytest.raises(UsageError, match="levels must lie strictly between 0 and 1"):
        conformal.fit(np.zeros((5, 1)), levels=(95,))
    with pytest.raises(UsageError, match="mode"):
        conformal.fit(np.zeros((5, 1)), mode="multiplicative")
    cal = conformal.fit(np.zeros((5, 2)), levels=(0.5,), mode="additive")
    with pytest.raises(UsageError, match="calibrated for 2 steps, forecast has 3"):
        cal.interval(np.zeros((1, 3)))
    with pytest.raises(UsageError, match="unsupported conformal calibration format"):
        conformal.Conformal.from_dict({**cal.to_dict(), "format": 99})


def test_coverage_skips_missing_intervals():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    lo = np.array([0.0, 2.5, np.nan, 3.0])
    hi = np.array([2.0, 3.0, np.nan, 5.0])
    assert conformal.coverage(a, lo, hi) == pytest.approx(2 / 3)


def _series(n, seed=0):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n + 3)))
    origins = np.arange(0, n)
    pred = np.repeat(c[origins][:, None], 3, axis=1)  # naive forecasts
    actual = c[origins[:, None] + np.arange(1, 4)[None, :]]
    return c, origins, pred, actual


def test_causal_intervals_only_use_residuals_already_observed():
    _, origins, pred, actual = _series(60)
    _, counts = conformal.causal_intervals(pred, actual, origins, levels=(0.8,), mode="log")
    # residual (j, s) is known at origin i when j + s <= i (s 1-based): i - s + 1 of them
    for s in range(3):
        assert counts[:, s].tolist() == [max(0, i - s) for i in origins]
    bounds, _ = conformal.causal_intervals(pred, actual, origins, levels=(0.8,), mode="log")
    lo, _ = bounds[0.8]
    assert np.isnan(lo[:4, 0]).all() and not np.isnan(lo[4:, 0]).any()  # 4 residuals needed at 80%

    # garbage in every target not yet observed at origin k leaves intervals up to k unchanged
    k = 30
    dirty = actual.copy()
    later = origins[:, None] + np.arange(1, 4)[None, :] > k
    dirty[later] = 1e6
    b2, _ = conformal.causal_intervals(pred, dirty, origins, levels=(0.8,), mode="log")
    np.testing.assert_array_equal(b2[0.8][0][: k + 1], bounds[0.8][0][: k + 1])
    np.testing.assert_array_equal(b2[0.8][1][: k + 1], bounds[0.8][1][: k + 1])


def test_causal_intervals_prior_and_window():
    _, origins, pred, actual = _series(40)
    prior = np.full((25, 3), 0.5)
    bounds, counts = conformal.causal_intervals(
        pred, actual, origins, levels=(0.8,), mode="log", prior=prior, window=30
    )
    assert counts[0].tolist() == [25, 25, 25] and counts[-1, 0] == 30
    assert not np.isnan(bounds[0.8][0]).any()
    assert bounds[0.8][1][0, 0] == pytest.approx(pred[0, 0] * math.exp(0.5))  # prior only at first


def test_causal_coverage_reaches_nominal_on_a_random_walk():
    _, origins, pred, actual = _series(3000, seed=5)
    bounds, _ = conformal.causal_intervals(pred, actual, origins, levels=(0.8, 0.95), mode="log")
    for level, (lo, hi) in bounds.items():
        assert conformal.coverage(actual, lo, hi, axis=0) == pytest.approx([level] * 3, abs=0.03)
