"""Property: any frame, written in any supported style, imports back as exactly the same bars."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmcast.data.importer import import_file
from lstmcast.data.store import Store

DAILY_STYLES = ("iso", "semicolon-comma", "tab", "pipe", "dayfirst", "monthfirst-format", "epoch-s", "epoch-ms",
                "yyyymmdd", "tokyo-offset", "wide", "parquet")
HOURLY_STYLES = ("iso-z", "offset-0530", "naive-tz", "am-pm", "epoch-s", "semicolon-comma", "wide", "parquet")
COMPRESSIONS = ("none", "gz", "bz2", "xz", "zip")


@st.composite
def frames(draw, *, hourly: bool) -> pd.DataFrame:
    n = draw(st.integers(3, 25))
    if hourly:
        start = pd.Timestamp("2019-01-01", tz="UTC") + pd.Timedelta(hours=draw(st.integers(0, 24 * 365 * 5)))
        index = pd.date_range(start, periods=n, freq="h")
    else:
        start = pd.Timestamp("2001-01-01", tz="UTC") + pd.Timedelta(days=draw(st.integers(0, 365 * 25)))
        index = pd.date_range(start, periods=n, freq="D")
    cents = st.integers(1, 10**8)
    rows = []
    for _ in range(n):
        a, b, c, d = sorted(draw(st.lists(cents, min_size=4, max_size=4)))
        o, cl = (b, c) if draw(st.booleans()) else (c, b)
        rows.append((o / 100, d / 100, a / 100, cl / 100, float(draw(st.integers(0, 10**9)))))
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)
    if draw(st.booleans()):
        keep = sorted(draw(st.sets(st.integers(0, n - 1), min_size=3, max_size=n)))
        frame = frame.iloc[keep]  # holes in the series (too sparse a draw is skipped by ``check``)
    return frame


def fmt_num(x: float, comma: bool) -> str:
    s = repr(float(x))
    return s.replace(".", ",") if comma else s


def stamps(index: pd.DatetimeIndex, style: str) -> list[str]:
    if style == "dayfirst":
        return [t.strftime("%d/%m/%Y") for t in index]
    if style == "monthfirst-format":
        return [t.strftime("%m/%d/%Y") for t in index]
    if style == "epoch-s":
        return [str(int(t.timestamp())) for t in index]
    if style == "epoch-ms":
        return [str(int(t.timestamp()) * 1000) for t in index]
    if style == "yyyymmdd":
        return [t.strftime("%Y%m%d") for t in index]
    if style == "tokyo-offset":
        return [t.strftime("%Y-%m-%d") + " 00:00:00+09:00" for t in index]
    if style == "iso-z":
        return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in index]
    if style == "offset-0530":
        return [(t.tz_convert("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M:%S+05:30") for t in index]
    if style == "am-pm":
        return [t.strftime("%Y-%m-%d %I-%p") for t in index]
    timed = style == "naive-tz" or bool((index != index.normalize()).any())
    return [t.strftime("%Y-%m-%d %H:%M:%S" if timed else "%Y-%m-%d") for t in index]


def write(frame: pd.DataFrame, folder: Path, style: str, compression: str, newest_first: bool) -> Path:
    rows = frame.iloc[::-1] if newest_first else frame
    if style == "parquet":
        path = folder / "f.parquet"
        rows.rename_axis("time").to_parquet(path)
        return path
    sep = {"semicolon-comma": ";", "tab": "\t", "pipe": "|"}.get(style, ",")
    comma = style == "semicolon-comma"
    times = stamps(pd.DatetimeIndex(rows.index), style)
    if style == "wide":
        header = ["", *(f"{a}:{c}" for a in ("AAA", "ZZZ") for c in rows.columns)]
        body = [[t, *(fmt_num(v, False) for v in r), *(fmt_num(v * 2, False) for v in r)]
                for t, r in zip(times, rows.to_numpy(), strict=True)]
    else:
        header = ["Date", "Open", "High", "Low", "Close", "Volume"]
        body = [[t, *(fmt_num(v, comma) for v in r)] for t, r in zip(times, rows.to_numpy(), strict=True)]
    text = "\n".join(sep.join(line) for line in [header, *body]) + "\n"
    data = text.encode()
    path = folder / "prices.csv"
    if compression == "none":
        path.write_bytes(data)
        return path
    if compression == "zip":
        out = folder / "prices.zip"
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("prices.csv", data)
        return out
    out = folder / f"prices.csv.{compression}"
    out.write_bytes({"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compression](data))
    return out


def options(style: str, hourly: bool) -> dict:
    kw: dict = {"market": "crypto", "interval": "1h" if hourly else "1d"}
    if style == "dayfirst":
        kw["dayfirst"] = True
    if style == "monthfirst-format":
        kw["date_format"] = "%m/%d/%Y"
    if style == "am-pm":
        kw["date_format"] = "%Y-%m-%d %I-%p"
    if hourly and style in ("naive-tz", "am-pm", "semicolon-comma", "wide", "parquet"):
        kw["tz"] = "UTC"
    if style == "wide":
        kw["asset"] = "AAA"
    return kw


def check(frame: pd.DataFrame, style: str, compression: str, newest_first: bool, hourly: bool) -> None:
    spacing = pd.Series(frame.index).diff().dropna().median()
    unit = pd.Timedelta(hours=1) if hourly else pd.Timedelta(days=1)
    if not 0.5 <= spacing / unit <= 2.0:
        frame = frame.iloc[:0]
    if len(frame) < 3:
        return
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = write(frame, folder, style, compression, newest_first)
        store = Store(folder / "data")
        res = import_file(store, path, symbol="X", **options(style, hourly))
        got = store.load(res.upsert.key)
        want = frame.copy()
        want.index = pd.DatetimeIndex(want.index, freq=None).rename("time")  # the store keeps no freq
        pd.testing.assert_index_equal(got.index, want.index, check_exact=True, exact=False)
        np.testing.assert_array_equal(got[list(want.columns)].to_numpy(), want.to_numpy())


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(frames(hourly=False), st.sampled_from(DAILY_STYLES), st.sampled_from(COMPRESSIONS), st.booleans())
def test_daily_roundtrip(frame, style, compression, newest_first):
    check(frame, style, "none" if style == "parquet" else compression, newest_first, hourly=False)


@SETTINGS
@given(frames(hourly=True), st.sampled_from(HOURLY_STYLES), st.sampled_from(COMPRESSIONS), st.booleans())
def test_hourly_roundtrip(frame, style, compression, newest_first):
    check(frame, style, "none" if style == "parquet" else compression, newest_first, hourly=True)
