"""The four baselines (naive, drift, moving average, mean return) as forecasters.

They have nothing to learn: the "fit" records the settings and, like every family, the forecasts
on its validation origins (the run's calibration residuals). Each forecast at origin ``t`` reads
``close[:t+1]`` only (``evaluate.baselines``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmcast import features as F
from lstmcast.evaluate.baselines import baseline_forecasts
from lstmcast.features import FeatureConfig, Prepared
from lstmcast.forecasters.base import FitRecord, actual_close

MA_WINDOW = 20


@dataclass
class BaselineFitted(FitRecord):
    family: str
    features: FeatureConfig
    kind: str = "price"
    ma_window: int = MA_WINDOW
    feature_names: tuple[str, ...] = ()

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        o = np.asarray(origins, dtype="int64").reshape(-1)
        h = self.features.horizon
        if o.size == 0:
            return np.empty((0, h))
        out = baseline_forecasts(prepared.close, o, h, ma_window=self.ma_window, kind=prepared.kind)
        if self.family not in out:
            from lstmcast.errors import ModelError

            raise ModelError(f"the {self.family} baseline needs a price series; this one is a {prepared.kind} series")
        return out[self.family]

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"family": self.family, "features": self.features.to_dict(),
                    "feature_names": list(self.feature_names), "model": {"ma_window": self.ma_window}}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> BaselineFitted:
        return cls(family=meta["family"], features=FeatureConfig.from_dict(meta["features"]),
                   ma_window=int(meta.get("model", {}).get("ma_window", MA_WINDOW)),
                   feature_names=tuple(meta.get("feature_names", ())))


class BaselineForecaster:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.family = settings.family

    def fit(self, prepared: Prepared, *, start: int = 0, end: int | None = None,
            progress: Callable[[Any], None] | None = None) -> BaselineFitted:
        t0 = time.perf_counter()
        features = FeatureConfig.from_settings(self.settings)
        end = len(prepared) if end is None else end
        sp = F.split(len(prepared), features=features, val_fraction=self.settings.val_fraction, start=start, end=end)
        fitted = BaselineFitted(family=self.family, features=features, kind=prepared.kind,
                                feature_names=tuple(prepared.names), start=start, end=end,
                                train_end=sp.train_end, val_origins=sp.val_origins, best_epoch=1)
        fitted.val_pred = fitted.predict_close(prepared, sp.val_origins)
        fitted.val_actual = actual_close(prepared, sp.val_origins, features.horizon)
        fitted.seconds = time.perf_counter() - t0
        return fitted
