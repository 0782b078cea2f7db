"""`lstmcast fetch` end to end: exit codes, one-line errors, JSON summary, offline behaviour."""

from __future__ import annotations

import json
import time

import pytest


@pytest.mark.parametrize("spec", ["AAPL", "binance:BTC/USDT"])
def test_unreachable_service_one_line_exit_1_store_untouched(cli, data_dir, spec, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)  # the far end: a world without DNS
    t0 = time.monotonic()
    r = cli("fetch", spec)
    assert time.monotonic() - t0 < 15
    assert r.exit_code == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert "cannot reach" in lines[0] and "lstmcast import" in lines[0]
    assert not (data_dir / "series").exists()


def test_bad_symbol_syntax_is_usage_error(cli):
    r = cli("fetch", "binance:BTCUSDT")
    assert r.exit_code == 2 and "BASE/QUOTE" in r.stderr


def test_help_lists_fetch_without_importing_vendors(run_cli):
    import subprocess
    import sys

    from conftest import subprocess_env

    code = ("import sys; from lstmcast.cli.main import app; "
            "print(any(m in sys.modules for m in ('yfinance', 'ccxt', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert out.stdout.strip() == "False", out.stderr
    r = run_cli("fetch", "--help")
    assert r.returncode == 0 and "--include-partial" in r.stdout


def test_partial_failure_exit_3_and_json_summary(cli, data_dir, monkeypatch):
    from fake_binance import FakeBinance
    from lstmcast.data import update

    real = update.fetch_series

    with FakeBinance() as fb:
        def with_fake(store, spec, **kw):
            return real(store, spec, exchange_overrides=fb.overrides, **kw)

        monkeypatch.setattr(update, "fetch_series", with_fake)
        r = cli("fetch", "binance:BTC/USDT", "binance:DOGE/USDT", "--end", "2019-10-18", "--json")
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)
    by = {x["spec"]: x for x in doc["results"]}
    assert by["binance:BTC/USDT"]["status"] == "ok" and by["binance:BTC/USDT"]["rows_added"] == 1770
    assert by["binance:BTC/USDT"]["missing_bars"] == 12
    assert by["binance:DOGE/USDT"]["status"] == "failed" and "DOGE/USDT" in by["binance:DOGE/USDT"]["error"]
    assert doc["ok"] == 1 and doc["failed"] == 1


def test_table_output_and_exit_0(cli, monkeypatch):
    from fake_binance import FakeBinance
    from lstmcast.data import update

    real = update.fetch_series
    with FakeBinance() as fb:
        monkeypatch.setattr(update, "fetch_series", lambda store, spec, **kw: real(
            store, spec, exchange_overrides=fb.overrides, **kw))
        r = cli("fetch", "binance:BTC/USDT", "--end", "2019-10-18")
    assert r.exit_code == 0, r.output
    assert "binance:BTC/USDT" in r.stdout and "1770" in r.stdout and "ok" in r.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["AAPL", "MSFT", "--start", "notadate"], "--start 'notadate' is not a date"),
    (["AAPL", "--start", "2020-02-01", "--end", "2020-01-01"], "--start (2020-02-01) must be before --end"),
    (["AAPL", "--interval", "4h"], "no 4h bars; supported intervals: 1m, 5m, 15m, 30m, 1h, 1d, 1wk"),
    (["AAPL", "--interval", "2h"], "no 2h bars; supported intervals: 1m, 5m, 15m, 30m, 1h, 1d, 1wk"),
    (["binance:BTC/USDT", "--interval", "2h"], "no 2h bars; supported intervals: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1wk"),
])
def test_bad_dates_and_intervals_are_usage_errors_before_any_request(cli, data_dir, monkeypatch, args, expected):
    import socket

    def no_network(*a, **kw):
        raise AssertionError("no request may be made for a bad command line")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    r = cli("fetch", *args)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert not (data_dir / "series").exists()


def test_help_names_intervals_per_source(run_cli):
    from conftest import subprocess_env

    r = run_cli("fetch", "--help", env=subprocess_env(COLUMNS="200"))
    assert r.returncode == 0
    assert "1m, 5m, 15m, 30m, 1h, 4h (ccxt), 1d, 1wk" in r.stdout


def test_repeated_page_ends_partial_exit_1_and_reports_stored_rows(cli, monkeypatch):
    from fake_binance import FakeBinance
    from lstmcast.data import update

    real = update.fetch_series
    with FakeBinance(script=[None, "repeat", "repeat", "repeat"]) as fb:
        monkeypatch.setattr(update, "fetch_series", lambda store, spec, **kw: real(
            store, spec, exchange_overrides=fb.overrides, sleep=lambda s: None, **kw))
        r = cli("fetch", "binance:BTC/USDT", "--end", "2019-10-18")
        j = cli("fetch", "binance:BTC/USDT", "--end", "2019-10-18", "--json")
    assert r.exit_code == 1, r.output
    assert "partial" in r.stdout and "500/1782" in r.stdout
    assert "repeated a page" in r.stderr and "500 rows stored" in r.stderr
    doc = json.loads(j.stdout)["results"][0]
    assert j.exit_code == 0 and doc["status"] == "ok"  # the fake's script is spent: the rest arrives
    assert doc["bars_expected"] == 1782 - 499 and doc["bars_received"] == 1782 - 499 - 12


def test_retries_are_reported_with_status_and_wait(cli, monkeypatch):
    """Off a terminal, with --verbose, each retry is one plain line on stderr; the fetch succeeds."""
    from fake_binance import FakeBinance, hourly_klines
    from lstmcast.data import update

    real = update.fetch_series
    with FakeBinance(klines=hourly_klines(1200), script=[429, None, 429, 500], retry_after="1") as fb:
        monkeypatch.setattr(update, "fetch_series", lambda store, spec, **kw: real(
            store, spec, exchange_overrides=fb.overrides, sleep=lambda s: None, **kw))
        r = cli("fetch", "binance:BTC/USDT", "--interval", "1h", "--verbose")
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if "waiting" in x]
    assert lines[0] == "binance:BTC/USDT: 429 from binance, waiting 1 s (retry 1)", r.stderr
    assert len(lines) == 3 and "500 from binance" in lines[2] and "(retry 2)" in lines[2]
    assert "1200" in r.stdout


def test_live_progress_shows_pages_rows_and_retries(data_dir, monkeypatch):
    """On a terminal: the live line names the page and rows so far; a retry also leaves a line.
    (sleep really waits 0.3 s here so that the live display refreshes at least once.)"""
    import io

    from rich.console import Console

    from fake_binance import FakeBinance, hourly_klines
    from lstmcast.cli import common, fetch
    from lstmcast.data import update
    from lstmcast.data.store import Store

    buf = io.StringIO()
    monkeypatch.setattr(common, "err", lambda: Console(file=buf, force_terminal=True, width=120,
                                                       color_system=None))
    real = update.fetch_series
    with FakeBinance(klines=hourly_klines(1200), script=[None, 429], retry_after="1") as fb:
        monkeypatch.setattr(update, "fetch_series", lambda store, spec, **kw: real(
            store, spec, exchange_overrides=fb.overrides, sleep=lambda s: time.sleep(0.3), **kw))
        results = fetch._with_progress(Store(data_dir), ["binance:BTC/USDT"], 1, {"interval": "1h"})
    assert results[0].status == "ok" and results[0].rows_added == 1200
    text = buf.getvalue()
    assert "binance:BTC/USDT: 429 from binance, waiting 1 s (retry 1)" in text
    assert "page 1, 500 rows" in text  # the live line, drawn while the retry is waited out
