"""Read CSV or Parquet price files as people actually have them, and import them into the store.

Handles header variants (``Date``/``date``/``timestamp``/``time``, ``Open``/``open``,
``Adj Close``), epoch seconds or milliseconds, date strings, newest-first files, a credit line
above the header, extra columns, a ``symbol`` column holding several tickers, and plain
univariate series (``value_column``) that are not prices.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcast.data import calendar, schema
from lstmcast.data.store import SeriesKey, Store, UpsertResult
from lstmcast.errors import DataError

TIME_NAMES = ("time", "date", "datetime", "timestamp", "open_time", "unix", "day")
ALIASES = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "price": "close",
    "last": "close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted": "adj_close",
    "adjusted_close": "adj_close",
    "volume": "volume",
    "vol": "volume",
}
SYMBOL_NAMES = ("symbol", "ticker")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


@dataclass
class ReadResult:
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _find_header(text: str, *, value_column: str | None) -> int:
    """Index of the header line: the first of the top lines naming a time column and a price/value."""
    wanted = {_norm(value_column)} if value_column else {"close", "price", "last", "adj_close"}
    lines = text.splitlines()[:20]
    for i, line in enumerate(lines):
        try:
            cells = {_norm(c) for c in next(csv.reader([line]))}
        except (StopIteration, csv.Error):
            continue
        if cells & set(TIME_NAMES) and cells & wanted:
            return i
    what = f"a {value_column!r} column" if value_column else "a close column"
    raise DataError(f"no header found in the first {len(lines)} lines: expected a date/time column and {what}")


def _looks_yyyymmdd(numeric: pd.Series) -> bool:
    """Whole numbers 19000101..21001231 with valid month and day: compact dates, not epoch seconds.

    As epoch seconds those would all fall in August 1970, which no price file means.
    """
    if not (numeric == numeric.round()).all() or not numeric.between(19000101, 21001231).all():
        return False
    v = numeric.astype("int64")
    month, day = (v // 100) % 100, v % 100
    return bool(month.between(1, 12).all() and day.between(1, 31).all())


def _parse_time(col: pd.Series, name: str) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(col):
        idx = pd.DatetimeIndex(col)
        return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all() and len(numeric) and _looks_yyyymmdd(numeric):
        return pd.DatetimeIndex(pd.to_datetime(numeric.astype("int64").astype(str), format="%Y%m%d", utc=True))
    if numeric.notna().all() and len(numeric):
        mx = float(numeric.abs().max())
        unit = "ns" if mx > 1e17 else "us" if mx > 1e14 else "ms" if mx > 1e11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(numeric, unit=unit, utc=True))
    try:
        return pd.DatetimeIndex(pd.to_datetime(col, utc=True, format="mixed"))
    except (ValueError, TypeError) as e:
        bad = next((v for v in col.astype(str) if pd.isna(pd.to_datetime(v, errors="coerce"))), "?")
        raise DataError(f"cannot parse {name!r} as dates (for example {bad!r})") from e


def read_table(
    path: Path,
    *,
    symbol: str | None = None,
    value_column: str | None = None,
) -> ReadResult:
    """Read a CSV or Parquet file into the canonical frame (not yet cleaned or validated)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file")
    notes: list[str] = []
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            raw = pd.read_parquet(path)
        except Exception as e:
            raise DataError(f"cannot read {path} as Parquet: {e}") from e
        if isinstance(raw.index, pd.DatetimeIndex):
            raw = raw.rename_axis(raw.index.name or "time").reset_index()  # an unnamed index is the time
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not a UTF-8 text file (CSV expected)") from e
        if not text.strip():
            raise DataError(f"{path} is empty")
        skip = _find_header(text, value_column=value_column)
        if skip:
            notes.append(f"skipped {skip} line(s) above the header")
        try:
            raw = pd.read_csv(io.StringIO(text), skiprows=skip)
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(f"cannot parse {path} as CSV: {e}") from e

    cols = {_norm(c): c for c in raw.columns}
    time_col = next((cols[n] for n in TIME_NAMES if n in cols), None)
    if time_col is None:
        raise DataError(f"no time column in {path.name}: expected one of {', '.join(TIME_NAMES)}")

    sym_col = next((cols[n] for n in SYMBOL_NAMES if n in cols), None)
    if sym_col is not None and raw[sym_col].nunique() > 1:
        if symbol is None or not (raw[sym_col] == symbol).any():
            choices = ", ".join(map(str, sorted(raw[sym_col].dropna().unique())[:20]))
            raise DataError(f"{path.name} holds several symbols ({choices}); --symbol picks one of them")
        raw = raw[raw[sym_col] == symbol]
        notes.append(f"kept the {len(raw)} rows whose {sym_col} is {symbol}")

    index = _parse_time(raw[time_col], time_col)
    out = pd.DataFrame(index=index)
    if value_column is not None:
        vc = cols.get(_norm(value_column))
        if vc is None:
            raise DataError(f"no column {value_column!r} in {path.name} (columns: {', '.join(map(str, raw.columns))})")
        values = pd.to_numeric(raw[vc], errors="coerce").to_numpy(dtype="float64")
        for c in ("open", "high", "low", "close"):
            out[c] = values
        out["volume"] = np.nan
    else:
        for norm_name, canonical in ALIASES.items():
            if norm_name in cols and canonical not in out.columns:
                out[canonical] = pd.to_numeric(raw[cols[norm_name]], errors="coerce").to_numpy(dtype="float64")
        if "close" not in out.columns:
            raise DataError(f"no close column in {path.name} (columns: {', '.join(map(str, raw.columns))})")
        for c in ("open", "high", "low"):
            if c not in out.columns:
                out[c] = out["close"]
                notes.append(f"no {c} column; used close")
        if "volume" not in out.columns:
            out["volume"] = 0.0
            notes.append("no volume column; volume set to 0")
    out.index.name = schema.INDEX_NAME
    return ReadResult(out, notes)


def _check_spacing(frame: pd.DataFrame, interval: calendar.Interval) -> None:
    if len(frame) < 3:
        return
    spacing = pd.Series(frame.index).diff().dropna().median()
    ratio = spacing / interval.delta
    if not 0.5 <= ratio <= 2.0:
        raise DataError(
            f"bars in the file are about {spacing} apart but --interval is {interval.name}; pass the right --interval"
        )


@dataclass
class ImportResult:
    upsert: UpsertResult
    notes: list[str]


def import_file(
    store: Store,
    path: Path,
    *,
    symbol: str,
    interval: str = "1d",
    source: str = "import",
    value_column: str | None = None,
    market: str | None = None,
) -> ImportResult:
    """Read ``path``, clean and validate it, and upsert it as (source, symbol, interval)."""
    key = SeriesKey(source, symbol, interval)
    iv = calendar.parse_interval(interval)
    read = read_table(path, symbol=symbol, value_column=value_column)
    frame, report = schema.clean(read.frame)
    _check_spacing(frame, iv)  # before flooring to dates, which would hide hourly bars as duplicates
    if iv.daily_or_longer:
        floored = frame.index.normalize()
        if (floored != frame.index).any():
            read.notes.append("moved daily bars to 00:00 UTC of their date")
            frame.index = floored.rename(schema.INDEX_NAME)
            frame, more = schema.clean(frame)
            report.duplicates_dropped += more.duplicates_dropped
    if len(frame) == 0:
        raise DataError(f"{path} holds no rows")
    kind = schema.KIND_VALUE if value_column else schema.KIND_PRICE
    if market is None:
        market = "continuous" if kind == schema.KIND_VALUE else calendar.infer_market(source, symbol)
    result = store.upsert(key, frame, kind=kind, market=calendar.check_market(market),
                          extra={"imported_from": Path(path).name})
    return ImportResult(result, read.notes + report.describe())
