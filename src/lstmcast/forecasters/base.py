"""The Forecaster protocol every model family implements, and the family registry.

A forecaster is a recipe: ``fit(prepared, start=, end=)`` trains on rows ``[start, end)`` of a
prepared series (nothing at or after ``end`` is read) and returns a fitted artifact. The artifact
predicts closes for given origins, and turns into (and back from) a dict of numpy tensors plus
JSON metadata, which the registry writes as safetensors + ``meta.json``. No torch here: the torch
families live in ``forecasters.rnn`` and are imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lstmcast.features import FeatureConfig, Prepared

RNN_FAMILIES = ("lstm", "gru")
BASELINE_FAMILIES = ("naive", "drift", "moving_average", "mean_return")
FAMILIES = (*RNN_FAMILIES, "linear", *BASELINE_FAMILIES)


@runtime_checkable
class Fitted(Protocol):
    """A fitted artifact plus what its fit saw (the validation part is the run's calibration).

    The type the pipelines see. Every family's artifact gets the record attributes below (and
    ``device_description``) from ``FitRecord``; only ``family``, ``features``, ``feature_names`` and
    the two methods are its own.
    """

    family: str
    features: FeatureConfig
    feature_names: tuple[str, ...]
    start: int  # rows used: [start, end)
    end: int
    train_end: int  # one past the last row a training window touches
    val_origins: np.ndarray  # [n]
    val_pred: np.ndarray  # [n, horizon] predicted close
    val_actual: np.ndarray  # [n, horizon] actual close
    history: list[Any]  # per-epoch stats (empty for closed-form families and loaded runs)
    best_epoch: int
    interrupted: bool
    seconds: float
    device: str

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        """Predicted close for bars ``t+1 .. t+horizon`` at each origin ``t`` (rows ``<= t`` only)."""
        ...

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(tensors, JSON-able meta) that ``load_artifact(family, tensors, meta)`` rebuilds it from."""
        ...


@dataclass(kw_only=True)
class FitRecord:
    """What a fit saw, shared by every family's fitted artifact: not its state, but saved with it.

    Each family's artifact extends this (keyword-only, so it follows the family's own fields), and
    ``pipelines.train.Artifact`` carries exactly ``record_fields()`` between processes. A loaded
    run gets these back from its ``meta.json`` and calibration tensors (``registry.load_run``).
    """

    start: int = 0  # rows used: [start, end)
    end: int = 0
    train_end: int = 0  # one past the last row a training window touches (the MASE in-sample part)
    val_origins: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))  # [n]
    val_pred: np.ndarray = field(default_factory=lambda: np.empty((0, 1)))  # [n, horizon] predicted close
    val_actual: np.ndarray = field(default_factory=lambda: np.empty((0, 1)))  # [n, horizon] actual close
    history: list[Any] = field(default_factory=list)  # per-epoch stats (empty: closed-form families, loaded runs)
    best_epoch: int = 0  # 0: the untrained weights
    interrupted: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    device_description: str = "cpu (numpy)"


def record_fields() -> tuple[str, ...]:
    """The names of ``FitRecord``'s fields, in order."""
    return tuple(f.name for f in fields(FitRecord))


class Forecaster(Protocol):
    family: str

    def fit(
        self, prepared: Prepared, *, start: int = 0, end: int | None = None,
        progress: Callable[[Any], None] | None = None,
    ) -> Fitted: ...


def actual_close(prepared: Prepared, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The realised close for bars ``t+1 .. t+horizon`` at each origin: ``[n, horizon]``."""
    steps = np.asarray(origins, dtype="int64")[:, None] + np.arange(1, horizon + 1)[None, :]
    return prepared.close[steps]


def check_origins(fitted: Any, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
    from lstmcast.errors import ModelError

    origins = np.asarray(origins, dtype="int64").reshape(-1)
    lb = fitted.features.lookback
    if origins.size == 0:
        return origins
    if fitted.feature_names and tuple(prepared.names) != tuple(fitted.feature_names):
        raise ModelError(
            f"the series was prepared with features {list(prepared.names)}, "
            f"the model needs {list(fitted.feature_names)}"
        )
    if origins.min() < lb - 1 or origins.max() >= len(prepared):
        raise ModelError(
            f"forecast origins must lie in [{lb - 1}, {len(prepared) - 1}] "
            f"(look-back {lb}); got {origins.min()}..{origins.max()}"
        )
    return origins
