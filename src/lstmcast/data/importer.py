"""Read CSV or Parquet price files as people actually have them, and import them into the store.

Handles compressed files (gzip, bzip2, xz, a zip holding one file), sniffed delimiters (``,`` ``;``
tab ``|``) and decimal commas, header variants (``Date``/``date``/``timestamp``/``time``,
``Open``/``open``, ``Adj Close``), epoch seconds or milliseconds, date strings read with one format
for every row (see ``timeparse``), newest-first files, a credit line above the header, extra
columns, a ``symbol`` column holding several tickers, wide ``ASSET:field`` files (``--asset``) and
plain univariate series (``value_column``) that are not prices. Nothing ambiguous is guessed: the
date order, an intraday file's zone and the market are either told by the file or asked for.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar, schema
from lstmcast.data import quality as data_quality
from lstmcast.data.store import SeriesKey, Store, UpsertResult
from lstmcast.data.timeparse import ParsedTimes, check_tz, parse_times, stamp
from lstmcast.errors import DamagedSeriesError, DataError, UsageError

TIME_NAMES = ("unix", "time", "date", "datetime", "timestamp", "open_time", "day")  # epoch "unix" first: unambiguous
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
DELIMITERS = (",", ";", "\t", "|")
CLOSE_NAMES = {"close", "price", "last", "adj_close"}
WEEKEND_SHARE_24_7 = 0.1  # 24/7 daily data has 2 weekend bars in 7; fewer than this is a mix-up
_WIDE = re.compile(r"^([^:\s]+):([^:\s]+)$")  # BTC:close (not pandas' "Unnamed: 0")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


@dataclass
class ReadResult:
    """A file read into price columns (``frame``, no index yet) and its time column as read."""

    frame: pd.DataFrame
    times: ParsedTimes
    time_column: str
    notes: list[str] = field(default_factory=list)


# -- bytes -> text ------------------------------------------------------------------------------
def _unpack(path: Path, data: bytes, notes: list[str]) -> tuple[bytes, str]:
    """Decompress by content (not by name): gzip, bzip2, xz, or a zip holding one data file."""
    try:
        if data[:2] == b"\x1f\x8b":
            notes.append("read gzip-compressed file")
            return gzip.decompress(data), path.name.removesuffix(".gz")
        if data[:3] == b"BZh":
            notes.append("read bzip2-compressed file")
            return bz2.decompress(data), path.name.removesuffix(".bz2")
        if data[:6] == b"\xfd7zXZ\x00":
            notes.append("read xz-compressed file")
            return lzma.decompress(data), path.name.removesuffix(".xz")
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = [n for n in z.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
                if len(names) != 1:
                    listed = ", ".join(names[:10]) or "nothing"
                    raise DataError(f"{path.name} is a zip holding {len(names)} files ({listed}); it must hold one")
                notes.append(f"read {names[0]} from the zip")
                return z.read(names[0]), names[0]
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError) as e:
        raise DataError(f"{path} looks compressed but cannot be unpacked: {e}") from e
    return data, path.name


def _cells(line: str, delim: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delim))
    except (StopIteration, csv.Error):
        return []


def _is_header(cells: list[str], wanted: set[str]) -> bool:
    names = {_norm(c) for c in cells}
    timeish = bool(names & set(TIME_NAMES)) or (len(cells) > 1 and cells[0].strip() == "")
    wide = any((m := _WIDE.match(c)) and _norm(m.group(2)) in CLOSE_NAMES for c in cells)
    return timeish and (bool(names & wanted) or wide)


def _find_header(text: str, *, value_column: str | None) -> tuple[int, str]:
    """(index of the header line, delimiter): the first of the top lines naming a time and a price/value."""
    wanted = {_norm(value_column)} if value_column else CLOSE_NAMES
    lines = text.splitlines()[:20]
    for i, line in enumerate(lines):
        found = [(len(c), d) for d in DELIMITERS if len(c := _cells(line, d)) > 1 and _is_header(c, wanted)]
        if found:
            return i, max(found)[1]
    what = f"a {value_column!r} column" if value_column else "a close column"
    first = lines[0] if lines else ""
    shown = first if len(first) <= 80 else first[:77] + "..."
    raise DataError(
        f"no header found in the first {len(lines)} lines: expected a date/time column and {what} "
        f"(line 1 is {shown!r})"
    )


_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})*,\d+$|^[+-]?\d+,\d+$")
_DOT_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def _decimal_comma(raw: pd.DataFrame, skip: set[str]) -> bool:
    cells = pd.concat([raw[c] for c in raw.columns if c not in skip], ignore_index=True).dropna().astype(str)
    return bool(cells.str.match(_COMMA_DECIMAL).any())


def _numbers(col: pd.Series, *, decimal_comma: bool) -> np.ndarray:
    s = col.astype("string").str.strip()
    if decimal_comma:
        s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        s = s.where(~s.str.match(_COMMA_THOUSANDS).fillna(False), s.str.replace(",", "", regex=False))
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")


def _read_text(path: Path, text: str, *, value_column: str | None, notes: list[str]) -> tuple[pd.DataFrame, str]:
    if not text.strip():
        raise DataError(f"{path} is empty")
    skip, delim = _find_header(text, value_column=value_column)
    if skip:
        notes.append(f"skipped {skip} line(s) above the header")
    if delim != ",":
        notes.append(f"read {'tab' if delim == chr(9) else repr(delim)}-separated columns")
    try:
        raw = pd.read_csv(io.StringIO(text), skiprows=skip, sep=delim, dtype=str, keep_default_na=False,
                          na_values=["", "NaN", "nan", "null", "NULL", "None"], skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"cannot parse {path} as CSV: {e}") from e
    return raw, delim


def _load_raw(path: Path, *, value_column: str | None, notes: list[str]) -> tuple[pd.DataFrame, str]:
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file")
    data, name = _unpack(path, path.read_bytes(), notes)
    if data[:4] == b"PAR1" or Path(name).suffix.lower() in (".parquet", ".pq"):
        try:
            raw = pd.read_parquet(io.BytesIO(data))
        except Exception as e:
            raise DataError(f"cannot read {path} as Parquet: {e}") from e
        if isinstance(raw.index, pd.DatetimeIndex):
            raw = raw.rename_axis(raw.index.name or "time").reset_index()  # an unnamed index is the time
        return raw, ""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not a UTF-8 text file (CSV expected)") from e
    return _read_text(path, text, value_column=value_column, notes=notes)


def _pick_asset(raw: pd.DataFrame, path: Path, asset: str | None, notes: list[str]) -> pd.DataFrame:
    """Narrow a wide ``ASSET:field`` file to one asset's columns; a no-op for an ordinary file."""
    wide: dict[str, dict[str, Any]] = {}
    for c in raw.columns:
        m = _WIDE.match(str(c))
        if m:
            wide.setdefault(m.group(1), {})[m.group(2)] = c
    assets = sorted(a for a, fields in wide.items() if {_norm(f) for f in fields} & CLOSE_NAMES)
    if not assets:
        if asset is not None:
            raise UsageError(f"--asset {asset} given, but {path.name} has no ASSET:field columns")
        return raw
    if asset is None:
        raise DataError(
            f"{path.name} is a wide file with ASSET:field columns for {len(assets)} asset(s) "
            f"({', '.join(assets[:20])}); pass --asset NAME to import one"
        )
    match = next((a for a in wide if a == asset), None) or next((a for a in wide if a.lower() == asset.lower()), None)
    if match is None:
        raise DataError(f"{path.name} has no columns for asset {asset!r}; assets: {', '.join(assets[:20])}")
    keep = [c for c in raw.columns if not _WIDE.match(str(c))]
    out = raw[keep].copy()
    for f, c in wide[match].items():
        out[f] = raw[c]
    notes.append(f"read the {match}:* columns of a wide file")
    return out


def _time_column(raw: pd.DataFrame, path: Path, header: list[str]) -> str:
    cols = {_norm(c): c for c in raw.columns}
    named = next((cols[n] for n in TIME_NAMES if n in cols), None)
    if named is not None:
        return named
    first = raw.columns[0] if len(raw.columns) else None
    if first is not None and (str(first).strip() == "" or str(first).startswith("Unnamed: 0")):
        return first
    raise DataError(f"no time column in {path.name}: expected one of {', '.join(TIME_NAMES)} (header: {header})")


def read_table(
    path: Path,
    *,
    symbol: str | None = None,
    value_column: str | None = None,
    asset: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
) -> ReadResult:
    """Read a CSV or Parquet file (compressed or not) into price columns and its parsed time column."""
    path = Path(path)
    notes: list[str] = []
    raw, delim = _load_raw(path, value_column=value_column, notes=notes)
    header = [str(c) for c in raw.columns]
    raw = _pick_asset(raw, path, asset, notes)
    cols = {_norm(c): c for c in raw.columns}
    time_col = _time_column(raw, path, header)
    sym_col = next((cols[n] for n in SYMBOL_NAMES if n in cols), None)
    if sym_col is not None and raw[sym_col].nunique() > 1:
        if symbol is None or not (raw[sym_col] == symbol).any():
            choices = ", ".join(map(str, sorted(raw[sym_col].dropna().unique())[:20]))
            raise DataError(f"{path.name} holds several symbols ({choices}); --symbol picks one of them")
        raw = raw[raw[sym_col] == symbol]
        notes.append(f"kept the {len(raw)} rows whose {sym_col} is {symbol}")

    unnamed = not str(time_col).strip() or str(time_col).startswith("Unnamed: 0")
    label = "the unnamed first column" if unnamed else str(time_col)
    try:
        times = parse_times(raw[time_col].reset_index(drop=True), label, date_format=date_format, dayfirst=dayfirst)
    except DataError as e:
        if label.startswith("the unnamed"):
            raise DataError(f"the first header cell is empty (header: {','.join(header)[:100]!r}), and {e}") from e
        raise
    plain = re.fullmatch(r"%Y-?%m-?%d(?:[ T]%H:%M(?::%S)?)?", times.how or "")
    if times.how and not plain and not times.how.startswith(("datetime", "epoch", "ISO")):
        notes.append(f"read dates as {times.how}")
    value_cols = [c for c in raw.columns if c not in (time_col, sym_col)]
    comma = delim == ";" and _decimal_comma(raw, {time_col, sym_col} - {None}) if delim else False
    if comma:
        notes.append("read decimal commas")
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    if value_column is not None:
        vc = cols.get(_norm(value_column))
        if vc is None:
            raise DataError(f"no column {value_column!r} in {path.name} (columns: {', '.join(map(str, raw.columns))})")
        values = _numbers(raw[vc], decimal_comma=comma) if delim else pd.to_numeric(raw[vc], errors="coerce")
        for c in ("open", "high", "low", "close"):
            out[c] = np.asarray(values, dtype="float64")
        out["volume"] = np.nan
    else:
        for c in value_cols:
            canonical = ALIASES.get(_norm(c))
            if canonical and canonical not in out.columns:
                v = _numbers(raw[c], decimal_comma=comma) if delim else pd.to_numeric(raw[c], errors="coerce")
                out[canonical] = np.asarray(v, dtype="float64")
        if "close" not in out.columns:
            raise DataError(f"no close column in {path.name} (columns: {', '.join(map(str, raw.columns))})")
        for c in ("open", "high", "low"):
            if c not in out.columns:
                out[c] = out["close"]
                notes.append(f"no {c} column; used close")
        if "volume" not in out.columns:
            out["volume"] = 0.0
            notes.append("no volume column; volume set to 0")
    return ReadResult(out, times, label, notes)


# -- checks -------------------------------------------------------------------------------------
def _check_spacing(index: pd.DatetimeIndex, interval: calendar.Interval) -> None:
    if len(index) < 3:
        return
    spacing = pd.Series(index.sort_values()).diff().dropna().median()
    ratio = spacing / interval.delta
    if not 0.5 <= ratio <= 2.0:
        raise DataError(
            f"bars in the file are about {spacing} apart but --interval is {interval.name}; pass the right --interval"
        )


def _off_days(index: pd.DatetimeIndex, market: str) -> pd.DatetimeIndex:
    """Daily stamps on a day of the week the market's exchange never trades (Saturday, Sunday for most)."""
    code = calendar.exchange_of(market)
    if code is None:
        return index[:0]
    weekmask = str(getattr(calendar.exchange_calendar(code), "weekmask", "1111100"))
    open_days = [i for i, ch in enumerate(weekmask[:7]) if ch == "1"]
    if not open_days or not set(weekmask[:7]) <= {"0", "1"}:
        open_days = [0, 1, 2, 3, 4]
    return index[~np.isin(index.day_of_week, open_days)]


def _choose_market(
    frame: pd.DataFrame, *, told: tuple[str, str] | None, daily: bool, symbol: str,
) -> tuple[str, str]:
    if told is not None:
        return told
    weekend = frame.index[frame.index.day_of_week >= 5]
    if not len(weekend):
        return "equity", (f"{symbol} names no exchange and no bar falls on a weekend: the NYSE calendar, the "
                          "default for imports (--market sets another, e.g. --market XLON or --market crypto)")
    share = len(weekend) / len(frame)
    if share >= WEEKEND_SHARE_24_7 or len(frame) < 7:
        return "crypto", f"{len(weekend)} of {len(frame)} bars fall on a weekend: traded 24/7"
    shown = ", ".join(f"{t:%Y-%m-%d %a}" for t in weekend[:2])
    raise DataError(
        f"{len(weekend)} of {len(frame)} bars fall on a weekend ({shown}): too few for a 24/7 market, yet "
        f"exchanges are closed then; pass --market crypto (24/7) or --market equity (or an exchange, e.g. XLON)"
    )


def quality(frame: pd.DataFrame, *, context: pd.DataFrame | None = None) -> dict[str, Any]:
    """One-bar jumps (|log return| > 50%, as fetch flags them) and which of them look like an unadjusted split."""
    return data_quality.jumps(frame, context=context)


# -- import -------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    upsert: UpsertResult
    notes: list[str]
    market: str = ""
    market_reason: str = ""
    rows_unchanged: int = 0
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_changed(self) -> int:
        return self.upsert.rows_replaced - self.rows_unchanged

    @property
    def unchanged(self) -> bool:
        return self.upsert.rows_added == 0 and self.rows_changed == 0


def _same_rows(old: pd.DataFrame, new: pd.DataFrame) -> int:
    common = new.index.intersection(old.index)
    if not len(common):
        return 0
    cols = [c for c in new.columns if c in old.columns]
    a, b = old.loc[common, cols].to_numpy(), new.loc[common, cols].to_numpy()
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return int(same.all(axis=1).sum())


def import_file(
    store: Store,
    path: Path,
    *,
    symbol: str,
    interval: str = "1d",
    source: str = "import",
    value_column: str | None = None,
    market: str | None = None,
    asset: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    tz: str | None = None,
) -> ImportResult:
    """Read ``path``, clean and validate it, and upsert it as (source, symbol, interval).

    The market (and so the trading calendar) is ``market`` when given, else what the symbol tells
    (``7203.T`` -> Tokyo), else 24/7 when the bars include weekends and the NYSE otherwise; the
    result says which and why.
    """
    key = SeriesKey(source, symbol, interval)
    iv = calendar.parse_interval(interval)
    if tz is not None:
        check_tz(tz)
    if date_format is not None and dayfirst:
        raise UsageError("--date-format and --dayfirst together: the format already says the order")
    told: tuple[str, str] | None = None
    if market is not None:
        told = (calendar.parse_market(market), "given by --market")
    elif value_column is not None:
        told = ("continuous", "a --value-column series has no trading calendar")
    else:
        told = calendar.market_from_symbol("import", symbol)
    read = read_table(path, symbol=symbol, value_column=value_column, asset=asset, date_format=date_format,
                      dayfirst=dayfirst)
    if len(read.frame) == 0:
        raise DataError(f"{path} holds no rows")
    times = read.times
    _check_spacing(times.utc if times.utc is not None else times.wall, iv)  # before dates hide hourly bars
    xtz = calendar.exchange_tz(told[0]) if told is not None else None
    index = stamp(times, daily=iv.daily_or_longer, name=read.time_column, tz=tz, exchange_tz=xtz, notes=read.notes)
    frame = read.frame.set_axis(index.rename(schema.INDEX_NAME), axis=0)
    frame, report = schema.clean(frame)
    chosen, why = _choose_market(frame, told=told, daily=iv.daily_or_longer, symbol=symbol)
    chosen = calendar.check_market(chosen)
    if iv.name == "1d" and chosen.startswith("equity"):
        off = _off_days(frame.index, chosen)
        if len(off):
            shown = ", ".join(f"{t:%Y-%m-%d %A}" for t in off[:2])
            raise DataError(
                f"{len(off)} daily bar(s) fall on days {calendar.exchange_of(chosen)} never trades ({shown}); the "
                f"market is {chosen} ({why}). Dates misread? See --date-format and --dayfirst; a 24/7 series "
                "needs --market crypto"
            )
    kind = schema.KIND_VALUE if value_column else schema.KIND_PRICE
    try:
        old = store.load(key) if store.exists(key) else None
    except DamagedSeriesError:
        old = None  # the upsert below sets the damaged file aside and the import replaces it
    unchanged = _same_rows(old, frame) if old is not None else 0
    result = store.upsert(key, frame, kind=kind, market=chosen, extra={"imported_from": Path(path).name})
    q = quality(frame, context=old) if kind == schema.KIND_PRICE else {"jumps": [], "likely_splits": []}
    return ImportResult(result, read.notes + report.describe(), market=chosen, market_reason=why,
                        rows_unchanged=unchanged, quality=q)
