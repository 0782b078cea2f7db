"""Split-conformal prediction intervals, one per horizon step, from held-out residuals.

Residuals are ``log(actual / pred)`` for positive price series (``mode="log"``: the interval
scales with the price level and stays positive) and ``actual - pred`` for value series
(``mode="additive"``). With ``n`` exchangeable calibration residuals, the interval built from the
``ceil((n + 1)(1 - alpha))``-th smallest absolute residual covers a new target with probability
at least ``1 - alpha`` (Vovk et al.; Lei et al. 2018, "Distribution-free predictive inference").
When ``n`` is too small for that rank to exist the interval is infinite, as the theory says.

Two ways to obtain residuals without leakage:

- ``fit`` on residuals of forecasts made *before* the forecasts being covered (the model's
  validation windows, which precede the end of its training rows), or
- ``causal_intervals`` over a walk-forward: at origin ``t`` it uses only residuals ``(j, s)``
  whose target bar ``origin_j + s`` is ``<= t``, i.e. already observed when forecasting at ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmcast.errors import DataError, UsageError

MODES = ("log", "additive")
DEFAULT_LEVELS = (0.8, 0.95)
FORMAT = 1


def mode_for(kind: str) -> str:
    """Residual space for a series kind: log for prices (always positive), additive for value series."""
    return "log" if kind == "price" else "additive"


def _check(levels: tuple[float, ...], mode: str) -> tuple[float, ...]:
    if mode not in MODES:
        raise UsageError(f"conformal mode must be one of {', '.join(MODES)}, got {mode!r}")
    levels = tuple(float(x) for x in levels)
    if not levels or any(not 0 < x < 1 for x in levels):
        raise UsageError(f"interval levels must lie strictly between 0 and 1, got {levels}")
    return levels


def residuals(actual: np.ndarray, pred: np.ndarray, *, mode: str) -> np.ndarray:
    """Calibration residuals: ``log(actual / pred)`` (mode "log") or ``actual - pred``."""
    a, p = np.asarray(actual, dtype="float64"), np.asarray(pred, dtype="float64")
    if mode == "log":
        ok = np.isfinite(a) & np.isfinite(p)
        if np.any(a[ok] <= 0) or np.any(p[ok] <= 0):
            raise DataError("log-space intervals need positive prices and forecasts; use mode='additive'")
        return np.log(a / p)
    if mode == "additive":
        return a - p
    raise UsageError(f"conformal mode must be one of {', '.join(MODES)}, got {mode!r}")


def conformal_quantile(abs_residuals: np.ndarray, level: float) -> float:
    """The finite-sample split-conformal quantile: the ceil((n+1)*level)-th smallest value.

    That is the empirical quantile at ``(n + 1) * level / n``; ``inf`` when that exceeds 1.
    NaNs are ignored.
    """
    r = np.asarray(abs_residuals, dtype="float64")
    r = np.sort(r[np.isfinite(r)])
    n = len(r)
    k = math.ceil((n + 1) * level - 1e-9)  # guard against (n+1)*0.8 = 8.000000001
    if n == 0 or k > n:
        return math.inf
    return float(r[k - 1])


def min_calibration(level: float) -> int:
    """Fewest residuals for which the ``level`` interval is finite."""
    n = 1
    while math.ceil((n + 1) * level - 1e-9) > n:
        n += 1
    return n


@dataclass(frozen=True)
class Conformal:
    """Calibrated interval half-widths: ``width[level][step]`` in residual units.

    Intervals are symmetric in residual space: ``pred * exp(+-w)`` (log) or ``pred +- w``.
    """

    mode: str
    levels: tuple[float, ...]
    width: tuple[tuple[float, ...], ...]  # [level index][step]
    n: tuple[int, ...]  # calibration residuals per step

    @property
    def horizon(self) -> int:
        return len(self.n)

    def interval(self, pred: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """level -> (lower, upper), each shaped like ``pred`` ``[m, h]`` (or ``[h]``), h <= horizon."""
        p = np.asarray(pred, dtype="float64")
        h = p.shape[-1]
        if h > self.horizon:
            raise UsageError(f"intervals were calibrated for {self.horizon} steps, forecast has {h}")
        out = {}
        for level, w in zip(self.levels, self.width, strict=True):
            wv = np.asarray(w[:h], dtype="float64")
            if self.mode == "log":
                out[level] = (p * np.exp(-wv), p * np.exp(wv))
            else:
                out[level] = (p - wv, p + wv)
        return out

    def to_dict(self) -> dict:
        """Plain JSON (infinite widths become null)."""
        return {
            "format": FORMAT,
            "mode": self.mode,
            "levels": list(self.levels),
            "width": [[None if not math.isfinite(x) else x for x in row] for row in self.width],
            "n": list(self.n),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Conformal:
        if d.get("format") != FORMAT:
            raise UsageError(f"unsupported conformal calibration format {d.get('format')!r}")
        levels = _check(tuple(d["levels"]), d["mode"])
        width = tuple(tuple(math.inf if x is None else float(x) for x in row) for row in d["width"])
        return cls(mode=d["mode"], levels=levels, width=width, n=tuple(int(x) for x in d["n"]))


def fit(residuals: np.ndarray, *, levels: tuple[float, ...] = DEFAULT_LEVELS, mode: str = "log") -> Conformal:
    """Calibrate from held-out residuals ``[n, horizon]`` (see ``residuals``); NaNs are skipped."""
    levels = _check(levels, mode)
    r = np.asarray(residuals, dtype="float64")
    if r.ndim == 1:
        r = r[:, None]
    a = np.abs(r)
    width = tuple(tuple(conformal_quantile(a[:, s], lv) for s in range(r.shape[1])) for lv in levels)
    n = tuple(int(np.isfinite(r[:, s]).sum()) for s in range(r.shape[1]))
    return Conformal(mode=mode, levels=levels, width=width, n=n)


def coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, axis: int | None = None):
    """Fraction of targets inside ``[lo, hi]``; rows where the interval is NaN are not counted.

    With ``axis=0`` on ``[n, h]`` arrays, one coverage per horizon step.
    """
    a, lo, hi = (np.asarray(x, dtype="float64") for x in (actual, lo, hi))
    valid = np.isfinite(a) & ~np.isnan(lo) & ~np.isnan(hi)
    inside = (a >= lo) & (a <= hi) & valid
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = inside.sum(axis=axis) / valid.sum(axis=axis)
    return float(cov) if axis is None else np.asarray(cov, dtype="float64")


def causal_intervals(
    pred: np.ndarray,
    actual: np.ndarray,
    origins: np.ndarray,
    *,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    mode: str = "log",
    prior: np.ndarray | None = None,
    window: int | None = None,
) -> tuple[dict[float, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Walk-forward conformal intervals that use only residuals already observable at each origin.

    The forecast made at ``origins[i]`` for step ``s`` (1-based) is covered using the residuals
    ``(j, s)`` with ``origins[j] + s <= origins[i]`` (their target bar is in the past), plus the
    optional ``prior`` residuals ``[m, horizon]`` (e.g. the first model's validation residuals,
    which precede the first origin). ``window`` keeps only the most recent calibration residuals
    (the prior ones count as the oldest). Where too few residuals exist for a finite interval the
    bounds are NaN (not evaluated), so coverage is measured only where an interval was given.

    Returns (level -> (lo, hi) ``[n, h]``, the calibration count ``[n, h]``).
    """
    levels = _check(levels, mode)
    p = np.asarray(pred, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    n, h = p.shape
    r = residuals(actual, p, mode=mode)
    pr = None if prior is None else np.abs(np.asarray(prior, dtype="float64").reshape(-1, h))
    bounds = {lv: (np.full((n, h), np.nan), np.full((n, h), np.nan)) for lv in levels}
    counts = np.zeros((n, h), dtype="int64")
    for s in range(h):
        observed_at = o + (s + 1)  # the bar at which residual (j, s) becomes known
        past = np.abs(r[:, s])
        base = pr[:, s][np.isfinite(pr[:, s])] if pr is not None else np.empty(0)
        # origins are increasing, so residuals known at origin i are a prefix of the list
        known = np.searchsorted(observed_at, o, side="right")
        for i in range(n):
            cal = np.concatenate([base, past[: known[i]]])
            cal = cal[np.isfinite(cal)]
            if window is not None:
                cal = cal[-window:]
            counts[i, s] = len(cal)
            for lv in levels:
                w = conformal_quantile(cal, lv)
                if not math.isfinite(w):
                    continue
                lo, hi = bounds[lv]
                if mode == "log":
                    lo[i, s], hi[i, s] = p[i, s] * math.exp(-w), p[i, s] * math.exp(w)
                else:
                    lo[i, s], hi[i, s] = p[i, s] - w, p[i, s] + w
    return bounds, counts


def tail_interval(
    residuals: np.ndarray,
    pred: np.ndarray,
    *,
    lower: np.ndarray,
    upper: np.ndarray,
    mode: str,
    min_count: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds read at per-step *tail* levels from signed residuals: the interval of adaptive
    conformal inference (``evaluate.adaptive``), and of ``lstmcast run`` once its levels adapt.

    ``residuals`` ``[n, h]`` are signed (``residuals(actual, pred)``; NaN skipped), ``pred``
    ``[h]`` or ``[m, h]``, ``lower`` / ``upper`` ``[h]`` the quantile levels of each step's two tails
    (an 80% interval at nominal levels: 0.1 and 0.9). A level is clipped to [0, 1] before the
    empirical quantile (linear interpolation) is read, as the backtest's ACI does, so a bound stays
    finite (at worst the extreme residual). A step with fewer than ``min_count`` residuals gets NaN.
    """
    if mode not in MODES:
        raise UsageError(f"conformal mode must be one of {', '.join(MODES)}, got {mode!r}")
    r = np.asarray(residuals, dtype="float64")
    r = r[:, None] if r.ndim == 1 else r
    p = np.asarray(pred, dtype="float64")
    h = p.shape[-1]
    lo_lv, hi_lv = (np.broadcast_to(np.asarray(x, dtype="float64"), (h,)) for x in (lower, upper))
    if r.shape[1] < h:
        raise UsageError(f"residuals cover {r.shape[1]} steps, the forecast has {h}")
    zlo, zhi = np.full(h, np.nan), np.full(h, np.nan)
    for s in range(h):
        cal = r[:, s][np.isfinite(r[:, s])]
        if len(cal) < max(min_count, 1):
            continue
        zlo[s], zhi[s] = np.quantile(cal, np.clip([lo_lv[s], hi_lv[s]], 0.0, 1.0))
    if mode == "log":
        return p * np.exp(zlo), p * np.exp(zhi)
    return p + zlo, p + zhi
