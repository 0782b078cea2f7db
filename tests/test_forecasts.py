"""Forecast history: append, score idempotently, live summary next to naive, `lstmcast forecasts`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lstmcast import forecasts
from lstmcast.data.store import SeriesKey

KEY = SeriesKey("import", "BTC/USD", "1d")
T = pd.date_range("2024-01-01", periods=12, freq="D", tz="UTC")
PRICES = pd.DataFrame({"close": np.arange(100.0, 112.0)}, index=T)  # rises by 1 a day


def fc(origin: int, preds: tuple[float, ...], run_id: str = "r1") -> forecasts.Forecast:
    n = len(preds)
    return forecasts.Forecast(
        key=KEY,
        run_id=run_id,
        origin=T[origin],
        last_close=float(PRICES.close.iloc[origin]),
        target_times=tuple(T[origin + 1 : origin + 1 + n]),
        predicted=preds,
        lower=tuple(p - 1.5 for p in preds),
        upper=tuple(p + 1.5 for p in preds),
        level=0.9,
    )


def test_append_and_score_are_idempotent():
    h = forecasts.append(forecasts.empty_history(), fc(3, (104.5, 106.0)))
    h = forecasts.append(h, fc(3, (104.5, 106.0)))  # the same forecast again adds nothing
    assert len(h) == 2
    h = forecasts.score(h, PRICES.iloc[:5])  # only the step-1 target (T[4]) exists yet
    assert h["actual"].tolist()[0] == 104.0 and np.isnan(h["actual"].tolist()[1])
    again = forecasts.score(h, PRICES.iloc[:5])
    pd.testing.assert_frame_equal(again, h)
    full = forecasts.score(h, PRICES)
    assert full["actual"].tolist() == [104.0, 105.0]
    assert full["scored_at"].iloc[0] == h["scored_at"].iloc[0]  # earlier score untouched


def test_a_bar_that_has_not_closed_yet_is_not_scored(tmp_path):
    """A still-forming bar can be in the store (an imported CSV exported mid-day, fetch
    --include-partial); scoring it would freeze a close that is not final."""
    today = pd.Timestamp("2024-01-12", tz="UTC")
    h = forecasts.append(forecasts.empty_history(), fc(10, (110.5,)))  # target: 2024-01-12
    assert h["target_time"].iloc[0] == today
    midday = today + pd.Timedelta(hours=12)
    assert np.isnan(forecasts.score(h, PRICES, now=midday, interval="1d")["actual"].iloc[0])
    closed = forecasts.score(h, PRICES, now=today + pd.Timedelta(days=1), interval="1d")
    assert closed["actual"].iloc[0] == 111.0
    # the path `lstmcast run` takes: today's bar is stored but still forming
    forming = PRICES.copy()
    forming.index = forming.index + (pd.Timestamp.now(tz="UTC").floor("D") - today)
    recent = forecasts.Forecast(
        key=KEY, run_id="r1", origin=forming.index[10], last_close=110.0,
        target_times=(forming.index[11],), predicted=(110.5,),
    )
    history = forecasts.record(tmp_path, recent, frame=forming)
    assert history["actual"].isna().all() and history["scored_at"].isna().all()


def test_summary_compares_with_naive():
    h = forecasts.append(forecasts.empty_history(), fc(3, (104.5,)))
    h = forecasts.append(h, fc(4, (104.0,), run_id="r2"))  # calls a fall: a miss
    h = forecasts.score(h, PRICES)
    s = forecasts.summary(h)
    assert (s.n, s.pending) == (2, 0)
    assert s.mae == pytest.approx(0.75) and s.naive_mae == pytest.approx(1.0)
    assert s.skill == pytest.approx(0.25)
    assert s.hit_rate == 0.5 and s.coverage == 1.0
    assert forecasts.summary(forecasts.empty_history()).n == 0


def test_record_writes_latest_and_history_atomically(tmp_path):
    forecasts.record(tmp_path, fc(3, (104.5, 106.0)), frame=PRICES.iloc[:4])
    forecasts.record(tmp_path, fc(5, (107.0, 107.5), run_id="r2"), frame=PRICES.iloc[:6])
    h = forecasts.load_history(tmp_path, KEY)
    assert len(h) == 4 and h["actual"].notna().sum() == 2  # the first forecast is now scored
    latest = json.loads(forecasts.latest_path(tmp_path, KEY).read_text())
    assert latest["run_id"] == "r2" and latest["steps"][1]["predicted"] == 107.5
    assert (
        forecasts.history_path(tmp_path, KEY).parent == tmp_path.resolve() / "forecasts/import/BTC%2FUSD/1d"
    )
    assert not list(forecasts.folder(tmp_path, KEY).glob(".*.tmp"))


def test_forecast_shape_is_checked():
    with pytest.raises(Exception, match="2 predictions for 1 target times"):
        forecasts.Forecast(
            key=KEY, run_id="r", origin=T[0], last_close=1.0, target_times=(T[1],), predicted=(1.0, 2.0)
        )


def test_cli_forecasts_table_and_json(cli, data_dir):
    forecasts.record(data_dir, fc(3, (104.5,)), frame=PRICES)
    forecasts.record(data_dir, fc(10, (110.5,), run_id="r2"), frame=PRICES)
    r = cli("forecasts", "BTC/USD", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["live"]["n"] == 2 and out["live"]["naive_mae"] == 1.0
    assert [row["run_id"] for row in out["rows"]] == ["r1", "r2"]
    r = cli("forecasts", "import:BTC/USD", "--last", "1")
    assert r.exit_code == 0
    assert "r2" in r.stdout and "r1" not in r.stdout and "vs naive" in r.stdout
    r = cli("forecasts", "ETH/USD")
    assert r.exit_code == 1 and "no forecasts for ETH/USD 1d yet" in r.stderr


def test_cli_forecasts_scores_outcomes_that_arrived_after_the_run(cli, data_dir):
    """A forecast recorded before its target bar existed is scored once the bar is in the store
    (e.g. after a manual fetch), without waiting for the next `lstmcast run`."""
    from lstmcast.data.store import Store

    early = PRICES.iloc[:5]
    forecasts.record(data_dir, fc(4, (105.5,)), frame=early)  # target 2024-01-06 not stored yet
    assert forecasts.load_history(data_dir, KEY)["actual"].isna().all()
    bars = PRICES.assign(open=PRICES.close, high=PRICES.close, low=PRICES.close, volume=1.0)
    Store(data_dir).upsert(KEY, bars, market="crypto")
    out = json.loads(cli("forecasts", "BTC/USD", "--json").stdout)
    assert out["rows"][0]["actual"] == 105.0 and out["live"]["n"] == 1
    # display only: the history file itself is left to `lstmcast run`, which holds the run lock
    assert forecasts.load_history(data_dir, KEY)["actual"].isna().all()
