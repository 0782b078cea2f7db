"""Probabilistic scores: CRPS, pinball, coverage tests, PIT, M6 RPS, and the skill canaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from helpers_series import ar1_close
from lstmcast.errors import UsageError
from lstmcast.evaluate import adaptive, scores, volatility
from lstmcast.evaluate.baselines import baseline_forecasts
from lstmcast.evaluate.reference import fit_ar1

GRID = adaptive.levels_for((0.8, 0.95))


def gaussian_crps(y, mu, sigma):
    """Closed form (Gneiting, Raftery, Westveld & Goldman 2005)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


def test_pinball_by_hand():
    y = np.array([10.0, 10.0])
    q = np.array([[8.0, 12.0], [11.0, 11.0]])
    loss = scores.pinball(y, q, levels=(0.1, 0.9))
    # y - q = 2 (tau * 2), -2 ((1 - tau) * 2); then -1, -1
    np.testing.assert_allclose(loss, [[0.2, 0.2], [0.9, 0.1]])
    assert scores.pinball_by_level(y, q, levels=(0.1, 0.9)) == pytest.approx([0.55, 0.15])


def test_crps_of_a_point_forecast_is_the_absolute_error():
    q = np.full((1, 19), 3.0)
    assert scores.crps(np.array([5.0]), q, levels=adaptive.QUANTILE_GRID) == pytest.approx([2.0])


@pytest.mark.parametrize("y", [0.0, 0.7, -2.5])
def test_crps_approximates_the_gaussian_closed_form(y):
    fine = tuple(np.round(np.arange(1, 200) / 200, 4))
    qf = stats.norm.ppf(np.asarray(fine))[None, :]
    assert scores.crps(np.array([y]), qf, levels=fine)[0] == pytest.approx(gaussian_crps(y, 0, 1), rel=0.005)
    for grid, tol in ((adaptive.QUANTILE_GRID, 0.03), (GRID, 0.01)):  # the documented margins
        approx = scores.crps(np.array([y]), stats.norm.ppf(np.asarray(grid))[None, :], levels=grid)[0]
        assert approx == pytest.approx(gaussian_crps(y, 0, 1), rel=tol)
    assert scores.crps_weights(adaptive.QUANTILE_GRID).sum() == pytest.approx(1.0)


def test_kupiec_by_hand():
    # 250 days, 99% level, 8 misses: LR = -2 ln[(.99^242 .01^8) / ((242/250)^242 (8/250)^8)]
    lr = -2 * (242 * math.log(0.99) + 8 * math.log(0.01) - 242 * math.log(242 / 250) - 8 * math.log(8 / 250))
    assert scores.kupiec_pof(8, 250, nominal=0.99) == pytest.approx(stats.chi2.sf(lr, 1))
    assert lr == pytest.approx(7.8, abs=0.1)  # in Jorion's "red zone" region of the Basel table
    assert scores.kupiec_pof(50, 250, nominal=0.8) == pytest.approx(1.0)
    assert scores.kupiec_pof(0, 100, nominal=0.95) < 0.01  # no misses at all is also a failure


def test_christoffersen_by_hand():
    miss = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0])
    # transitions: n00=5, n01=3, n10=3, n11=3
    p01, p11, p = 3 / 8, 3 / 6, 6 / 14
    lr = -2 * (8 * math.log(1 - p) + 6 * math.log(p)
               - (5 * math.log(1 - p01) + 3 * math.log(p01) + 3 * math.log(1 - p11) + 3 * math.log(p11)))
    assert scores.christoffersen_independence(miss) == pytest.approx(stats.chi2.sf(lr, 1))
    assert math.isnan(scores.christoffersen_independence(np.zeros(10)))
    clustered = np.r_[np.zeros(100), np.ones(20), np.zeros(100)]
    assert scores.christoffersen_independence(clustered) < 1e-6


def test_coverage_test_on_calibrated_and_clustered_misses():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(2000)
    z = stats.norm.ppf(0.9)
    good = scores.coverage_test(y, np.full(2000, -z), np.full(2000, z), nominal=0.8)
    assert good.observed == pytest.approx(0.8, abs=0.03) and good.kupiec_p > 0.01 and good.christoffersen_p > 0.01
    sig = np.r_[np.full(1000, 0.5), np.full(1000, 2.0)]  # volatility regimes, constant interval
    bad = scores.coverage_test(y * sig, np.full(2000, -z), np.full(2000, z), nominal=0.8)
    assert bad.christoffersen_p < 1e-3
    with pytest.raises(UsageError, match="1-d"):
        scores.coverage_test(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), nominal=0.8)


def test_pit_is_uniform_for_a_calibrated_forecast_and_cdf_interpolates():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(5000)
    q = np.tile(stats.norm.ppf(np.asarray(adaptive.QUANTILE_GRID)), (5000, 1))
    hist = scores.pit_histogram(scores.pit(y, q, levels=adaptive.QUANTILE_GRID), bins=10)
    assert hist == pytest.approx([0.1] * 10, abs=0.015)
    qq = np.array([[0.0, 1.0, 3.0]])
    lv = (0.25, 0.5, 0.75)
    assert scores.cdf_at(np.array([0.5]), qq, levels=lv)[0] == pytest.approx(0.375)
    assert scores.cdf_at(np.array([2.0]), qq, levels=lv)[0] == pytest.approx(0.625)
    assert scores.cdf_at(np.array([-0.5]), qq, levels=lv)[0] == pytest.approx(0.125)  # slope of the first gap
    assert scores.cdf_at(np.array([-9.0]), qq, levels=lv)[0] == 0.0


def test_rps_by_hand_and_the_uniform_benchmark_is_016():
    uni = scores.uniform_probs(5)
    assert scores.rps(uni, np.arange(5)).mean() == pytest.approx(scores.UNIFORM_RPS)
    sure = np.array([[1.0, 0, 0, 0, 0]])
    assert scores.rps(sure, np.array([0]))[0] == 0.0
    assert scores.rps(sure, np.array([4]))[0] == pytest.approx(4 / 5)
    assert math.isnan(scores.rps(sure, np.array([-1]))[0])


def test_quintile_edges_use_returns_known_at_the_origin():
    rng = np.random.default_rng(2)
    c = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(300)))
    o = np.arange(10, 299)
    e = scores.quintile_edges(c, o)
    r = np.diff(np.log(c))
    assert e[50] == pytest.approx(np.quantile(r[: o[50]], scores.QUINTILE_PROBS))
    dirty = c.copy()
    dirty[151:] = 1.0
    np.testing.assert_array_equal(scores.quintile_edges(dirty, o)[o <= 150], e[o <= 150])
    out = scores.quintile_outcome(c, o, edges=e)
    rn = np.log(c[o + 1] / c[o])
    assert out[50] == int(np.sum(rn[50] > e[50]))


def test_dm_on_scores_reuses_diebold_mariano():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 300)
    stat, p = scores.dm_on_scores(a * 0.5, a)
    assert stat < 0 and p < 1e-6
    assert scores.skill(a * 0.5, a) == pytest.approx(0.5)


def test_score_distribution_summary():
    rng = np.random.default_rng(4)
    c = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(600)))
    o = np.arange(100, 598)
    pred = np.repeat(c[o][:, None], 2, axis=1)
    actual = c[o[:, None] + np.arange(1, 3)]
    d = adaptive.causal_distribution(pred, actual, o, scale=volatility.ewma_volatility(c)[o])
    s = scores.score_distribution(actual, d.quantiles, levels=d.levels)
    assert len(s.crps_by_step) == 2 and s.crps_by_step[1] > s.crps_by_step[0]  # 2 steps are harder
    assert set(s.coverage) == {"0.8", "0.95"} and s.coverage["0.8"].observed == pytest.approx(0.8, abs=0.06)
    assert sum(s.pit_histogram) == pytest.approx(1.0) and len(s.pinball) == len(d.levels)
    assert s.to_dict()["coverage"]["0.95"]["nominal"] == 0.95


# --- canaries: no skill reads as no skill; a planted effect reads as skill -------------------------


def _causal_ar1(c, o, h, every=50):
    out = np.empty((len(o), h))
    for i in range(0, len(o), every):
        b = o[i : i + every]
        out[i : i + len(b)] = fit_ar1(c, end=int(b[0]) + 1).predict_close(c, b, h)  # rows <= refit origin
    return out


def _skills(c):
    o = np.arange(250, len(c) - 1)
    actual = c[o + 1][:, None]
    vol = volatility.ewma_volatility(c)[o]
    preds = {"naive": baseline_forecasts(c, o, 1)["naive"], "ar1": _causal_ar1(c, o, 1)}
    dist = {k: adaptive.causal_distribution(p, actual, o, scale=vol) for k, p in preds.items()}
    lv = dist["naive"].levels
    crps = {k: scores.crps(np.log(actual), np.log(d.quantiles), levels=lv)[:, 0] for k, d in dist.items()}
    out = {"crps_skill": scores.skill(crps["ar1"], crps["naive"]),
           "dm_p": scores.dm_on_scores(crps["ar1"], crps["naive"])[1]}
    for k, d in dist.items():
        m, u = scores.rps_for_forecast(c, o, q_next=d.quantiles[:, 0], levels=lv)
        out[f"rps_skill_{k}"] = scores.skill(m, u)
    return out


def test_canary_random_walk_shows_no_skill():
    s = _skills(ar1_close(2000, phi=0.0, seed=11))
    assert abs(s["crps_skill"]) < 0.03  # AR(1) fitted to a random walk vs naive
    assert abs(s["rps_skill_naive"]) < 0.03 and abs(s["rps_skill_ar1"]) < 0.03  # vs uniform quintiles


def test_canary_planted_ar1_effect_shows_skill():
    s = _skills(ar1_close(2000, phi=0.3, seed=12))
    assert s["crps_skill"] > 0.02 and s["dm_p"] < 0.01
    assert s["rps_skill_ar1"] > 0.02
    assert abs(s["rps_skill_naive"]) < 0.03  # naive still knows nothing about the next quintile
