"""Per-step features, targets, the train-only scaler and look-back windows. numpy/torch, no I/O.

Everything here is causal: feature row ``t`` uses bars ``<= t`` only, so a series is prepared
once and reused by every training run and backtest fold. Statistics (the scaler) are fitted on
the training rows of a fold only, never on the whole series.

Positions are integer rows ``0..T-1``. A window for origin ``t`` holds feature rows
``t-lookback+1 .. t``; its target is the next ``horizon`` steps ``t+1 .. t+horizon``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.errors import ConfigError, DataError, ModelError

KIND_PRICE = "price"
KIND_VALUE = "value"
TARGETS = ("return", "price")

# name -> (needs positive values, needs a real high/low/volume)
FEATURES: dict[str, tuple[bool, bool]] = {
    "log_return": (True, False),  # log(close_t / close_{t-1})
    "log_range": (True, True),  # log(high_t / low_t)
    "log_volume_change": (False, True),  # log((volume_t + 1) / (volume_{t-1} + 1))
    "diff": (False, False),  # close_t - close_{t-1}: the value-series analogue of log_return
    "level": (False, False),  # close_t itself (scaled): needed when the target is a level
}
DEFAULT_FEATURES = ("log_return", "log_range", "log_volume_change")


@dataclass(frozen=True)
class FeatureConfig:
    lookback: int = 60
    horizon: int = 1
    target: str = "return"  # "return": next `horizon` log returns of close; "price": scaled close level
    features: tuple[str, ...] = DEFAULT_FEATURES

    def __post_init__(self) -> None:
        # the bounds and messages of settings.py: one set for flags, files and code
        from lstmcast.settings import join_problems, problems

        found = problems({"lookback": self.lookback, "horizon": self.horizon, "target": self.target,
                          "features": tuple(self.features)})
        if found:
            raise ConfigError(join_problems(found, where="options"))

    @classmethod
    def from_settings(cls, s: Any) -> FeatureConfig:
        """The feature part of a ``settings.Settings``."""
        return cls(lookback=s.lookback, horizon=s.horizon, target=s.target, features=tuple(s.features))

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "target": self.target,
            "features": list(self.features),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        return cls(
            lookback=int(d["lookback"]),
            horizon=int(d["horizon"]),
            target=str(d["target"]),
            features=tuple(d["features"]),
        )


def feature_names(features: FeatureConfig, *, kind: str) -> tuple[str, ...]:
    """The features actually used for a series of ``kind``.

    A value series (``import --value-column``) has no high/low/volume and may be negative, so
    price-only features are swapped for their plain analogues; a level target always sees the
    level itself, otherwise a return-only input cannot tell where the level is.
    """
    names: list[str] = []
    for name in features.features:
        if kind == KIND_VALUE and FEATURES[name][1]:
            continue
        if kind == KIND_VALUE and name == "log_return" and features.target == "price":
            name = "diff"
        if name not in names:
            names.append(name)
    if features.target == "price" and "level" not in names:
        names.append("level")
    if not names:
        names.append("diff" if kind == KIND_VALUE else "log_return")
    return tuple(names)


@dataclass
class Prepared:
    """A whole series turned into unscaled per-step features (causal), built once per series."""

    index: pd.DatetimeIndex
    close: np.ndarray  # float64 [T]
    raw: np.ndarray  # float32 [T, F] unscaled per-step features
    kind: str  # "price" | "value"
    names: tuple[str, ...] = ()  # feature names, the columns of raw
    target: np.ndarray = field(default_factory=lambda: np.empty(0))  # float64 [T] per-row target value

    def __len__(self) -> int:
        return len(self.close)


def _first_bad_time(index: pd.DatetimeIndex, mask: np.ndarray) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"{index[i].isoformat()} (row {i}, {int(mask.sum())} such rows)"


def prepare(frame: pd.DataFrame, *, kind: str, features: FeatureConfig) -> Prepared:
    """Per-step features and targets of a stored series; raises DataError/ModelError naming the culprit."""
    if kind not in (KIND_PRICE, KIND_VALUE):
        raise DataError(f"unknown series kind {kind!r}")
    close = frame["close"].to_numpy(dtype="float64")
    bad = ~np.isfinite(close)
    if bad.any():
        raise DataError(
            f"NaN or infinite close at {_first_bad_time(frame.index, bad)}; repair or re-import the series"
        )
    names = feature_names(features, kind=kind)
    needs_positive = features.target == "return" or any(FEATURES[n][0] for n in names)
    if needs_positive and (close <= 0).any():
        raise ModelError(
            f"log returns need positive values, but the {'value' if kind == KIND_VALUE else 'close'} is "
            f"{close[close <= 0][0]:g} at "
            f"{_first_bad_time(frame.index, close <= 0)}; train this series with --target price"
        )
    cols = []
    for name in names:
        if name == "log_return":
            col = np.diff(np.log(close), prepend=np.nan)
        elif name == "diff":
            col = np.diff(close, prepend=np.nan)
        elif name == "level":
            col = close.copy()
        elif name == "log_range":
            high, low = frame["high"].to_numpy("float64"), frame["low"].to_numpy("float64")
            with np.errstate(all="ignore"):
                col = np.log(high / low)
        else:  # log_volume_change
            vol = frame["volume"].to_numpy("float64")
            with np.errstate(all="ignore"):
                col = np.diff(np.log1p(vol), prepend=np.nan)
        col[0] = 0.0 if name != "level" and name != "log_range" else col[0]  # no bar before the first
        bad = ~np.isfinite(col)
        if bad.any():
            raise DataError(
                f"feature {name} is NaN or infinite at {_first_bad_time(frame.index, bad)}: "
                "the stored bars have missing or invalid high/low/volume there"
            )
        cols.append(col)
    if features.target == "return":
        target = np.diff(np.log(close), prepend=np.nan)
        target[0] = 0.0
    else:
        target = close.copy()
    raw = np.stack(cols, axis=1).astype("float32")
    return Prepared(index=frame.index, close=close, raw=raw, kind=kind, names=names, target=target)


@dataclass
class Scaler:
    """Standardisation of features and target, fitted on training rows only."""

    mean: np.ndarray  # float64 [F]
    std: np.ndarray  # float64 [F]
    target_mean: float
    target_std: float

    @classmethod
    def fit(cls, raw: np.ndarray, target: np.ndarray) -> Scaler:
        """Fit on the given rows; the caller passes the training rows and nothing else."""
        mean = raw.astype("float64").mean(axis=0)
        std = raw.astype("float64").std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # a constant feature stays constant, not NaN
        tstd = float(np.std(target))
        return cls(
            mean=mean, std=std, target_mean=float(np.mean(target)), target_std=tstd if tstd > 1e-12 else 1.0
        )

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return ((raw - self.mean) / self.std).astype("float32")

    def transform_target(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.target_mean) / self.target_std).astype("float32")

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype="float64") * self.target_std + self.target_mean

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(
            mean=np.asarray(d["mean"], dtype="float64"),
            std=np.asarray(d["std"], dtype="float64"),
            target_mean=float(d["target_mean"]),
            target_std=float(d["target_std"]),
        )


@dataclass(frozen=True)
class Split:
    """Chronological split of the origins usable inside rows ``[start, end)``."""

    start: int
    end: int
    train_origins: np.ndarray
    val_origins: np.ndarray
    horizon: int = 1

    @property
    def train_end(self) -> int:
        """One past the last row any training window touches (input or target)."""
        return int(self.train_origins[-1]) + 1 + self.horizon


MIN_TRAIN_WINDOWS = 8
MIN_VAL_WINDOWS = 2


def _split_sizes(n: int, *, horizon: int, val_fraction: float) -> tuple[int, int]:
    n_val = max(MIN_VAL_WINDOWS, int(round(n * val_fraction))) if val_fraction > 0 else 0
    # a gap of horizon-1 origins keeps training targets out of every validation target
    n_train = n - n_val - (horizon - 1)
    return n_train, n_val


def bars_needed(features: FeatureConfig, *, val_fraction: float) -> int:
    """The fewest bars that give enough training and validation windows."""
    n = 1
    while True:
        n_train, n_val = _split_sizes(n, horizon=features.horizon, val_fraction=val_fraction)
        if n_train >= MIN_TRAIN_WINDOWS and (n_val >= MIN_VAL_WINDOWS or val_fraction == 0):
            return n + features.lookback + features.horizon - 1
        n += 1


def split(
    n_rows: int, *, features: FeatureConfig, val_fraction: float, start: int = 0, end: int | None = None
) -> Split:
    """Origins of the training and validation windows in ``[start, end)``: chronological, never shuffled."""
    end = n_rows if end is None else end
    if not 0 <= start < end <= n_rows:
        raise ModelError(f"rows [{start}, {end}) are not inside the series (0..{n_rows})")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"validation fraction must be in [0, 1) (got {val_fraction})")
    lb, h = features.lookback, features.horizon
    first = start + lb - 1
    last = end - 1 - h
    n = max(0, last - first + 1)
    n_train, n_val = _split_sizes(n, horizon=h, val_fraction=val_fraction)
    if n_train < MIN_TRAIN_WINDOWS or (val_fraction > 0 and n_val < MIN_VAL_WINDOWS):
        need = bars_needed(features, val_fraction=val_fraction)
        raise ModelError(
            f"too little history: {end - start} bars, but look-back {lb} + horizon {h} with a "
            f"{val_fraction:g} validation split needs at least {need} bars; fetch more history or "
            "lower --lookback / --val-fraction"
        )
    origins = np.arange(first, last + 1)
    train = origins[:n_train]
    val = origins[n - n_val :] if n_val else origins[:0]
    return Split(start=start, end=end, train_origins=train, val_origins=val, horizon=h)


def windows(x: Any, lookback: int) -> Any:
    """All look-back windows of a [T, F] tensor as a [T-lookback+1, lookback, F] view (no copy)."""
    return x.unfold(0, lookback, 1).transpose(1, 2)
