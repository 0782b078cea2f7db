"""Intervals, market calendars, gap detection and forecast timestamps."""

from __future__ import annotations

import pandas as pd
import pytest

from lstmcast.data import calendar
from lstmcast.errors import ConfigError


def utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def test_parse_interval_known_and_aliases():
    assert calendar.parse_interval("1d").delta == pd.Timedelta(days=1)
    assert calendar.parse_interval(" 1D ").name == "1d"
    assert calendar.parse_interval("60m").name == "1h"
    assert calendar.parse_interval("1w").name == "1wk"


def test_parse_interval_error_lists_supported():
    with pytest.raises(ConfigError) as exc:
        calendar.parse_interval("2d")
    msg = str(exc.value)
    assert "'2d'" in msg
    for name in calendar.INTERVALS:
        assert name in msg


def test_check_market_rejects_unknown():
    with pytest.raises(ConfigError, match="unknown market 'moon'.*crypto"):
        calendar.check_market("moon")


@pytest.mark.parametrize(
    ("source", "symbol", "market"),
    [("import", "AAPL", "equity"), ("yahoo", "BTC-USD", "crypto"), ("yahoo", "EURUSD=X", "fx"),
     ("binance", "BTC/USDT", "crypto"), ("yahoo", "^GSPC", "equity")],
)
def test_infer_market(source, symbol, market):
    assert calendar.infer_market(source, symbol) == market


def nyse_days(start: str, end: str) -> pd.DatetimeIndex:
    return calendar.expected_bars(utc(start), utc(end), calendar.parse_interval("1d"), "equity")


def test_equity_daily_calendar_skips_weekends_and_holidays():
    days = nyse_days("2024-07-01", "2024-07-12")
    dates = [d.date().isoformat() for d in days]
    assert "2024-07-04" not in dates  # Independence Day
    assert "2024-07-06" not in dates and "2024-07-07" not in dates  # weekend
    assert dates[:4] == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05"]
    assert len(dates) == 9


def test_equity_complete_frame_has_no_gaps():
    days = nyse_days("2024-06-03", "2024-07-31")
    assert calendar.find_gaps(days, calendar.parse_interval("1d"), "equity") == []


def test_equity_missing_one_trading_day_is_exactly_one_gap():
    days = nyse_days("2024-06-03", "2024-07-31")
    missing = utc("2024-07-10")
    gaps = calendar.find_gaps(days.drop(missing), calendar.parse_interval("1d"), "equity")
    assert gaps == [(missing, missing, 1)]


def test_equity_two_adjacent_trading_days_across_holiday_are_one_run():
    days = nyse_days("2024-06-03", "2024-07-31")
    gaps = calendar.find_gaps(
        days.drop([utc("2024-07-03"), utc("2024-07-05")]), calendar.parse_interval("1d"), "equity"
    )
    assert gaps == [(utc("2024-07-03"), utc("2024-07-05"), 2)]


def test_crypto_gaps_count_weekends():
    days = pd.date_range("2024-07-01", "2024-07-14", freq="D", tz="UTC")
    weekend = [utc("2024-07-06"), utc("2024-07-07")]
    gaps = calendar.find_gaps(days.drop(weekend), calendar.parse_interval("1d"), "crypto")
    assert gaps == [(weekend[0], weekend[1], 2)]
    # the same hole is not a gap for an equity
    assert calendar.find_gaps(days.drop(weekend), calendar.parse_interval("1d"), "equity") == []


def test_hourly_crypto_gap():
    grid = pd.date_range("2024-01-01", periods=48, freq="h", tz="UTC")
    gaps = calendar.find_gaps(grid.delete([5, 6, 7]), calendar.parse_interval("1h"), "crypto")
    assert gaps == [(grid[5], grid[7], 3)]


def test_next_bars_equity_skips_holiday():
    out = calendar.next_bars(utc("2024-07-03"), 3, calendar.parse_interval("1d"), "equity")
    assert [d.date().isoformat() for d in out] == ["2024-07-05", "2024-07-08", "2024-07-09"]


def test_next_bars_equity_skips_weekend():
    out = calendar.next_bars(utc("2024-07-12"), 1, calendar.parse_interval("1d"), "equity")  # a Friday
    assert list(out) == [utc("2024-07-15")]


def test_next_bars_crypto_does_not_skip():
    out = calendar.next_bars(utc("2024-07-03"), 4, calendar.parse_interval("1d"), "crypto")
    assert list(out) == list(pd.date_range("2024-07-04", periods=4, freq="D", tz="UTC"))


def test_next_bars_hourly_crypto_and_zero():
    iv = calendar.parse_interval("1h")
    out = calendar.next_bars(utc("2024-07-03 22:00"), 3, iv, "crypto")
    assert list(out) == [utc("2024-07-03 23:00"), utc("2024-07-04 00:00"), utc("2024-07-04 01:00")]
    assert len(calendar.next_bars(utc("2024-07-03"), 0, iv, "crypto")) == 0


def test_bars_per_year():
    assert calendar.bars_per_year(calendar.parse_interval("1d"), "equity") == 252.0
    assert calendar.bars_per_year(calendar.parse_interval("1d"), "crypto") == pytest.approx(365.0)


def test_bars_per_year_weekly_fx_is_52():
    """fx: 260 weekdays a year for daily bars, 52 weeks for weekly ones (it said 260 for both)."""
    assert calendar.bars_per_year(calendar.parse_interval("1d"), "fx") == 260.0
    assert calendar.bars_per_year(calendar.parse_interval("1wk"), "fx") == 52.0
    assert calendar.bars_per_year(calendar.parse_interval("1h"), "fx") == 260.0 * 24


# -- exchange calendars (exchange_calendars) ---------------------------------------------------------
def dates(idx: pd.DatetimeIndex) -> list[str]:
    return [d.date().isoformat() for d in idx]


def test_tokyo_daily_sessions_skip_japanese_holidays():
    # 2024-04-29 Showa Day, 2024-05-03..06 Constitution/Greenery/Children's Day (substitute Monday)
    days = calendar.expected_bars(utc("2024-04-26"), utc("2024-05-08"), calendar.parse_interval("1d"), "equity:XTKS")
    assert dates(days) == ["2024-04-26", "2024-04-30", "2024-05-01", "2024-05-02", "2024-05-07", "2024-05-08"]
    # the same span on NYSE trades every weekday
    assert len(nyse_days("2024-04-26", "2024-05-08")) == 9


def test_london_next_bars_skip_the_may_bank_holiday():
    out = calendar.next_bars(utc("2024-05-03"), 2, calendar.parse_interval("1d"), "equity:XLON")  # a Friday
    assert dates(out) == ["2024-05-07", "2024-05-08"]  # Monday 6 May is the Early May bank holiday


def test_nyse_early_close_has_no_afternoon_bars():
    # Friday after Thanksgiving 2024 closes at 13:00 New York
    bars = calendar.expected_bars(utc("2024-11-29 14:30"), utc("2024-11-29 21:00"), calendar.parse_interval("1h"),
                                  "equity")
    local = [t.tz_convert("America/New_York").strftime("%H:%M") for t in bars]
    assert local == ["09:30", "10:30", "11:30", "12:30"]


def test_tokyo_lunch_break_has_no_bars():
    # Tokyo trades 09:00-11:30 and 12:30-15:00 (15:30 from November 2024)
    bars = calendar.expected_bars(utc("2024-06-03 00:00"), utc("2024-06-03 07:00"), calendar.parse_interval("30m"),
                                  "equity:XTKS")
    local = [t.tz_convert("Asia/Tokyo").strftime("%H:%M") for t in bars]
    assert local == ["09:00", "09:30", "10:00", "10:30", "11:00", "12:30", "13:00", "13:30", "14:00", "14:30"]


def test_bars_outside_the_calendar_range_do_not_crash():
    iv = calendar.parse_interval("1d")
    old = calendar.expected_bars(utc("1985-01-01"), utc("1985-01-10"), iv, "equity:XTKS")  # before 1997: weekdays
    assert dates(old) == ["1985-01-01", "1985-01-02", "1985-01-03", "1985-01-04", "1985-01-07", "1985-01-08",
                          "1985-01-09", "1985-01-10"]
    far = calendar.next_bars(utc("2040-01-02"), 3, iv, "equity")  # beyond the calendar: weekdays
    assert dates(far) == ["2040-01-03", "2040-01-04", "2040-01-05"]
    hourly = calendar.expected_bars(utc("2040-01-02 14:30"), utc("2040-01-02 22:00"), calendar.parse_interval("1h"),
                                    "equity")
    assert len(hourly) == 7  # 09:30 .. 15:30 New York on a weekday
    span = nyse_days("2026-11-20", "2028-01-10")  # crosses the calendar's end
    assert len(span) > 250 and all(d.weekday() < 5 for d in span.date)


@pytest.mark.parametrize(
    ("text", "market"),
    [("crypto", "crypto"), ("24/7", "crypto"), ("equity", "equity"), ("XNYS", "equity"), ("XTKS", "equity:XTKS"),
     ("equity:xlon", "equity:XLON"), ("fx", "fx")],
)
def test_parse_market(text, market):
    assert calendar.parse_market(text) == market


def test_parse_market_rejects_unknown_exchange():
    with pytest.raises(ConfigError, match="unknown market 'XXXX'.*XTKS"):
        calendar.parse_market("XXXX")


@pytest.mark.parametrize(
    ("symbol", "market"),
    [("7203.T", "equity:XTKS"), ("VOD.L", "equity:XLON"), ("SAP.DE", "equity:XETR"), ("RY.TO", "equity:XTSE"),
     ("BRK.B", "equity"), ("BTCUSD", "equity")],
)
def test_infer_market_from_yahoo_suffix(symbol, market):
    assert calendar.infer_market("yahoo", symbol) == market


def test_bars_per_year_other_exchange():
    assert calendar.bars_per_year(calendar.parse_interval("1d"), "equity:XTKS") == 252.0
    assert calendar.bars_per_year(calendar.parse_interval("1h"), "equity:XLON") == pytest.approx(252.0 * 8.5)
