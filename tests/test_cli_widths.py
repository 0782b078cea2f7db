"""Every table fits 80 and 120 columns with no number, date, id or name cut (no "…" anywhere)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

WIDTHS = (80, 120)
FAST = ("--lookback", "20", "--hidden", "4", "--layers", "1", "--epochs", "1", "--threads", "1")
ELLIPSIS = "…"


def _assert_fits(text: str, width: int, what: str) -> None:
    assert ELLIPSIS not in text, f"{what} at {width} columns cuts a cell:\n{text}"
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, f"{what} at {width} columns is wider than the terminal:\n{text}"


@pytest.fixture
def at_width(data_dir):
    from lstmcast.cli.main import app

    runner = CliRunner()

    def invoke(width: int, *args: str):
        r = runner.invoke(app, ["--data-dir", str(data_dir), *args], env={"COLUMNS": str(width)},
                          catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r

    return invoke


@pytest.fixture
def filled(cli, data_dir, btc_csv, aapl_csv, tmp_path):
    """A store with two series, a trained model, a forecast history with long run ids and prices in
    the thousands, and a cron entry in a tab file."""
    from lstmcast import forecasts
    from lstmcast.data.store import SeriesKey

    assert cli("import", str(btc_csv), "--symbol", "BTC-USD").exit_code == 0
    assert cli("import", str(aapl_csv), "--symbol", "AAPL").exit_code == 0
    assert cli("train", "BTC-USD", *FAST).exit_code == 0
    run_id = json.loads(cli("models", "list", "--json").stdout)[0]["run_id"]
    key = SeriesKey("import", "BTC-USD", "1d")
    t = pd.date_range("2019-10-01", periods=17, freq="D", tz="UTC")
    prices = pd.DataFrame({"close": np.linspace(8038.1234, 8412.5, 17)}, index=t)
    for i, origin in enumerate((10, 12, 14)):
        forecasts.record(data_dir, forecasts.Forecast(
            key=key, run_id=f"{run_id[:-2]}{i:02d}", origin=t[origin], last_close=float(prices.close.iloc[origin]),
            target_times=tuple(t[origin + 1: origin + 3]), predicted=(8123.4567, 8234.5678),
            lower=(7612.3456, 7700.1), upper=(8650.9876, 8777.7), level=0.9,
        ), frame=prices.iloc[: origin + 1])
    tab = tmp_path / "crontab"
    assert cli("init").exit_code == 0
    assert cli("schedule", "install", "--tabfile", str(tab)).exit_code == 0
    return {"run": run_id, "tab": str(tab)}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_table_fits(filled, at_width, width):
    commands = [
        ("data", "list"),
        ("data", "show", "BTC-USD"),
        ("models", "list"),
        ("models", "show", filled["run"][:15]),
        ("forecasts", "BTC-USD"),
        ("schedule", "show", "--tabfile", filled["tab"]),
        ("config", "show"),
    ]
    for args in commands:
        r = at_width(width, *args)
        _assert_fits(r.stdout, width, " ".join(args))
    names = at_width(width, "data", "list").stdout
    assert "import:BTC-USD" in names and "2014-12-01" in names and "2019-10-17" in names
    rows = at_width(width, "forecasts", "BTC-USD").stdout
    assert "8,123.46" in rows and "2019-10-12" in rows


@pytest.mark.parametrize("width", WIDTHS)
def test_fetch_summary_fits(cli, at_width, monkeypatch, width):
    from fake_binance import FakeBinance
    from lstmcast.data import update

    real = update.fetch_series
    with FakeBinance() as fb:
        monkeypatch.setattr(update, "fetch_series", lambda store, spec, **kw: real(
            store, spec, exchange_overrides=fb.overrides, **kw))
        r = at_width(width, "fetch", "binance:BTC/USDT", "--end", "2019-10-18")
    _assert_fits(r.stdout, width, "fetch")
    assert "binance:BTC/USDT" in r.stdout and "1770" in r.stdout and "2019-10-17" in r.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_run_summary_fits(capsys, monkeypatch, width):
    from lstmcast.cli import run
    from lstmcast.runner import EntryOutcome, RunSummary

    monkeypatch.setenv("COLUMNS", str(width))
    summary = RunSummary(run_id="20261202T080552123Z-a1b2c3", started="2026-12-02T08:05:52+00:00", entries=[
        EntryOutcome("yahoo:AAPL 1d", fetched=1, trained="20261202T080552123Z-a1b2c3", promoted=True,
                     forecast={"steps": [{"target_time": "2026-12-03T00:00:00+00:00", "predicted": 187.3456}]}),
        EntryOutcome("binance:BTC/USDT 1h", fetched=0, error="train: not enough data: 40 rows, the look-back "
                     "window needs at least 61 (lower --lookback or fetch more history)"),
    ])
    run._render(summary)
    text = capsys.readouterr().out
    _assert_fits(text, width, "run summary")
    assert "20261202T080552" in text and "2026-12-03: 187.346" in text and "binance:BTC/USDT 1h" in text


def test_narrow_terminal_stacks_rather_than_cuts():
    from rich.console import Console

    from lstmcast.cli import common

    cols = [common.Col("series", common.ID), common.Col("first", common.DATE), common.Col("close", common.NUM)]
    rows = [["binance:BTC/USDT", "2019-01-01 00:00Z", "8,038.12"]]
    con = Console(width=30, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    con.print(common.table("t", cols, rows, width=30))
    text = con.export_text()
    _assert_fits(text, 30, "stacked")
    assert "binance:BTC/USDT" in text and "2019-01-01 00:00Z" in text and "8,038.12" in text


def test_short_ids_are_unique_prefixes():
    from lstmcast.cli.common import short_ids

    ids = ["20261202T080552123Z-a1b2c3", "20261202T080552123Z-a1ffff", "20261203T000000000Z-000000"]
    short = short_ids(ids)
    assert short[ids[2]] == "20261203T000000"
    assert short[ids[0]] == "20261202T080552123Z-a1b" and short[ids[1]] == "20261202T080552123Z-a1f"


def test_run_log_lines_wrap_at_spaces_and_keep_run_ids_whole():
    import logging

    from lstmcast.runlog import LOG_FORMAT, WrappingFormatter

    run_id = "20261202T080552123Z-a1b2c3"
    msg = f"yahoo:AAPL 1d: challenger {run_id} beats the champion 20261201T060000000Z-ffffff on 250 origins"
    rec = logging.LogRecord("lstmcast", logging.INFO, __file__, 1, msg, None, None)
    text = WrappingFormatter(LOG_FORMAT, width=80).format(rec)
    lines = text.splitlines()
    assert len(lines) > 1 and all(len(x) <= 80 for x in lines)
    assert any(run_id in x for x in lines) and any("20261201T060000000Z-ffffff" in x for x in lines)
    assert " ".join(x.strip() for x in lines).endswith(msg)


@pytest.mark.parametrize("width", WIDTHS)
def test_predict_and_backtest_tables_fit(filled, cli, at_width, width):
    assert cli("train", "AAPL", *FAST).exit_code == 0
    bt = ("backtest", "--start", "2019-10-10", "--refit-every", "10", *FAST)
    cases = [
        ("predict", "BTC-USD"),
        ("predict", "BTC-USD", "AAPL", "--horizon", "3"),
        (*bt[:1], "BTC-USD", *bt[1:]),
        (*bt[:1], "BTC-USD", *bt[1:], "--model-family", "linear,naive"),
        (*bt[:1], "BTC-USD", "AAPL", *bt[1:], "--model-family", "linear", "--executor", "serial"),
    ]
    seen = {}
    for args in cases:
        r = at_width(width, *args)
        _assert_fits(r.stdout, width, " ".join(args))
        seen[args] = r.stdout
    one, many, single, board, cross = seen.values()
    assert "80% interval" in one and filled["run"] in one
    assert "import:BTC-USD 1d" in many and "import:AAPL 1d" in many and filled["run"][:15] in many
    assert "forecast accuracy" in single and "buy_and_hold" in single
    assert "same origins for every forecaster" in board and "naive (baseline)" in board and "linear" in board
    assert "across 2 series" in cross and "import:AAPL" in cross and "import:BTC-USD" in cross
