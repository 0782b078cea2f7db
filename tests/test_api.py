"""The Python API (``import lstmcast``): frames in, frames out, the README example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "AAPL_1d.csv"


def _yf(n: int = 260) -> pd.DataFrame:
    return pd.read_csv(SAMPLE, index_col="Date", parse_dates=True).tail(n)


def test_import_is_light():
    code = "import sys, lstmcast; print(sorted(m for m in ('pandas', 'torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API (notebooks)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "beats naive" in out.stdout


def test_naive_and_tz_aware_index_give_the_same_bars_and_forecast():
    df = _yf()
    naive = lstmcast.as_bars(df)
    aware = lstmcast.as_bars(df.tz_localize("America/New_York"))
    pd.testing.assert_frame_equal(naive, aware)
    assert str(naive.index.tz) == "UTC" and list(naive.columns) == ["open", "high", "low", "close", "volume",
                                                                    "adj_close"]
    a = lstmcast.fit(df, family="linear", lookback=10, market="equity:XNYS").predict()
    b = lstmcast.fit(df.tz_localize("America/New_York"), family="linear", lookback=10,
                     market="equity:XNYS").predict()
    pd.testing.assert_frame_equal(a, b)
    assert a.index[0] == pd.Timestamp("2023-09-22", tz="UTC")  # the NYSE day after 2023-09-21
    assert (a["lower_80"] <= a["forecast"]).all() and (a["forecast"] <= a["upper_80"]).all()


def test_one_ticker_download_frame_is_read_and_several_are_refused():
    df = _yf(50)
    one = pd.concat({"AAPL": df}, axis=1).swaplevel(axis=1)  # yf.download: (Price, Ticker)
    pd.testing.assert_frame_equal(lstmcast.as_bars(one), lstmcast.as_bars(df))
    two = pd.concat({"AAPL": df, "MSFT": df}, axis=1).swaplevel(axis=1)
    with pytest.raises(UsageError, match="several tickers .*AAPL, MSFT"):
        lstmcast.as_bars(two)
    with pytest.raises(UsageError, match="lacks column.* volume"):
        lstmcast.as_bars(df.drop(columns=["Volume"]))


def test_ambiguous_market_is_refused():
    m = lstmcast.fit(_yf(), family="naive", lookback=5)
    with pytest.raises(UsageError, match="market is ambiguous"):
        m.predict()


def test_truncation_forecast_at_t_ignores_later_bars():
    df = _yf(300)
    m = lstmcast.fit(df.iloc[:250], family="linear", lookback=10, horizon=2, market="equity:XNYS")
    a = m.predict(df.iloc[:270])
    b = m.predict(pd.concat([df.iloc[:270], df.iloc[270:] * 3.0]).iloc[:270])
    pd.testing.assert_frame_equal(a, b)
    full = m.predict(df)
    assert not np.allclose(a["forecast"], full["forecast"])  # a different origin does change it


def test_load_a_saved_run_predicts_like_the_cli(data_dir, cli):
    r = cli("import", str(SAMPLE), "--symbol", "AAPL")
    assert r.exit_code == 0, r.output
    r = cli("train", "AAPL", "--model-family", "linear", "--lookback", "10", "--json")
    assert r.exit_code == 0, r.output
    m = lstmcast.load(data_dir, "AAPL")
    got = m.predict(levels=(0.8,))
    r = cli("predict", "AAPL", "--levels", "80", "--json")
    [want] = __import__("json").loads(r.stdout)  # predict --json: one object per series
    step = want["forecast"][0]
    assert got["forecast"].iloc[0] == pytest.approx(step["predicted_close"], rel=1e-12)
    assert got["lower_80"].iloc[0] == pytest.approx(step["intervals"]["0.8"]["lo"], rel=1e-12)
    assert got.index[0] == pd.Timestamp(step["time"])
    assert m.family == "linear" and m.run_id


def test_backtest_is_the_pipelines_walk_forward(store):
    """`lstmcast.backtest` runs `pipelines.backtest` (plan, one task per refit, assemble): the same
    numbers as `lstmcast backtest` on the same bars, in the API's table shape."""
    from helpers_series import random_walk_frame
    from lstmcast.data.store import SeriesKey
    from lstmcast.evaluate.backtest import BacktestConfig
    from lstmcast.pipelines.backtest import backtest_many
    from lstmcast.settings import Settings

    frame = random_walk_frame(200, seed=5)
    store.upsert(SeriesKey("import", "RW", "1d"), frame, market="crypto")
    table = lstmcast.backtest(frame, family="linear", lookback=10, refit_every=40, start="2020-06-01")
    settings = Settings(family="linear", lookback=10)
    multi = backtest_many(store, ["RW"], settings_for=lambda _s: settings, families=["linear"],
                          config=BacktestConfig(refit_every=40), start="2020-06-01")
    r = multi.series[0].first
    assert list(table.index) == ["model", "naive", "drift", "moving_average", "mean_return"]
    assert table.loc["model", "mae"] == r.metrics["model"].mae and table.attrs["mae_ratio"] == r.mae_ratio
    assert table.attrs["n_origins"] == len(r.origins) and set(table.attrs["coverage"]) == {"0.8", "0.95"}
