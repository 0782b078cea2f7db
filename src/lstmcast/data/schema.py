"""The canonical OHLCV frame used everywhere in lstmcast.

A price frame has a tz-aware UTC ``DatetimeIndex`` named ``time`` (bar open time), float64
columns ``open, high, low, close, volume`` and, when the source has it, ``adj_close``; it is
sorted and unique. ``clean`` repairs what is safe and says what it did; ``validate`` rejects
what is not safe, naming the first bad row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lstmcast.errors import DataError

INDEX_NAME = "time"
COLUMNS = ("open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS = ("adj_close",)
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")

KIND_PRICE = "price"
KIND_VALUE = "value"  # a univariate non-price series stored as close; no positivity checks


@dataclass
class CleanReport:
    """What ``clean`` changed, for the user to read."""

    rows_in: int = 0
    rows_out: int = 0
    sorted: bool = False
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        out = []
        if self.sorted:
            out.append("sorted rows into time order")
        if self.duplicates_dropped:
            out.append(f"dropped {self.duplicates_dropped} exact duplicate row(s)")
        return out + self.notes


def empty_frame(*, with_adj_close: bool = False) -> pd.DataFrame:
    cols = list(COLUMNS) + (["adj_close"] if with_adj_close else [])
    idx = pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME)
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in cols}, index=idx)


def _first_bad(frame: pd.DataFrame, mask: np.ndarray | pd.Series, what: str) -> DataError:
    mask = np.asarray(mask)
    i = int(np.flatnonzero(mask)[0])
    row = frame.iloc[i]
    values = ", ".join(f"{c}={float(row[c])!r}" for c in frame.columns)  # not numpy's np.float64(...) repr
    return DataError(f"{what} at {frame.index[i].isoformat()} (row {i}, {int(mask.sum())} such rows): {values}")


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce index and dtypes to the schema without judging the values."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError("price frame needs a DatetimeIndex of bar open times")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"price frame lacks column(s): {', '.join(missing)}")
    cols = list(COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    out = frame[cols].astype("float64")
    idx = frame.index
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    out.index = idx.rename(INDEX_NAME)
    return out


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
    """Sort, drop exact duplicate rows; report both. Conflicting duplicates are left for ``validate``."""
    out = conform(frame)
    report = CleanReport(rows_in=len(out))
    if not out.index.is_monotonic_increasing:
        out = out.sort_index(kind="stable")
        report.sorted = True
    dup = out.reset_index().duplicated(keep="first").to_numpy()
    if dup.any():
        out = out[~dup]
        report.duplicates_dropped = int(dup.sum())
    report.rows_out = len(out)
    return out, report


def validate(frame: pd.DataFrame, *, kind: str = KIND_PRICE) -> pd.DataFrame:
    """Raise ``DataError`` naming the first bad row; return the frame unchanged when it is sound."""
    out = conform(frame)
    if not out.index.is_monotonic_increasing:
        raise DataError("bars are not in time order")
    dup = out.index.duplicated(keep=False)
    if dup.any():
        raise _first_bad(out, dup, "conflicting duplicate bars (same time, different values)")
    prices = [c for c in PRICE_COLUMNS if c in out.columns]
    values = out[prices].to_numpy()
    bad = ~np.isfinite(values).all(axis=1)
    if kind == KIND_VALUE:
        bad_close = ~np.isfinite(out["close"].to_numpy())
        if bad_close.any():
            raise _first_bad(out, bad_close, "NaN or infinite value")
        return out
    if bad.any():
        raise _first_bad(out, bad, "NaN or infinite price")
    nonpos = (values <= 0).any(axis=1)
    if nonpos.any():
        raise _first_bad(out, nonpos, "non-positive price")
    hl = (out["high"] < out["low"]).to_numpy()
    if hl.any():
        raise _first_bad(out, hl, "high below low")
    vol = out["volume"].to_numpy()
    badvol = ~np.isfinite(vol) | (vol < 0)
    if badvol.any():
        raise _first_bad(out, badvol, "negative or non-finite volume")
    return out


def combine(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two frames by time; where both have a bar, the newer frame's bar wins."""
    if len(old) == 0:
        return new.sort_index()
    if len(new) == 0:
        return old
    cols = list(COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in old.columns or c in new.columns]
    merged = pd.concat([old[~old.index.isin(new.index)], new]).reindex(columns=cols)
    return merged.sort_index(kind="stable")
