"""Files that used to be misread or refused: ambiguous dates, offsets, delimiters, compression, wide files, markets."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcast.data.importer import import_file
from lstmcast.data.store import SeriesKey
from lstmcast.errors import DataError, UsageError


def utc_days(days) -> list[pd.Timestamp]:
    return [pd.Timestamp(d, tz="UTC") for d in days]


def csv_text(stamps, *, sep: str = ",", closes=None, decimal: str = ".") -> str:
    closes = closes if closes is not None else [100.0 + i * 0.25 for i in range(len(stamps))]
    lines = [sep.join(["Date", "Open", "High", "Low", "Close", "Volume"])]
    for t, c in zip(stamps, closes, strict=True):
        cells = [repr(x).replace(".", decimal) for x in (c - 0.5, c + 1.0, c - 1.0, c)]
        lines.append(sep.join([t, *cells, "1000"]))
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- ambiguous day/month ----------------------------------------------------------------------------
DAYFIRST_DAYS = pd.bdate_range("2013-01-02", periods=60)  # January to March 2013


def test_dayfirst_file_is_refused_naming_two_rows_and_the_options(store, tmp_path):
    path = write(tmp_path / "eu.csv", csv_text([d.strftime("%d/%m/%Y") for d in DAYFIRST_DAYS]))
    with pytest.raises(DataError) as exc:
        import_file(store, path, symbol="TEST")
    msg = str(exc.value)
    assert "dates in 'Date' are ambiguous" in msg
    assert "row 1 '02/01/2013' is 2013-01-02 day-first or 2013-02-01 month-first" in msg
    assert "row 2 '03/01/2013'" in msg
    assert "--dayfirst" in msg and "--date-format FMT" in msg
    assert "can only be day-first" in msg  # 14/01/2013 tells, and the message says so
    assert store.list() == []


def test_dayfirst_file_imports_with_dayfirst_or_a_format(store, tmp_path):
    path = write(tmp_path / "eu.csv", csv_text([d.strftime("%d/%m/%Y") for d in DAYFIRST_DAYS]))
    res = import_file(store, path, symbol="TEST", dayfirst=True)
    got = store.load(res.upsert.key)
    assert list(got.index) == utc_days(DAYFIRST_DAYS)
    res = import_file(store, path, symbol="TEST2", date_format="%d/%m/%Y")
    assert list(store.load(res.upsert.key).index) == utc_days(DAYFIRST_DAYS)


def test_dates_that_read_the_same_either_way_are_not_ambiguous(store, tmp_path):
    path = write(tmp_path / "f.csv", csv_text(["01/01/2024", "02/02/2024"]))
    import_file(store, path, symbol="X", market="crypto")
    assert list(store.load(SeriesKey("import", "X", "1d")).index) == utc_days(["2024-01-01", "2024-02-02"])


def test_a_format_that_does_not_match_names_the_row(store, tmp_path):
    path = write(tmp_path / "f.csv", csv_text(["2024-01-02", "2024-01-03"]))
    with pytest.raises(DataError, match=r"does not match --date-format '%d/%m/%Y' \(row 1 '2024-01-02'\)"):
        import_file(store, path, symbol="X", date_format="%d/%m/%Y")


# -- offsets --------------------------------------------------------------------------------------------
TOKYO_DAYS = ["2020-01-06", "2020-01-07", "2020-01-08", "2020-01-09", "2020-01-10", "2020-01-14"]


def test_tokyo_daily_file_with_offsets_keeps_its_dates(store, tmp_path):
    path = write(tmp_path / "t.csv", csv_text([f"{d} 00:00:00+09:00" for d in TOKYO_DAYS]))
    res = import_file(store, path, symbol="7203.T")
    got = store.load(res.upsert.key)
    assert list(got.index) == utc_days(TOKYO_DAYS)
    assert res.market == "equity:XTKS" and "XTKS" in res.market_reason
    assert res.upsert.manifest["gaps"]["missing_bars"] == 0  # 13 January 2020 is Coming of Age Day in Japan
    assert any("date written in the file" in n for n in res.notes)


def test_daily_epoch_at_the_exchange_midnight_gets_the_local_date(store, tmp_path):
    stamps = [str(int(pd.Timestamp(d, tz="Asia/Tokyo").timestamp())) for d in TOKYO_DAYS]  # 15:00 UTC the day before
    path = write(tmp_path / "t.csv", csv_text(stamps).replace("Date", "timestamp"))
    res = import_file(store, path, symbol="7203.T")
    assert list(store.load(res.upsert.key).index) == utc_days(TOKYO_DAYS)


def test_intraday_offsets_become_utc(store, tmp_path):
    stamps = [f"2024-03-01 {h:02d}:00:00-05:00" for h in range(10, 16)]
    res = import_file(store, write(tmp_path / "h.csv", csv_text(stamps)), symbol="BTC-USD", interval="1h")
    got = store.load(res.upsert.key)
    assert got.index[0] == pd.Timestamp("2024-03-01 15:00", tz="UTC")


def test_naive_intraday_needs_tz(store, tmp_path):
    stamps = [f"2024-03-01 {h:02d}:00:00" for h in range(10, 16)]
    path = write(tmp_path / "h.csv", csv_text(stamps))
    with pytest.raises(DataError, match="intraday times in 'Date' have no UTC offset.*--tz ZONE"):
        import_file(store, path, symbol="BTC-USD", interval="1h")
    res = import_file(store, path, symbol="BTC-USD", interval="1h", tz="Europe/Berlin")
    assert store.load(res.upsert.key).index[0] == pd.Timestamp("2024-03-01 09:00", tz="UTC")
    with pytest.raises(UsageError, match="--tz 'Mars/Olympus' is not a time zone"):
        import_file(store, path, symbol="BTC-USD", interval="1h", tz="Mars/Olympus")


def test_mixed_offsets_and_none_are_refused(store, tmp_path):
    path = write(tmp_path / "m.csv", csv_text(["2024-03-01 10:00:00+01:00", "2024-03-01 11:00:00"]))
    with pytest.raises(DataError, match="some times in 'Date' carry a UTC offset and some do not"):
        import_file(store, path, symbol="BTC-USD", interval="1h")


def test_cryptodatadownload_hourly_am_pm(store, tmp_path):
    stamps = ["2019-10-17 09-AM", "2019-10-17 10-AM", "2019-10-17 11-AM", "2019-10-17 12-PM", "2019-10-17 01-PM"]
    path = write(tmp_path / "cdd.csv", csv_text(stamps))
    res = import_file(store, path, symbol="BTCUSD", interval="1h", date_format="%Y-%m-%d %I-%p", tz="UTC")
    got = store.load(res.upsert.key)
    assert list(got.index) == list(pd.date_range("2019-10-17 09:00", periods=5, freq="h", tz="UTC"))
    res = import_file(store, path, symbol="BTCUSD2", interval="1h", tz="UTC")  # the format is also found alone
    assert list(store.load(res.upsert.key).index) == list(got.index)


# -- delimiters, decimal commas, compression ----------------------------------------------------------------
DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
CLOSES = [1234.5, 1240.25, 1239.0, 1250.75, 1251.5]


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("|", ".")])
def test_sniffed_delimiters_and_decimal_commas(store, tmp_path, sep, decimal):
    path = write(tmp_path / "f.csv", csv_text(DAYS, sep=sep, closes=CLOSES, decimal=decimal))
    res = import_file(store, path, symbol="AAPL")
    got = store.load(res.upsert.key)
    assert got["close"].tolist() == CLOSES and list(got.index) == utc_days(DAYS)
    assert ("read decimal commas" in res.notes) == (decimal == ",")


def compress(path: Path, text: str, how: str) -> Path:
    data = text.encode()
    if how == "gz":
        out = path.with_name(path.name + ".gz")
        out.write_bytes(gzip.compress(data))
    elif how == "bz2":
        out = path.with_name(path.name + ".bz2")
        out.write_bytes(bz2.compress(data))
    elif how == "xz":
        out = path.with_name(path.name + ".xz")
        out.write_bytes(lzma.compress(data))
    else:
        out = path.with_suffix(".zip")
        with zipfile.ZipFile(out, "w") as z:
            z.writestr(path.name, data)
    return out


@pytest.mark.parametrize("how", ["gz", "bz2", "xz", "zip"])
def test_compressed_inputs(store, tmp_path, how):
    path = compress(tmp_path / "prices.csv", csv_text(DAYS, closes=CLOSES), how)
    res = import_file(store, path, symbol="AAPL")
    assert store.load(res.upsert.key)["close"].tolist() == CLOSES


def test_zip_with_two_files_is_refused(store, tmp_path):
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("a.csv", csv_text(DAYS))
        z.writestr("b.csv", csv_text(DAYS))
    with pytest.raises(DataError, match=r"two.zip is a zip holding 2 files \(a.csv, b.csv\); it must hold one"):
        import_file(store, tmp_path / "two.zip", symbol="AAPL")


# -- wide ASSET:field files ------------------------------------------------------------------------------------
def wide_csv(path: Path) -> Path:
    idx = pd.date_range("2024-01-01", periods=10, freq="D")
    cols = {}
    for asset, base in (("BTC", 40000.0), ("ETH", 2000.0)):
        c = base + np.arange(10.0)
        cols.update({f"{asset}:open": c, f"{asset}:high": c + 5, f"{asset}:low": c - 5, f"{asset}:close": c,
                     f"{asset}:volume": np.full(10, 7.0)})
    pd.DataFrame(cols, index=idx).to_csv(path)  # pandas writes the unnamed index: the first header cell is empty
    return path


def test_wide_file_reads_one_asset(store, tmp_path):
    path = wide_csv(tmp_path / "wide.csv")
    assert path.read_text().startswith(",BTC:open,BTC:high")
    res = import_file(store, path, symbol="ETHUSD", asset="ETH")
    got = store.load(res.upsert.key)
    assert got["close"].tolist() == (2000.0 + np.arange(10.0)).tolist()
    assert res.market == "crypto"  # weekends in the data: 24/7


def test_wide_file_without_asset_lists_them(store, tmp_path):
    with pytest.raises(DataError, match=r"ASSET:field columns for 2 asset\(s\) \(BTC, ETH\); pass --asset"):
        import_file(store, wide_csv(tmp_path / "wide.csv"), symbol="X")
    with pytest.raises(DataError, match="no columns for asset 'DOGE'; assets: BTC, ETH"):
        import_file(store, wide_csv(tmp_path / "wide.csv"), symbol="X", asset="DOGE")


def test_empty_first_header_cell_that_is_not_time_names_what_it_saw(store, tmp_path):
    path = write(tmp_path / "f.csv", ",close\nfoo,1\nbar,2\n")
    with pytest.raises(DataError, match=r"the first header cell is empty \(header: 'Unnamed: 0,close'\).*'foo'"):
        import_file(store, path, symbol="X")


# -- market --------------------------------------------------------------------------------------------------
def test_symbol_that_does_not_tell_with_weekends_is_24_7(store, tmp_path):
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range("2024-01-01", periods=14, freq="D")]
    res = import_file(store, write(tmp_path / "b.csv", csv_text(days)), symbol="BTCUSD")
    assert res.market == "crypto"
    assert res.market_reason == "4 of 14 bars fall on a weekend: traded 24/7"
    assert res.upsert.manifest["market"] == "crypto"


def test_symbol_that_does_not_tell_without_weekends_is_nyse(store, tmp_path):
    res = import_file(store, write(tmp_path / "a.csv", csv_text(DAYS)), symbol="AAPL")
    assert res.market == "equity" and "NYSE calendar, the default for imports" in res.market_reason


def test_market_option_overrides(store, tmp_path):
    res = import_file(store, write(tmp_path / "a.csv", csv_text(DAYS)), symbol="BTCUSD", market="24/7")
    assert (res.market, res.market_reason) == ("crypto", "given by --market")
    res = import_file(store, write(tmp_path / "a.csv", csv_text(DAYS)), symbol="VOD", market="XLON")
    assert res.upsert.manifest["market"] == "equity:XLON"


def test_weekend_daily_bars_of_an_equity_are_refused(store, tmp_path):
    path = write(tmp_path / "t.csv", csv_text(["2020-01-03", "2020-01-05", "2020-01-06"]))  # 5 Jan: a Sunday
    with pytest.raises(DataError, match=r"1 daily bar\(s\) fall on days XTKS never trades \(2020-01-05 Sunday\)"):
        import_file(store, path, symbol="7203.T")
    with pytest.raises(DataError, match="--market crypto"):
        import_file(store, path, symbol="AAPL", market="equity")
    res = import_file(store, path, symbol="AAPL", market="crypto")
    assert res.upsert.rows_added == 3


def test_a_few_weekend_bars_for_an_unknown_symbol_are_refused(store, tmp_path):
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-01-01", periods=30)] + ["2024-02-18"]
    with pytest.raises(DataError, match=r"1 of 31 bars fall on a weekend \(2024-02-18 Sun\).*--market crypto"):
        import_file(store, write(tmp_path / "f.csv", csv_text(days)), symbol="XYZ")


# -- quality -------------------------------------------------------------------------------------------------
def test_unadjusted_split_and_jumps_are_flagged(store, tmp_path):
    closes = [100.0, 101.0, 102.0, 55.8, 56.0]  # 2-for-1 split between day 3 and 4 (log return -0.60)
    res = import_file(store, write(tmp_path / "s.csv", csv_text(DAYS, closes=closes)), symbol="AAPL")
    assert res.quality["jumps"] == [{"time": "2024-01-05T00:00:00+00:00", "log_return": -0.6032}]
    assert res.quality["likely_splits"][0]["split"] == "2-for-1"
