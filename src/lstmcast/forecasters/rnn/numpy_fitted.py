"""The lstm/gru artifact for prediction without torch: the saved weights run through ``NumpyRNN``.

Same ``Fitted`` protocol as the torch artifact of ``loop.py`` (``predict_close``, ``state``), same
numbers to float32 rounding, but loading it imports numpy and safetensors only. The registry
gives this artifact for ``device="cpu"``; the torch one only for an accelerator (``--device``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstmcast.features import FeatureConfig, Prepared, Scaler
from lstmcast.forecasters.base import FitRecord, check_origins
from lstmcast.forecasters.rnn.numpy_forward import WEIGHTS_PREFIX, NumpyRNN, windows


@dataclass
class NumpyFitted(FitRecord):
    """A loaded lstm/gru run, inference only (no history: see the run's ``meta.json``)."""

    family: str
    features: FeatureConfig
    feature_names: tuple[str, ...]
    scaler: Scaler
    net: NumpyRNN
    weights: dict[str, np.ndarray]  # torch-named, as saved (kept for ``state``)
    model: dict[str, Any] = field(default_factory=dict)  # the JSON configs, passed through
    train: dict[str, Any] = field(default_factory=dict)
    device: str = field(default="cpu (numpy)", kw_only=True)  # no torch device behind it

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        """Predicted close for bars ``t+1 .. t+horizon`` at each origin ``t``; rows ``<= t`` only."""
        lb = self.features.lookback
        origins = check_origins(self, prepared, origins)
        if origins.size == 0:
            return np.empty((0, self.features.horizon))
        lo, hi = int(origins.min()) - lb + 1, int(origins.max()) + 1
        x = self.scaler.transform(prepared.raw[lo:hi])  # float32, as the torch path feeds its module
        out = self.net.forward(windows(x, lb, origins - lo))
        y = self.scaler.inverse_target(out)
        if self.features.target == "return":
            return prepared.close[origins][:, None] * np.exp(np.cumsum(y, axis=1))
        return y

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {f"{WEIGHTS_PREFIX}{k}": np.ascontiguousarray(v) for k, v in self.weights.items()}
        meta = {
            "family": self.family,
            "features": self.features.to_dict(),
            "feature_names": list(self.feature_names),
            "model": dict(self.model),
            "train": dict(self.train),
            "scaler": self.scaler.to_dict(),
        }
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> NumpyFitted:
        from lstmcast.errors import CheckpointError

        family = str(meta.get("family", "lstm"))
        features = FeatureConfig.from_dict(meta["features"])
        names = tuple(meta["feature_names"])
        weights = {k[len(WEIGHTS_PREFIX):]: np.asarray(v) for k, v in tensors.items() if k.startswith(WEIGHTS_PREFIX)}
        net = NumpyRNN(weights)
        a = net.arch
        if a.cell != family:
            raise CheckpointError(f"the weights hold a {a.cell} network, the run says {family}")
        if a.n_features != len(names) or a.horizon != features.horizon:
            raise CheckpointError(
                f"weights do not fit the model config ({a.n_features} input(s) and horizon {a.horizon}; "
                f"the run records {len(names)} feature(s) and horizon {features.horizon})"
            )
        cfg = meta.get("model") or {}
        for key, got in (("hidden", a.hidden), ("layers", a.layers)):
            if key in cfg and int(cfg[key]) != got:
                raise CheckpointError(f"weights do not fit the model config ({key} {got}, the run says {cfg[key]})")
        h = features.horizon
        return cls(
            family=family, features=features, feature_names=names, scaler=Scaler.from_dict(meta["scaler"]),
            net=net, weights=weights, model=dict(cfg), train=dict(meta.get("train") or {}),
            val_pred=np.empty((0, h)), val_actual=np.empty((0, h)),
        )
