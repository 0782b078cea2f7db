"""A fake Binance spot REST API on 127.0.0.1 for the real ccxt.binance client.

Serves ``/api/v3/exchangeInfo`` (two spot markets) and ``/api/v3/klines`` from the bundled
Coinbase BTC sample (which has a real 12-day hole in March 2019). ``script`` injects faults, one
entry consumed per klines request: 429, 418, 500 (status codes), "drop" (close the connection
without answering), "repeat" (serve the previous page again), "empty" (an empty page whatever
was asked) or None (normal).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
DAY_MS = 86_400_000


def btc_klines() -> list[list]:
    df = pd.read_csv(SAMPLES / "BTC-USD_1d_coinbase.csv", skiprows=1, parse_dates=["date"])
    df = df.sort_values("date")
    out = []
    for row in df.itertuples():
        t = int(pd.Timestamp(row.date).tz_localize("UTC").timestamp() * 1000)
        out.append([t, f"{row.open}", f"{row.high}", f"{row.low}", f"{row.close}", f"{row.volume_btc}",
                    t + DAY_MS - 1, f"{row.volume}", 100, "0", "0", "0"])
    return out


def _symbol(sym: str, base: str, quote: str) -> dict:
    return {
        "symbol": sym, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote,
        "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True,
        "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
        ],
        "permissions": ["SPOT"], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


EXCHANGE_INFO = {
    "timezone": "UTC", "serverTime": 1700000000000, "rateLimits": [], "exchangeFilters": [],
    "symbols": [_symbol("BTCUSDT", "BTC", "USDT"), _symbol("ETHUSDT", "ETH", "USDT")],
}


class FakeBinance:
    """Start with ``with FakeBinance() as fb:``; ``fb.overrides`` plugs it into ccxt.binance."""

    def __init__(self, klines: list[list] | None = None, *, page_max: int = 500, script: list | None = None,
                 retry_after: str = "0"):
        self.klines = klines if klines is not None else btc_klines()
        self.retry_after = retry_after  # the Retry-After header sent with 429 and 418
        self.page_max = page_max
        self.script = list(script or [])
        self.requests: list[dict] = []
        self.last_page: list[list] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def overrides(self) -> dict:
        api = f"{self.url}/api/v3"
        return {"urls": {"api": {"public": api, "private": api, "v1": f"{self.url}/api/v1"}}, "rateLimit": 1}

    def __enter__(self) -> FakeBinance:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kline_requests(self) -> list[dict]:
        return [q for q in self.requests if q["path"].endswith("/klines")]

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: object, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append({"path": parts.path, **q})
            if parts.path == "/api/v3/exchangeInfo":
                return self._send(h, 200, EXCHANGE_INFO)
            if parts.path != "/api/v3/klines":
                return self._send(h, 404, {"code": -1, "msg": "not found"})
            if q.get("symbol") not in ("BTCUSDT", "ETHUSDT"):
                return self._send(h, 400, {"code": -1121, "msg": "Invalid symbol."})
            step = self.script.pop(0) if self.script else None
            if step in (429, 418):
                return self._send(h, step, {"code": -1003, "msg": "Too many requests"},
                                  {"Retry-After": self.retry_after})
            if isinstance(step, int):  # a 5xx from the load balancer: plain text, not Binance JSON
                body = b"Internal Server Error"
                h.send_response(step)
                h.send_header("Content-Type", "text/plain")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                return None
            if step == "drop":
                h.close_connection = True
                h.wfile.flush()
                h.connection.shutdown(2)
                return None
            if step == "empty":
                return self._send(h, 200, [])
            if step == "repeat" and self.last_page:
                return self._send(h, 200, self.last_page)
            start = int(q.get("startTime", 0))
            end = int(q.get("endTime", 2**62))
            limit = min(int(q.get("limit", 500)), self.page_max)
            page = [k for k in self.klines if start <= k[0] <= end][:limit]
            self.last_page = page
            return self._send(h, 200, page)


def hourly_klines(n: int = 1200, *, start: str = "2019-06-01") -> list[list]:
    """``n`` hourly bars of a gentle random walk (for 1h fetches; the fake serves whatever it holds)."""
    import numpy as np

    hour = 3_600_000
    t0 = int(pd.Timestamp(start, tz="UTC").timestamp() * 1000)
    close = 8000 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.004, n)))
    out = []
    for i, c in enumerate(close):
        o = close[i - 1] if i else c
        t = t0 + i * hour
        out.append([t, f"{o:.2f}", f"{max(o, c) * 1.001:.2f}", f"{min(o, c) * 0.999:.2f}", f"{c:.2f}", "12.5",
                    t + hour - 1, f"{12.5 * c:.2f}", 100, "0", "0", "0"])
    return out
