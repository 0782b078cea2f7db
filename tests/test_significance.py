"""Sharpe uncertainty, selection corrections (DSR, PBO) and fair hit-rate baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lstmcast.errors import UsageError
from lstmcast.evaluate import significance as sig
from lstmcast.evaluate.metrics import direction_hits
from lstmcast.evaluate.strategy import run_strategy


def test_deflated_sharpe_matches_bailey_lopez_de_prado_example():
    # "The Deflated Sharpe Ratio" (2014), numerical example: 100 trials, annualised Sharpe variance
    # 1/2, T = 1250 daily returns, skew -3, kurtosis 10, selected annualised Sharpe 2.5.
    var = 0.5 / 250
    assert sig.expected_max_sharpe(100, var) == pytest.approx(0.1132, abs=5e-4)
    dsr = sig.deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, n_trials=100, var_sharpe=var, skew=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=0.002)
    assert sig.expected_max_sharpe(1, var) == 0.0


def test_psr_by_hand():
    sr, n = 0.1, 100
    want = stats.norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + 0.5 * sr**2))
    assert sig.probabilistic_sharpe_ratio(sr, n) == pytest.approx(want)
    assert sig.probabilistic_sharpe_ratio(sr, n, benchmark=sr) == pytest.approx(0.5)
    # negative skew and fat tails widen the standard error, so the PSR of a positive Sharpe falls
    assert sig.probabilistic_sharpe_ratio(sr, n, skew=-2, kurtosis=9) < sig.probabilistic_sharpe_ratio(sr, n)


def test_sharpe_stats_interval_and_psr_against_a_benchmark():
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.01, 1000)
    st = sig.sharpe_stats(r, np.ones(1000), benchmark_sharpe=0.5)
    sr = r.mean() / r.std(ddof=1)
    assert st.sharpe == pytest.approx(sr * math.sqrt(252))
    se = math.sqrt((1 + 0.5 * sr**2) / 999) * math.sqrt(252)  # near-normal returns
    assert st.sharpe_high - st.sharpe_low == pytest.approx(2 * 1.959964 * se, rel=0.02)
    assert 0 < st.psr < 1 and st.in_market and st.time_in_market == 1.0


def test_never_in_the_market_is_not_sharpe_zero():
    close = np.array([100.0, 101, 102, 101, 103, 104])
    o = np.arange(5)
    res = run_strategy(close, o, close[o], fee_bps=10)  # naive forecast: never trades
    st = sig.sharpe_stats(res.equity[1:] / res.equity[:-1] - 1, res.position)
    assert not st.in_market and st.status == sig.NEVER_IN_MARKET
    assert st.sharpe is None and st.psr is None and st.to_dict()["sharpe"] is None
    assert st.time_in_market == 0.0


def test_stationary_bootstrap():
    rng = np.random.default_rng(1)
    idx = sig.stationary_bootstrap_indices(50, mean_block=5, rng=rng)
    assert len(idx) == 50 and idx.min() >= 0 and idx.max() < 50
    runs = np.sum(np.diff(idx) != 1)  # block starts, wrap-arounds aside
    assert 3 < runs < 25
    r = np.random.default_rng(2).normal(0.0005, 0.01, 750)
    lo, hi = sig.bootstrap_sharpe_interval(r, n_boot=300, seed=3)
    st = sig.sharpe_stats(r, np.ones(750))
    assert lo < st.sharpe < hi
    assert (hi - lo) == pytest.approx(st.sharpe_high - st.sharpe_low, rel=0.3)
    assert sig.bootstrap_sharpe_interval(r, n_boot=300, seed=3) == (lo, hi)


def test_deflated_sharpe_of_trials_penalises_the_number_of_trials():
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.01, (1000, 20))  # 20 skill-less configurations
    d = sig.deflated_sharpe_of_trials(noise)
    assert d.n_trials == 20 and d.dsr < 0.9 and d.threshold > 0
    more = sig.deflated_sharpe_of_trials(noise, n_trials=200)
    assert more.dsr < d.dsr
    edge = noise.copy()
    edge[:, 3] += 0.003  # a real edge: annualised Sharpe about 4.8
    d2 = sig.deflated_sharpe_of_trials(edge)
    assert d2.best == 3 and d2.dsr > 0.99
    with pytest.raises(UsageError, match="N >= 2 trials"):
        sig.deflated_sharpe_of_trials(noise[:, :1])


def test_pbo_noise_is_about_a_coin_flip_and_a_real_edge_is_not_overfit():
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 0.01, (800, 8))
    p = sig.pbo_cscv(noise, n_blocks=10)
    assert p.n_splits == math.comb(10, 5) and 0.2 < p.pbo < 0.8
    edge = noise.copy()
    edge[:, 2] += 0.004
    assert sig.pbo_cscv(edge, n_blocks=10).pbo < 0.05
    # never-trading configurations rank as cash (Sharpe 0), so they do not hand noise a free win
    flat = np.column_stack([noise[:, :4], np.zeros((800, 4))])
    assert 0.2 < sig.pbo_cscv(flat, n_blocks=10).pbo < 0.8
    with pytest.raises(UsageError, match="at least 4 configurations"):
        sig.pbo_cscv(noise[:, :3])
    with pytest.raises(UsageError, match="even number"):
        sig.pbo_cscv(noise, n_blocks=7)


def test_effective_n_of_overlapping_sums():
    rng = np.random.default_rng(6)
    e = rng.standard_normal(5004)
    assert sig.effective_n(e[:5000], max_lag=4) == pytest.approx(5000, rel=0.1)
    overl = np.convolve(e, np.ones(5), mode="valid")  # 5-bar sums starting at each bar: MA(4)
    assert sig.effective_n(overl, max_lag=4) == pytest.approx(len(overl) / 5, rel=0.15)


def test_hit_rate_is_read_against_always_up_on_the_same_origins():
    rng = np.random.default_rng(7)
    c = 100 * np.exp(np.cumsum(rng.normal(0.002, 0.01, 1500)))  # a trending market
    o = np.arange(100, 1490)
    h = 5
    actual = c[o[:, None] + np.arange(1, h + 1)]
    last = c[o]
    up = sig.always_up_hits(actual, last)
    # a "model" that is long 73% of the time at random: beats 50% easily, not always-up
    calls = np.where(rng.random((len(o), 1)) < 0.73, 1.01, 0.99) * last[:, None]
    model = direction_hits(actual, np.repeat(calls, h, axis=1), last)
    t = sig.hit_rate_vs_baseline(model, up)
    assert t.hit_rate > 0.5 and t.baseline_hit_rate > t.hit_rate and t.difference < 0
    assert t.n == len(o) and t.n_effective < 0.8 * t.n  # overlapping steps are not independent
    assert len(t.by_step) == h and t.by_step[0]["step"] == 1
    same = sig.hit_rate_vs_baseline(up, up)
    assert same.difference == 0 and (math.isnan(same.p) or same.p == 1.0)
    with pytest.raises(UsageError, match="same origins"):
        sig.hit_rate_vs_baseline(model, up[:, :2])


def test_selection_note_says_what_it_means():
    rng = np.random.default_rng(8)
    noise = rng.normal(0, 0.01, (640, 6))
    line = sig.selection_note(sig.deflated_sharpe_of_trials(noise), sig.pbo_cscv(noise, n_blocks=8))
    assert "best of 6 tried" in line and "not distinguishable from luck" in line and "PBO" in line
    assert sig.selection_note(None, None).startswith("one configuration")
