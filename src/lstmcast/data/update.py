"""Incremental fetch = source + store, with a data-quality report.

``fetch_series`` asks a vendor for the bars a stored series lacks (from the last stored bar, which
is re-fetched because it may have been incomplete), drops the still-forming current bar, upserts,
and reports new gaps, zero-volume bars and suspicious jumps. Nothing is "fixed" silently.
``fetch_many`` does several concurrently; one failure does not stop the others.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar, schema, verify
from lstmcast.data import quality as data_quality
from lstmcast.data.sources.retry import DEFAULT_POLICY, RetryBudget, RetryPolicy, backoff_delay, call_with_retry
from lstmcast.data.store import SeriesKey, Store, check_symbol, parse_spec
from lstmcast.errors import DataSourceError, InconsistentAnswerError, LstmcastError, StoreError, UsageError

STATUS_OK = "ok"  # new bars stored (or already up to date)
STATUS_UP_TO_DATE = "up-to-date"
STATUS_PARTIAL = "partial"  # failed half-way; the bars received were stored, the manifest says where
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class FetchActivity:
    """What a fetch is doing, for a progress display: a page arrived (``retry`` 0), or a request
    failed for a temporary reason and is asked again after ``wait_s`` seconds (``retry`` >= 1)."""

    spec: str
    source: str  # "yahoo", "binance", ...
    pages: int = 0  # pages received so far
    rows: int = 0  # bars received so far
    retry: int = 0  # the retry about to be made (1-based); 0 for a page
    wait_s: float = 0.0
    status: int | None = None  # the HTTP status behind a retry (429, 418, 5xx) when the error names one
    error: str | None = None  # the error being retried, one line


_HTTP_STATUS = re.compile(r"\s(4\d\d|5\d\d)\s+[A-Z]")  # ccxt: "... URL 429 Too Many Requests ..."


def _http_status(e: BaseException) -> int | None:
    """The HTTP status an error (or its cause) names, e.g. 429 in ccxt's "binance GET ... 429 Too Many
    Requests"; None when it names none."""
    cur: BaseException | None = e
    for _ in range(5):
        if cur is None:
            break
        code = getattr(cur, "status_code", None) or getattr(getattr(cur, "response", None), "status_code", None)
        if isinstance(code, int):
            return code
        m = _HTTP_STATUS.search(str(cur))
        if m:
            return int(m.group(1))
        cur = cur.__cause__ or cur.__context__
    return None


@dataclass
class FetchResult:
    """What one fetch did, for the summary table, ``--json`` and ``lstmcast run``."""

    spec: str
    key: SeriesKey | None
    status: str
    rows_added: int = 0
    rows_replaced: int = 0
    rows_stored: int = 0
    first: str | None = None  # first/last bar of the fetched (new) range
    last: str | None = None
    new_gaps: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0
    # Bars the market calendar expects from the first requested bar up to the newest bar the source
    # should have (see ``verify.coverage``), and the complete bars received in that window.
    bars_expected: int = 0
    bars_received: int = 0

    @property
    def ok(self) -> bool:
        return self.status in (STATUS_OK, STATUS_UP_TO_DATE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "series": self.key.spec if self.key else None,
            "interval": self.key.interval if self.key else None,
            "status": self.status,
            "rows_added": self.rows_added,
            "rows_replaced": self.rows_replaced,
            "rows_stored": self.rows_stored,
            "first": self.first,
            "last": self.last,
            "new_gaps": self.new_gaps,
            "missing_bars": sum(g["bars"] for g in self.new_gaps),
            "bars_expected": self.bars_expected,
            "bars_received": self.bars_received,
            "quality": self.quality,
            "notes": self.notes,
            "error": self.error,
            "error_type": self.error_type,
            "seconds": round(self.seconds, 3),
        }


def resolve_source(spec: str, source: str | None = None) -> tuple[str, str, str]:
    """``(vendor, source name, symbol)``: vendor is "yahoo" or "ccxt".

    ``EXCHANGE:BASE/QUOTE`` goes to ccxt; anything else (``AAPL``, ``^GSPC``, ``EURUSD=X``) to Yahoo.
    ``source`` ("yahoo" or "ccxt") overrides the guess.
    """
    prefix, symbol = parse_spec(spec)
    if source not in (None, "yahoo", "ccxt"):
        raise UsageError(f"--source must be yahoo or ccxt, not {source!r}")
    if prefix == "yahoo":
        vendor, name = "yahoo", "yahoo"
    elif prefix is not None:
        vendor, name = "ccxt", prefix
    elif source == "ccxt":
        raise UsageError(f"{spec!r}: a ccxt symbol needs its exchange, as in binance:{spec}")
    else:
        vendor, name, symbol = "yahoo", "yahoo", spec
    if source == "yahoo" and vendor != "yahoo":
        vendor, name, symbol = "yahoo", "yahoo", spec
    if vendor == "ccxt" and "/" not in symbol:
        raise UsageError(f"{spec!r}: exchange symbols are BASE/QUOTE, as in {name}:BTC/USDT")
    check_symbol(symbol)
    return vendor, name, symbol


def check_request(specs: Sequence[str], *, interval: str, start: Any = None, end: Any = None,
                  source: str | None = None) -> None:
    """Check symbols, interval and dates before any request; a ``UsageError`` names the culprit.

    The interval is checked against what each symbol's source offers (Yahoo has no 4h bars);
    an exchange's own list of timeframes is only known once its markets load.
    """
    from lstmcast.data.sources import ccxt_source, yahoo

    start_ts, end_ts = calendar.parse_utc(start, what="--start"), calendar.parse_utc(end, what="--end")
    if start_ts is not None and end_ts is not None and start_ts >= end_ts:
        raise UsageError(f"--start ({start_ts.date()}) must be before --end ({end_ts.date()})")
    try:
        name = calendar.parse_interval(interval).name
    except LstmcastError:
        name = interval
    for spec in specs:
        vendor, source_name, _ = resolve_source(spec, source)
        offered = yahoo.INTERVALS if vendor == "yahoo" else ccxt_source.TIMEFRAMES
        if name not in offered:
            where = "Yahoo Finance" if vendor == "yahoo" else source_name
            raise UsageError(f"{where} has no {interval} bars; supported intervals: {', '.join(offered)}")


def drop_partial(
    frame: pd.DataFrame, interval: calendar.Interval, *, now: pd.Timestamp, session_end: pd.Timestamp | None = None,
    exchange_tz: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """Drop bars still forming at ``now``: open time + interval (in exchange-local time for daily and
    weekly bars, whose stamp is the local date) is after now. ``session_end`` (Yahoo's current regular
    session end) lets a daily stock bar count as final right after the close."""
    if len(frame) == 0:
        return frame, 0
    idx = frame.index
    if interval.daily_or_longer and exchange_tz:
        local_open = pd.DatetimeIndex(idx.tz_localize(None)).tz_localize(exchange_tz, ambiguous="NaT",
                                                                           nonexistent="shift_forward")
        closes = (local_open + interval.delta).tz_convert("UTC")
        if session_end is not None and interval.name == "1d":
            same_day = pd.Index(idx.date) == session_end.tz_convert(exchange_tz).date()
            closes = closes.where(~same_day, session_end)
    else:
        closes = idx + interval.delta
    keep = ~(np.asarray(closes > now) | pd.isna(closes))
    return frame[keep], int((~keep).sum())


def quality_report(frame: pd.DataFrame, *, context: pd.DataFrame | None = None) -> dict[str, Any]:
    """Zero-volume bars, |log return| > 50% jumps and likely unadjusted splits in ``frame`` (the
    previous bar from ``context``); ``data.quality`` has the rules, shared with ``import``."""
    report: dict[str, Any] = {"zero_volume": 0, "zero_volume_bars": [], "jumps": [], "likely_splits": []}
    if len(frame) == 0:
        return report
    zero = frame.index[(frame["volume"] == 0).to_numpy()]
    report["zero_volume"] = len(zero)
    report["zero_volume_bars"] = [t.isoformat() for t in zero[:10]]
    report.update(data_quality.jumps(frame, context=context))
    return report


def _new_gaps(before: pd.DatetimeIndex, after: pd.DatetimeIndex, interval: calendar.Interval,
              market: str) -> list[dict[str, Any]]:
    old = {(a, b) for a, b, _ in calendar.find_gaps(before, interval, market)}
    return [
        {"from": a.isoformat(), "to": b.isoformat(), "bars": n}
        for a, b, n in calendar.find_gaps(after, interval, market)
        if (a, b) not in old
    ]


def fetch_series(
    store: Store,
    spec: str,
    *,
    interval: str = "1d",
    start: Any = None,
    end: Any = None,
    full: bool = False,
    source: str | None = None,
    include_partial: bool = False,
    session: Any = None,
    exchange_overrides: dict[str, Any] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    now: pd.Timestamp | None = None,
    on_page: Callable[[int, int], None] | None = None,
    on_activity: Callable[[FetchActivity], None] | None = None,
) -> FetchResult:
    """Fetch one series into the store and report what changed. Raises nothing for vendor problems:
    they come back as ``status="failed"`` (or ``"partial"``) with ``error`` set; bad arguments raise.

    ``session`` (a requests/curl_cffi Session for Yahoo) and ``exchange_overrides`` (ccxt config,
    e.g. ``{"urls": {"api": {"public": ...}}}``) are the seams tests use to reach fake far ends.
    ``on_activity`` receives a ``FetchActivity`` for every page and every retry (from this thread).
    """
    t0 = time.monotonic()
    iv = calendar.parse_interval(interval)
    vendor, name, symbol = resolve_source(spec, source)
    key = SeriesKey(name, symbol, iv.name)
    start_ts, end_ts = calendar.parse_utc(start, what="--start"), calendar.parse_utc(end, what="--end")
    if start_ts is not None and end_ts is not None and start_ts >= end_ts:
        raise UsageError(f"--start ({start_ts.date()}) must be before --end ({end_ts.date()})")
    now = now if now is not None else pd.Timestamp.now("UTC")
    market = calendar.infer_market(name, symbol)
    result = FetchResult(spec=spec, key=key, status=STATUS_FAILED)

    try:
        old = store.load(key) if (store.exists(key) and not full) else schema.empty_frame()
    except StoreError as e:  # a damaged series: reported as this symbol's failure; --full replaces it
        result.error, result.error_type = str(e), type(e).__name__
        return result
    fetch_from = start_ts
    if len(old) and not full:
        # Re-fetch the last stored bar: it may have been stored before it was complete.
        fetch_from = old.index[-1] if start_ts is None else min(start_ts, old.index[-1])
    budget = RetryBudget()  # one wait allowance for the whole fetch, all pages together
    seen = {"pages": 0, "rows": 0}

    def tell(**what: Any) -> None:
        if on_activity is not None:
            on_activity(FetchActivity(spec=spec, source=name, pages=seen["pages"], rows=seen["rows"], **what))

    def retried(attempt: int, e: Exception, delay: float) -> None:
        tell(retry=attempt, wait_s=delay, status=_http_status(e), error=str(e).splitlines()[0] if str(e) else None)

    def paged(pages: int, rows: int) -> None:
        seen["pages"], seen["rows"] = pages, rows
        tell()
        if on_page is not None:
            on_page(pages, rows)

    retry = lambda fn: call_with_retry(fn, policy=policy, sleep=sleep, budget=budget, on_retry=retried)  # noqa: E731

    def wait(attempt: int) -> None:  # before asking again for a page that came back wrong
        delay = backoff_delay(attempt, policy)
        if budget.waited + delay <= policy.max_elapsed_s:  # past the budget: ask again at once
            tell(retry=attempt, wait_s=delay, error="the page came back wrong; asking again")
            budget.waited += delay
            sleep(delay)

    newest: pd.Timestamp | None = None  # the newest bar the source should have (None: what it sent)

    frame = schema.empty_frame()
    tz: str | None = None
    session_end = None
    partial_error: LstmcastError | None = None
    try:
        if vendor == "yahoo":
            from lstmcast.data.sources import yahoo

            yahoo.check_interval(iv.name)
            ask_from = fetch_from
            if ask_from is not None and iv.daily_or_longer:
                # A daily stamp is the exchange-local date; east of UTC that date's session opens
                # before 00:00 UTC, so ask from a day earlier (the upsert de-duplicates).
                ask_from = ask_from - pd.Timedelta(days=1)
            last_stored = old.index[-1] if len(old) else None
            due_by = verify.settled_end(iv, now=now, end=end_ts)

            def answer() -> Any:
                got = yahoo.fetch_bars(
                    symbol, interval=iv.name, start=ask_from, end=end_ts, session=session,
                    cache_dir=store.root / "cache" / "yfinance", allow_empty=fetch_from is not None,
                )
                newest = due_by
                if got.market_time is not None:  # Yahoo's newest trade: a halted symbol owes nothing after it
                    t = got.market_time
                    newest = min(newest, t.normalize() if iv.daily_or_longer else t - iv.delta)
                verify.check_answer(got.frame, iv, market, what=f"Yahoo Finance {symbol} {iv.name}",
                              ask_from=ask_from, last_stored=last_stored, newest=newest)
                return got, newest

            try:
                bars, newest = retry(answer)
            except verify.WrongAnswer as e:
                plain = InconsistentAnswerError(str(e))  # the private subclass stays out of messages and JSON
                plain.attempts = e.attempts
                if e.bars is None:
                    result.bars_expected = e.expected
                    raise plain from None
                # bars that start right but stop short: stored (they are real), reported as partial
                bars = yahoo.YahooBars(e.bars, None, None)
                newest, partial_error = due_by, plain
            frame, tz, session_end = bars.frame, bars.exchange_tz, bars.session_end
            market = bars.market or market  # the exchange Yahoo names beats the symbol's spelling
        else:
            from lstmcast.data.sources import ccxt_source

            exchange = ccxt_source.make_exchange(name, overrides=exchange_overrides)
            got = ccxt_source.fetch_bars(exchange, symbol, interval=iv.name, start=fetch_from, end=end_ts,
                                         retry=retry, on_page=paged, start_is_stored=bool(len(old)),
                                         wait=wait)
            frame, tz = got.frame, "UTC"
            result.notes.extend(got.notes)
            if got.error is not None:
                partial_error = got.error
                # paging stopped early: the exchange should have had every bar up to the end
                newest = verify.settled_end(iv, now=now, end=end_ts)
            elif len(got.frame):
                newest = got.frame.index[-1]  # paging ran until the exchange had nothing newer
    except LstmcastError as e:
        result.error, result.error_type = str(e), type(e).__name__
        # with --full, ``old`` was never loaded; the stored series is still there
        result.rows_stored = _rows_stored(store, key)
        result.seconds = time.monotonic() - t0
        return result

    if not include_partial:
        frame, dropped = drop_partial(frame, iv, now=now, session_end=session_end, exchange_tz=tz)
        if dropped:
            result.notes.append(f"left out {dropped} still-forming bar(s); --include-partial stores them")
    if start_ts is not None and not len(old):
        frame = frame[frame.index >= start_ts.normalize() if iv.daily_or_longer else frame.index >= start_ts]
    if not include_partial and newest is not None:
        newest = min(newest, verify.settled_end(iv, now=now, end=None) + iv.delta)  # still-forming bars were dropped
    result.bars_expected, result.bars_received = verify.coverage(frame, iv, market, first=fetch_from, newest=newest)
    if partial_error is not None and not len(frame):
        result.error, result.error_type = str(partial_error), type(partial_error).__name__
        result.rows_stored = _rows_stored(store, key)
        result.seconds = time.monotonic() - t0
        return result
    if full and partial_error is not None and store.exists(key):
        # --full replaces the series; the pages received before the failure are not all of it.
        result.error = f"{partial_error}; --full stopped half-way, so the stored series was left as it was"
        result.error_type = type(partial_error).__name__
        result.rows_stored = _rows_stored(store, key)
        result.seconds = time.monotonic() - t0
        return result
    if len(frame) == 0 and not len(old) and partial_error is None:
        result.error = f"{name} returned no {iv.name} bars for {symbol} in the requested range"
        result.error_type = DataSourceError.__name__
        result.seconds = time.monotonic() - t0
        return result

    if len(frame):
        frame, _ = schema.clean(frame)
        extra = {"last_fetch": {
            "at": now.isoformat(timespec="seconds"), "status": STATUS_PARTIAL if partial_error else STATUS_OK,
            "error": str(partial_error) if partial_error else None,
            "include_partial": include_partial,
        }}
        try:
            up = store.upsert(key, frame, market=market, replace=full, extra=extra)
        except LstmcastError as e:
            result.error, result.error_type = str(e), type(e).__name__
            result.seconds = time.monotonic() - t0
            return result
        result.rows_added, result.rows_replaced, result.rows_stored = up.rows_added, up.rows_replaced, up.rows_after
        if up.set_aside:
            result.notes.append(f"the stored series was damaged; its file was kept as {up.set_aside}")
        result.first, result.last = frame.index[0].isoformat(), frame.index[-1].isoformat()
        after = store.load(key)
        before_index = old.index if not full else pd.DatetimeIndex([], tz="UTC")
        result.new_gaps = _new_gaps(before_index, after.index, iv, up.manifest["market"])
        result.quality = quality_report(frame, context=old)
    else:
        result.rows_stored = len(old)
    if partial_error is not None:
        result.status = STATUS_PARTIAL
        result.error, result.error_type = str(partial_error), type(partial_error).__name__
    else:
        result.status = STATUS_OK if result.rows_added else STATUS_UP_TO_DATE
    result.seconds = time.monotonic() - t0
    return result


def _rows_stored(store: Store, key: SeriesKey) -> int:
    """Rows the store holds for ``key`` (0 when none, or when the file is damaged)."""
    try:
        return store.manifest(key)["rows"] if store.exists(key) else 0
    except StoreError:
        return 0


def fetch_many(
    store: Store,
    specs: Sequence[str],
    *,
    max_workers: int = 4,
    on_progress: Callable[[str, str, FetchResult | None], None] | None = None,
    **kwargs: Any,
) -> list[FetchResult]:
    """``fetch_series`` for each spec, at most ``max_workers`` at a time; results in ``specs`` order.

    ``on_progress(spec, event, result)`` is called with event "start" and then "done" (from worker
    threads). A failing spec (any ``LstmcastError``) becomes its failed result; the others go on.
    """

    def one(spec: str) -> FetchResult:
        if on_progress:
            on_progress(spec, "start", None)
        try:
            res = fetch_series(store, spec, **kwargs)
        except LstmcastError as e:
            res = FetchResult(spec=spec, key=None, status=STATUS_FAILED, error=str(e), error_type=type(e).__name__)
        if on_progress:
            on_progress(spec, "done", res)
        return res

    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(specs)))) as pool:
        return list(pool.map(one, specs))
