"""Model families behind one protocol (``forecasters.base``): lstm, gru, linear and the baselines.

``forecaster(settings)`` gives the family's recipe; ``load_artifact(family, tensors, meta)``
rebuilds a fitted artifact from its saved state. The torch families are imported only when used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmcast.errors import ConfigError
from lstmcast.forecasters.base import BASELINE_FAMILIES, FAMILIES, RNN_FAMILIES, Fitted, Forecaster

__all__ = ["FAMILIES", "Fitted", "Forecaster", "forecaster", "load_artifact"]


def forecaster(settings: Any) -> Forecaster:
    """The forecaster of ``settings.family`` (a ``settings.Settings``)."""
    family = settings.family
    if family in RNN_FAMILIES:
        from lstmcast.forecasters.rnn.loop import RNNForecaster

        return RNNForecaster(settings)
    if family == "linear":
        from lstmcast.forecasters.linear import LinearForecaster

        return LinearForecaster(settings)
    if family in BASELINE_FAMILIES:
        from lstmcast.forecasters.baselines import BaselineForecaster

        return BaselineForecaster(settings)
    raise ConfigError(f"family {family!r} is not one of: {', '.join(FAMILIES)}")


def load_artifact(family: str, tensors: dict[str, np.ndarray], meta: dict[str, Any], *, device: str = "cpu") -> Fitted:
    """Rebuild a fitted artifact from what ``Fitted.state`` gave (the registry's job is the files).

    The recurrent families load as the numpy artifact (no torch import) on ``device="cpu"``; any
    other device (``cuda``, ``cuda:N``, ``mps``, ``auto``, or ``torch`` for torch on the CPU) gives
    the torch artifact on that device.
    """
    if family in RNN_FAMILIES:
        if device in ("cpu", "numpy"):
            from lstmcast.forecasters.rnn.numpy_fitted import NumpyFitted

            return NumpyFitted.from_state(tensors, {**meta, "family": family})
        from lstmcast.forecasters.rnn.loop import Fitted as RNNFitted

        if device == "torch":
            device = "cpu"

        return RNNFitted.from_state(tensors, meta, device=device)
    if family == "linear":
        from lstmcast.forecasters.linear import LinearFitted

        return LinearFitted.from_state(tensors, meta)
    if family in BASELINE_FAMILIES:
        from lstmcast.forecasters.baselines import BaselineFitted

        return BaselineFitted.from_state(tensors, meta)
    raise ConfigError(f"family {family!r} is not one of: {', '.join(FAMILIES)}")
