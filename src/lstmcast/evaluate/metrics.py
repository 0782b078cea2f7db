"""Point-forecast metrics, always reported next to the naive forecast's.

Arrays are shaped ``[n_origins, horizon]`` (or ``[n]``); ``last`` is the close at each origin,
shape ``[n]``. Every function ignores nothing silently: NaN inputs propagate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MASE_SCALE_WINDOW = 250
"""Bars of in-sample history (up to the first forecast origin) that scale MASE, in train and backtest."""


def _as2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype="float64")
    return x[:, None] if x.ndim == 1 else x


def mae(actual: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(_as2d(actual) - _as2d(pred))))


def rmse(actual: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((_as2d(actual) - _as2d(pred)) ** 2)))


def mape(actual: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent (undefined, NaN, when any actual is 0)."""
    a, p = _as2d(actual), _as2d(pred)
    if np.any(a == 0):
        return float("nan")
    return float(100.0 * np.mean(np.abs((a - p) / a)))


def naive_scale(history: np.ndarray, *, lag: int = 1) -> float:
    """Mean absolute ``lag``-step change of an in-sample series: the MASE denominator."""
    h = np.asarray(history, dtype="float64")
    if len(h) <= lag:
        return float("nan")
    return float(np.mean(np.abs(h[lag:] - h[:-lag])))


def mase(actual: np.ndarray, pred: np.ndarray, *, scale: float) -> float:
    """MAE divided by ``scale`` (the naive forecast's in-sample MAE). Below 1 beats naive."""
    if not scale or not math.isfinite(scale):
        return float("nan")
    return mae(actual, pred) / scale


def direction_hits(actual: np.ndarray, pred: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Boolean hits: did the forecast call the sign of the move from the origin's close?

    Moves of exactly zero (actual or predicted) count as misses: a forecast of "no change" calls
    no direction. Shape ``[n, horizon]``.
    """
    a, p = _as2d(actual), _as2d(pred)
    base = np.asarray(last, dtype="float64")[:, None]
    da, dp = np.sign(a - base), np.sign(p - base)
    return (da == dp) & (da != 0)


def wilson_interval(hits: int, n: int, *, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def diebold_mariano(
    e_model: np.ndarray, e_bench: np.ndarray, *, horizon: int = 1, power: int = 2
) -> tuple[float, float]:
    """Diebold-Mariano test of equal accuracy, with the Harvey-Leybourne-Newbold correction.

    ``e_model`` and ``e_bench`` are forecast errors at one horizon over the same origins. Returns
    (statistic, two-sided p-value from Student's t with n-1 degrees of freedom). A negative
    statistic means the model's loss is lower. Autocovariances up to ``horizon - 1`` lags enter
    the long-run variance, as overlapping h-step errors are autocorrelated.
    """
    from scipy import stats

    e1, e2 = np.asarray(e_model, dtype="float64"), np.asarray(e_bench, dtype="float64")
    if e1.ndim != 1 or e1.shape != e2.shape:
        # an [n, h] matrix would be silently mixed up: pass one loss per origin (or one step)
        raise ValueError(f"DM needs two 1-d error series of one length, got shapes {e1.shape} and {e2.shape}")
    d = np.abs(e1) ** power - np.abs(e2) ** power
    n = len(d)
    if n < 3:
        return (float("nan"), float("nan"))
    dbar = d.mean()
    gamma0 = np.mean((d - dbar) ** 2)
    # Autocovariances divide by n (not n - k), as in Diebold-Mariano (1995) and R's dm.test.
    lrv = gamma0 + 2 * sum(np.sum((d[k:] - dbar) * (d[:-k] - dbar)) / n for k in range(1, min(horizon, n)))
    if lrv <= 0 and horizon > 1 and gamma0 > 0:
        # Negative autocovariances can make the truncated long-run variance non-positive; like
        # R's dm.test, fall back to the one-step variance instead of claiming certainty.
        return diebold_mariano(e_model, e_bench, horizon=1, power=power)
    if lrv <= 0:
        return (float("nan"), float("nan")) if dbar == 0 else (math.copysign(math.inf, dbar), 0.0)
    dm = dbar / math.sqrt(lrv / n)
    h = horizon
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = dm * hln
    p = 2 * stats.t.sf(abs(stat), df=n - 1)
    return (float(stat), float(p))


def beats_naive(mae_model: float, mae_naive: float, dm_p: float, *, alpha: float = 0.05) -> bool:
    """The one verdict rule: a lower MAE than naive *and* a Diebold-Mariano p-value below ``alpha``.

    A lower MAE alone is not skill: on a random walk half of all models "beat" naive by noise.
    """
    return bool(mae_model < mae_naive and math.isfinite(dm_p) and dm_p < alpha)


@dataclass(frozen=True)
class PointMetrics:
    """The standard report for one forecaster over a set of origins."""

    mae: float
    rmse: float
    mape: float
    mase: float
    hit_rate: float
    hit_low: float
    hit_high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def point_metrics(actual: np.ndarray, pred: np.ndarray, *, last: np.ndarray, scale: float) -> PointMetrics:
    """MAE, RMSE, MAPE, MASE and the directional hit rate with its 95% Wilson interval."""
    hits = direction_hits(actual, pred, last)
    k, n = int(hits.sum()), int(hits.size)
    lo, hi = wilson_interval(k, n)
    return PointMetrics(
        mae=mae(actual, pred), rmse=rmse(actual, pred), mape=mape(actual, pred),
        mase=mase(actual, pred, scale=scale), hit_rate=k / n if n else float("nan"),
        hit_low=lo, hit_high=hi, n=n,
    )
