"""Smoke tests against the real services; skipped by default (run with: pytest -m online)."""

from __future__ import annotations

import pytest

from lstmcast.data.update import fetch_series

pytestmark = pytest.mark.online


def test_yahoo_aapl_recent(store):
    r = fetch_series(store, "AAPL", start="2024-01-01", end="2024-02-01")
    assert r.status == "ok", r.error
    assert r.rows_added >= 15
    assert store.load(r.key).index[0].date().isoformat() == "2024-01-02"


def test_binance_btc_recent(store):
    r = fetch_series(store, "binance:BTC/USDT", start="2024-01-01", end="2024-01-11")
    assert r.status == "ok", r.error
    assert r.rows_added == 10
