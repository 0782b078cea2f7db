"""The backtest PNG is written atomically and is a real image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmcast.errors import UsageError
from lstmcast.evaluate.backtest import BacktestConfig, walk_forward
from lstmcast.evaluate.plot import plot_backtest
from lstmcast.evaluate.reference import ar1_forecaster


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(260)))
    fit, predict = ar1_forecaster(close, horizon=2)
    cfg = BacktestConfig(horizon=2, refit_every=40)
    return walk_forward(close, origins=np.arange(100, 257), config=cfg, fit=fit, predict=predict)


def test_writes_a_png_atomically(result, tmp_path):
    import matplotlib.image as mpimg

    out = tmp_path / "plots" / "bt.png"
    idx = pd.date_range("2024-01-01", periods=260, freq="D", tz="UTC")
    assert plot_backtest(result, out, index=idx, step=2) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    assert img.shape[0] > 500 and img.shape[1] > 900
    assert img[..., :3].std() > 0.05  # not a blank canvas
    assert [p.name for p in out.parent.iterdir()] == ["bt.png"]  # no temp file left behind


def test_without_intervals_or_index(result, tmp_path):
    from dataclasses import replace

    bare = replace(result, intervals={})
    out = plot_backtest(bare, tmp_path / "bare.png")
    assert out.stat().st_size > 10_000


def test_step_out_of_range(result, tmp_path):
    with pytest.raises(UsageError, match=r"plot step must be between 1 and the horizon \(2\), got 3"):
        plot_backtest(result, tmp_path / "x.png", step=3)
    assert not (tmp_path / "x.png").exists()


def test_value_series_without_strategy_plots_forecasts_only(tmp_path):
    v = np.sin(2 * np.pi * np.arange(300) / 50)
    res = walk_forward(v, origins=np.arange(100, 298), config=BacktestConfig(horizon=1, refit_every=100),
                       fit=lambda s, e: None, predict=lambda m, o: v[o][:, None], kind="value")
    out = plot_backtest(res, tmp_path / "value.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_steps_figure_shows_error_and_coverage_by_step(result, tmp_path):
    import matplotlib.image as mpimg

    from lstmcast.evaluate.plot import plot_steps

    out = tmp_path / "bt-steps.png"
    assert plot_steps(result, out, title="RW") == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    img = mpimg.imread(out)
    assert img[..., :3].std() > 0.05
    assert [p.name for p in out.parent.iterdir()] == ["bt-steps.png"]


def test_steps_figure_without_intervals(result, tmp_path):
    from dataclasses import replace

    from lstmcast.evaluate.plot import plot_steps

    out = plot_steps(replace(result, coverage={}, predict_coverage={}), tmp_path / "bare.png")
    assert out.stat().st_size > 10_000


def test_steps_plot_path_sits_beside_the_plot():
    from pathlib import Path

    from lstmcast.evaluate.plot import steps_plot_path

    assert steps_plot_path(Path("out/btc.png")) == Path("out/btc-steps.png")
    assert steps_plot_path(Path("btc")) == Path("btc-steps.png")
