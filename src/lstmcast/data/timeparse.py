"""Read a file's time column without ever misreading it.

A date column is read with one format for every row (never row by row, which mixes day-first and
month-first readings). Where the day and month order cannot be told (``01/02/2013``), the column is
refused, naming two rows and the options that settle it. UTC offsets are kept apart from the wall
clock: a daily bar is stamped with the date written in the file, an intraday bar with its UTC
instant; naive intraday times need the zone they are in.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmcast.errors import DataError, UsageError

# An offset after a time of day: "...09:30:00+09:00", "...00:00Z", "...16:00 -0500".
_OFFSET = re.compile(r"(?<=\d:\d\d)(?::\d\d(?:\.\d+)?)?\s*(Z|UTC|GMT|[+-]\d\d:?\d\d)$", re.IGNORECASE)
_HAS_OFFSET = re.compile(r"(?<=\d:\d\d)(?::\d\d(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d\d:?\d\d)$", re.IGNORECASE)
_OFFSET_ONLY = re.compile(r"\s*(Z|UTC|GMT|[+-]\d\d:?\d\d)$", re.IGNORECASE)
# Formats pandas does not guess; tried when no guessed format reads every row.
EXTRA_FORMATS = (
    "%Y-%m-%d %I-%p",  # CryptoDataDownload hourly: 2019-10-17 09-AM
    "%Y-%m-%d %I %p",
    "%Y-%m-%d %I:%M %p",
    "%Y-%m-%d %I:%M:%S %p",
)
DAILY_NOTE = "moved daily bars to 00:00 UTC of their date"


@dataclass
class ParsedTimes:
    """A time column as read. ``wall`` is the clock time as written (offset removed); ``utc`` the
    instant where the file says it (an offset, ``Z``, epoch numbers, a tz-aware Parquet column)."""

    wall: pd.DatetimeIndex
    utc: pd.DatetimeIndex | None
    offsets_written: bool = False  # the wall clock is the local time of the offset written beside it
    how: str = ""  # the format used, for notes


def _is_yyyymmdd(numeric: pd.Series) -> bool:
    """Whole numbers 19000101..21001231 with valid month and day: compact dates, not epoch seconds."""
    if not (numeric == numeric.round()).all() or not numeric.between(19000101, 21001231).all():
        return False
    v = numeric.astype("int64")
    month, day = (v // 100) % 100, v % 100
    return bool(month.between(1, 12).all() and day.between(1, 31).all())


def _order(fmt: str) -> str | None:
    """"dm" when ``fmt`` reads the day before the month, "md" the other way, None when it has no such pair."""
    d, m = fmt.find("%d"), fmt.find("%m")
    if d < 0 or m < 0:
        return None
    return "dm" if d < m else "md"


def _plausible(fmt: str) -> bool:
    """Year-day-month (``%Y-%d-%m``) is a reading no one writes; pandas offers it for ISO dates."""
    y = max(fmt.find("%Y"), fmt.find("%y"))
    return not (0 <= y < fmt.find("%d") < fmt.find("%m"))


def _swap(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _candidates(values: pd.Series) -> list[str]:
    from pandas.tseries.api import guess_datetime_format

    uniq = values.drop_duplicates()
    pick = uniq.iloc[np.unique(np.linspace(0, len(uniq) - 1, min(len(uniq), 25)).astype(int))]
    found: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in pick:
            for dayfirst in (False, True):
                f = guess_datetime_format(v, dayfirst=dayfirst)
                if f is None:
                    continue
                for g in (f, _swap(f)) if _order(f) else (f,):
                    if _plausible(g) and g not in found:
                        found.append(g)
    return found


def _parse(values: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(values, format=fmt, errors="coerce")


def _row(values: pd.Series, i: int) -> str:
    return f"row {i + 1} {values.iloc[i]!r}"


def _strings(col: pd.Series, name: str, *, date_format: str | None, dayfirst: bool) -> ParsedTimes:
    values = col.astype("string").str.strip()
    empty = values.isna() | (values == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(f"{name!r} is empty in row {i + 1} (of the data rows); every bar needs a time")
    has = values.str.contains(_HAS_OFFSET).to_numpy(dtype=bool)
    offsets = None
    if has.any():
        if not has.all():
            i, j = int(np.flatnonzero(has)[0]), int(np.flatnonzero(~has)[0])
            raise DataError(
                f"some times in {name!r} carry a UTC offset and some do not ({_row(values, i)}, {_row(values, j)}); "
                "make them all the same"
            )
        found = values.str.extract(_OFFSET, expand=False).str.upper()
        offsets = found.map(_offset_minutes)
        values = values.str.replace(_OFFSET_ONLY, "", regex=True).str.strip()
        if date_format:
            date_format = date_format.replace("%z", "").replace("%Z", "").strip()
    if date_format:
        parsed = _parse(values, date_format)
        if parsed.isna().any():
            i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataError(f"{name!r} does not match --date-format {date_format!r} ({_row(values, i)})")
        how = date_format
    else:
        parsed, how = _guess(values, name, dayfirst=dayfirst)
    wall = pd.DatetimeIndex(parsed)
    utc = None
    if offsets is not None:
        utc = (wall - pd.to_timedelta(offsets.to_numpy(), unit="m")).tz_localize("UTC")
    return ParsedTimes(wall, utc, offsets_written=offsets is not None, how=how)


def _offset_minutes(text: str) -> int:
    if text in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4]))


def _guess(values: pd.Series, name: str, *, dayfirst: bool) -> tuple[pd.Series, str]:
    cands = _candidates(values)
    if dayfirst:
        cands = [f for f in cands if _order(f) != "md"]
    full: dict[str, pd.Series] = {}
    best: tuple[int, str, pd.Series] | None = None
    for f in cands:
        p = _parse(values, f)
        bad = int(p.isna().sum())
        if bad == 0:
            full[f] = p
        if best is None or bad < best[0]:
            best = (bad, f, p)
    if not full:
        for f in EXTRA_FORMATS:
            p = _parse(values, f)
            if p.notna().all():
                return p, f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iso = pd.to_datetime(values, format="ISO8601", errors="coerce")
        if iso.notna().all():
            return iso, "ISO 8601"
        miss = best[2].isna().to_numpy() if best is not None else np.ones(len(values), dtype=bool)
        example = values.iloc[int(np.flatnonzero(miss)[0])] if miss.any() else values.iloc[0]
        raise DataError(
            f"cannot parse {name!r} as dates (for example {example!r}); "
            "pass --date-format FMT (e.g. --date-format '%Y-%m-%d %I-%p')"
        )
    if not dayfirst:
        _refuse_ambiguous(values, name, cands)
    fmt = next(iter(full))
    return full[fmt], fmt


def _refuse_ambiguous(values: pd.Series, name: str, cands: list[str]) -> None:
    """Refuse when a day-first and a month-first reading of the same rows disagree."""
    for f in cands:
        if _order(f) != "dm":
            continue
        g = _swap(f)
        if g not in cands:
            continue
        a, b = _parse(values, f), _parse(values, g)
        differ = (a.notna() & b.notna() & (a != b)).to_numpy(dtype=bool)
        if not differ.any():
            continue
        rows = np.flatnonzero(differ)[:2]
        shown = "; ".join(
            f"{_row(values, int(i))} is {a.iloc[int(i)]:%Y-%m-%d} day-first or {b.iloc[int(i)]:%Y-%m-%d} month-first"
            for i in rows
        )
        hint = ""
        only_a, only_b = a.notna() & b.isna(), b.notna() & a.isna()
        if only_a.any() and not b.notna().all():
            hint = f" ({_row(values, int(np.flatnonzero(only_a.to_numpy())[0]))} can only be day-first)"
        elif only_b.any() and not a.notna().all():
            hint = f" ({_row(values, int(np.flatnonzero(only_b.to_numpy())[0]))} can only be month-first)"
        raise DataError(
            f"dates in {name!r} are ambiguous: {shown}{hint}; pass --dayfirst, or --date-format FMT "
            f"(--date-format '{f}' or '{g}')"
        )


def parse_times(col: pd.Series, name: str, *, date_format: str | None = None, dayfirst: bool = False) -> ParsedTimes:
    """Read a time column: datetimes, epoch seconds/ms/us/ns, compact ``YYYYMMDD`` or date strings."""
    if pd.api.types.is_datetime64_any_dtype(col):
        idx = pd.DatetimeIndex(col)
        if idx.tz is None:
            return ParsedTimes(idx, None, how="datetime")
        if str(idx.tz) == "UTC":
            return ParsedTimes(idx.tz_localize(None), idx, how="datetime (UTC)")
        return ParsedTimes(idx.tz_localize(None), idx.tz_convert("UTC"), offsets_written=True,
                           how=f"datetime ({idx.tz})")
    if date_format is None:
        numeric = pd.to_numeric(col, errors="coerce")
        if len(numeric) and numeric.notna().all():
            if _is_yyyymmdd(numeric):
                idx = pd.DatetimeIndex(pd.to_datetime(numeric.astype("int64").astype(str), format="%Y%m%d"))
                return ParsedTimes(idx, None, how="%Y%m%d")
            mx = float(numeric.abs().max())
            unit = "ns" if mx > 1e17 else "us" if mx > 1e14 else "ms" if mx > 1e11 else "s"
            utc = pd.DatetimeIndex(pd.to_datetime(numeric, unit=unit, utc=True))
            return ParsedTimes(utc.tz_localize(None), utc, how=f"epoch {unit}")
    return _strings(col, name, date_format=date_format, dayfirst=dayfirst)


def check_tz(tz: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise UsageError(f"--tz {tz!r} is not a time zone (use a name such as UTC, Asia/Tokyo, America/New_York)") \
            from e
    return tz


def stamp(
    times: ParsedTimes, *, daily: bool, name: str, tz: str | None = None, exchange_tz: str | None = None,
    notes: list[str],
) -> pd.DatetimeIndex:
    """The bars' UTC stamps: a daily bar at 00:00 UTC of its local trading date, an intraday bar at its instant.

    The local date of a daily bar is the date written beside its offset; for instants without one
    (epoch numbers, UTC), the date in ``tz`` or the exchange's zone, unless every bar is at 00:00 UTC.
    """
    if daily:
        if times.offsets_written or times.utc is None:
            local = times.wall
            if times.offsets_written:
                notes.append("stamped daily bars with the date written in the file (its UTC offsets kept apart)")
        else:
            utc = times.utc
            zone = tz or exchange_tz
            at_midnight = bool((utc == utc.normalize()).all())
            local = utc.tz_convert(zone).tz_localize(None) if (zone and not at_midnight) else utc.tz_localize(None)
        dates = local.normalize()
        if (dates != local).any():
            notes.append(DAILY_NOTE)
        return pd.DatetimeIndex(dates).tz_localize("UTC")
    if times.utc is not None:
        if tz and times.offsets_written:
            notes.append(f"--tz {tz} not used: the times carry their own UTC offsets")
        return times.utc
    if not tz:
        raise DataError(
            f"intraday times in {name!r} have no UTC offset (e.g. {times.wall[0]}); pass --tz ZONE, the zone "
            "they are written in (--tz UTC, --tz America/New_York ...)"
        )
    try:
        local = times.wall.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except (ValueError, TypeError) as e:  # pytz/zoneinfo errors for DST gaps and folds
        raise DataError(f"times in {name!r} cannot be placed in {tz}: {e}") from e
    if tz.upper() not in ("UTC", "ETC/UTC", "GMT"):
        notes.append(f"read intraday times as {tz} and converted them to UTC")
    return local.tz_convert("UTC")
