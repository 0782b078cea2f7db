"""Intervals and market calendars.

One mechanism answers both "which bars should exist between two times" (gap detection) and
"when are the next N bars" (forecast timestamps). Daily and weekly bars are stamped at 00:00 UTC
of their calendar date (the exchange-local trading date), so a stock's daily bar lands on the
same date whatever the machine's time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from lstmcast.errors import ConfigError, UsageError

INTERVALS: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1wk": pd.Timedelta(weeks=1),
}

MARKETS = ("crypto", "equity", "fx", "continuous")
"""crypto trades 24/7; equity on NYSE trading days (09:30-16:00 New York for intraday bars);
fx on weekdays around the clock; continuous is a non-price series sampled every interval."""

EQUITY_TZ = "America/New_York"
EQUITY_OPEN = dt.time(9, 30)
EQUITY_CLOSE = dt.time(16, 0)


@dataclass(frozen=True)
class Interval:
    name: str
    delta: pd.Timedelta

    @property
    def daily_or_longer(self) -> bool:
        return self.delta >= pd.Timedelta(days=1)

    @property
    def periods_per_year(self) -> float:
        """Bars per year for a 24/7 market (crypto); see ``bars_per_year`` for others."""
        return pd.Timedelta(days=365).total_seconds() / self.delta.total_seconds()


def parse_interval(name: str) -> Interval:
    key = name.strip().lower()
    aliases = {"1w": "1wk", "60m": "1h", "1day": "1d", "d": "1d"}
    key = aliases.get(key, key)
    if key not in INTERVALS:
        raise ConfigError(f"unknown interval {name!r}; supported: {', '.join(INTERVALS)}")
    return Interval(key, INTERVALS[key])


def parse_utc(value: object, *, what: str = "date") -> pd.Timestamp | None:
    """A user-given date or time as a UTC timestamp (naive means UTC); ``None`` or "" stays ``None``."""
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{what} {value!r} is not a date (use YYYY-MM-DD)") from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def check_market(market: str) -> str:
    if market not in MARKETS:
        raise ConfigError(f"unknown market {market!r}; expected one of: {', '.join(MARKETS)}")
    return market


def infer_market(source: str, symbol: str) -> str:
    """Best guess of a symbol's market from its source and Yahoo-style spelling."""
    if source not in ("yahoo", "import", "csv"):
        return "crypto"  # every other source is a ccxt exchange
    s = symbol.upper()
    if s.endswith("=X"):
        return "fx"
    base, _, quote = s.partition("-")
    if quote in {"USD", "USDT", "USDC", "EUR", "GBP", "JPY", "BTC", "ETH"} and base.isalnum() and len(base) >= 2:
        return "crypto"
    if "/" in s:
        return "crypto"
    return "equity"


def bars_per_year(interval: Interval, market: str) -> float:
    """Annualisation factor: 252 trading days for equity, 365 for 24/7 markets."""
    if market == "equity":
        per_day = 1.0 if interval.daily_or_longer else 6.5 * 3600 / interval.delta.total_seconds()
        if interval.name == "1wk":
            return 52.0
        return 252.0 * per_day
    if market == "fx":
        if interval.name == "1wk":
            return 52.0
        return 260.0 * max(1.0, pd.Timedelta(days=1) / interval.delta)
    return interval.periods_per_year


@lru_cache(maxsize=64)
def _nyse_holidays(year_from: int, year_to: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.financial_holidays("NYSE", years=range(year_from, year_to + 1)).keys())


def is_trading_day(day: dt.date, market: str) -> bool:
    if market in ("crypto", "continuous"):
        return True
    if day.weekday() >= 5:
        return False
    if market == "equity":
        return day not in _nyse_holidays(day.year, day.year)
    return True


def _trading_days(start: pd.Timestamp, end: pd.Timestamp, market: str) -> pd.DatetimeIndex:
    days = pd.date_range(start.normalize(), end.normalize(), freq="D", tz="UTC")
    if market in ("crypto", "continuous"):
        return days
    mask = days.day_of_week < 5
    if market == "equity":
        hol = _nyse_holidays(days[0].year, days[-1].year) if len(days) else frozenset()
        mask &= ~pd.Index(days.date).isin(list(hol))
    return days[mask]


def _in_equity_session(stamps: pd.DatetimeIndex) -> pd.DatetimeIndex:
    local = stamps.tz_convert(EQUITY_TZ)
    t = local.time
    ok = (
        (local.day_of_week < 5)
        & pd.Index([x >= EQUITY_OPEN and x < EQUITY_CLOSE for x in t], dtype=bool)
        & ~pd.Index(local.date).isin(
            list(_nyse_holidays(local[0].year, local[-1].year)) if len(local) else []
        )
    )
    return stamps[ok]


def expected_bars(start: pd.Timestamp, end: pd.Timestamp, interval: Interval, market: str) -> pd.DatetimeIndex:
    """Every bar time that should exist in [start, end] for this market."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if interval.name == "1wk":
        return pd.date_range(start, end, freq="7D", tz="UTC")
    if interval.name == "1d":
        return _trading_days(start, end, market)
    grid = pd.date_range(start, end, freq=interval.delta, tz="UTC")
    if market == "equity":
        return _in_equity_session(grid)
    if market == "fx":
        return grid[grid.day_of_week < 5]
    return grid


def find_gaps(index: pd.DatetimeIndex, interval: Interval, market: str) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Runs of missing bars as (first missing, last missing, count)."""
    if len(index) < 2:
        return []
    expected = expected_bars(index[0], index[-1], interval, market)
    missing = expected.difference(index)
    if market == "equity" and not interval.daily_or_longer:
        # Yahoo's intraday equity grids start at the open; compare only on days we have data for.
        have_days = set(index.tz_convert(EQUITY_TZ).date)
        missing = missing[[d in have_days for d in missing.tz_convert(EQUITY_TZ).date]]
    if len(missing) == 0:
        return []
    pos = expected.get_indexer(missing)
    runs: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []
    run_start = 0
    for i in range(1, len(pos) + 1):
        if i == len(pos) or pos[i] != pos[i - 1] + 1:
            runs.append((missing[run_start], missing[i - 1], i - run_start))
            run_start = i
    return runs


def next_bars(last: pd.Timestamp, n: int, interval: Interval, market: str) -> pd.DatetimeIndex:
    """The open times of the ``n`` bars after ``last`` (skipping closed days for equity and fx)."""
    last = pd.Timestamp(last)
    if n <= 0:
        return pd.DatetimeIndex([], tz="UTC")
    out = pd.DatetimeIndex([], tz="UTC")
    span = interval.delta * (n + 1)
    while len(out) < n:  # widen the window until it holds n open bars (weekends, holidays)
        span = span * 2 + pd.Timedelta(days=7)
        cand = expected_bars(last, last + span, interval, market)
        out = cand[cand > last][:n]
    return out
