"""Baselines: defined from the past only, and their documented formulas."""

from __future__ import annotations

import numpy as np
import pytest

from lstmcast.errors import UsageError
from lstmcast.evaluate.baselines import BASELINES, baseline_forecasts, check_origins


def _walk(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))


def test_every_baseline_present_and_shaped():
    c = _walk()
    out = baseline_forecasts(c, np.arange(10, 290), 4)
    assert tuple(out) == BASELINES
    assert all(v.shape == (280, 4) for v in out.values())


def test_multi_step_formulas():
    c = np.array([100.0, 110.0, 121.0, 133.1])  # +10% a bar
    out = baseline_forecasts(c, np.array([3]), 3, ma_window=20)
    assert out["naive"][0].tolist() == [133.1] * 3
    slope = (133.1 - 100.0) / 3
    assert out["drift"][0] == pytest.approx([133.1 + slope, 133.1 + 2 * slope, 133.1 + 3 * slope])
    assert out["moving_average"][0] == pytest.approx([np.mean(c)] * 3)  # fewer than 20 bars: all of them
    # the geometric mean return of exactly 10% compounds exactly
    assert out["mean_return"][0] == pytest.approx([146.41, 161.051, 177.1561])


def test_mean_window_uses_only_recent_returns():
    c = np.array([100.0, 100.0, 100.0, 110.0, 121.0])
    out = baseline_forecasts(c, np.array([4]), 1, mean_window=2)
    assert out["mean_return"][0, 0] == pytest.approx(133.1)


def test_first_bar_has_no_drift():
    c = np.array([5.0, 6.0, 7.0])
    out = baseline_forecasts(c, np.array([0]), 2)
    assert out["drift"][0].tolist() == [5.0, 5.0]
    assert out["mean_return"][0].tolist() == [5.0, 5.0]


@pytest.mark.parametrize("k", [5, 40, 150])
def test_no_leakage_values_after_an_origin_do_not_matter(k):
    c = _walk()
    origins = np.arange(20, 290)
    clean = baseline_forecasts(c, origins, 5)
    garbage = c.copy()
    garbage[k + 1 :] = np.random.default_rng(1).uniform(-1e9, 1e9, len(c) - k - 1)
    garbage[k + 10] = np.nan
    dirty = baseline_forecasts(garbage, origins, 5)
    upto = origins <= k
    for name in BASELINES:
        np.testing.assert_array_equal(clean[name][upto], dirty[name][upto], err_msg=name)
        if k + 1 < len(c) - 10:
            assert not np.array_equal(clean[name][~upto], dirty[name][~upto]), name


def test_value_series_may_be_negative_and_has_no_mean_return():
    v = np.array([-1.0, 0.0, 2.0, -3.0, 1.0])
    out = baseline_forecasts(v, np.array([2, 4]), 1, ma_window=3, kind="value")
    assert "mean_return" not in out
    assert out["moving_average"][:, 0] == pytest.approx([1 / 3, 0.0])


def test_bad_arguments_name_the_culprit():
    c = _walk(50)
    with pytest.raises(UsageError, match="moving-average window"):
        baseline_forecasts(c, np.array([5]), 1, ma_window=0)
    with pytest.raises(UsageError, match="origins must lie in 0..49"):
        baseline_forecasts(c, np.array([50]), 1)
    with pytest.raises(UsageError, match="integer"):
        baseline_forecasts(c, np.array([5.0]), 1)
    with pytest.raises(UsageError, match="kind"):
        baseline_forecasts(c, np.array([5]), 1, kind="bogus")


def test_check_origins_messages():
    with pytest.raises(UsageError, match="strictly increasing"):
        check_origins(np.array([3, 3]), n_rows=10, horizon=1)
    with pytest.raises(UsageError, match=r"last origin \(8\) \+ horizon \(2\) goes past the last row \(9\)"):
        check_origins(np.array([5, 8]), n_rows=10, horizon=2)
    with pytest.raises(UsageError, match=r"first origin \(0\) must be at least 1"):
        check_origins(np.array([0, 1]), n_rows=10, horizon=1, min_origin=1)
    assert check_origins(np.array([1, 7]), n_rows=10, horizon=2).tolist() == [1, 7]
