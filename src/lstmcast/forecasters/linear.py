"""The ``linear`` family: ridge regression on the same causal, scaled look-back windows, numpy only.

Each window (``lookback x features`` scaled values, flattened) predicts the ``horizon`` scaled
targets; the weights have a closed form, ``(X'X + alpha I)^-1 X'y`` on centred training rows (the
intercept is not penalised). The scaler and the centring use the training rows only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmcast import features as F
from lstmcast.features import FeatureConfig, Prepared, Scaler
from lstmcast.forecasters.base import FitRecord, actual_close, check_origins


def _design(scaled: np.ndarray, origins: np.ndarray, lookback: int, offset: int) -> np.ndarray:
    """``[n, lookback * F]`` windows ending at ``origins`` from rows ``scaled`` that start at ``offset``."""
    rows = (origins - offset)[:, None] + np.arange(-lookback + 1, 1)[None, :]
    return scaled[rows].reshape(len(origins), -1).astype("float64")


@dataclass
class LinearFitted(FitRecord):
    features: FeatureConfig
    scaler: Scaler
    coef: np.ndarray  # [lookback * F, horizon]
    intercept: np.ndarray  # [horizon]
    alpha: float
    val_fraction: float
    feature_names: tuple[str, ...] = ()
    family: str = "linear"

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        origins = check_origins(self, prepared, origins)
        lb, h = self.features.lookback, self.features.horizon
        if origins.size == 0:
            return np.empty((0, h))
        lo = int(origins.min()) - lb + 1
        scaled = self.scaler.transform(prepared.raw[lo : int(origins.max()) + 1])
        y = self.scaler.inverse_target(_design(scaled, origins, lb, lo) @ self.coef + self.intercept)
        if self.features.target == "return":
            return prepared.close[origins][:, None] * np.exp(np.cumsum(y, axis=1))
        return y

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {"weights.coef": np.ascontiguousarray(self.coef), "weights.intercept": self.intercept.copy()}
        meta = {"family": self.family, "features": self.features.to_dict(), "feature_names": list(self.feature_names),
                "model": {"ridge_alpha": self.alpha}, "train": {"val_fraction": self.val_fraction},
                "scaler": self.scaler.to_dict()}
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> LinearFitted:
        return cls(features=FeatureConfig.from_dict(meta["features"]), scaler=Scaler.from_dict(meta["scaler"]),
                   coef=np.asarray(tensors["weights.coef"], dtype="float64"),
                   intercept=np.asarray(tensors["weights.intercept"], dtype="float64"),
                   alpha=float(meta["model"]["ridge_alpha"]),
                   val_fraction=float(meta.get("train", {}).get("val_fraction", 0.2)),
                   feature_names=tuple(meta["feature_names"]))


class LinearForecaster:
    family = "linear"

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def fit(self, prepared: Prepared, *, start: int = 0, end: int | None = None,
            progress: Callable[[Any], None] | None = None) -> LinearFitted:
        t0 = time.perf_counter()
        s = self.settings
        features = FeatureConfig.from_settings(s)
        end = len(prepared) if end is None else end
        sp = F.split(len(prepared), features=features, val_fraction=s.val_fraction, start=start, end=end)
        lb, h = features.lookback, features.horizon
        scaler = Scaler.fit(prepared.raw[start : sp.train_end],
                            prepared.target[sp.train_origins[0] + 1 : sp.train_end])
        scaled = scaler.transform(prepared.raw[start:end])
        x = _design(scaled, sp.train_origins, lb, start)
        steps = sp.train_origins[:, None] + np.arange(1, h + 1)[None, :]
        y = scaler.transform_target(prepared.target[steps]).astype("float64")
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - xm, y - ym
        gram = xc.T @ xc + s.ridge_alpha * np.eye(xc.shape[1])
        coef = np.linalg.lstsq(gram, xc.T @ yc, rcond=None)[0]
        fitted = LinearFitted(
            features=features, scaler=scaler, coef=coef, intercept=ym - xm @ coef, alpha=s.ridge_alpha,
            val_fraction=s.val_fraction, feature_names=tuple(prepared.names), start=start, end=end,
            train_end=sp.train_end, val_origins=sp.val_origins, best_epoch=1,
        )
        fitted.val_pred = fitted.predict_close(prepared, sp.val_origins)
        fitted.val_actual = actual_close(prepared, sp.val_origins, h)
        fitted.seconds = time.perf_counter() - t0
        return fitted
