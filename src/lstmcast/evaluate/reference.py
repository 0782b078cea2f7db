"""A small, real reference forecaster: AR(1) on log returns, fitted by least squares.

It exists to test and calibrate the walk-forward machinery with something that learns from
data (a stub that returns constants could not leak), and as a cheap sanity model: on a random
walk it must not beat the naive forecast, on autocorrelated returns it must.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmcast.errors import ModelError


@dataclass(frozen=True)
class AR1:
    """``r[t+1] = intercept + slope * r[t] + e`` on log returns ``r[t] = log(c[t] / c[t-1])``."""

    intercept: float
    slope: float
    end: int  # rows [start, end) were used

    def predict_close(self, close: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``[n, horizon]`` predicted closes, iterating the recursion from the return at each origin."""
        c = np.asarray(close, dtype="float64")
        o = np.asarray(origins, dtype="int64")
        if np.any(o < 1):
            raise ModelError("AR(1) needs one past return: origins must be >= 1")
        r = np.log(c[o] / c[o - 1])
        out = np.empty((len(o), horizon))
        cum = np.zeros(len(o))
        for s in range(horizon):
            r = self.intercept + self.slope * r
            cum = cum + r
            out[:, s] = c[o] * np.exp(cum)
        return out


def fit_ar1(close: np.ndarray, *, start: int = 0, end: int | None = None) -> AR1:
    """Least squares on rows ``[start, end)`` only."""
    c = np.asarray(close, dtype="float64")
    end = len(c) if end is None else end
    seg = c[start:end]
    if len(seg) < 4:
        raise ModelError(f"AR(1) needs at least 4 rows to fit, got {len(seg)} (rows {start}..{end - 1})")
    r = np.diff(np.log(seg))
    x, y = r[:-1], r[1:]
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return AR1(intercept=float(a), slope=float(b), end=end)


def ar1_forecaster(
    close: np.ndarray, *, horizon: int
) -> tuple[Callable[[int, int], AR1], Callable[[AR1, np.ndarray], np.ndarray]]:
    """The ``(fit, predict)`` pair that ``walk_forward`` expects, over one series."""
    c = np.asarray(close, dtype="float64")

    def fit(start: int, end: int) -> AR1:
        return fit_ar1(c, start=start, end=end)

    def predict(model: AR1, origins: np.ndarray) -> np.ndarray:
        return model.predict_close(c, origins, horizon)

    return fit, predict
