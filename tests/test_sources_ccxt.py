"""The real ccxt.binance client against a loopback fake Binance (fake_binance.FakeBinance)."""

from __future__ import annotations

import pandas as pd
import pytest

from fake_binance import FakeBinance, btc_klines
from lstmcast.data.sources.retry import RetryPolicy
from lstmcast.data.update import fetch_series

END = "2019-10-18"  # the sample ends 2019-10-17; asking beyond would (rightly) note stale data
SPEC = "binance:BTC/USDT"


def fetch(store, fb, **kw):
    kw.setdefault("end", END)
    kw.setdefault("sleep", lambda s: None)
    return fetch_series(store, SPEC, exchange_overrides=fb.overrides, **kw)


def test_history_longer_than_three_pages_and_exchange_gap(store):
    with FakeBinance(page_max=400) as fb:
        r = fetch(store, fb)
        pages = fb.kline_requests()
    assert r.status == "ok", r.error
    assert r.rows_added == 1770 and len(pages) >= 5
    assert int(pages[0]["startTime"]) == 0
    frame = store.load(r.key)
    assert frame.index[0] == pd.Timestamp("2014-12-01", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2019-10-17", tz="UTC")
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    # Coinbase's own hole (2019-03-20 .. 2019-03-31) is reported, not filled.
    assert r.new_gaps == [{"from": "2019-03-20T00:00:00+00:00", "to": "2019-03-31T00:00:00+00:00", "bars": 12}]
    assert store.manifest(r.key)["gaps"]["missing_bars"] == 12
    assert [j["time"][:10] for j in r.quality["jumps"]] == ["2015-01-14", "2015-01-15"]


def test_incremental_update_after_new_bars_appear(store):
    all_bars = btc_klines()
    with FakeBinance(klines=all_bars[:-10]) as fb:
        assert fetch(store, fb).rows_added == 1760
        fb.klines = all_bars
        r = fetch(store, fb)
    assert r.status == "ok" and r.rows_added == 10 and r.rows_replaced == 1
    last_stored = all_bars[-11][0]
    assert any(int(q["startTime"]) == last_stored for q in fb.kline_requests())
    assert store.manifest(r.key)["rows"] == 1770


@pytest.mark.parametrize("faults", [[429, 418, 429], [500, 503], [None, "drop"], [None, 418, 429]])
def test_temporary_faults_are_retried(store, faults):
    waits: list[float] = []
    with FakeBinance(script=faults, page_max=500) as fb:
        r = fetch(store, fb, sleep=waits.append)
    assert r.status == "ok", r.error
    assert r.rows_added == 1770
    assert len(waits) == sum(1 for f in faults if f is not None)


def test_repeated_page_does_not_loop_or_lose_bars(store):
    with FakeBinance(script=[None, "repeat"], page_max=500) as fb:
        r = fetch(store, fb)
    assert r.status == "ok" and r.rows_added == 1770
    assert r.bars_received == 1770 and r.bars_expected == 1782  # Coinbase's own 12-day hole


def test_page_repeated_twice_is_asked_again_and_recovers(store):
    waits: list[float] = []
    with FakeBinance(script=[None, "repeat", "repeat"], page_max=500) as fb:
        r = fetch(store, fb, sleep=waits.append)
    assert r.status == "ok" and r.rows_added == 1770
    assert len(waits) == 2  # each re-ask waits like a retry


@pytest.mark.parametrize("repeats", [3, 1000])
def test_page_repeated_three_times_is_partial_not_ok(store, repeats):
    """The audit's fault: a page served three times in a row stored 500 of 1770 bars and said ok."""
    with FakeBinance(script=[None] + ["repeat"] * repeats, page_max=500) as fb:
        r = fetch(store, fb)
        n = len(fb.kline_requests())
    assert n == 4  # bounded: the page, then three answers that repeat it
    assert r.status == "partial" and not r.ok
    assert "repeated" in r.error and "2016-04-13" in r.error
    assert r.rows_added == 500 and r.rows_stored == 500 and store.manifest(r.key)["rows"] == 500
    assert r.bars_received == 500 and r.bars_expected == 1782
    assert r.to_dict()["bars_expected"] == 1782 and r.to_dict()["bars_received"] == 500
    assert store.manifest(r.key)["extra"]["last_fetch"]["status"] == "partial"


def test_empty_answer_to_an_incremental_fetch_is_retried_then_failed(store):
    all_bars = btc_klines()
    with FakeBinance(klines=all_bars[:-10]) as fb:
        assert fetch(store, fb).rows_added == 1760
    with FakeBinance(klines=all_bars, script=["empty"] * 100) as fb:
        r = fetch(store, fb)
    # asked from the last stored bar, which the exchange has: nothing at all is a fault, not "up to date"
    assert r.status == "failed" and not r.ok and "returned no BTC/USDT 1d bars since 2019-10-07" in r.error
    assert r.bars_expected == 11 and r.bars_received == 0
    assert r.rows_stored == 1760 and store.manifest(r.key)["rows"] == 1760
    with FakeBinance(klines=all_bars, script=["empty"]) as fb:
        r = fetch(store, fb)
    assert r.status == "ok" and r.rows_added == 10


def test_failure_half_way_stores_received_pages_and_marks_partial(store):
    with FakeBinance(script=[None, None] + [500] * 50, page_max=500) as fb:
        r = fetch(store, fb, policy=RetryPolicy(attempts=3))
    assert r.status == "partial" and "network error" in r.error
    m = store.manifest(r.key)
    assert m["rows"] == 1000 and m["last"] == r.last
    assert m["extra"]["last_fetch"]["status"] == "partial"


def test_rate_limit_forever_fails_without_writing(store):
    with FakeBinance(script=[429] * 100) as fb:
        r = fetch(store, fb, policy=RetryPolicy(attempts=3))
    assert r.status == "failed" and "rate-limited" in r.error
    assert not store.exists(r.key)


def test_unknown_symbol_and_exchange(store):
    with FakeBinance() as fb:
        r = fetch_series(store, "binance:DOGE/USDT", exchange_overrides=fb.overrides)
        assert r.status == "failed" and "no spot market 'DOGE/USDT'" in r.error and "load_markets" in r.error
    r = fetch_series(store, "binanse:BTC/USDT")
    assert r.status == "failed" and "unknown exchange 'binanse'" in r.error and "ccxt.exchanges" in r.error


def test_connection_refused_is_unreachable_fast(store):
    fb = FakeBinance()
    with fb:
        overrides = fb.overrides
    waits: list[float] = []
    r = fetch_series(store, SPEC, exchange_overrides=overrides, sleep=waits.append)
    assert r.status == "failed" and r.error_type == "ServiceUnreachableError"
    assert "cannot reach binance" in r.error and "lstmcast import" in r.error
    assert sum(waits) <= RetryPolicy().unreachable_elapsed_s
    assert not (store.root / "series").exists() or not store.exists(r.key)


def test_full_refetch_failing_half_way_keeps_the_stored_series(store):
    with FakeBinance(page_max=500) as fb:
        assert fetch(store, fb).rows_added == 1770
    with FakeBinance(script=[None, None] + [500] * 50, page_max=500) as fb:
        r = fetch(store, fb, full=True, policy=RetryPolicy(attempts=3))
    # Replacing 1770 bars with the 1000 received before the failure would lose history.
    assert r.status == "failed" and "network error" in r.error and "left as it was" in r.error
    assert r.rows_stored == 1770
    m = store.manifest(r.key)
    assert m["rows"] == 1770 and m["last"] == "2019-10-17T00:00:00+00:00"
    assert m["extra"]["last_fetch"]["status"] == "ok"


@pytest.mark.parametrize("status", [429, 418])
def test_retry_after_is_honoured(store, status):
    waits: list[float] = []
    with FakeBinance(script=[status], page_max=500, retry_after="7") as fb:
        r = fetch(store, fb, sleep=waits.append, policy=RetryPolicy(base_delay_s=0.01, jitter=0.0))
    assert r.status == "ok" and r.rows_added == 1770
    assert waits == [7.0]


def test_full_refetch_failing_at_once_reports_the_rows_still_stored(store):
    with FakeBinance(page_max=500) as fb:
        assert fetch(store, fb).rows_added == 1770
    with FakeBinance(script=[429] * 100) as fb:
        r = fetch(store, fb, full=True, policy=RetryPolicy(attempts=2))
    assert r.status == "failed" and "rate-limited" in r.error
    assert r.rows_stored == 1770 and store.manifest(r.key)["rows"] == 1770


def test_damaged_series_incremental_fails_naming_it_and_full_replaces_it(store):
    with FakeBinance(page_max=500) as fb:
        r = fetch(store, fb)
        path = store.data_path(r.key)
        path.write_bytes(path.read_bytes()[:200])
        r = fetch_series(store, SPEC, exchange_overrides=fb.overrides, end=END)
        assert r.status == "failed" and "damaged" in r.error and "fetch --full" in r.error
        r = fetch(store, fb, full=True)
    assert r.status == "ok" and r.rows_stored == 1770
    assert any("1d.parquet.damaged" in n for n in r.notes)
    assert (path.parent / "1d.parquet.damaged").stat().st_size == 200


def test_history_ending_long_before_the_requested_end_is_ok_with_a_note(store):
    with FakeBinance(page_max=500) as fb:
        r = fetch(store, fb, end="2020-06-01")
    assert r.status == "ok" and r.rows_added == 1770 and r.bars_expected == 1782
    assert any("no BTC/USDT 1d bars after 2019-10-17" in n and "its newest" in n for n in r.notes), r.notes
