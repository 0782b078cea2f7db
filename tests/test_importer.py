"""import_file reads price files as people actually have them: one test per quirk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcast.data import schema
from lstmcast.data.importer import import_file, read_table
from lstmcast.data.store import SeriesKey
from lstmcast.errors import DataError

DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
CLOSES = [10.0, 11.0, 12.0, 13.0, 14.0]


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"))
    return path


def ohlcv_csv(path: Path, *, time_header: str = "Date", stamps: list[str] | None = None,
              cap: bool = True, extra_header: str = "", extra_cell: str = "") -> Path:
    stamps = stamps if stamps is not None else DAYS
    names = ["Open", "High", "Low", "Close", "Volume"] if cap else ["open", "high", "low", "close", "volume"]
    lines = [",".join([time_header, *names]) + extra_header]
    for t, c in zip(stamps, CLOSES, strict=True):
        lines.append(f"{t},{c - 0.5},{c + 1},{c - 1},{c},{int(c * 100)}{extra_cell}")
    return write(path, "\n".join(lines) + "\n")


def expected_index(days=DAYS) -> list[pd.Timestamp]:
    return [pd.Timestamp(d, tz="UTC") for d in days]


def imported(store, path: Path, symbol: str = "AAPL", **kw):
    res = import_file(store, path, symbol=symbol, **kw)
    return res, store.load(res.upsert.key)


@pytest.mark.parametrize("time_header", ["Date", "date", "timestamp", "time", "Datetime", "TIME"])
@pytest.mark.parametrize("cap", [True, False])
def test_header_variants(store, tmp_path, time_header, cap):
    res, got = imported(store, ohlcv_csv(tmp_path / "f.csv", time_header=time_header, cap=cap))
    assert list(got.index) == expected_index()
    assert got["close"].tolist() == CLOSES
    assert got["open"].tolist() == [c - 0.5 for c in CLOSES]
    assert got["volume"].tolist() == [c * 100 for c in CLOSES]
    assert res.notes == []


def test_adj_close_header_is_kept(store, tmp_path):
    path = write(tmp_path / "f.csv", """
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10,11,9,10,8.5,100
2024-01-03,10,11,9,10.5,9.0,100
""")
    _, got = imported(store, path)
    assert list(got.columns) == [*schema.COLUMNS, "adj_close"]
    assert got["adj_close"].tolist() == [8.5, 9.0]
    assert store.manifest(SeriesKey("import", "AAPL", "1d"))["columns"][-1] == "adj_close"


def test_epoch_seconds(store, tmp_path):
    secs = [str(int(t.timestamp())) for t in expected_index()]
    _, got = imported(store, ohlcv_csv(tmp_path / "f.csv", time_header="timestamp", stamps=secs))
    assert list(got.index) == expected_index()


def test_epoch_milliseconds(store, tmp_path):
    ms = [str(int(t.timestamp()) * 1000) for t in expected_index()]
    _, got = imported(store, ohlcv_csv(tmp_path / "f.csv", time_header="open_time", stamps=ms))
    assert list(got.index) == expected_index()


def test_compact_yyyymmdd_dates(store, tmp_path):
    # 20240102 is a date as people write it, not 20 million seconds after 1970
    compact = [t.strftime("%Y%m%d") for t in expected_index()]
    _, got = imported(store, ohlcv_csv(tmp_path / "f.csv", time_header="Date", stamps=compact))
    assert list(got.index) == expected_index()


def test_epoch_seconds_hourly(store, tmp_path):
    start = pd.Timestamp("2024-03-01 10:00", tz="UTC")
    stamps = [str(int((start + pd.Timedelta(hours=i)).timestamp())) for i in range(5)]
    _, got = imported(store, ohlcv_csv(tmp_path / "f.csv", time_header="time", stamps=stamps),
                      symbol="BTC-USD", interval="1h")
    assert got.index[0] == start and got.index[-1] == start + pd.Timedelta(hours=4)


@pytest.mark.parametrize(
    "stamps",
    [
        ["01/02/2024", "01/03/2024", "01/04/2024", "01/05/2024", "01/08/2024"],
        ["2024-01-02 00:00:00", "2024-01-03 00:00:00", "2024-01-04 00:00:00", "2024-01-05 00:00:00",
         "2024-01-08 00:00:00"],
        ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z", "2024-01-05T00:00:00Z",
         "2024-01-08T00:00:00Z"],
        ["2 Jan 2024", "3 Jan 2024", "4 Jan 2024", "5 Jan 2024", "8 Jan 2024"],
    ],
    ids=["us", "datetime", "iso-z", "words"],
)
def test_date_strings(store, tmp_path, stamps):
    # month-first US dates are ambiguous (01/02 is also 1 February): they need the format named
    kw = {"date_format": "%m/%d/%Y"} if "/" in stamps[0] else {}
    _, got = imported(store, ohlcv_csv(tmp_path / "f.csv", stamps=stamps), **kw)
    assert list(got.index) == expected_index()


def test_daily_bars_with_a_time_of_day_move_to_midnight(store, tmp_path):
    stamps = [f"{d} 16:00:00" for d in DAYS]
    res, got = imported(store, ohlcv_csv(tmp_path / "f.csv", stamps=stamps))
    assert list(got.index) == expected_index()
    assert "moved daily bars to 00:00 UTC of their date" in res.notes


def test_unparseable_dates_name_an_example(store, tmp_path):
    path = ohlcv_csv(tmp_path / "f.csv", stamps=["2024-01-02", "not a date", "2024-01-04", "2024-01-05", "2024-01-08"])
    with pytest.raises(DataError, match="cannot parse 'Date' as dates.*not a date"):
        import_file(store, path, symbol="AAPL")
    assert not store.exists(SeriesKey("import", "AAPL", "1d"))


def test_newest_first_file_is_sorted(store, tmp_path):
    path = write(tmp_path / "f.csv", """
Date,Open,High,Low,Close,Volume
2024-01-04,12,13,11,12,100
2024-01-03,11,12,10,11,100
2024-01-02,10,11,9,10,100
""")
    res, got = imported(store, path)
    assert got.index.is_monotonic_increasing
    assert got["close"].tolist() == [10.0, 11.0, 12.0]
    assert "sorted rows into time order" in res.notes


def test_exact_duplicate_rows_are_dropped_and_reported(store, tmp_path):
    path = write(tmp_path / "f.csv", """
Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10,100
2024-01-03,11,12,10,11,100
2024-01-03,11,12,10,11,100
""")
    res, got = imported(store, path)
    assert len(got) == 2
    assert "dropped 1 exact duplicate row(s)" in res.notes


def test_credit_line_above_header_bundled_btc_sample(store, btc_csv):
    assert not btc_csv.read_text().startswith("date")  # the sample really has the quirk
    res, got = imported(store, btc_csv, symbol="BTC-USD")
    assert "skipped 1 line(s) above the header" in res.notes
    assert "sorted rows into time order" in res.notes  # newest-first too
    assert len(got) == 1770
    assert got.index[0] == pd.Timestamp("2014-12-01", tz="UTC")
    assert got.index[-1] == pd.Timestamp("2019-10-17", tz="UTC")
    last = got.iloc[-1]
    assert (last["open"], last["high"], last["low"], last["close"]) == (7993.54, 8070.0, 7937.01, 8034.32)
    assert last["volume"] == 12537245.82  # the quote-currency volume, not volume_btc
    m = res.upsert.manifest
    assert m["market"] == "crypto"
    assert m["gaps"]["missing_bars"] == 12  # Coinbase's own hole in March 2019


def test_two_credit_lines(store, tmp_path):
    path = write(tmp_path / "f.csv", """
Downloaded from somewhere, all rights reserved
# another comment line
Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10,100
2024-01-03,11,12,10,11,100
""")
    res, got = imported(store, path)
    assert "skipped 2 line(s) above the header" in res.notes
    assert len(got) == 2


def test_extra_columns_are_ignored(store, tmp_path):
    path = ohlcv_csv(tmp_path / "f.csv", extra_header=",Dividends,Stock Splits,comment",
                     extra_cell=",0.1,0,hello")
    _, got = imported(store, path)
    assert list(got.columns) == list(schema.COLUMNS)
    assert got["close"].tolist() == CLOSES


MULTI = """
date,symbol,open,high,low,close,volume
2024-01-02,AAPL,10,11,9,10,100
2024-01-02,MSFT,50,51,49,50,200
2024-01-03,AAPL,11,12,10,11,100
2024-01-03,MSFT,52,53,51,52,200
2024-01-04,AAPL,12,13,11,12,100
2024-01-04,MSFT,54,55,53,54,200
"""


def test_symbol_column_with_several_tickers_symbol_picks_one(store, tmp_path):
    path = write(tmp_path / "multi.csv", MULTI)
    res, got = imported(store, path, symbol="MSFT")
    assert got["close"].tolist() == [50.0, 52.0, 54.0]
    assert "kept the 3 rows whose symbol is MSFT" in res.notes


def test_symbol_column_unknown_symbol_lists_choices(store, tmp_path):
    path = write(tmp_path / "multi.csv", MULTI)
    with pytest.raises(DataError, match=r"several symbols \(AAPL, MSFT\).*--symbol"):
        import_file(store, path, symbol="TSLA")
    assert store.list() == []


def test_symbol_column_with_one_ticker_is_kept_whatever_its_spelling(store, tmp_path):
    aapl_only = "\n".join(line for line in MULTI.splitlines() if "MSFT" not in line)
    _, got = imported(store, write(tmp_path / "one.csv", aapl_only), symbol="AAPL.US")
    assert got["close"].tolist() == [10.0, 11.0, 12.0]


def test_parquet_with_time_column(store, tmp_path):
    idx = pd.date_range("2024-01-01", periods=5, freq="D")
    c = np.arange(1.0, 6.0)
    pd.DataFrame({"Date": idx, "Open": c, "High": c + 1, "Low": c - 0.5, "Close": c, "Volume": c}).to_parquet(
        tmp_path / "f.parquet"
    )
    _, got = imported(store, tmp_path / "f.parquet", symbol="BTC-USD")
    assert got["close"].tolist() == c.tolist()
    assert got.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize("index_name", [None, "Date"])
def test_parquet_with_datetime_index(store, tmp_path, index_name):
    idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="America/New_York", name=index_name)
    c = np.arange(1.0, 6.0)
    pd.DataFrame({"open": c, "high": c + 1, "low": c - 0.5, "close": c, "volume": c}, index=idx).to_parquet(
        tmp_path / "f.pq"
    )
    _, got = imported(store, tmp_path / "f.pq", symbol="BTC-USD")
    assert got["close"].tolist() == c.tolist()
    assert str(got.index.tz) == "UTC"


def test_not_a_parquet_file(store, tmp_path):
    (tmp_path / "f.parquet").write_text("date,close\n2024-01-01,1\n")
    with pytest.raises(DataError, match="cannot read .*f.parquet as Parquet"):
        import_file(store, tmp_path / "f.parquet", symbol="X")


def test_missing_open_and_volume_columns(store, tmp_path):
    path = write(tmp_path / "f.csv", """
Date,Close
2024-01-02,10
2024-01-03,11
2024-01-04,12
""")
    res, got = imported(store, path)
    assert got["open"].tolist() == got["close"].tolist() == got["high"].tolist() == got["low"].tolist()
    assert got["volume"].tolist() == [0.0, 0.0, 0.0]
    assert "no open column; used close" in res.notes
    assert "no volume column; volume set to 0" in res.notes


def test_price_column_alias(store, tmp_path):
    path = write(tmp_path / "f.csv", "timestamp,price\n2024-01-02,10\n2024-01-03,11\n")
    _, got = imported(store, path, symbol="BTC-USD")
    assert got["close"].tolist() == [10.0, 11.0]


def test_no_close_column(store, tmp_path):
    path = write(tmp_path / "f.csv", "Date,Open\n2024-01-02,10\n")
    with pytest.raises(DataError, match="no header found.*close column"):
        import_file(store, path, symbol="X")


def test_interval_mismatch_hourly_file_as_daily(store, tmp_path):
    stamps = [str(pd.Timestamp("2024-01-02 10:00") + pd.Timedelta(hours=i)) for i in range(5)]
    path = ohlcv_csv(tmp_path / "hourly.csv", stamps=stamps)
    with pytest.raises(DataError) as exc:
        import_file(store, path, symbol="AAPL", interval="1d")
    msg = str(exc.value)
    assert "0 days 01:00:00 apart" in msg
    assert "--interval is 1d" in msg
    assert store.list() == []


def test_interval_mismatch_daily_file_as_hourly(store, tmp_path):
    with pytest.raises(DataError, match="1 days 00:00:00 apart but --interval is 1h"):
        import_file(store, ohlcv_csv(tmp_path / "f.csv"), symbol="AAPL", interval="1h")


def sine_csv(path: Path, n: int = 200) -> Path:
    t = np.arange(n)
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "t": t, "sine": np.sin(2 * np.pi * t / 50)}).to_csv(
        path, index=False
    )
    return path


def test_value_column_sine_wave(store, tmp_path):
    path = sine_csv(tmp_path / "sine.csv")
    res, got = imported(store, path, symbol="SINE", value_column="sine")
    assert len(got) == 200
    assert (got["close"] < 0).any()  # negative values: exempt from positivity
    np.testing.assert_allclose(got["close"].to_numpy(), np.sin(2 * np.pi * np.arange(200) / 50))
    m = store.manifest(res.upsert.key)
    assert m["kind"] == "value"
    assert m["market"] == "continuous"
    assert m["gaps"]["missing_bars"] == 0


def test_value_column_is_rejected_as_a_price(store, tmp_path):
    path = sine_csv(tmp_path / "sine.csv").read_text().replace("sine", "close")
    write(tmp_path / "as_price.csv", path)
    with pytest.raises(DataError, match="non-positive price"):
        import_file(store, tmp_path / "as_price.csv", symbol="SINE")


def test_value_column_missing_lists_columns(store, tmp_path):
    path = sine_csv(tmp_path / "sine.csv")
    with pytest.raises(DataError, match="sensor"):
        import_file(store, path, symbol="SINE", value_column="sensor")


def test_value_then_price_into_same_series_is_refused(store, tmp_path):
    import_file(store, sine_csv(tmp_path / "sine.csv"), symbol="SINE", value_column="sine")
    with pytest.raises(DataError, match="stored as a value series"):
        import_file(store, ohlcv_csv(tmp_path / "f.csv"), symbol="SINE")


def test_reimport_upserts_without_duplicates_and_replaces_changed_bars(store, tmp_path):
    first = ohlcv_csv(tmp_path / "a.csv")
    import_file(store, first, symbol="AAPL")
    res = import_file(store, first, symbol="AAPL")
    assert (res.upsert.rows_added, res.upsert.rows_replaced, res.upsert.rows_after) == (0, 5, 5)

    changed = write(tmp_path / "b.csv", """
Date,Open,High,Low,Close,Volume
2024-01-08,20,21,19,20,100
2024-01-09,21,22,20,21,100
""")
    res = import_file(store, changed, symbol="AAPL")
    got = store.load(res.upsert.key)
    assert (res.upsert.rows_added, res.upsert.rows_replaced) == (1, 1)
    assert got.index.is_unique and len(got) == 6
    assert got["close"].tolist() == [10.0, 11.0, 12.0, 13.0, 20.0, 21.0]


def test_missing_empty_and_folder_inputs(store, tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(DataError, match="is empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_table(tmp_path / "bin.csv")


def test_header_only_file_holds_no_rows(store, tmp_path):
    path = write(tmp_path / "f.csv", "Date,Open,High,Low,Close,Volume\n")
    with pytest.raises(DataError, match="no rows"):
        import_file(store, path, symbol="AAPL")
