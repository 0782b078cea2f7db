"""Yahoo Finance through yfinance 1.x: daily, weekly and intraday bars for stocks, indices, fx, crypto.

The only module that imports yfinance. Vendor exceptions become ``DataSourceError`` (permanent)
or ``TemporaryFetchError`` (retried by the caller). yfinance's own state is process-wide (one
config, one cached session, one tz cache), so ``_configure`` sets it idempotently under a lock.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lstmcast.data import calendar, schema
from lstmcast.data.sources.retry import brief, looks_unreachable
from lstmcast.errors import DataSourceError, ServiceUnreachableError, TemporaryFetchError

SOURCE = "yahoo"
# our interval name -> Yahoo's. 4h does not exist on Yahoo; 30m is resampled from 15m by yfinance.
INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "1d": "1d", "1wk": "1wk"}
OFFLINE_HINT = "check your connection, or use `lstmcast import FILE --symbol SYMBOL` for offline data"

_config_lock = threading.Lock()
# yfinance raises YFRateLimitError without the response, and turns a 5xx carrying Yahoo's JSON
# error body into "no price data": so the session's ``request`` (see ``_watch_responses``) notes,
# in the thread that made the request, the Retry-After of each 429 and the status of each 5xx.
_seen = threading.local()


@dataclass(frozen=True)
class YahooBars:
    """Bars as fetched: canonical frame plus what is needed to judge the last bar."""

    frame: pd.DataFrame
    exchange_tz: str | None
    session_end: pd.Timestamp | None  # end of the current regular session (UTC), if Yahoo said
    market: str | None = None  # from the chart metadata (see ``market_from_metadata``), if it tells
    market_time: pd.Timestamp | None = None  # Yahoo's newest trade (meta regularMarketTime), if it said


# Yahoo's exchange codes (chart metadata "exchangeName") -> exchange_calendars codes.
YAHOO_EXCHANGES: dict[str, str] = {
    **dict.fromkeys(("NMS", "NGM", "NCM", "NAS", "NYQ", "NYS", "ASE", "PCX", "BTS", "PNK", "OQB", "OQX",
                     "NIM", "SNP", "DJI", "CXI", "WCB"), "XNYS"),
    "JPX": "XTKS", "TYO": "XTKS", "OSA": "XTKS", "LSE": "XLON", "IOB": "XLON", "GER": "XETR", "ETR": "XETR",
    "FRA": "XFRA", "BER": "XFRA", "MUN": "XFRA", "DUS": "XDUS", "HAM": "XHAM", "STU": "XSTU", "TOR": "XTSE",
    "VAN": "XTSE", "CNQ": "XTSE", "NEO": "XTSE", "PAR": "XPAR", "AMS": "XAMS", "BRU": "XBRU", "LIS": "XLIS",
    "MIL": "XMIL", "MCE": "XMAD", "EBS": "XSWX", "STO": "XSTO", "CPH": "XCSE", "HEL": "XHEL", "OSL": "XOSL",
    "ICE": "XICE", "ISE": "XDUB", "VIE": "XWBO", "WSE": "XWAR", "PRA": "XPRA", "BUD": "XBUD", "ATH": "ASEX",
    "IST": "XIST", "HKG": "XHKG", "ASX": "XASX", "NZE": "XNZE", "SES": "XSES", "KSC": "XKRX", "KOE": "XKRX",
    "SHH": "XSHG", "SHZ": "XSHG", "TAI": "XTAI", "TWO": "XTAI", "NSI": "XBOM", "BSE": "XBOM", "JKT": "XIDX",
    "KLS": "XKLS", "SET": "XBKK", "SAO": "BVMF", "MEX": "XMEX", "BUE": "XBUE", "SGO": "XSGO", "JNB": "XJSE",
    "TLV": "XTAE", "SAU": "XSAU",
}


def market_from_metadata(meta: Any) -> str | None:
    """The market of a Yahoo symbol from its chart metadata: crypto, fx, or its exchange's calendar."""
    if not callable(getattr(meta, "get", None)):  # yfinance's HistoryMetadata is dict-like, not a dict
        return None
    kind = str(meta.get("instrumentType") or "").upper()
    if kind == "CRYPTOCURRENCY":
        return "crypto"
    if kind == "CURRENCY":
        return "fx"
    code = YAHOO_EXCHANGES.get(str(meta.get("exchangeName") or "").upper())
    return calendar.market_for_exchange(code) if code else None


def check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise DataSourceError(
            f"Yahoo Finance has no {interval} bars; supported intervals: {', '.join(INTERVALS)}"
        )
    return INTERVALS[interval]


def _configure(cache_dir: Path | None) -> Any:
    import yfinance as yf

    with _config_lock:
        # Errors must reach us: with hide_exceptions yfinance logs them and returns an empty frame.
        yf.config.debug.hide_exceptions = False
        yf.config.network.retries = 0  # we retry ourselves, with a bounded budget
        logging.getLogger("yfinance").setLevel(logging.CRITICAL)
        if cache_dir is not None:
            from yfinance import cache

            cache_dir.mkdir(parents=True, exist_ok=True)
            if cache._TzDBManager.get_location() != str(cache_dir):
                yf.set_tz_cache_location(str(cache_dir))
    return yf


def _watch_responses(session: Any) -> None:
    """Wrap ``session.request`` (once) to note the Retry-After of each 429 and the status of each 5xx."""
    with _config_lock:
        if getattr(session, "_lstmcast_watches_429", False):
            return
        inner = session.request

        def request(*args: Any, **kwargs: Any) -> Any:
            response = inner(*args, **kwargs)
            status = getattr(response, "status_code", None)
            if status == 429:
                _seen.retry_after = _retry_after(response)
            elif isinstance(status, int) and status >= 500:
                _seen.server_status = status
            return response

        session.request = request
        session._lstmcast_watches_429 = True


def _classify(e: BaseException, symbol: str) -> Exception:
    """Map a yfinance / HTTP-client exception to our error tree."""
    from yfinance import exceptions as yfe

    name = type(e).__name__
    if isinstance(e, yfe.YFRateLimitError):
        return TemporaryFetchError(f"Yahoo Finance rate-limited the request for {symbol} (HTTP 429)",
                                   retry_after=getattr(_seen, "retry_after", None))
    status = getattr(getattr(e, "response", None), "status_code", None)
    if name == "HTTPError" and isinstance(status, int):
        if status == 429:
            return TemporaryFetchError(f"Yahoo Finance rate-limited the request for {symbol} (HTTP 429)",
                                       retry_after=_retry_after(e.response))
        if status >= 500:
            return TemporaryFetchError(f"Yahoo Finance server error (HTTP {status}) for {symbol}")
        if status in (400, 404):
            return DataSourceError(
                f"Yahoo Finance has no data for {symbol!r} (HTTP {status}); check the symbol on finance.yahoo.com"
            )
        return DataSourceError(f"Yahoo Finance refused the request for {symbol} (HTTP {status})")
    if isinstance(e, yfe.YFPricesMissingError | yfe.YFTzMissingError | yfe.YFTickerMissingError):
        # drop yfinance's request-range debug text, e.g. "(1d 1927-12-16 -> 2026-11-21)"
        reason = re.sub(r"\s*\([^()]*->[^()]*\)", "", str(e).split(": ", 1)[-1]).strip()
        return DataSourceError(
            f"Yahoo Finance has no data for {symbol!r} ({reason}); check the symbol on finance.yahoo.com"
        )
    if isinstance(e, yfe.YFInvalidPeriodError):
        return DataSourceError(f"Yahoo Finance rejected the request for {symbol}: {brief(e)}")
    if isinstance(e, yfe.YFDataException) and "CURRENTLY DOWN" in str(e).upper():
        return TemporaryFetchError(f"Yahoo Finance is down for maintenance (fetching {symbol})")
    if isinstance(e, json.JSONDecodeError) or name == "JSONDecodeError":
        # Yahoo's 5xx pages are HTML, so this is usually a server error or a truncated reply.
        return TemporaryFetchError(
            f"Yahoo Finance sent an unreadable (non-JSON) response for {symbol}, usually a temporary server error"
        )
    if looks_unreachable(e):
        return ServiceUnreachableError(f"cannot reach Yahoo Finance ({name}); {OFFLINE_HINT}")
    transient = {"Timeout", "ReadTimeout", "ConnectTimeout", "ConnectionError", "ChunkedEncodingError",
                 "RemoteDisconnected", "ProtocolError", "IncompleteRead", "RequestException", "CurlError"}
    if name in transient or isinstance(e, OSError | TimeoutError):
        return TemporaryFetchError(f"network error talking to Yahoo Finance for {symbol}: {name}: {brief(e)}")
    if isinstance(e, KeyError | TypeError | IndexError | ValueError):
        # A chart response missing the fields yfinance expects: usually a truncated or odd reply.
        return TemporaryFetchError(f"Yahoo Finance sent an unexpected response for {symbol} ({name}: {brief(e)})")
    if isinstance(e, yfe.YFException):
        return DataSourceError(f"Yahoo Finance error for {symbol}: {brief(e)}")
    return DataSourceError(f"Yahoo Finance request for {symbol} failed: {name}: {brief(e)}")


def _retry_after(response: Any) -> float | None:
    try:
        value = float(response.headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None
    return value if 0 <= value <= 3600 else None


def _normalise(raw: pd.DataFrame, *, interval: str, tz: str | None) -> pd.DataFrame:
    """yfinance's frame -> the canonical one. Daily/weekly bars go to 00:00 UTC of the local date."""
    cols = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close",
            "Volume": "volume"}
    if isinstance(raw.columns, pd.MultiIndex):  # defensive: flat columns only
        raw = raw.copy()
        raw.columns = raw.columns.get_level_values(0)
    missing = [c for c in cols if c not in raw.columns and c != "Adj Close"]
    if missing:
        raise TemporaryFetchError(f"Yahoo Finance response lacks column(s) {', '.join(missing)}")
    frame = raw[[c for c in cols if c in raw.columns]].rename(columns=cols).astype("float64")
    if "adj_close" not in frame.columns:
        frame["adj_close"] = frame["close"]
    idx = pd.DatetimeIndex(raw.index)
    if interval in ("1d", "1wk"):
        local = idx.tz_convert(tz) if (idx.tz is not None and tz) else idx
        dates = local.tz_localize(None) if local.tz is not None else local
        idx = pd.DatetimeIndex(dates.normalize()).tz_localize("UTC")
    else:
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    frame.index = idx.rename(schema.INDEX_NAME)
    # Yahoo pads holidays and halts with all-NaN rows; those are not bars.
    frame = frame.dropna(subset=["open", "high", "low", "close"], how="all")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    frame["volume"] = frame["volume"].fillna(0.0)
    return frame


def _session_end(meta: Any) -> pd.Timestamp | None:
    try:
        end = meta["currentTradingPeriod"]["regular"]["end"]
    except (KeyError, TypeError, IndexError):
        return None
    try:
        ts = pd.Timestamp(end, unit="s") if isinstance(end, int | float) else pd.Timestamp(end)
    except (ValueError, TypeError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _raise_server_error(symbol: str, cause: BaseException | None) -> None:
    """A 5xx seen during this attempt explains an empty or "no data" answer: retry, and say so."""
    status = getattr(_seen, "server_status", None)
    if status is not None:
        raise TemporaryFetchError(f"Yahoo Finance server error (HTTP {status}) for {symbol}") from cause


def _market_time(meta: Any) -> pd.Timestamp | None:
    """meta's regularMarketTime: epoch seconds from Yahoo, a datetime once yfinance formatted it."""
    try:
        value = meta["regularMarketTime"]
        ts = pd.Timestamp(int(value), unit="s") if isinstance(value, int | float) else pd.Timestamp(value)
    except (KeyError, TypeError, ValueError):
        return None
    if pd.isna(ts) or ts.value <= 0:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def fetch_bars(
    symbol: str,
    *,
    interval: str = "1d",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    session: Any = None,
    cache_dir: Path | None = None,
    allow_empty: bool = False,
) -> YahooBars:
    """One attempt at Yahoo's chart API for ``symbol`` (no retries here; see ``retry``).

    ``start``/``end`` are UTC times (end exclusive); without ``start`` the whole history is asked
    for. ``allow_empty`` makes "no bars in this window" an empty result instead of an error (an
    incremental update on a weekend). ``session`` is a requests or curl_cffi Session (tests pass
    a fake one); by default yfinance's own browser-like session is used.
    """
    yf_interval = check_interval(interval)
    yf = _configure(cache_dir)
    from yfinance import exceptions as yfe
    from yfinance.data import YfData

    kwargs: dict[str, Any] = {"interval": yf_interval, "auto_adjust": False, "actions": False,
                              "repair": False, "timeout": 10}
    if start is None:
        # yfinance reads "end without start" as the month before end; "max" keeps the whole history.
        kwargs["period"] = "max"
    else:
        kwargs["start"] = int(pd.Timestamp(start).timestamp())
    if start is not None or end is not None:
        kwargs["end"] = int(pd.Timestamp(end if end is not None else pd.Timestamp.now("UTC")).timestamp())
    if session is None:
        from yfinance.data import new_session

        session = new_session()
    _watch_responses(session)
    _seen.retry_after = _seen.server_status = None
    # yfinance memoises GET responses per process (past date ranges, the tz lookup); a retry must
    # really ask again rather than replay a cached 500.
    YfData.cache_get.cache_clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yfinance's pandas Future/Deprecation warnings
            ticker = yf.Ticker(symbol, session=session)
            raw = ticker.history(**kwargs)
            tz = getattr(ticker, "_tz", None)
            meta = ticker.get_history_metadata() if len(raw) else {}
    except yfe.YFPricesMissingError as e:
        _raise_server_error(symbol, e)
        if allow_empty and "no price data found" in str(e):
            return YahooBars(schema.empty_frame(with_adj_close=True), None, None)
        raise _classify(e, symbol) from e
    except Exception as e:  # vendor code raises anything from JSON, HTTP and pandas layers
        _raise_server_error(symbol, e)
        raise _classify(e, symbol) from e
    if raw is None or len(raw) == 0:
        _raise_server_error(symbol, None)
        if allow_empty:
            return YahooBars(schema.empty_frame(with_adj_close=True), tz, None)
        raise DataSourceError(f"Yahoo Finance returned no {interval} bars for {symbol!r}; check the symbol")
    if raw.index.tz is not None and not tz:
        tz = str(raw.index.tz)
    frame = _normalise(raw, interval=interval, tz=tz)
    if len(frame) == 0 and not allow_empty:
        raise DataSourceError(f"Yahoo Finance returned no {interval} bars for {symbol!r}; check the symbol")
    return YahooBars(frame, tz, _session_end(meta), market=market_from_metadata(meta), market_time=_market_time(meta))
