"""Forecast history: what each run forecast, and later what actually happened.

Layout under the data directory::

    forecasts/{source}/{symbol, percent-encoded}/{interval}/latest.json     the newest forecast
    forecasts/{source}/{symbol, percent-encoded}/{interval}/history.parquet every forecast row

One history row per (origin, run_id, step): the model run that made it, the bar it was made at
(origin), the bar it is for (target_time), the predicted close, the naive close (the close at the
origin: "tomorrow equals today"), the interval bounds, and ``actual`` once that bar exists. The
interval says how it was made: its nominal ``level``, the quantile levels of its two tails
(``level_lower`` / ``level_upper``: 0.1 / 0.9 for a plain 80% interval, moved by adaptive conformal
inference in ``lstmcast run``, see ``liveaci``) and ``interval_method`` (``split`` or ``aci``).
Files are rewritten atomically; writers hold the run lock, so there is no per-series lock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast import atomic, workspace
from lstmcast.data.store import SeriesKey, key_folder, symbol_dirname
from lstmcast.errors import DataError, DataNotFoundError, StoreError

HISTORY_COLUMNS = (
    "origin",
    "run_id",
    "step",
    "target_time",
    "predicted",
    "naive",
    "lower",
    "upper",
    "level",
    "made_at",
    "actual",
    "scored_at",
    "level_lower",
    "level_upper",
    "interval_method",
)
# added after the first release: a history written before them reads with them empty (its
# intervals were plain split conformal at ``level``)
_LATER_COLUMNS = ("level_lower", "level_upper", "interval_method")
_KEY = ["origin", "run_id", "step"]
_TIMES = ("origin", "target_time", "made_at", "scored_at")


@dataclass(frozen=True)
class Forecast:
    """One forecast: made by model ``run_id`` at bar ``origin`` for the next ``len(predicted)`` bars."""

    key: SeriesKey
    run_id: str
    origin: pd.Timestamp
    last_close: float  # the close at the origin, which is also the naive forecast
    target_times: tuple[pd.Timestamp, ...]
    predicted: tuple[float, ...]
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    level: float | None = None  # interval coverage, e.g. 0.9
    made_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC").floor("s"))
    # per step, the quantile levels of the interval's two tails ((0.1, 0.9) for 80% at nominal)
    tail_levels: tuple[tuple[float, float], ...] | None = None
    interval_method: str | None = None  # "split" | "aci" (None: no interval)
    # signed calibration residuals [n, steps] and their space ("log" | "additive"), so the run can
    # read the interval at its adaptive tail levels (``liveaci``); never written anywhere
    calibration: Any = field(default=None, repr=False, compare=False)
    mode: str = "log"

    def __post_init__(self) -> None:
        n = len(self.predicted)
        if n == 0 or len(self.target_times) != n:
            raise DataError(
                f"forecast for {self.key} has {n} predictions for {len(self.target_times)} target times"
            )
        for name in ("lower", "upper"):
            bounds = getattr(self, name)
            if bounds is not None and len(bounds) != n:
                raise DataError(f"forecast for {self.key}: {name} has {len(bounds)} values, expected {n}")
        if self.tail_levels is not None and len(self.tail_levels) != n:
            raise DataError(f"forecast for {self.key}: {len(self.tail_levels)} tail levels, expected {n}")

    def rows(self) -> pd.DataFrame:
        n = len(self.predicted)
        return _typed(
            pd.DataFrame(
                {
                    "origin": [self.origin] * n,
                    "run_id": [self.run_id] * n,
                    "step": np.arange(1, n + 1, dtype="int64"),
                    "target_time": list(self.target_times),
                    "predicted": list(self.predicted),
                    "naive": [self.last_close] * n,
                    "lower": list(self.lower) if self.lower is not None else [math.nan] * n,
                    "upper": list(self.upper) if self.upper is not None else [math.nan] * n,
                    "level": [self.level if self.level is not None else math.nan] * n,
                    "made_at": [self.made_at] * n,
                    "actual": [math.nan] * n,
                    "scored_at": [pd.NaT] * n,
                    "level_lower": [t[0] for t in self.tail_levels] if self.tail_levels else [math.nan] * n,
                    "level_upper": [t[1] for t in self.tail_levels] if self.tail_levels else [math.nan] * n,
                    "interval_method": [self.interval_method] * n,
                }
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.key.spec,
            "interval": self.key.interval,
            "run_id": self.run_id,
            "origin": self.origin.isoformat(),
            "last_close": self.last_close,
            "made_at": self.made_at.isoformat(),
            "level": self.level,
            "interval_method": self.interval_method,
            "steps": [
                {
                    "step": i + 1,
                    "target_time": t.isoformat(),
                    "predicted": p,
                    "lower": None if self.lower is None else self.lower[i],
                    "upper": None if self.upper is None else self.upper[i],
                    "level_lower": None if not self.tail_levels else self.tail_levels[i][0],
                    "level_upper": None if not self.tail_levels else self.tail_levels[i][1],
                }
                for i, (t, p) in enumerate(zip(self.target_times, self.predicted, strict=True))
            ],
        }


def headline(forecast: Mapping[str, Any]) -> str:
    """``"2024-05-02: 187.3"``: the first step of a ``Forecast.to_dict()`` (a daily bar by its date)."""
    first = forecast["steps"][0]
    return f"{str(first['target_time']).replace('T00:00:00+00:00', '')}: {first['predicted']:.6g}"


def folder(data_dir: Path, key: SeriesKey) -> Path:
    return key_folder(workspace.forecasts_root(data_dir), key) / key.interval


def history_path(data_dir: Path, key: SeriesKey) -> Path:
    return folder(data_dir, key) / "history.parquet"


def latest_path(data_dir: Path, key: SeriesKey) -> Path:
    return folder(data_dir, key) / "latest.json"


def checks_path(data_dir: Path, key: SeriesKey) -> Path:
    """The last run's live checks of this series (written by ``pipelines.live``)."""
    from lstmcast.workspace import CHECKS

    return folder(data_dir, key) / CHECKS


def empty_history() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in HISTORY_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "interval_method" not in frame.columns:  # written before the interval said how it was made
        frame["interval_method"] = pd.Series(
            np.where(pd.to_numeric(frame["level"]).notna(), "split", None), index=frame.index, dtype="object"
        ) if len(frame) else []
    for c in ("level_lower", "level_upper"):
        if c not in frame.columns:
            frame[c] = math.nan
    for c in _TIMES:
        frame[c] = pd.to_datetime(frame[c], utc=True).dt.as_unit("us")
    frame["run_id"] = frame["run_id"].astype("string")
    frame["step"] = frame["step"].astype("int64")
    for c in ("predicted", "naive", "lower", "upper", "level", "actual", "level_lower", "level_upper"):
        frame[c] = frame[c].astype("float64")
    frame["interval_method"] = frame["interval_method"].astype("string")
    return frame[list(HISTORY_COLUMNS)].reset_index(drop=True)


def load_history(data_dir: Path, key: SeriesKey) -> pd.DataFrame:
    """The stored history (empty if none), sorted by origin, then step."""
    path = history_path(data_dir, key)
    if not path.exists():
        return empty_history()
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise StoreError(f"cannot read forecast history {path}: {e}") from e
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns and c not in _LATER_COLUMNS]
    if missing:
        raise StoreError(f"forecast history {path} lacks column(s) {', '.join(missing)}")
    return _typed(frame)


def save_history(data_dir: Path, key: SeriesKey, history: pd.DataFrame) -> Path:
    path = history_path(data_dir, key)
    frame = _typed(history).sort_values(["origin", "run_id", "step"], kind="stable").reset_index(drop=True)
    atomic.write_with(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=False))
    return path


def append(history: pd.DataFrame, forecast: Forecast) -> pd.DataFrame:
    """Add a forecast's rows. A row already there (same origin, run_id, step: the same model asked
    again at the same bar) is kept as first published, with its score, so re-running adds nothing."""
    new = forecast.rows()
    if history.empty:
        return new
    fresh = ~_keys(new).isin(set(_keys(history)))
    return pd.concat([history, new[fresh]], ignore_index=True) if fresh.any() else history


def _keys(frame: pd.DataFrame) -> pd.Series:
    return (
        frame["origin"].astype("string")
        + "|"
        + frame["run_id"].astype("string")
        + "|"
        + frame["step"].astype("string")
    )


def score(
    history: pd.DataFrame, frame: pd.DataFrame, *, now: pd.Timestamp | None = None, interval: str | None = None
) -> pd.DataFrame:
    """Fill ``actual`` for rows whose target bar is in ``frame`` (the stored prices). Idempotent:
    rows already scored keep their value; rows whose bar does not exist yet stay empty.

    With ``interval``, a bar that has not closed by ``now`` (open time + interval) is left for a
    later run: a still-forming bar can be stored (an import, ``fetch --include-partial``), and a
    score, once written, is never revised."""
    if history.empty:
        return history
    from lstmcast.data.calendar import parse_interval

    now = now or pd.Timestamp.now(tz="UTC")
    out = history.copy()
    todo = out["actual"].isna() & out["target_time"].isin(frame.index)
    if interval is not None:
        todo &= out["target_time"] + parse_interval(interval).delta <= now
    if todo.any():
        out.loc[todo, "actual"] = (
            frame["close"].reindex(out.loc[todo, "target_time"]).to_numpy(dtype="float64")
        )
        out.loc[todo, "scored_at"] = now.floor("s")
    return out


@dataclass(frozen=True)
class LiveSummary:
    """How the live forecasts did, next to the naive forecast over the same rows."""

    n: int  # scored rows (origin x step)
    pending: int  # rows whose target bar has not happened yet
    mae: float
    rmse: float
    naive_mae: float
    naive_rmse: float
    skill: float  # 1 - mae / naive_mae: above 0 beats the naive forecast
    hit_rate: float  # direction called correctly (the naive forecast calls none)
    hit_low: float
    hit_high: float
    coverage: float  # share of actuals inside [lower, upper], where bounds exist

    def to_dict(self) -> dict[str, float | int]:
        from dataclasses import asdict

        return asdict(self)


def summary(history: pd.DataFrame) -> LiveSummary:
    from lstmcast.evaluate import metrics

    done = history[history["actual"].notna()]
    pending = int(history["actual"].isna().sum())
    nan = math.nan
    if done.empty:
        return LiveSummary(0, pending, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    actual, pred, naive = (done[c].to_numpy("float64") for c in ("actual", "predicted", "naive"))
    hits = metrics.direction_hits(actual, pred, naive)
    k, n = int(hits.sum()), int(hits.size)
    lo, hi = metrics.wilson_interval(k, n)
    mae, naive_mae = metrics.mae(actual, pred), metrics.mae(actual, naive)
    bounded = done[done["lower"].notna() & done["upper"].notna()]
    coverage = (
        float(((bounded["actual"] >= bounded["lower"]) & (bounded["actual"] <= bounded["upper"])).mean())
        if len(bounded)
        else nan
    )
    return LiveSummary(
        n=len(done),
        pending=pending,
        mae=mae,
        rmse=metrics.rmse(actual, pred),
        naive_mae=naive_mae,
        naive_rmse=metrics.rmse(actual, naive),
        skill=1 - mae / naive_mae if naive_mae > 0 else nan,
        hit_rate=k / n,
        hit_low=lo,
        hit_high=hi,
        coverage=coverage,
    )


def record(data_dir: Path, forecast: Forecast, *, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Append ``forecast`` to the series' history, score earlier rows against ``frame`` (the stored
    prices), write the history and ``latest.json``. Returns the new history."""
    history = append(load_history(data_dir, forecast.key), forecast)
    if frame is not None:
        history = score(history, frame, interval=forecast.key.interval)
    save_history(data_dir, forecast.key, history)
    atomic.write_json(latest_path(data_dir, forecast.key), forecast.to_dict())
    return history


def find_series(data_dir: Path, spec: str, interval: str) -> SeriesKey:
    """The series with forecasts that ``SYMBOL`` or ``SOURCE:SYMBOL`` means."""
    from lstmcast.data.store import check_symbol, parse_spec

    source, symbol = parse_spec(spec)
    check_symbol(symbol)
    root = workspace.forecasts_root(data_dir)
    if source is not None:
        key = SeriesKey(source, symbol, interval)
        if not history_path(data_dir, key).exists():
            raise DataNotFoundError(f"no forecasts for {key} yet; `lstmcast run` writes them")
        return key
    sources = sorted(
        p.parents[2].name
        for p in root.glob(f"*/{symbol_dirname(symbol)}/{interval}/history.parquet")
    )
    if not sources:
        raise DataNotFoundError(f"no forecasts for {symbol} {interval} yet; `lstmcast run` writes them")
    if len(sources) > 1:
        raise DataError(
            f"{symbol} {interval} has forecasts from several sources ({', '.join(sources)}); name one"
        )
    return SeriesKey(sources[0], symbol, interval)


def latest(data_dir: Path, key: SeriesKey) -> dict[str, Any] | None:
    path = latest_path(data_dir, key)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read {path}: {e}") from e
