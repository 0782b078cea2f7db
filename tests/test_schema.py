"""clean repairs what is safe and reports it; validate rejects the rest, naming the first bad row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstmcast.data import schema
from lstmcast.errors import DataError


def bars(days: list[str], *, close: list[float] | None = None, tz: str | None = "UTC") -> pd.DataFrame:
    n = len(days)
    close = close if close is not None else [100.0 + i for i in range(n)]
    idx = pd.DatetimeIndex(pd.to_datetime(days), name="time")
    if tz:
        idx = idx.tz_localize(tz)
    return pd.DataFrame(
        {
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [10.0] * n,
        },
        index=idx,
    )


def test_conform_gives_utc_index_named_time_and_float_columns():
    f = bars(["2024-01-02", "2024-01-03"], tz=None)
    f["volume"] = [1, 2]  # int column
    f["extra"] = ["a", "b"]
    out = schema.conform(f)
    assert str(out.index.tz) == "UTC"
    assert out.index.name == "time"
    assert list(out.columns) == list(schema.COLUMNS)
    assert all(out[c].dtype == "float64" for c in out.columns)


def test_conform_missing_column_names_it():
    f = bars(["2024-01-02"]).drop(columns=["volume"])
    with pytest.raises(DataError, match="volume"):
        schema.conform(f)


def test_clean_sorts_and_reports():
    f = bars(["2024-01-04", "2024-01-02", "2024-01-03"])
    out, report = schema.clean(f)
    assert out.index.is_monotonic_increasing
    assert report.sorted is True
    assert report.duplicates_dropped == 0
    assert "sorted rows into time order" in report.describe()
    assert (report.rows_in, report.rows_out) == (3, 3)


def test_clean_drops_exact_duplicates_and_reports():
    f = bars(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04"], close=[1.0, 2.0, 2.0, 3.0])
    out, report = schema.clean(f)
    assert len(out) == 3
    assert out.index.is_unique
    assert report.duplicates_dropped == 1
    assert report.sorted is False
    assert any("1 exact duplicate" in line for line in report.describe())


def test_clean_leaves_conflicting_duplicates_for_validate():
    f = bars(["2024-01-02", "2024-01-03", "2024-01-03"], close=[1.0, 2.0, 5.0])
    out, report = schema.clean(f)
    assert len(out) == 3
    assert report.duplicates_dropped == 0
    with pytest.raises(DataError, match=r"conflicting duplicate.*2024-01-03T00:00:00\+00:00"):
        schema.validate(out)


def test_clean_on_sound_frame_reports_nothing():
    out, report = schema.clean(bars(["2024-01-02", "2024-01-03"]))
    assert report.describe() == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_validate_rejects_non_finite_price_naming_row(bad):
    f = bars(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    f.loc[pd.Timestamp("2024-01-04", tz="UTC"), "close"] = bad
    f.loc[pd.Timestamp("2024-01-05", tz="UTC"), "close"] = bad
    with pytest.raises(DataError, match="NaN or infinite price") as exc:
        schema.validate(f)
    msg = str(exc.value)
    assert "2024-01-04" in msg  # the first bad row, not the second
    assert "2024-01-05" not in msg
    assert "2 such rows" in msg


@pytest.mark.parametrize("value", [0.0, -3.5])
def test_validate_rejects_non_positive_price(value):
    f = bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    f.loc[pd.Timestamp("2024-01-03", tz="UTC"), "low"] = value
    with pytest.raises(DataError, match="non-positive price") as exc:
        schema.validate(f)
    assert "2024-01-03T00:00:00+00:00" in str(exc.value)
    assert "row 1" in str(exc.value)
    assert f"low={value!r}, close=101.0" in str(exc.value)


def test_validate_rejects_non_positive_adj_close():
    f = bars(["2024-01-02", "2024-01-03"])
    f["adj_close"] = [1.0, -1.0]
    with pytest.raises(DataError, match="non-positive price.*2024-01-03"):
        schema.validate(f)


def test_validate_rejects_high_below_low():
    f = bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    f.loc[pd.Timestamp("2024-01-04", tz="UTC"), ["high", "low"]] = [90.0, 95.0]
    with pytest.raises(DataError, match="high below low") as exc:
        schema.validate(f)
    assert "2024-01-04T00:00:00+00:00" in str(exc.value)


def test_validate_rejects_negative_volume():
    f = bars(["2024-01-02", "2024-01-03"])
    f["volume"] = [1.0, -1.0]
    with pytest.raises(DataError, match="volume.*2024-01-03"):
        schema.validate(f)


def test_validate_rejects_unsorted():
    f = bars(["2024-01-03", "2024-01-02"])
    with pytest.raises(DataError, match="time order"):
        schema.validate(f)


def test_validate_returns_sound_frame_unchanged():
    f = bars(["2024-01-02", "2024-01-03"])
    out = schema.validate(f)
    pd.testing.assert_frame_equal(out, schema.conform(f))


def test_value_kind_is_exempt_from_positivity_and_high_low():
    t = np.arange(10)
    v = np.sin(2 * np.pi * t / 50) - 0.5  # negative values
    f = bars([f"2024-01-{d:02d}" for d in range(1, 11)], close=list(v))
    f["volume"] = np.nan
    with pytest.raises(DataError):
        schema.validate(f)  # as a price it is rejected
    out = schema.validate(f, kind=schema.KIND_VALUE)
    assert (out["close"] < 0).any()


def test_value_kind_still_rejects_non_finite_value():
    f = bars(["2024-01-02", "2024-01-03"], close=[-1.0, math.nan])
    with pytest.raises(DataError, match=r"NaN or infinite value.*2024-01-03"):
        schema.validate(f, kind=schema.KIND_VALUE)


def test_combine_newer_wins_and_union():
    old = schema.conform(bars(["2024-01-02", "2024-01-03"], close=[1.0, 2.0]))
    new = schema.conform(bars(["2024-01-03", "2024-01-04"], close=[20.0, 30.0]))
    out = schema.combine(old, new)
    assert out["close"].tolist() == [1.0, 20.0, 30.0]
