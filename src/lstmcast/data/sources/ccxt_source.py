"""Crypto exchanges through ccxt: OHLCV bars from any exchange by id, paginated with since/limit.

The only module that imports ccxt. ccxt's ``NetworkError`` family (timeouts, 5xx, and
``DDoSProtection`` / ``RateLimitExceeded`` on 418/429) becomes ``TemporaryFetchError``; a bad
exchange, symbol or interval becomes a permanent ``DataSourceError`` naming how to find valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from lstmcast.data import schema
from lstmcast.data.sources.retry import brief, looks_unreachable
from lstmcast.errors import DataSourceError, InconsistentAnswerError, ServiceUnreachableError, TemporaryFetchError

T = TypeVar("T")
# our interval name -> ccxt's timeframe name
TIMEFRAMES = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d", "1wk": "1w"}
OFFLINE_HINT = "check your connection, or use `lstmcast import FILE --symbol SYMBOL` for offline data"
MAX_PAGES = 100_000  # a hard stop whatever the exchange does
# how often one page is asked for when the answer repeats an old page (or is blank where bars must
# be); the last such answer is reported, not taken as the end of history
REPEAT_ASKS = 3


@dataclass
class CcxtBars:
    """What a paginated fetch got. ``error`` is set when it stopped early; ``frame`` then holds the
    contiguous bars received before the failure (safe to store: the manifest's ``last`` says where
    the series ends)."""

    frame: pd.DataFrame
    pages: int = 0
    error: Exception | None = None
    notes: list[str] = field(default_factory=list)


def _hint(exchange_id: str) -> str:
    return f"python3 -c \"import ccxt; print(sorted(ccxt.{exchange_id}().load_markets()))\""


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_exchange(exchange_id: str, *, overrides: dict[str, Any] | None = None) -> Any:
    """A ccxt exchange with rate limiting on; ``overrides`` deep-merge into its config (urls, rateLimit)."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        near = [x for x in ccxt.exchanges if x.startswith(exchange_id[:3])][:8]
        also = f" (similar: {', '.join(near)})" if near else ""
        raise DataSourceError(
            f"unknown exchange {exchange_id!r}{also}; "
            "list valid ids with: python3 -c \"import ccxt; print(ccxt.exchanges)\""
        )
    # the last raw answer tells a repeated page (which ccxt filters to nothing) from the end of history
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000, "enableLastJsonResponse": True}
    if exchange_id.startswith("binance"):
        # Load spot markets only: the derivatives endpoints are slow and not needed for OHLCV.
        config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    config = _deep_merge(config, overrides or {})
    return getattr(ccxt, exchange_id)(config)


def check_timeframe(exchange: Any, interval: str) -> str:
    tf = TIMEFRAMES.get(interval)
    offered = getattr(exchange, "timeframes", None) or {}
    if tf is None or (offered and tf not in offered):
        ours = [k for k, v in TIMEFRAMES.items() if not offered or v in offered]
        raise DataSourceError(f"{exchange.id} has no {interval} bars; supported intervals: {', '.join(ours)}")
    return tf


def _retry_after(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= 3600 else None


def wrap_error(e: Exception, exchange: Any, what: str) -> Exception:
    """Map a ccxt exception to our error tree; ``what`` names the request for the message."""
    import ccxt

    ex = exchange.id
    short = brief(e)
    if isinstance(e, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return TemporaryFetchError(f"{ex} rate-limited {what} ({type(e).__name__}): {short}",
                                   retry_after=_retry_after(exchange))
    if isinstance(e, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable (5xx), InvalidNonce ...
        if looks_unreachable(e):
            return ServiceUnreachableError(f"cannot reach {ex} ({type(e).__name__}); {OFFLINE_HINT}")
        return TemporaryFetchError(f"network error from {ex} during {what}: {short}")
    if isinstance(e, ccxt.BadSymbol):
        return DataSourceError(f"{ex} has no market for {what}; list valid symbols with: {_hint(ex)}")
    if isinstance(e, ccxt.BaseError):
        return DataSourceError(f"{ex} refused {what}: {short}")
    if isinstance(e, OSError | TimeoutError):
        return TemporaryFetchError(f"network error from {ex} during {what}: {type(e).__name__}: {e}")
    raise e  # not a vendor error: a bug, keep the traceback


def _to_frame(rows: list[list[Any]]) -> pd.DataFrame:
    if not rows:
        return schema.empty_frame()
    df = pd.DataFrame([r[:6] for r in rows], columns=["time", "open", "high", "low", "close", "volume"])
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="ms", utc=True)
    df = df.set_index("time").astype("float64")
    df["volume"] = df["volume"].fillna(0.0)
    return df[~df.index.duplicated(keep="last")].sort_index()


def _raw_rows(exchange: Any) -> int:
    """How many rows the exchange's last raw answer held, before ccxt dropped those older than
    ``since`` (so a repeated page reaches us as an empty list). 0 when it cannot tell."""
    raw = getattr(exchange, "last_json_response", None)
    if isinstance(raw, dict):  # {"result": {...: [rows]}} and the like: the largest list inside
        inner = [v for k, v in raw.items() if k != "error"]
        inner += [w for v in inner if isinstance(v, dict) for w in v.values()]
        raw = max((v for v in inner if isinstance(v, list)), key=len, default=[])
    return len(raw) if isinstance(raw, list) else 0


def fetch_bars(
    exchange: Any,
    symbol: str,
    *,
    interval: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None = None,
    limit: int | None = None,
    retry: Callable[[Callable[[], Any]], Any] = lambda fn: fn(),
    on_page: Callable[[int, int], None] | None = None,
    start_is_stored: bool = False,
    wait: Callable[[int], None] = lambda n: None,
) -> CcxtBars:
    """Page through ``exchange.fetch_ohlcv`` from ``start`` (default: the earliest bar) to ``end``.

    Each call goes through ``retry`` (``retry.call_with_retry`` in practice). A page that brings
    nothing new (it repeats an old page, or goes backwards) is asked for again after ``wait(n)``,
    at most ``REPEAT_ASKS`` times in all; then the fetch stops with ``error`` set: a repeated page
    is a fault, not the end of history. An empty page is the end of history, except on the first
    page of an incremental fetch (``start_is_stored``: ``start`` is a bar we already have, so the
    exchange has it), where it is asked again the same way. Failing after some pages returns what
    was received with ``error`` set. Permanent errors on the first request (bad symbol) are raised.
    """
    market_what = f"{symbol}"

    def load() -> Any:
        try:
            return exchange.load_markets()
        except Exception as e:  # noqa: BLE001 - wrapped or re-raised by wrap_error
            raise wrap_error(e, exchange, "loading markets") from e

    retry(load)
    if symbol not in exchange.markets:
        quote = symbol.partition("/")[2]
        near = sorted(s for s in exchange.markets if s.split("/")[0] == symbol.partition("/")[0])[:8]
        also = f" (markets for {symbol.partition('/')[0]}: {', '.join(near)})" if near else ""
        raise DataSourceError(
            f"{exchange.id} has no spot market {symbol!r}{also}; symbols are BASE/QUOTE"
            f"{' like BTC/' + quote if quote else ''}; list them with: {_hint(exchange.id)}"
        )
    tf = check_timeframe(exchange, interval)
    step_ms = int(exchange.parse_timeframe(tf) * 1000)
    end_ms = int(pd.Timestamp(end if end is not None else pd.Timestamp.now("UTC")).timestamp() * 1000)
    since = int(pd.Timestamp(start).timestamp() * 1000) if start is not None else 0
    rows: list[list[Any]] = []
    last_ts: int | None = None
    blank = 0  # empty answers in a row
    repeats = 0  # answers in a row that brought nothing new (or nothing where bars must be)
    notes: list[str] = []
    pages = 0

    def iso(ms: int) -> str:
        return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()

    while since < end_ms and pages < MAX_PAGES:
        def page(since: int = since) -> list[list[Any]]:
            try:
                return exchange.fetch_ohlcv(symbol, tf, since=since, limit=limit)
            except Exception as e:  # noqa: BLE001 - wrapped or re-raised by wrap_error
                raise wrap_error(e, exchange, f"{market_what} {interval} bars since {iso(since)}") from e

        try:
            got = retry(page)
        except TemporaryFetchError as e:
            if not rows:
                raise
            return CcxtBars(_to_frame(rows), pages, e, notes)
        pages += 1
        old_rows = 0 if got else _raw_rows(exchange)  # ccxt filtered them all out: a repeat
        got = sorted((r for r in (got or []) if r and r[0] is not None and int(r[0]) < end_ms), key=lambda r: r[0])
        fresh = [r for r in got if last_ts is None or int(r[0]) > last_ts]
        if not got and not old_rows and not (start_is_stored and not rows):
            # Nothing after ``since``: the end of the exchange's history. Asked once more (at once)
            # because a blank answer costs nothing to confirm.
            blank += 1
            if blank >= 2:
                if rows and since + 2 * step_ms < end_ms:
                    notes.append(f"{exchange.id} has no {symbol} {interval} bars after {iso(last_ts)}"
                                 f" (its newest) although the range ends {iso(end_ms)}")
                break
            continue
        blank = 0
        if not fresh:
            # A page of old bars (a repeat, or a step backwards), or blank where we know bars exist:
            # ask again, then report it. Stopping quietly here stored 500 of 20,000 bars as "ok".
            repeats += 1
            if repeats >= REPEAT_ASKS:
                if got or old_rows:
                    upto = f", got bars up to {iso(int(got[-1][0]))}" if got else ", got only older bars"
                    after = f"after {iso(last_ts)}" if last_ts is not None else f"since {iso(since)}"
                    what = (f"repeated a page of {symbol} {interval} bars {repeats} times "
                            f"(asked for bars {after}{upto})")
                else:
                    what = (f"returned no {symbol} {interval} bars since {iso(since)}, the last stored bar, "
                            f"{repeats} times")
                err = InconsistentAnswerError(f"{exchange.id} {what}; stopped with {len(rows)} bar(s) received")
                err.attempts = repeats
                return CcxtBars(_to_frame(rows), pages, err, notes)
            wait(repeats)
            continue
        repeats = 0
        rows.extend(fresh)
        last_ts = int(fresh[-1][0])
        since = last_ts + step_ms
        if on_page is not None:
            on_page(pages, len(rows))
    return CcxtBars(_to_frame(rows), pages, None, notes)
