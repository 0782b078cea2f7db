"""A fake Yahoo Finance far end: a requests.Session whose adapter answers like Yahoo's chart API.

The real yfinance code path runs against it (cookie, crumb, tz lookup, chart JSON parsing).
Bars come from the bundled AAPL sample; each is stamped at the 09:30 New York open, as Yahoo does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import requests
from requests.adapters import BaseAdapter

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
NY = "America/New_York"


def sample_bars(name: str = "AAPL_1d.csv") -> pd.DataFrame:
    df = pd.read_csv(SAMPLES / name, parse_dates=["Date"]).set_index("Date")
    return df


def chart_json(symbol: str, bars: pd.DataFrame, *, tz: str = NY, exchange: str = "NMS",
               market_time: int | None = None) -> dict:
    """Chart-API JSON for ``bars`` (daily rows indexed by local date). ``market_time`` (the meta's
    regularMarketTime: the newest trade Yahoo knows of) defaults to the last bar's open."""
    opens = pd.DatetimeIndex(bars.index).tz_localize(tz) + pd.Timedelta(hours=9, minutes=30)
    ts = [int(t.timestamp()) for t in opens]
    last = opens[-1] if len(opens) else pd.Timestamp("2023-09-21 09:30", tz=tz)
    day = last.normalize()
    meta = {
        "currency": "USD", "symbol": symbol, "exchangeName": exchange, "instrumentType": "EQUITY",
        "firstTradeDate": 345479400,
        "regularMarketTime": market_time if market_time is not None else (ts[-1] if ts else 0), "gmtoffset": -14400,
        "timezone": "EDT", "exchangeTimezoneName": tz, "dataGranularity": "1d", "range": "",
        "currentTradingPeriod": {
            p: {"timezone": "EDT", "start": int((day + pd.Timedelta(hours=h0)).timestamp()),
                "end": int((day + pd.Timedelta(hours=h1)).timestamp()), "gmtoffset": -14400}
            for p, h0, h1 in (("pre", 4, 9.5), ("regular", 9.5, 16), ("post", 16, 20))
        },
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result: dict = {"meta": meta, "indicators": {"quote": [{}]}}
    if len(bars):
        result["timestamp"] = ts
        result["indicators"] = {
            "quote": [{
                "open": bars["Open"].tolist(), "high": bars["High"].tolist(), "low": bars["Low"].tolist(),
                "close": bars["Close"].tolist(), "volume": bars["Volume"].astype(int).tolist(),
            }],
            "adjclose": [{"adjclose": bars["Adj Close"].tolist()}],
        }
    return {"chart": {"result": [result], "error": None}}


def not_found_json(symbol: str) -> dict:
    return {"chart": {"result": None, "error": {"code": "Not Found",
                                                  "description": "No data found, symbol may be delisted"}}}


Responder = Callable[[str, dict], tuple[int, str | bytes, dict] | None]


class FakeYahoo(requests.Session):
    """requests.Session answering Yahoo's hosts from ``self.bars`` (symbol -> daily frame).

    ``script`` is a list of overrides consumed one per chart request: an int status (429, 500: an
    HTML error page), "500-json" (a 500 carrying Yahoo's JSON error body, which yfinance turns into
    "no data" rather than an HTTP error), "malformed", "empty" (no bars, no market time), "stale"
    (the window of a year earlier: starts before the request and ends before it), "short" (only the
    first 5 bars of the requested window) or None for a normal
    answer. ``log`` records every chart request.
    """

    def __init__(self, bars: dict[str, pd.DataFrame] | None = None, script: list | None = None,
                 exchanges: dict[str, tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.exchanges = exchanges or {}  # symbol -> (Yahoo exchange code, time zone); default NMS, New York
        self.bars = bars if bars is not None else {"AAPL": sample_bars()}
        self.script = list(script or [])
        self.log: list[tuple[str, dict]] = []
        self.retry_after = "1"  # the Retry-After header sent with 429
        adapter = _Adapter(self)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def chart_requests(self) -> list[dict]:
        return [q for path, q in self.log if path.startswith("/v8/finance/chart/")]

    def answer(self, url: str) -> tuple[int, str | bytes, dict]:
        parts = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.log.append((parts.path, q))
        if parts.hostname == "fc.yahoo.com":
            return 404, "", {}
        if parts.path.endswith("/v1/test/getcrumb"):
            return 200, "fakecrumb", {"content-type": "text/plain"}
        if parts.path.startswith("/v8/finance/chart/"):
            symbol = unquote(parts.path.rsplit("/", 1)[-1])  # ^GSPC arrives as %5EGSPC
            step = self.script.pop(0) if self.script else None
            if step == 429:
                return 429, "Too Many Requests", {"retry-after": self.retry_after}
            if isinstance(step, int):
                return step, "<html><body>Internal Server Error</body></html>", {"content-type": "text/html"}
            if step == "500-json":
                body = {"chart": {"result": None, "error": {"code": "Internal Server Error",
                                                             "description": "Internal Server Error"}}}
                return 500, json.dumps(body), {"content-type": "application/json"}
            if step == "malformed":
                return 200, '{"chart": {"result": [{"meta": ', {"content-type": "application/json"}
            if symbol not in self.bars:
                return 404, json.dumps(not_found_json(symbol)), {"content-type": "application/json"}
            bars = self.bars[symbol]
            newest = pd.Timestamp(bars.index[-1]).tz_localize(NY) + pd.Timedelta(hours=9, minutes=30)
            # the market time Yahoo reports is its newest trade, whatever window was asked for;
            # a stale (cached) answer carries the stale one of its own window
            market_time = None if step == "stale" else int(newest.timestamp())
            if step == "empty":
                bars = bars.iloc[0:0]
            elif "period1" in q:
                lo = pd.Timestamp(int(q["period1"]), unit="s").tz_localize(None)
                hi = pd.Timestamp(int(q.get("period2", 4102444800)), unit="s").tz_localize(None)
                if step == "stale":  # a cached answer to an older request
                    lo, hi = lo - pd.Timedelta(days=730), lo - pd.Timedelta(days=365)
                opens = pd.DatetimeIndex(bars.index).tz_localize(NY).tz_convert("UTC").tz_localize(None) \
                    + pd.Timedelta(hours=13, minutes=30)
                bars = bars[(opens >= lo) & (opens < hi)]
                if step == "short":
                    bars = bars.iloc[:5]
            elif q.get("range") == "1d":
                bars = bars.iloc[-1:]
            exchange, tz = self.exchanges.get(symbol, ("NMS", NY))
            doc = chart_json(symbol, bars, tz=tz, exchange=exchange, market_time=0 if step == "empty" else market_time)
            return 200, json.dumps(doc), {"content-type": "application/json"}
        return 404, "not found", {}


class _Adapter(BaseAdapter):
    def __init__(self, fake: FakeYahoo) -> None:
        super().__init__()
        self.fake = fake

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        status, body, headers = self.fake.answer(request.url)
        resp = requests.Response()
        resp.status_code = status
        resp._content = body.encode() if isinstance(body, str) else body
        resp.headers.update(headers)
        resp.url = request.url
        resp.request = request
        resp.encoding = "utf-8"
        return resp

    def close(self) -> None:
        pass
