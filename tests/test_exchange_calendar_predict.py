"""A Tokyo stock's market comes from its exchange, and predict's future bars skip Tokyo's holidays.

7203.T through the real yfinance code against a fake Yahoo that answers as the Japan Exchange
(``exchangeName`` JPX, Asia/Tokyo), and the same series imported from a CSV. The last bar is
Friday 26 April 2024; Monday 29 April (Showa Day) and 3-6 May (Golden Week) are Tokyo holidays,
ordinary trading days in New York.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from fake_yahoo import FakeYahoo, sample_bars
from lstmcast.data import calendar
from lstmcast.data.sources import yahoo
from lstmcast.data.store import Store
from lstmcast.data.update import fetch_series

SMALL = ["--lookback", "10", "--hidden", "8", "--layers", "1", "--epochs", "2", "--threads", "1", "--horizon", "5"]
TOKYO_NEXT = ["2024-04-30", "2024-05-01", "2024-05-02", "2024-05-07", "2024-05-08"]


def tokyo_bars(n: int = 160) -> pd.DataFrame:
    sessions = calendar.expected_bars(pd.Timestamp("2023-06-01", tz="UTC"), pd.Timestamp("2024-04-26", tz="UTC"),
                                      calendar.parse_interval("1d"), "equity:XTKS")[-n:]
    bars = sample_bars().iloc[:n].copy()
    bars.index = pd.DatetimeIndex(sessions.tz_localize(None), name="Date")
    return bars


def forecast_dates(cli, spec: str) -> list[str]:
    torch.set_num_threads(1)
    r = cli("train", spec, *SMALL, "--json")
    assert r.exit_code == 0, r.output
    r = cli("predict", spec, "--json")
    assert r.exit_code == 0, r.output
    return [s["time"][:10] for s in json.loads(r.stdout)[0]["forecast"]]


def test_yahoo_metadata_names_the_market():
    assert yahoo.market_from_metadata({"exchangeName": "JPX", "instrumentType": "EQUITY"}) == "equity:XTKS"
    assert yahoo.market_from_metadata({"exchangeName": "LSE", "instrumentType": "EQUITY"}) == "equity:XLON"
    assert yahoo.market_from_metadata({"exchangeName": "NMS", "instrumentType": "EQUITY"}) == "equity"
    assert yahoo.market_from_metadata({"exchangeName": "CCC", "instrumentType": "CRYPTOCURRENCY"}) == "crypto"
    assert yahoo.market_from_metadata({"exchangeName": "CCY", "instrumentType": "CURRENCY"}) == "fx"
    assert yahoo.market_from_metadata({"exchangeName": "???"}) is None


@pytest.mark.slow
def test_fetched_tokyo_stock_predicts_on_tokyo_trading_days(cli, data_dir):
    fake = FakeYahoo({"7203": tokyo_bars()}, exchanges={"7203": ("JPX", "Asia/Tokyo")})
    # "7203" (no suffix) so that only Yahoo's metadata can tell the exchange, not the spelling
    res = fetch_series(Store(data_dir), "7203", session=fake, now=pd.Timestamp("2024-04-28", tz="UTC"))
    assert res.ok, res.error
    manifest = Store(data_dir).manifest(res.key)
    assert manifest["market"] == "equity:XTKS"
    assert manifest["last"] == "2024-04-26T00:00:00+00:00"
    assert manifest["gaps"]["missing_bars"] == 0  # Tokyo's holidays are not gaps
    assert forecast_dates(cli, "yahoo:7203") == TOKYO_NEXT


@pytest.mark.slow
def test_imported_tokyo_series_predicts_on_tokyo_trading_days(cli, tmp_path):
    bars = tokyo_bars()
    path = tmp_path / "toyota.csv"
    bars.assign(Date=[f"{d:%Y-%m-%d} 00:00:00+09:00" for d in bars.index]).to_csv(path, index=False)
    r = cli("import", str(path), "--symbol", "7203.T")
    assert r.exit_code == 0, r.output
    assert "market equity:XTKS: suffix .T of 7203.T is exchange XTKS" in r.stdout
    dates = forecast_dates(cli, "7203.T")
    assert dates == TOKYO_NEXT
    nyse = calendar.next_bars(pd.Timestamp("2024-04-26", tz="UTC"), 5, calendar.parse_interval("1d"), "equity")
    assert [d.date().isoformat() for d in nyse] != dates  # New York trades on 29 April and 3 May
