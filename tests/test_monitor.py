"""Live checks on constructed series with known answers: errors that jump, features that shift,
stale data/models/runs, and the negatives (nothing changed -> nothing flagged)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from lstmcast.monitor import (
    Check,
    DecayBand,
    MonitorSettings,
    check_coverage,
    check_data_age,
    check_decay,
    check_drift,
    check_model_age,
    check_run_age,
    decay_band,
    entry_record,
    entry_status,
    parse_duration,
    psi,
    scored_forecasts,
)

NOW = pd.Timestamp("2026-12-02T07:00:00Z")
DAY = pd.Timedelta(days=1)


def make_history(actual, predicted, naive, *, lower=None, upper=None, level=None, run_id="R1", start=None):
    """A forecast history (forecasts.py's columns), one 1-step forecast per daily origin."""
    n = len(actual)
    origin = pd.date_range(start or NOW - (n + 1) * DAY, periods=n, freq="D", tz="UTC")
    nan = np.full(n, np.nan)
    return pd.DataFrame({
        "origin": origin, "run_id": pd.array([run_id] * n, dtype="string"), "step": np.ones(n, dtype="int64"),
        "target_time": origin + DAY, "predicted": np.asarray(predicted, "float64"),
        "naive": np.asarray(naive, "float64"),
        "lower": nan if lower is None else np.asarray(lower, "float64"),
        "upper": nan if upper is None else np.asarray(upper, "float64"),
        "level": np.full(n, np.nan if level is None else level), "made_at": origin + pd.Timedelta(hours=1),
        "actual": np.asarray(actual, "float64"), "scored_at": origin + 2 * DAY,
    })


def errors(rng, n, *, model_scale):
    """actual, model forecast, naive forecast: naive errors ~ N(0, 1), the model's ~ N(0, model_scale)."""
    actual = 100 + rng.normal(size=n)
    return actual, actual - model_scale * rng.normal(size=n), np.full(n, 100.0)


@pytest.fixture
def band():
    """The backtest: the model's errors are 0.8 x naive's, over 400 origins."""
    a, f, nv = errors(np.random.default_rng(0), 400, model_scale=0.8)
    return decay_band(a, f, nv, window=20)


def test_decay_band_brackets_the_backtest_ratio(band):
    assert band.n_origins == 400 and band.n_windows == 381
    assert band.low < band.median < band.high
    assert 0.7 < band.ratio < 0.9
    assert band.low < 0.8 < band.high < 1.3
    assert DecayBand.from_dict(json.loads(json.dumps(band.to_dict()))) == band


def test_decay_flags_live_errors_that_jump(band):
    rng = np.random.default_rng(1)
    a1, f1, n1 = errors(rng, 40, model_scale=0.8)
    a2, f2, n2 = errors(rng, 20, model_scale=2.5)  # the last 20 live forecasts: 2.5 x naive's error
    hist = make_history(np.r_[a1, a2], np.r_[f1, f2], np.r_[n1, n2])
    c = check_decay(hist, band=band, window=20)
    assert c.status == "flag" and c.event == "decay"
    assert c.values["ratio"] > 2 * band.high
    assert c.reason.startswith("live MAE ratio vs naive ")
    assert "above the backtest's 95th percentile" in c.reason
    assert c.values["dm_p_worse"] < 0.01


def test_decay_not_flagged_when_live_skill_is_as_backtested(band):
    a, f, nv = errors(np.random.default_rng(2), 60, model_scale=0.8)
    c = check_decay(make_history(a, f, nv), band=band.to_dict(), window=20)  # a stored (dict) band works too
    assert c.status == "ok", c.reason
    assert band.low <= c.values["ratio"] <= band.high


def test_decay_looks_at_the_last_window_only(band):
    actual = 100 + np.random.default_rng(3).normal(size=40)
    naive = np.full(40, 100.0)
    scale = np.r_[np.full(20, 3.0), np.full(20, 0.8)]  # an old bad patch, then exactly 0.8 x naive's error
    c = check_decay(make_history(actual, actual - scale * (actual - naive), naive), band=band)
    assert c.status == "ok" and c.values["ratio"] == pytest.approx(0.8)


def test_decay_without_band_uses_one_sided_dm():
    rng = np.random.default_rng(4)
    a, f, nv = errors(rng, 30, model_scale=2.0)
    worse = check_decay(make_history(a, f, nv), band=None, window=30)
    assert worse.status == "flag" and "worse than naive (one-sided DM p" in worse.reason
    a, f, nv = errors(rng, 30, model_scale=0.9)
    assert check_decay(make_history(a, f, nv), band=None, window=30).status == "ok"


def test_decay_skips_with_too_few_scored_forecasts(band):
    a, f, nv = errors(np.random.default_rng(5), 12, model_scale=5.0)
    hist = make_history(a, f, nv)
    hist.loc[hist.index[-3:], "actual"] = np.nan  # not scored yet
    c = check_decay(hist, band=band)
    assert c.status == "skip" and c.reason == "9 scored forecast(s); the decay check needs 20"


def test_scored_forecasts_takes_the_last_made_per_origin():
    h1 = make_history([10.0, 11.0], [9.0, 11.0], [10.0, 10.0], run_id="OLD")
    h2 = make_history([10.0, 11.0], [10.0, 12.0], [10.0, 10.0], run_id="NEW")
    h2["made_at"] += pd.Timedelta(minutes=5)
    per = scored_forecasts(pd.concat([h1, h2], ignore_index=True))
    assert list(per["run_id"]) == ["NEW", "NEW"] and list(per["model_loss"]) == [0.0, 1.0]
    assert list(scored_forecasts(pd.concat([h1, h2]), run_id="OLD")["model_loss"]) == [1.0, 0.0]


def coverage_history(inside: int, n: int = 20):
    actual = np.full(n, 100.0)
    hit = np.arange(n) < inside
    lower, upper = np.where(hit, 99.0, 100.5), np.where(hit, 101.0, 102.0)
    return make_history(actual, actual, actual, lower=lower, upper=upper, level=0.8)


def test_coverage_below_nominal_is_flagged():
    c = check_coverage(coverage_history(10), window=20)  # 50% inside an 80% interval
    assert c.status == "flag" and c.event == "decay"
    assert c.values["inside"] == 10 and c.values["n"] == 20 and c.values["p_low"] < 0.01
    assert "10/20 actuals inside the 80% interval" in c.reason


def test_coverage_at_nominal_is_ok_and_too_few_is_skipped():
    assert check_coverage(coverage_history(16), window=20).status == "ok"
    assert check_coverage(coverage_history(20), window=20).status == "ok"  # too wide is not flagged
    assert check_coverage(coverage_history(5, n=10), window=20).status == "skip"
    a = np.full(20, 1.0)
    assert check_coverage(make_history(a, a, a), window=20).reason == "no scored forecast has an interval"


def test_psi_known_values():
    ref = np.linspace(0, 1, 1001)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-6)
    # all recent values in the first decile: 0.9 ln 10 + 9 (1e-4 - 0.1) ln(1e-4 / 0.1)
    expected = 0.9 * np.log(10) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(ref, np.full(50, 0.01)) == pytest.approx(expected, rel=1e-2)


def test_drift_flags_the_feature_that_shifts_only():
    rng = np.random.default_rng(6)
    train = pd.DataFrame({"log_return": rng.normal(0, 1, 600), "log_range": rng.normal(0, 1, 600)})
    recent = pd.DataFrame({"log_return": rng.normal(0, 1, 60), "log_range": rng.normal(1.5, 1, 60)})
    c = check_drift(train, recent)
    assert c.status == "flag" and c.event == "drift"
    assert c.values["drifted"] == ["log_range"]
    assert c.values["features"]["log_range"]["psi"] > 0.25 and c.values["features"]["log_return"]["psi"] < 0.25
    assert c.reason.startswith("the newest 60 rows differ from the training rows: log_range (PSI ")


def test_drift_flags_a_volatility_regime_change():
    rng = np.random.default_rng(7)
    c = check_drift(rng.normal(0, 1, (600, 1)), rng.normal(0, 3, (60, 1)), names=["log_return"])
    assert c.values["drifted"] == ["log_return"]


def test_no_drift_when_nothing_shifts():
    rng = np.random.default_rng(8)
    c = check_drift(rng.normal(0, 1, (600, 3)), rng.normal(0, 1, (60, 3)), names=["a", "b", "c"])
    assert c.status == "ok" and c.values["drifted"] == []
    assert c.reason.startswith("no feature drifted (largest PSI ")


def test_drift_skips_on_too_few_rows_and_refuses_mismatched_shapes():
    rng = np.random.default_rng(9)
    assert check_drift(rng.normal(size=(30, 2)), rng.normal(size=(60, 2))).status == "skip"
    with pytest.raises(ValueError, match="reference has 2 feature"):
        check_drift(rng.normal(size=(100, 2)), rng.normal(size=(60, 3)))


def test_data_age():
    fresh = check_data_age(NOW - DAY, now=NOW, interval="1d")
    assert fresh.status == "ok" and fresh.values["bars_behind"] == 0
    stale = check_data_age(NOW - 4 * DAY, now=NOW, interval="1d")  # 3 complete bars missing, 1 allowed
    assert stale.status == "flag" and stale.event == "stale" and stale.values["bars_behind"] == 3
    assert stale.reason.startswith("data is stale: last bar 2026-11-28T07:00:00+00:00, 3 complete bar(s) behind")
    # the calendar-aware count wins (a weekend is not missing bars)
    assert check_data_age(NOW - 4 * DAY, now=NOW, interval="1d", bars_behind=1).status == "ok"
    assert check_data_age(NOW - pd.Timedelta(hours=5), now=NOW, interval="1h").status == "flag"
    assert check_data_age(None, now=NOW, interval="1d").status == "skip"


def test_model_age():
    meta = {"run_id": "R9", "created": (NOW - 40 * DAY).isoformat()}
    old = check_model_age(meta, now=NOW, max_age=parse_duration("30d"))
    assert old.status == "flag" and old.reason == "model R9 is 40.0 days old, over max_model_age 30.0 days; retrain it"
    assert check_model_age(meta, now=NOW, max_age=None).status == "ok"
    assert check_model_age(meta, now=NOW, max_age=dt.timedelta(days=60)).status == "ok"
    assert check_model_age(None, now=NOW, max_age=None).status == "skip"


def test_run_age():
    assert check_run_age(NOW - pd.Timedelta(hours=20), now=NOW, max_age=dt.timedelta(days=2)).status == "ok"
    late = check_run_age(NOW - 5 * DAY, now=NOW, max_age=dt.timedelta(days=2))
    assert late.status == "flag" and late.reason == "last successful run 5.0 days ago, over max_run_age 2.0 days"
    assert check_run_age(None, now=NOW, max_age=dt.timedelta(days=2)).status == "flag"


def test_settings_parse_durations_and_refuse_bad_ones():
    s = MonitorSettings.model_validate({"max_model_age": "30d", "max_run_age": "36h", "window": 10})
    assert s.max_model_age == dt.timedelta(days=30) and s.max_run_age == dt.timedelta(hours=36)
    assert MonitorSettings().max_model_age is None
    with pytest.raises(ValidationError, match="is not a duration like 90m, 36h, 30d or 2w"):
        MonitorSettings.model_validate({"max_model_age": "30 parsecs"})
    with pytest.raises(ValidationError, match="must be positive"):
        MonitorSettings.model_validate({"max_run_age": "0h"})


def test_entry_status_row(band):
    rng = np.random.default_rng(10)
    a1, f1, n1 = errors(rng, 30, model_scale=0.8)
    a2, f2, n2 = errors(rng, 20, model_scale=2.5)
    hist = make_history(np.r_[a1, a2], np.r_[f1, f2], np.r_[n1, n2], start=NOW - 52 * DAY)
    summary = {"run_id": "20261202T060000Z", "finished": "2026-12-02T06:05:00+00:00",
               "entries": [{"entry": "AAPL 1d", "ok": False, "error": "fetch: Yahoo is down"}]}
    drift = check_drift(rng.normal(0, 1, (300, 1)), rng.normal(2, 1, (60, 1)), names=["log_return"])
    st = entry_status(
        "AAPL 1d", now=NOW, interval="1d", settings=MonitorSettings(max_model_age="30d"),
        last_run=entry_record(summary, "AAPL 1d"), last_ok="2026-11-28T06:04:00+00:00",
        data_last=NOW - 2 * DAY, bars_behind=1,
        model_meta={"run_id": "20261101T000000Z", "created": "2026-11-01T00:00:00+00:00", "model": {"hidden": 8}},
        history=hist, band=band, drift=drift, next_run="2026-12-03T06:00:00+00:00",
    )
    assert st.flags == ["model_age", "run_age", "decay", "drift"]
    assert st.check("data_age").status == "ok" and st.check("coverage").status == "skip"
    d = json.loads(json.dumps(st.to_dict(), allow_nan=False))
    assert d["last_run"] == {"run_id": "20261202T060000Z", "finished": "2026-12-02T06:05:00+00:00", "ok": False,
                             "error": "fetch: Yahoo is down"}
    assert d["model"]["family"] == "lstm" and d["model"]["age_days"] == pytest.approx(31.29, abs=0.01)
    assert d["live"]["n"] == 50 and d["live"]["ratio"] > d["live"]["band_high"]
    assert d["next_run"] == "2026-12-03T06:00:00+00:00" and d["data_last"] == "2026-11-30T07:00:00+00:00"
    assert set(d["checks"]) == {"data_age", "model_age", "run_age", "decay", "coverage", "drift"}
    assert d["checks"]["drift"]["values"]["drifted"] == ["log_return"]
    cells = st.cells()
    assert cells["last run"] == "FAILED 12-02 06:05" and cells["data"] == "1 behind"
    assert cells["model"] == "lstm 31d !" and cells["drift"] == "log_return" and cells["next run"] == "12-03 06:00"
    assert cells["skill"].endswith(f"[{band.low:.2f}-{band.high:.2f}] !") and cells["coverage"] == "-"
    assert sum(len(v) for v in cells.values()) + len(cells) * 2 <= 100  # fits a narrow table


def test_entry_status_with_nothing_yet():
    st = entry_status("NEW 1d", now=NOW, interval="1d", settings=MonitorSettings(max_run_age=None))
    assert st.flags == [] and st.model is None and st.last_run is None
    assert all(c.status == "skip" for c in st.checks)
    assert entry_record({"entries": []}, "NEW 1d") is None
    assert isinstance(st.checks[0], Check)
    assert st.cells() == {"entry": "NEW 1d", "last run": "never", "data": "-", "model": "-", "skill": "-",
                          "coverage": "-", "drift": "-", "next run": "-"}
