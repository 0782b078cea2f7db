"""Baseline forecasts: the yardsticks every model is reported against, on the same origins.

Each baseline forecasts the closes of bars ``t+1 .. t+horizon`` from ``close[:t+1]`` only (the
origin ``t`` is the last bar it may see). Shapes are ``[n_origins, horizon]``.

- ``naive``: tomorrow equals today, ``close[t]`` at every step. For a price series this is also
  the *zero-mean-return* forecast (expected log return 0 => expected close unchanged), so the
  zero-return benchmark is reported under this name rather than twice.
- ``drift``: the random walk with drift on the level (Hyndman & Athanasopoulos, FPP 5.2):
  ``close[t] + s * (close[t] - close[0]) / t``, the mean one-bar change over the whole history.
- ``moving_average``: the mean of the last ``ma_window`` closes (fewer at the very start), flat
  over the horizon.
- ``mean_return`` (price series only): the historical-mean-log-return forecast, compounded:
  ``close[t] * exp(s * mu_t)`` where ``mu_t`` is the mean log return of the history up to ``t``
  (the "prevailing mean" of Goyal & Welch), or of the last ``mean_window`` returns. It is the
  geometric counterpart of ``drift``: for a series that grew exponentially (BTC, NVDA) drift
  extrapolates the *average dollar change* of the whole history, which is small at today's
  level, while ``mean_return`` extrapolates the average *percentage* change. Against
  ``naive`` (= zero return) it answers "does assuming the historical mean return beat
  assuming zero?", the classic benchmark pair for return forecasts.
"""

from __future__ import annotations

import numpy as np

from lstmcast.errors import UsageError

BASELINES = ("naive", "drift", "moving_average", "mean_return")


def check_origins(origins: np.ndarray, *, n_rows: int, horizon: int, min_origin: int = 0) -> np.ndarray:
    """Validate forecast origins: integer row positions, strictly increasing, with room for targets."""
    o = np.asarray(origins)
    if o.ndim != 1 or len(o) == 0:
        raise UsageError("origins must be a non-empty 1-d array of row positions")
    if not np.issubdtype(o.dtype, np.integer):
        raise UsageError(f"origins must be integer row positions, got dtype {o.dtype}")
    if horizon < 1:
        raise UsageError(f"horizon must be at least 1, got {horizon}")
    if np.any(np.diff(o) <= 0):
        raise UsageError("origins must be strictly increasing")
    if o[0] < min_origin:
        raise UsageError(f"first origin ({int(o[0])}) must be at least {min_origin}")
    if o[-1] + horizon > n_rows - 1:
        raise UsageError(
            f"last origin ({int(o[-1])}) + horizon ({horizon}) goes past the last row ({n_rows - 1})"
        )
    return o.astype("int64")


def baseline_forecasts(
    close: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    *,
    ma_window: int = 20,
    mean_window: int | None = None,
    kind: str = "price",
) -> dict[str, np.ndarray]:
    """Forecasts of every baseline at ``origins``: name -> ``[n, horizon]`` predicted closes.

    Uses only ``close[:t+1]`` for the forecast at origin ``t`` (cumulative sums are read at ``t``
    and never past it). Origins may reach the last row: targets need not exist. ``mean_return`` is
    left out for ``kind="value"`` series, whose values may be zero or negative.
    """
    c = np.asarray(close, dtype="float64")
    if ma_window < 1:
        raise UsageError(f"moving-average window must be at least 1, got {ma_window}")
    if mean_window is not None and mean_window < 1:
        raise UsageError(f"mean-return window must be at least 1, got {mean_window}")
    o = np.asarray(origins)
    if o.ndim != 1 or len(o) == 0 or not np.issubdtype(o.dtype, np.integer):
        raise UsageError("origins must be a non-empty 1-d array of integer row positions")
    if o.min() < 0 or o.max() > len(c) - 1:
        raise UsageError(f"origins must lie in 0..{len(c) - 1}")
    if horizon < 1:
        raise UsageError(f"horizon must be at least 1, got {horizon}")
    # Only the history up to the last origin is ever read.
    c = c[: int(o.max()) + 1]
    steps = np.arange(1, horizon + 1, dtype="float64")[None, :]
    last = c[o][:, None]
    out: dict[str, np.ndarray] = {"naive": np.repeat(last, horizon, axis=1)}

    # drift: mean change (close[t] - close[0]) / t; at t = 0 there is no history, so no drift.
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(o > 0, (c[o] - c[0]) / np.maximum(o, 1), 0.0)[:, None]
    out["drift"] = last + steps * slope

    cs = np.concatenate([[0.0], np.cumsum(c)])
    lo = np.maximum(o + 1 - ma_window, 0)
    ma = (cs[o + 1] - cs[lo]) / (o + 1 - lo)
    out["moving_average"] = np.repeat(ma[:, None], horizon, axis=1)

    if kind == "price":
        with np.errstate(invalid="ignore", divide="ignore"):
            logc = np.log(c)
        # mean log return over (start, t]: (log c[t] - log c[start]) / (t - start)
        start = np.zeros_like(o) if mean_window is None else np.maximum(o - mean_window, 0)
        with np.errstate(invalid="ignore"):
            mu = np.where(o > start, (logc[o] - logc[start]) / np.maximum(o - start, 1), 0.0)[:, None]
        out["mean_return"] = last * np.exp(steps * mu)
    elif kind != "value":
        raise UsageError(f"kind must be 'price' or 'value', got {kind!r}")
    return out
