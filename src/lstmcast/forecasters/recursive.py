"""Forecasts beyond a model's trained horizon, for every family: feed its own predictions back.

A model trained for ``H`` steps forecasts ``t+1 .. t+H`` directly. For ``N > H`` steps the
predicted closes become synthetic bars after ``t`` and the model forecasts again from ``t+H``,
``t+2H``, ... ("recursive"), for the return and the price targets alike. A synthetic bar has only
a close, so its features are derived from it where they can be (``log_return``, ``diff``,
``level``) and held at a neutral, causal value where they cannot: ``log_range`` at its mean over
the look-back rows up to ``t``, ``log_volume_change`` at 0 (volume unchanged). Nothing after the
origin ``t`` is read.

The intervals of the recursive steps are calibrated like the direct ones: split-conformal
residuals of the *recursive* forecasts made at the run's held-out validation origins
(``recursive_residuals``), counting only targets at or before a given last row, so a backtest fold
or a prediction never calibrates on bars after its own origin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmcast.errors import UsageError
from lstmcast.features import Prepared

METHOD_DIRECT = "direct"
METHOD_RECURSIVE = "recursive"
# Families whose forecast at origin t reads feature rows t-lookback+1 .. t and close[t] only: their
# extended histories can be stacked and forecast in one call per round.
WINDOW_FAMILIES = ("lstm", "gru", "linear")


def methods(trained_horizon: int, horizon: int) -> list[str]:
    """The method of each step 1..horizon: direct up to the trained horizon, recursive after."""
    return [METHOD_DIRECT if s <= trained_horizon else METHOD_RECURSIVE for s in range(1, horizon + 1)]


def predict_ahead(fitted: Any, prepared: Prepared, origins: np.ndarray, *, horizon: int | None = None) -> np.ndarray:
    """Predicted close for bars ``t+1 .. t+horizon`` at each origin ``t``: ``[n, horizon]``.

    Steps up to the model's trained horizon are its direct forecast (``fitted.predict_close``);
    later steps are recursive. Reads rows ``<= t`` only. ``horizon=None``: the trained horizon.
    """
    trained = fitted.features.horizon
    n_steps = trained if horizon is None else int(horizon)
    if n_steps < 1:
        raise UsageError(f"--horizon must be at least 1 (got {n_steps})")
    origins = np.asarray(origins, dtype="int64").reshape(-1)
    direct = fitted.predict_close(prepared, origins)
    if n_steps <= trained or origins.size == 0:
        return np.asarray(direct[:, :n_steps], dtype="float64")
    out = np.full((len(origins), n_steps), np.nan)
    out[:, :trained] = direct
    rounds = -(-n_steps // trained) - 1  # forecasts after the direct one
    if getattr(fitted, "family", None) in WINDOW_FAMILIES:
        _rounds_stacked(fitted, prepared, origins, out, rounds)
    else:
        for i, t in enumerate(origins):
            _rounds_stacked(fitted, prepared, origins[i : i + 1], out[i : i + 1], rounds, history=int(t) + 1)
    return out


def _rounds_stacked(
    fitted: Any, prepared: Prepared, origins: np.ndarray, out: np.ndarray, rounds: int, *, history: int | None = None
) -> None:
    """Fill ``out[:, H:]`` in place. Each origin gets its own block: ``history`` real rows up to ``t``
    (default: the look-back) followed by ``H * rounds`` synthetic rows; one forecast per round."""
    h = fitted.features.horizon
    lb = fitted.features.lookback
    m = lb if history is None else history
    n_syn = h * rounds
    n, block = len(origins), m + n_syn
    names = tuple(prepared.names)
    real_rows = origins[:, None] + np.arange(-m + 1, 1)[None, :]  # [n, m], all >= 0 (t >= lookback - 1)
    raw = np.zeros((n, block, prepared.raw.shape[1]), dtype=prepared.raw.dtype)  # unfilled rows: read, unused
    close = np.zeros((n, block), dtype="float64")
    raw[:, :m] = prepared.raw[real_rows]
    close[:, :m] = prepared.close[real_rows]
    # the neutral values of the features a close cannot give (causal: rows <= t only)
    hold = np.zeros((n, len(names)))
    if "log_range" in names:
        j = names.index("log_range")
        hold[:, j] = raw[:, m - min(lb, m) : m, j].astype("float64").mean(axis=1)
    starts = np.arange(n) * block
    for r in range(1, rounds + 1):
        lo, hi = m + (r - 1) * h, m + r * h  # the synthetic rows this round adds: the previous round's steps
        new = out[:, (r - 1) * h : r * h]
        close[:, lo:hi] = new
        prev = close[:, lo - 1 : hi - 1]
        with np.errstate(all="ignore"):
            for j, name in enumerate(names):
                if name == "log_return":
                    col = np.log(new / prev)
                elif name == "diff":
                    col = new - prev
                elif name == "level":
                    col = new
                else:  # log_range, log_volume_change
                    col = np.broadcast_to(hold[:, j : j + 1], new.shape)
                raw[:, lo:hi, j] = col
        ext = Prepared(
            index=prepared.index[:0], close=close.reshape(-1), raw=raw.reshape(n * block, -1),
            kind=prepared.kind, names=names, target=np.full(n * block, np.nan),
        )
        at = starts + hi - 1
        # a NaN forecast (or a non-positive one under log features) ends that origin's chain
        ok = np.isfinite(close[:, :hi]).all(axis=1) & np.isfinite(raw[:, :hi]).all(axis=(1, 2))
        pred = np.full((n, h), np.nan)
        if ok.any():
            pred[ok] = fitted.predict_close(ext, at[ok])
        take = min(h, out.shape[1] - r * h)
        out[:, r * h : r * h + take] = pred[:, :take]


def recursive_residuals(
    fitted: Any, prepared: Prepared, *, horizon: int, mode: str, last_row: int
) -> np.ndarray:
    """Held-out residuals ``[n, horizon]`` of ``predict_ahead`` at the run's validation origins.

    A residual whose target bar lies after ``last_row`` (the forecast origin being calibrated) is
    NaN, so is one with a non-positive forecast in log mode; ``conformal.fit`` skips NaNs.
    """
    val = np.asarray(fitted.val_origins, dtype="int64").reshape(-1)
    lb = fitted.features.lookback
    val = val[(val >= lb - 1) & (val < min(last_row, len(prepared) - 1))]
    if val.size == 0:
        return np.empty((0, horizon))
    pred = predict_ahead(fitted, prepared, val, horizon=horizon)
    rows = val[:, None] + np.arange(1, horizon + 1)[None, :]
    seen = rows <= last_row
    actual = np.where(seen, prepared.close[np.minimum(rows, len(prepared) - 1)], np.nan)
    with np.errstate(all="ignore"):
        if mode == "log":
            res = np.log(actual / pred)
        else:
            res = actual - pred
    res[~seen] = np.nan
    return res


def calibration_residuals(
    fitted: Any, prepared: Prepared, *, horizon: int, mode: str, last_row: int
) -> np.ndarray:
    """Held-out residuals for ``horizon`` steps, ``[n, horizon]`` (NaN-padded; ``conformal.fit`` skips NaNs).

    Direct steps: the fit's own validation residuals (``val_actual`` vs ``val_pred``). Recursive
    steps: ``recursive_residuals`` with targets ``<= last_row``. A backtest fold passes
    ``last_row = fitted.end - 1`` (its refit origin), predict the forecast origin.
    """
    h = fitted.features.horizon
    with np.errstate(all="ignore"):
        a, p = np.asarray(fitted.val_actual, dtype="float64"), np.asarray(fitted.val_pred, dtype="float64")
        direct = np.log(a / p) if mode == "log" else a - p
    direct = direct.reshape(len(a), -1)[:, : min(h, horizon)]
    if horizon <= h:
        return direct
    rec = recursive_residuals(fitted, prepared, horizon=horizon, mode=mode, last_row=last_row)[:, h:]
    n = max(len(direct), len(rec))
    out = np.full((n, horizon), np.nan)
    out[: len(direct), :h] = direct
    out[: len(rec), h:] = rec
    return out


def step_residuals(
    fitted: Any, prepared: Prepared, *, direct_residuals: np.ndarray, horizon: int, mode: str, last_row: int,
) -> np.ndarray:
    """Signed calibration residuals ``[n, horizon]`` (NaN-padded) of the forecasts ``step_intervals``
    calibrates on: ``direct_residuals`` for the direct steps, ``recursive_residuals`` (targets
    ``<= last_row``) after the trained horizon. What ``conformal.tail_interval`` reads at adapted
    tail levels, so the split and the adaptive intervals share one set of residuals."""
    trained = fitted.features.horizon
    d = np.asarray(direct_residuals, dtype="float64")
    d = (d[:, None] if d.ndim == 1 else d)[:, : min(horizon, trained)]
    if horizon <= trained:
        return d
    rec = recursive_residuals(fitted, prepared, horizon=horizon, mode=mode, last_row=last_row)[:, trained:]
    out = np.full((max(len(d), len(rec)), horizon), np.nan)
    out[: len(d), : d.shape[1]] = d
    out[: len(rec), trained:] = rec
    return out


def step_intervals(
    fitted: Any, prepared: Prepared, pred: np.ndarray, *, direct_residuals: np.ndarray,
    levels: tuple[float, ...], mode: str, last_row: int,
) -> tuple[dict[float, tuple[np.ndarray, np.ndarray]], list[int]]:
    """Split-conformal bounds ``level -> (lo, hi)`` ``[m, N]`` for forecasts ``pred`` ``[m, N]`` of
    ``predict_ahead``, and the held-out residuals behind each step (``[N]``).

    The one calibration of ``lstmcast predict`` and of every backtest fold. Direct steps:
    ``direct_residuals`` (the run's validation residuals, ``[n, H]``). Recursive steps:
    ``recursive_residuals`` with targets ``<= last_row`` (predict: the forecast origin; a backtest
    fold: its refit origin ``fitted.end - 1``). A part with no residuals has NaN bounds.
    """
    from lstmcast.evaluate import conformal

    pred = np.asarray(pred, dtype="float64")
    m, h = pred.shape
    trained = fitted.features.horizon
    direct_res = np.asarray(direct_residuals, dtype="float64")
    direct_res = (direct_res[:, None] if direct_res.ndim == 1 else direct_res)[:, : min(h, trained)]
    bands: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    counts = [int(np.isfinite(direct_res[:, s]).sum()) for s in range(direct_res.shape[1])]
    if len(direct_res):
        bands = conformal.fit(direct_res, levels=levels, mode=mode).interval(pred[:, : direct_res.shape[1]])
    if h <= trained:
        return bands, counts
    rec = recursive_residuals(fitted, prepared, horizon=h, mode=mode, last_row=last_row)[:, trained:]
    counts += [int(np.isfinite(rec[:, s]).sum()) for s in range(h - trained)]
    rec_bands = (conformal.fit(rec, levels=levels, mode=mode).interval(pred[:, trained:])
                 if len(rec) and np.isfinite(rec).any() else {})
    nan_direct, nan_rec = np.full((m, trained), np.nan), np.full((m, h - trained), np.nan)
    joined = {
        lv: (np.concatenate([bands[lv][0] if lv in bands else nan_direct,
                             rec_bands[lv][0] if lv in rec_bands else nan_rec], axis=1),
             np.concatenate([bands[lv][1] if lv in bands else nan_direct,
                             rec_bands[lv][1] if lv in rec_bands else nan_rec], axis=1))
        for lv in levels if lv in bands or lv in rec_bands
    }
    return joined, counts
