"""`evaluate.report.score_backtest`: the scores every backtest shows, wired onto real walk-forwards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_series import ar1_close
from lstmcast.errors import UsageError
from lstmcast.evaluate.backtest import BacktestConfig, walk_forward
from lstmcast.evaluate.reference import ar1_forecaster
from lstmcast.evaluate.report import model_distribution, score_backtest


def _run(phi, *, seed, n=1400, intervals="adaptive", horizon=1):
    c = ar1_close(n, phi=phi, seed=seed)
    fit, predict = ar1_forecaster(c, horizon=horizon)
    cfg = BacktestConfig(horizon=horizon, refit_every=200, intervals=intervals)
    res = walk_forward(c, origins=np.arange(200, n - horizon), config=cfg, fit=fit, predict=predict)
    return c, res


@pytest.fixture(scope="module")
def random_walk():
    c, res = _run(0.0, seed=5)
    return c, res, score_backtest(res, c)


def test_canary_random_walk_has_no_crps_or_rps_skill(random_walk):
    _, _, sc = random_walk
    m = sc.chosen.forecasters["model"]
    assert abs(m.crps_skill) < 0.03 and abs(m.rps_skill) < 0.03
    assert sc.hit_rate["model"].p > 0.01  # no directional edge over always-up either


def test_planted_ar1_effect_shows_clear_positive_skill():
    c, res = _run(0.3, seed=21)
    sc = score_backtest(res, c)
    m = sc.chosen.forecasters["model"]
    assert m.crps_skill > 0.02 and m.crps_dm_p < 0.05
    assert m.rps_skill > 0.02


def test_backtest_intervals_are_the_scored_distribution_and_both_methods_are_reported(random_walk):
    c, res, sc = random_walk
    assert res.config.intervals == "adaptive"
    d = sc.chosen.distributions["model"]
    for lv in (0.8, 0.95):
        lo, hi = d.interval(lv)
        np.testing.assert_array_equal(res.intervals[lv][0], lo)
        np.testing.assert_array_equal(res.intervals[lv][1], hi)
        assert sc.coverage["adaptive"][f"{lv:g}"]["observed"] == pytest.approx(res.coverage[lv]["observed"])
    assert set(sc.coverage) == {"adaptive", "split"}
    for by_level in sc.coverage.values():
        assert by_level["0.8"]["observed"] == pytest.approx(0.8, abs=0.05)
        assert 0 <= by_level["0.95"]["step1"]["kupiec_p"] <= 1
        assert 0 <= by_level["0.95"]["step1"]["christoffersen_p"] <= 1
    # split conformal in the walk-forward gives the split distribution's intervals
    split = model_distribution(c, res.origins, res.actual, res.forecast, kind="price", method="split",
                               levels=(0.8, 0.95))
    np.testing.assert_array_equal(split.interval(0.8)[0], sc.methods["split"].distributions["model"].interval(0.8)[0])


def test_strategies_selection_and_json(random_walk):
    _, res, sc = random_walk
    assert not sc.strategies["naive"].in_market  # shown as "never in the market", no Sharpe
    assert sc.strategies["naive"].sharpe is None
    assert sc.n_trials == 5 and sc.deflated is not None and sc.pbo is not None  # model + 4 baselines
    assert "DSR" in sc.selection_note and "PBO" in sc.selection_note
    d = json.loads(json.dumps(sc.to_dict(), allow_nan=False))
    model = d["distribution"]["adaptive"]["forecasters"]["model"]
    assert len(model["pinball"]) == len(model["levels"]) == 21
    assert d["selection"]["deflated"]["n_trials"] == 5


def test_extra_trials_count_and_single_configuration_note():
    c, res = _run(0.0, seed=6, n=500)
    extra = {"other": np.random.default_rng(0).normal(0, 0.01, len(res.origins))}
    assert score_backtest(res, c, extra_trials=extra).n_trials == 6
    with pytest.raises(UsageError, match="--intervals"):
        score_backtest(res, c, intervals="model")


def test_hit_rate_is_tested_per_step_for_longer_horizons():
    c, res = _run(0.3, seed=8, n=600, horizon=3)
    hr = score_backtest(res, c).hit_rate["model"]
    assert [s["step"] for s in hr.by_step] == [1, 2, 3]
    assert hr.n_effective <= hr.n


def test_backtest_plot_adds_the_pit_histogram(random_walk, tmp_path):
    from PIL import Image

    from lstmcast.evaluate.plot import plot_backtest

    _, res, sc = random_walk
    plain = plot_backtest(res, tmp_path / "a.png")
    with_pit = plot_backtest(res, tmp_path / "b.png", pit=sc.pit)
    assert Image.open(with_pit).size[1] > Image.open(plain).size[1]
