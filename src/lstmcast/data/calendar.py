"""Intervals and market calendars.

One mechanism answers both "which bars should exist between two times" (gap detection) and
"when are the next N bars" (forecast timestamps). Daily and weekly bars are stamped at 00:00 UTC
of their calendar date (the exchange-local trading date), so a stock's daily bar lands on the
same date whatever the machine's time zone.

Exchange sessions (holidays, early closes, lunch breaks) come from ``exchange_calendars``. A
market is ``crypto`` (24/7), ``fx`` (weekdays around the clock), ``continuous`` (a non-price
series), ``equity`` (the New York Stock Exchange) or ``equity:MIC`` for another exchange
(``equity:XTKS`` Tokyo, ``equity:XLON`` London ...). exchange_calendars is slow to import and to
build a calendar, so it is imported on first use and each calendar is built once per process.
Outside a calendar's date range (before 1990 or its first known year, about a year ahead) an
exchange is taken to trade every weekday.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
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
"""crypto trades 24/7; equity on the sessions of an exchange (``equity`` alone: NYSE; ``equity:MIC``
another one, see ``EXCHANGES``); fx on weekdays around the clock; continuous is a non-price series
sampled every interval."""

DEFAULT_EXCHANGE = "XNYS"
EQUITY_TZ = "America/New_York"  # NYSE's zone, kept for callers; other exchanges: ``exchange_tz``
EQUITY_OPEN = dt.time(9, 30)
EQUITY_CLOSE = dt.time(16, 0)
CALENDAR_START = pd.Timestamp("1990-01-01")

# Yahoo symbol suffix -> exchange_calendars code. The exchanges Yahoo serves that the library knows.
YAHOO_SUFFIXES: dict[str, str] = {
    "T": "XTKS", "L": "XLON", "IL": "XLON", "DE": "XETR", "F": "XFRA", "BE": "XFRA", "DU": "XDUS",
    "HM": "XHAM", "SG": "XSTU", "MU": "XFRA", "TO": "XTSE", "V": "XTSE", "CN": "XTSE", "NE": "XTSE",
    "PA": "XPAR", "AS": "XAMS", "BR": "XBRU", "LS": "XLIS", "MI": "XMIL", "MC": "XMAD", "SW": "XSWX",
    "VX": "XSWX", "ST": "XSTO", "CO": "XCSE", "HE": "XHEL", "OL": "XOSL", "IC": "XICE", "IR": "XDUB",
    "VI": "XWBO", "WA": "XWAR", "PR": "XPRA", "BD": "XBUD", "AT": "ASEX", "IS": "XIST", "HK": "XHKG",
    "AX": "XASX", "NZ": "XNZE", "SI": "XSES", "KS": "XKRX", "KQ": "XKRX", "SS": "XSHG", "SZ": "XSHG",
    "TW": "XTAI", "TWO": "XTAI", "BO": "XBOM", "NS": "XBOM", "JK": "XIDX", "KL": "XKLS", "BK": "XBKK",
    "SA": "BVMF", "MX": "XMEX", "BA": "XBUE", "SN": "XSGO", "JO": "XJSE", "TA": "XTAE", "SR": "XSAU",
}
CRYPTO_QUOTES = {"USD", "USDT", "USDC", "EUR", "GBP", "JPY", "BTC", "ETH"}


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


# -- markets ------------------------------------------------------------------------------------
def _xcals() -> Any:
    import exchange_calendars

    return exchange_calendars


@lru_cache(maxsize=1)
def exchange_codes() -> frozenset[str]:
    """The exchange codes exchange_calendars knows (MICs such as XNYS, XTKS, XLON)."""
    xc = _xcals()
    return frozenset(n for n in xc.get_calendar_names(include_aliases=False) if n.isalnum() and n.isupper())


def exchange_of(market: str) -> str | None:
    """The exchange code of an equity market (``equity`` -> XNYS), ``None`` for the others."""
    if market == "equity":
        return DEFAULT_EXCHANGE
    if market.startswith("equity:"):
        return market.split(":", 1)[1]
    return None


def market_for_exchange(code: str) -> str:
    code = code.upper()
    return "equity" if code == DEFAULT_EXCHANGE else f"equity:{code}"


def check_market(market: str) -> str:
    """Return ``market`` if it is a known market name (``equity:MIC`` with a known MIC)."""
    if market in MARKETS:
        return market
    code = exchange_of(market) if isinstance(market, str) else None
    if code is not None and code.upper() == code and code in exchange_codes():
        return market
    raise ConfigError(
        f"unknown market {market!r}; expected one of: {', '.join(MARKETS)}, 24/7, or an exchange code "
        "such as XNYS, XTKS, XLON (equity:XLON)"
    )


def parse_market(text: str) -> str:
    """A user-given market (``--market``): a market name, ``24/7``, or an exchange code such as XTKS."""
    t = text.strip()
    if t.lower() in MARKETS:
        return t.lower()
    if t.lower() in ("24/7", "247", "24x7"):
        return "crypto"
    code = t.split(":", 1)[1] if t.lower().startswith("equity:") else t
    if code.upper() in exchange_codes():
        return market_for_exchange(code.upper())
    return check_market(t)  # raises, naming the choices


def exchange_for_symbol(symbol: str) -> str | None:
    """The exchange a Yahoo-style suffix names (``7203.T`` -> XTKS), ``None`` when it names none."""
    base, dot, suffix = symbol.upper().rpartition(".")
    if not dot or not base:
        return None
    return YAHOO_SUFFIXES.get(suffix)


def market_from_symbol(source: str, symbol: str) -> tuple[str, str] | None:
    """``(market, why)`` when the source or the symbol's spelling tells; ``None`` when it does not."""
    if source not in ("yahoo", "import", "csv"):
        return "crypto", f"source {source} is a crypto exchange"
    s = symbol.upper()
    if s.endswith("=X"):
        return "fx", f"{symbol} is a Yahoo currency pair (=X)"
    base, _, quote = s.partition("-")
    if quote in CRYPTO_QUOTES and base.isalnum() and len(base) >= 2:
        return "crypto", f"{symbol} is a crypto pair (BASE-{quote})"
    if "/" in s:
        return "crypto", f"{symbol} is a crypto pair (BASE/QUOTE)"
    code = exchange_for_symbol(s)
    if code is not None:
        return market_for_exchange(code), f"suffix .{s.rpartition('.')[2]} of {symbol} is exchange {code}"
    if s.startswith("^"):
        return "equity", f"{symbol} is an index; the NYSE calendar is assumed"
    return None


def infer_market(source: str, symbol: str) -> str:
    """Best guess of a symbol's market from its source and Yahoo-style spelling (default: NYSE equity)."""
    told = market_from_symbol(source, symbol)
    return told[0] if told else "equity"


def bars_per_year(interval: Interval, market: str) -> float:
    """Annualisation factor: 252 trading days for equity, 365 for 24/7 markets."""
    code = exchange_of(market)
    if code is not None:
        if interval.name == "1wk":
            return 52.0
        hours = 6.5 if code == DEFAULT_EXCHANGE else _session_hours(code)
        per_day = 1.0 if interval.daily_or_longer else hours * 3600 / interval.delta.total_seconds()
        return 252.0 * per_day
    if market == "fx":
        if interval.name == "1wk":
            return 52.0
        return 260.0 * max(1.0, pd.Timedelta(days=1) / interval.delta)
    return interval.periods_per_year


# -- exchange sessions --------------------------------------------------------------------------
_build_lock = threading.Lock()


@lru_cache(maxsize=32)
def exchange_calendar(code: str) -> Any:
    """The exchange_calendars calendar for ``code``, from 1990 (or its earliest year) to about a year ahead."""
    xc = _xcals()
    from exchange_calendars.calendar_utils import _default_calendar_factories as factories

    cls = factories.get(code)
    bound = cls.bound_min() if cls is not None else None  # e.g. XTKS has no holidays before 1997
    start = max(CALENDAR_START, pd.Timestamp(bound)) if bound is not None else CALENDAR_START
    with _build_lock:
        return xc.get_calendar(code, start=start)


def exchange_tz(market: str) -> str | None:
    """The time zone of an equity market's exchange (``equity`` -> America/New_York)."""
    code = exchange_of(market)
    if code is None:
        return None
    if code == DEFAULT_EXCHANGE:
        return EQUITY_TZ
    return str(exchange_calendar(code).tz)


@lru_cache(maxsize=32)
def _session_hours(code: str) -> float:
    cal = exchange_calendar(code)
    last = cal.sessions[cal.sessions <= pd.Timestamp.now().normalize()][-250:]
    span = (cal.closes[last] - cal.opens[last]).dt.total_seconds()
    if cal.break_starts is not None:
        brk = (cal.break_ends[last] - cal.break_starts[last]).dt.total_seconds().fillna(0.0)
        span = span - brk
    return float(span.median() / 3600)


def _weekdays(days: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(days.day_of_week < 5)


def _sessions_mask(days: pd.DatetimeIndex, code: str) -> np.ndarray:
    """Which of ``days`` (UTC midnights) are sessions of exchange ``code``; weekdays outside its range."""
    if not len(days):
        return np.zeros(0, dtype=bool)
    cal = exchange_calendar(code)
    naive = days.tz_localize(None)
    inside = np.asarray((naive >= cal.first_session) & (naive <= cal.last_session))
    mask = np.where(inside, False, _weekdays(days))
    if inside.any():
        mask[inside] = np.asarray(naive[inside].isin(cal.sessions))
    return mask


def is_trading_day(day: dt.date, market: str) -> bool:
    if market in ("crypto", "continuous"):
        return True
    code = exchange_of(market)
    if code is None:
        return day.weekday() < 5
    return bool(_sessions_mask(pd.DatetimeIndex([pd.Timestamp(day)], tz="UTC"), code)[0])


def _trading_days(start: pd.Timestamp, end: pd.Timestamp, market: str) -> pd.DatetimeIndex:
    days = pd.date_range(start.normalize(), end.normalize(), freq="D", tz="UTC")
    if market in ("crypto", "continuous"):
        return days
    code = exchange_of(market)
    if code is None:
        return days[_weekdays(days)]
    return days[_sessions_mask(days, code)]


def _in_sessions(stamps: pd.DatetimeIndex, code: str) -> pd.DatetimeIndex:
    """The bar open times inside a regular session of ``code`` (early closes and lunch breaks honoured)."""
    if not len(stamps):
        return stamps
    cal = exchange_calendar(code)
    tz = str(cal.tz)
    local = stamps.tz_convert(tz)
    ok = np.zeros(len(stamps), dtype=bool)
    inside = np.asarray((stamps >= cal.opens.iloc[0]) & (stamps < cal.closes.iloc[-1]))
    if inside.any():
        t = stamps[inside].tz_convert("UTC").tz_localize(None).to_numpy()
        opens_n = pd.DatetimeIndex(cal.opens).tz_convert("UTC").tz_localize(None).to_numpy()
        closes_n = pd.DatetimeIndex(cal.closes).tz_convert("UTC").tz_localize(None).to_numpy()
        pos = np.searchsorted(opens_n, t, side="right") - 1
        good = (pos >= 0) & (t < closes_n[np.clip(pos, 0, None)])
        if cal.break_starts is not None and cal.break_starts.notna().any():
            bs = pd.DatetimeIndex(cal.break_starts).tz_convert("UTC").tz_localize(None).to_numpy()
            be = pd.DatetimeIndex(cal.break_ends).tz_convert("UTC").tz_localize(None).to_numpy()
            p = np.clip(pos, 0, None)
            in_break = ~pd.isna(bs[p]) & (t >= bs[p]) & (t < be[p])
            good &= ~np.asarray(in_break)
        ok[inside] = good
    outside = ~inside
    if outside.any():
        # beyond the calendar: the exchange's usual hours on weekdays
        first = cal.sessions[-1]
        o = cal.opens[first].tz_convert(tz).time()
        c = cal.closes[first].tz_convert(tz).time()
        lt = local[outside]
        tod = np.array([x >= o and x < c for x in lt.time], dtype=bool)
        ok[outside] = tod & np.asarray(lt.day_of_week < 5)
    return stamps[ok]


def expected_bars(start: pd.Timestamp, end: pd.Timestamp, interval: Interval, market: str) -> pd.DatetimeIndex:
    """Every bar time that should exist in [start, end] for this market."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if interval.name == "1wk":
        return pd.date_range(start, end, freq="7D", tz="UTC")
    if interval.name == "1d":
        return _trading_days(start, end, market)
    grid = pd.date_range(start, end, freq=interval.delta, tz="UTC")
    code = exchange_of(market)
    if code is not None:
        return _in_sessions(grid, code)
    if market == "fx":
        return grid[grid.day_of_week < 5]
    return grid


def find_gaps(index: pd.DatetimeIndex, interval: Interval, market: str) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Runs of missing bars as (first missing, last missing, count)."""
    if len(index) < 2:
        return []
    expected = expected_bars(index[0], index[-1], interval, market)
    missing = expected.difference(index)
    code = exchange_of(market)
    if code is not None and not interval.daily_or_longer:
        # Yahoo's intraday equity grids start at the open; compare only on days we have data for.
        tz = exchange_tz(market)
        have_days = set(index.tz_convert(tz).date)
        missing = missing[[d in have_days for d in missing.tz_convert(tz).date]]
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
    """The open times of the ``n`` bars after ``last`` (skipping the days an exchange is closed)."""
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
