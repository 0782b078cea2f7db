"""The real yfinance code path against a fake Yahoo far end (fake_yahoo.FakeYahoo)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, subprocess_env
from fake_yahoo import FakeYahoo, sample_bars
from lstmcast.data.sources import yahoo
from lstmcast.data.sources.retry import RetryPolicy
from lstmcast.data.store import SeriesKey
from lstmcast.data.update import fetch_series
from lstmcast.errors import DataSourceError, TemporaryFetchError

NO_WAIT = dict(sleep=lambda s: None)


def test_happy_path_stores_daily_bars_on_local_dates(store):
    fake = FakeYahoo()
    r = fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    assert r.status == "ok", r.error
    assert r.rows_added == 2699 and r.key.spec == "yahoo:AAPL"
    frame = store.load(r.key)
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2013-01-02", tz="UTC")  # 00:00 UTC of the NY trading date
    assert frame.index[-1] == pd.Timestamp("2023-09-21", tz="UTC")
    first = frame.iloc[0]
    assert first["close"] == pytest.approx(19.6082) and first["adj_close"] == pytest.approx(16.7912)
    assert store.manifest(r.key)["market"] == "equity"
    # yfinance's own cache lives in our data directory
    assert (store.root / "cache" / "yfinance").is_dir()


def test_incremental_refetches_last_bar_and_adds_new(store):
    full = sample_bars()
    fake = FakeYahoo(bars={"AAPL": full.iloc[:-5]})
    fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    fake.bars["AAPL"] = full
    r = fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    assert r.status == "ok" and r.rows_added == 5 and r.rows_replaced >= 1
    assert r.first <= "2023-09-14T00:00:00+00:00"  # the last stored bar is fetched again
    period1 = pd.Timestamp(int(fake.chart_requests()[-1]["period1"]), unit="s", tz="UTC")
    assert pd.Timestamp("2023-09-12", tz="UTC") <= period1 <= pd.Timestamp("2023-09-14", tz="UTC")
    r = fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    assert r.status == "up-to-date" and r.rows_added == 0 and store.manifest(r.key)["rows"] == 2699


def test_unknown_symbol_fails_at_once_with_clear_message(store):
    fake = FakeYahoo()
    with pytest.raises(DataSourceError) as ei:
        yahoo.fetch_bars("NOPE", session=fake, cache_dir=store.root / "c")
    assert not isinstance(ei.value, TemporaryFetchError)
    assert "no data for 'NOPE'" in str(ei.value)
    r = fetch_series(store, "NOPE", session=FakeYahoo(), **NO_WAIT)
    assert r.status == "failed" and "no data for 'NOPE'" in r.error and r.error_type == "DataSourceError"
    assert not (store.root / "series").exists()


def test_rate_limit_429_is_retried_then_succeeds(store):
    waits: list[float] = []
    fake = FakeYahoo(script=[429, 429])  # yfinance itself retries once; both answers are 429
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append)
    assert r.status == "ok" and r.rows_added == 2699
    assert len(waits) == 1


def test_rate_limit_forever_gives_up_with_bounded_attempts(store):
    waits: list[float] = []
    fake = FakeYahoo(script=[429] * 50)
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append, policy=RetryPolicy(attempts=3))
    assert r.status == "failed" and "rate-limited" in r.error and r.error_type == "TemporaryFetchError"
    assert len(waits) == 2
    assert not store.exists(r.key)


def test_500_then_success(store):
    waits: list[float] = []
    fake = FakeYahoo(script=[500, 500])
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append)
    assert r.status == "ok" and r.rows_added == 2699 and len(waits) == 1


def test_malformed_json_is_temporary_and_reported(store):
    fake = FakeYahoo(script=["malformed"] * 20)
    r = fetch_series(store, "AAPL", session=fake, sleep=lambda s: None, policy=RetryPolicy(attempts=2))
    assert r.status == "failed" and "non-JSON" in r.error
    assert not store.exists(r.key)


def test_empty_result_is_an_error_not_success(store):
    fake = FakeYahoo(script=["empty"] * 5)
    r = fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    assert r.status == "failed" and "no data for 'AAPL'" in r.error
    assert not store.exists(r.key)


def test_unsupported_interval_names_supported_ones(store):
    r = fetch_series(store, "AAPL", interval="4h", session=FakeYahoo(), **NO_WAIT)
    assert r.status == "failed"
    assert "no 4h bars" in r.error and "1m, 5m, 15m, 30m, 1h, 1d, 1wk" in r.error


TZ_SCRIPT = """
import sys; sys.path.insert(0, {tests!r})
from pathlib import Path
from fake_yahoo import FakeYahoo
from lstmcast.data.store import Store
from lstmcast.data.update import fetch_series
st = Store(Path(sys.argv[1]))
r = fetch_series(st, "AAPL", session=FakeYahoo(), sleep=lambda s: None)
f = st.load(r.key)
print(f.index[0].isoformat(), f.index[-1].isoformat(), len(f))
"""


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo"])
def test_daily_bar_dates_do_not_depend_on_machine_tz(tmp_path, tz):
    script = TZ_SCRIPT.format(tests=str(ROOT / "tests"))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "d")], capture_output=True, text=True,
                         env=subprocess_env(TZ=tz), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2013-01-02T00:00:00+00:00", "2023-09-21T00:00:00+00:00", "2699"]


def test_first_fetch_with_only_end_gets_all_history_before_it(store):
    # yfinance turns "end, no start" into one month before end; the first fetch must get it all.
    fake = FakeYahoo()
    r = fetch_series(store, "AAPL", end="2020-01-01", session=fake, **NO_WAIT)
    assert r.status == "ok", r.error
    frame = store.load(r.key)
    assert frame.index[0] == pd.Timestamp("2013-01-02", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2019-12-31", tz="UTC")


def test_retry_after_is_honoured(store):
    waits: list[float] = []
    fake = FakeYahoo(script=[429, 429])
    fake.retry_after = "7"
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append,
                     policy=RetryPolicy(base_delay_s=0.01, jitter=0.0))
    assert r.status == "ok" and r.rows_added == 2699
    assert waits == [7.0]


# -- the answer must match the request (issue 10) -------------------------------------------------

def stored_then(store, fake, rows_short: int = 100):
    full = sample_bars()
    fake.bars["AAPL"] = full.iloc[:-rows_short]
    assert fetch_series(store, "AAPL", session=fake, **NO_WAIT).status == "ok"
    fake.bars["AAPL"] = full
    return full


def test_stale_window_is_retried_then_a_fault_not_data(store):
    fake = FakeYahoo()
    stored_then(store, fake)
    before = store.load(SeriesKey("yahoo", "AAPL", "1d"))
    fake.script = ["stale"] * 20
    waits: list[float] = []
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append, policy=RetryPolicy(attempts=3))
    assert r.status == "failed" and not r.ok, r
    assert "stale" in r.error and "2023-04-28" in r.error, r.error  # names the last stored bar
    assert len(waits) == 2 and len(fake.chart_requests()) >= 3
    pd.testing.assert_frame_equal(store.load(r.key), before)
    assert r.rows_stored == 2599


def test_stale_window_once_then_the_right_one(store):
    fake = FakeYahoo()
    stored_then(store, fake)
    fake.script = ["stale"]
    r = fetch_series(store, "AAPL", session=fake, **NO_WAIT)
    assert r.status == "ok" and r.rows_added == 100 and store.manifest(r.key)["rows"] == 2699


def test_empty_window_while_the_market_was_open_is_failed_not_up_to_date(store):
    fake = FakeYahoo()
    stored_then(store, fake)
    fake.script = ["empty"] * 20
    now = pd.Timestamp("2023-09-22 21:00", tz="UTC")  # Friday evening: Thursday's bar is final
    r = fetch_series(store, "AAPL", session=fake, now=now, sleep=lambda s: None, policy=RetryPolicy(attempts=3))
    assert r.status == "failed" and not r.ok
    assert "no 1d bars" in r.error and "market was open" in r.error, r.error
    # 2023-04-28 .. 2023-09-20 on NYSE days: Thursday's bar is owed only a day after its close
    assert r.bars_received == 0 and r.bars_expected == 100 and r.error_type == "InconsistentAnswerError"
    assert store.manifest(r.key)["rows"] == 2599 and r.rows_stored == 2599
    assert len(fake.chart_requests()) >= 3


def test_empty_window_when_no_bar_is_due_is_up_to_date(store):
    fake = FakeYahoo()
    assert fetch_series(store, "AAPL", session=fake, **NO_WAIT).status == "ok"
    fake.script = ["empty"]
    # the last stored bar is Thursday 2023-09-21; on Friday before the close no new bar is due
    r = fetch_series(store, "AAPL", session=fake, now=pd.Timestamp("2023-09-22 12:00", tz="UTC"), **NO_WAIT)
    assert r.status == "up-to-date" and r.bars_expected == 0 and len(fake.script) == 0


def test_short_answer_is_retried_then_stored_as_partial(store):
    fake = FakeYahoo()
    stored_then(store, fake)
    fake.script = ["short"] * 20
    r = fetch_series(store, "AAPL", session=fake, sleep=lambda s: None, policy=RetryPolicy(attempts=3),
                     now=pd.Timestamp("2023-09-22 21:00", tz="UTC"))
    assert r.status == "partial" and not r.ok, r
    assert r.rows_added == 3 and store.manifest(r.key)["rows"] == 2602 and r.rows_stored == 2602
    assert r.bars_expected == 100 and r.bars_received == 4
    assert "ends 2023-05-03" in r.error and "due up to 2023-09-20" in r.error, r.error


# -- HTTP 5xx with Yahoo's JSON error body (yfinance reports it as "no data") ----------------------

def test_500_with_json_body_on_incremental_is_retried(store):
    fake = FakeYahoo()
    stored_then(store, fake)
    fake.script = ["500-json"] * 3
    waits: list[float] = []
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append)
    assert r.status == "ok" and r.rows_added == 100, r.error
    assert 1 <= len(waits) <= 3 and not fake.script  # (yfinance may re-ask once within an attempt)


@pytest.mark.parametrize("first_fetch", [True, False])
def test_500_forever_names_the_http_status_not_the_symbol(store, first_fetch):
    fake = FakeYahoo()
    if not first_fetch:
        stored_then(store, fake)
    fake.script = ["500-json"] * 50
    waits: list[float] = []
    r = fetch_series(store, "AAPL", session=fake, sleep=waits.append, policy=RetryPolicy(attempts=5))
    assert r.status == "failed" and r.error_type == "TemporaryFetchError", r.error
    assert "HTTP 500" in r.error and "check the symbol" not in r.error
    assert len(waits) == 4  # the same budget as ccxt: 5 attempts
