"""Forecast timestamps: stocks skip weekends and NYSE holidays, crypto trades every day."""

from __future__ import annotations

import pandas as pd

from lstmcast.data.calendar import bars_per_year, next_bars, parse_interval

DAY = parse_interval("1d")


def test_equity_skips_a_holiday_and_the_weekend():
    # Thursday 3 July 2025; Friday 4 July is Independence Day, then a weekend.
    got = next_bars(pd.Timestamp("2025-07-03", tz="UTC"), 3, DAY, "equity")
    assert [d.date().isoformat() for d in got] == ["2025-07-07", "2025-07-08", "2025-07-09"]


def test_equity_skips_good_friday_and_christmas():
    got = next_bars(pd.Timestamp("2025-04-17", tz="UTC"), 1, DAY, "equity")  # Thursday before Good Friday
    assert got[0].date().isoformat() == "2025-04-21"
    got = next_bars(pd.Timestamp("2024-12-24", tz="UTC"), 2, DAY, "equity")
    assert [d.date().isoformat() for d in got] == ["2024-12-26", "2024-12-27"]


def test_crypto_trades_every_day_and_every_hour():
    got = next_bars(pd.Timestamp("2025-07-03", tz="UTC"), 4, DAY, "crypto")
    assert [d.date().isoformat() for d in got] == ["2025-07-04", "2025-07-05", "2025-07-06", "2025-07-07"]
    hours = next_bars(pd.Timestamp("2025-07-05 22:00", tz="UTC"), 3, parse_interval("1h"), "crypto")
    assert [h.isoformat() for h in hours] == [
        "2025-07-05T23:00:00+00:00", "2025-07-06T00:00:00+00:00", "2025-07-06T01:00:00+00:00",
    ]


def test_a_long_horizon_crosses_several_closures():
    got = next_bars(pd.Timestamp("2025-12-19", tz="UTC"), 10, DAY, "equity")  # Friday
    dates = [d.date() for d in got]
    assert all(d.weekday() < 5 for d in dates)
    assert pd.Timestamp("2025-12-25").date() not in dates and pd.Timestamp("2026-01-01").date() not in dates
    assert len(dates) == 10 and dates == sorted(dates)


def test_annualisation():
    assert bars_per_year(DAY, "equity") == 252
    assert bars_per_year(DAY, "crypto") == 365
    assert bars_per_year(parse_interval("1h"), "crypto") == 365 * 24
