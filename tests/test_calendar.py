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
