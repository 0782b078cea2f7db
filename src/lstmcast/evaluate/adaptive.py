"""Predictive distributions per origin and step: volatility-normalised conformal quantiles, adaptive.

At origin ``t`` the forecast for step ``s`` gets quantiles at every level ``tau`` of a grid::

    q_tau = pred * exp(scale[t] * Q_tau(Z_s))          (mode "log", prices: log space)
    q_tau = pred + scale[t] * Q_tau(Z_s)               (mode "additive", value series)

``Z_s`` are the signed residuals ``(j, s)`` whose target bar ``origins[j] + s`` is ``<= t`` (already
observed at ``t``), each divided by the volatility known at *its* origin, ``scale[j]``; with
``scale=None`` they are not normalised (plain split conformal on signed residuals). ``Q`` is the
empirical quantile (linear interpolation).

``method="aci"`` adds adaptive conformal inference (Gibbs & Candes 2021, "Adaptive conformal
inference under distribution shift"), applied to each quantile level: the level actually used at
origin ``i`` is ``tau_i = tau + gamma * sum_j (tau - 1{y_j <= q_j})`` over the earlier forecasts
``j`` whose targets are already known at ``i`` -- the update ``alpha_{t+1} = alpha_t + gamma *
(alpha - err_t)`` with delayed feedback (an h-step error is known h bars late). Too many targets
below a quantile push its level down, too few push it up, so long-run frequencies match ``tau``
whatever the drift in the error scale. A central interval at level ``L`` is the pair of quantiles
``(1 - L) / 2`` and ``(1 + L) / 2``, so each tail gets its own ACI. The effective level is clipped
to [0, 1] when reading the empirical quantile, so bounds stay finite (the min and max residual):
the paper's infinite interval for ``alpha_t < 0`` is replaced by the widest observed one.
``method="split"`` keeps the nominal levels (no adaptation).

Forecasts with fewer than ``min_calibration`` known residuals get NaN quantiles (not scored), as
do targets that are NaN (not yet observed); neither moves the ACI levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmcast.errors import UsageError
from lstmcast.evaluate import conformal

METHODS = ("aci", "split")
DEFAULT_GAMMA = 0.005
"""ACI step size. Gibbs & Candes use 0.005; larger adapts faster and makes widths noisier."""
QUANTILE_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""0.05, 0.10, ..., 0.95: the distribution every forecaster is scored on."""


def levels_for(levels: tuple[float, ...], grid: tuple[float, ...] = QUANTILE_GRID) -> tuple[float, ...]:
    """The grid plus the two tail quantiles of every central interval level, sorted."""
    extra = [round((1 - lv) / 2, 10) for lv in levels] + [round((1 + lv) / 2, 10) for lv in levels]
    return tuple(sorted(set(grid) | set(extra)))


@dataclass(frozen=True)
class Distribution:
    """Quantile forecasts ``quantiles[i, s, k]`` at ``levels[k]`` (target space: prices or values)."""

    levels: tuple[float, ...]
    quantiles: np.ndarray  # [n, h, K]; NaN where not calibrated
    counts: np.ndarray  # [n, h] calibration residuals used
    effective: np.ndarray  # [n, h, K] level actually read (ACI); equals levels for "split"
    method: str
    mode: str

    def quantile(self, level: float) -> np.ndarray:
        """``[n, h]`` quantile at one of ``levels``."""
        k = _index(self.levels, level)
        return self.quantiles[:, :, k]

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval at ``level``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles."""
        return self.quantile((1 - level) / 2), self.quantile((1 + level) / 2)

    def median(self) -> np.ndarray:
        return self.quantile(0.5)


def _index(levels: tuple[float, ...], level: float) -> int:
    for k, lv in enumerate(levels):
        if abs(lv - level) < 1e-9:
            return k
    raise UsageError(f"level {level:g} is not among the forecast quantile levels {', '.join(f'{x:g}' for x in levels)}")


def _check_levels(quantiles: tuple[float, ...]) -> tuple[float, ...]:
    q = tuple(float(x) for x in quantiles)
    if not q or any(not 0 < x < 1 for x in q):
        raise UsageError(f"quantile levels must lie strictly between 0 and 1, got {q}")
    if any(b <= a for a, b in zip(q, q[1:], strict=False)):
        raise UsageError(f"quantile levels must be strictly increasing, got {q}")
    return q


def causal_distribution(
    pred: np.ndarray,
    actual: np.ndarray,
    origins: np.ndarray,
    *,
    scale: np.ndarray | None = None,
    quantiles: tuple[float, ...] = levels_for(conformal.DEFAULT_LEVELS),
    method: str = "aci",
    gamma: float = DEFAULT_GAMMA,
    mode: str = "log",
    prior: np.ndarray | None = None,
    window: int | None = None,
    min_calibration: int = 20,
) -> Distribution:
    """Walk-forward quantile forecasts that use only residuals observable at each origin.

    ``pred`` and ``actual`` are ``[n, h]`` (``actual`` may hold NaN for targets not yet seen),
    ``origins`` ``[n]`` increasing bar positions, ``scale`` ``[n]`` the volatility known at each
    origin (``volatility.ewma_volatility(close)[origins]``) or None. ``prior`` ``[m, h]`` are
    signed residuals *already divided by their own scale* from forecasts whose targets precede
    ``origins[0]`` (they count as the oldest); ``window`` keeps only the most recent residuals.
    """
    if method not in METHODS:
        raise UsageError(f"interval method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 <= gamma < 1:
        raise UsageError(f"ACI step gamma must lie in [0, 1), got {gamma}")
    if min_calibration < 2:
        raise UsageError(f"min_calibration must be at least 2, got {min_calibration}")
    levels = _check_levels(quantiles)
    p = np.asarray(pred, dtype="float64")
    if p.ndim != 2:
        raise UsageError(f"pred must be [n_origins, horizon], got shape {p.shape}")
    n, h = p.shape
    a = np.asarray(actual, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    if a.shape != p.shape or o.shape != (n,):
        raise UsageError(f"pred {p.shape}, actual {a.shape} and origins {o.shape} do not match")
    if np.any(np.diff(o) <= 0):
        raise UsageError("origins must be strictly increasing")
    if scale is None:
        sc = np.ones(n)
    else:
        sc = np.asarray(scale, dtype="float64")
        if sc.shape != (n,):
            raise UsageError(f"scale must hold one volatility per origin ({n}), got shape {sc.shape}")
        if not np.all(np.isfinite(sc) & (sc > 0)):
            bad = int(np.flatnonzero(~(np.isfinite(sc) & (sc > 0)))[0])
            raise UsageError(f"scale must be positive and finite; origin {int(o[bad])} has {sc[bad]!r}")
    z = conformal.residuals(a, p, mode=mode) / sc[:, None]
    pr = None if prior is None else np.asarray(prior, dtype="float64").reshape(-1, h)

    tau = np.asarray(levels)
    K = len(tau)
    qs = np.full((n, h, K), np.nan)
    eff = np.full((n, h, K), np.nan)
    counts = np.zeros((n, h), dtype="int64")
    adapt = gamma if method == "aci" else 0.0
    for s in range(h):
        observed_at = o + (s + 1)
        known = np.searchsorted(observed_at, o, side="right")  # prefix of residuals known at origin i
        base = pr[:, s][np.isfinite(pr[:, s])] if pr is not None else np.empty(0)
        below = np.zeros((n, K))  # 1{y_j <= q_j} per level, for scored forecasts
        scored = np.zeros(n, dtype=bool)
        cum_below = np.concatenate([np.zeros((1, K)), np.cumsum(below, axis=0)])  # refreshed lazily
        cum_scored = np.zeros(n + 1)
        done = 0  # rows folded into the cumulative sums
        zs = z[:, s]
        for i in range(n):
            k = known[i]
            if k > done:  # fold in the feedback that became known (all rows < k are final by now)
                cum_below[done + 1 : k + 1] = cum_below[done] + np.cumsum(below[done:k], axis=0)
                cum_scored[done + 1 : k + 1] = cum_scored[done] + np.cumsum(scored[done:k])
                done = k
            cal = zs[:k]
            cal = np.concatenate([base, cal[np.isfinite(cal)]])
            if window is not None:
                cal = cal[-window:]
            counts[i, s] = len(cal)
            if len(cal) < min_calibration:
                continue
            m = cum_scored[k]
            t_i = tau + adapt * (m * tau - cum_below[k])
            eff[i, s] = t_i
            zq = np.quantile(cal, np.clip(t_i, 0.0, 1.0))
            if mode == "log":
                qs[i, s] = p[i, s] * np.exp(sc[i] * zq)
            else:
                qs[i, s] = p[i, s] + sc[i] * zq
            if np.isfinite(a[i, s]):
                below[i] = a[i, s] <= qs[i, s]
                scored[i] = True
    return Distribution(levels=levels, quantiles=qs, counts=counts, effective=eff, method=method, mode=mode)


@dataclass(frozen=True)
class AdaptiveLevels:
    """ACI state for live forecasting (``lstmcast run``): the effective level per nominal level.

    ``update`` folds in the realised outcome of one scored forecast: for each nominal level, was
    the target at or below the quantile issued at that level? Plain JSON round trip.
    """

    nominal: tuple[float, ...]
    effective: tuple[float, ...]
    gamma: float = DEFAULT_GAMMA

    @classmethod
    def start(cls, nominal: tuple[float, ...], *, gamma: float = DEFAULT_GAMMA) -> AdaptiveLevels:
        lv = _check_levels(nominal)
        return cls(nominal=lv, effective=lv, gamma=gamma)

    def update(self, below: np.ndarray) -> AdaptiveLevels:
        b = np.asarray(below, dtype="float64")
        if b.shape != (len(self.nominal),):
            raise UsageError(f"need one outcome per level ({len(self.nominal)}), got shape {b.shape}")
        t = np.asarray(self.effective) + self.gamma * (np.asarray(self.nominal) - b)
        return AdaptiveLevels(nominal=self.nominal, effective=tuple(float(x) for x in t), gamma=self.gamma)

    def read_levels(self) -> np.ndarray:
        """The levels to read from the empirical residual quantiles now (clipped to [0, 1])."""
        return np.clip(np.asarray(self.effective), 0.0, 1.0)

    def to_dict(self) -> dict:
        return {"format": 1, "nominal": list(self.nominal), "effective": list(self.effective), "gamma": self.gamma}

    @classmethod
    def from_dict(cls, d: dict) -> AdaptiveLevels:
        if d.get("format") != 1:
            raise UsageError(f"unsupported adaptive-level format {d.get('format')!r}")
        return cls(nominal=_check_levels(tuple(d["nominal"])), effective=tuple(float(x) for x in d["effective"]),
                   gamma=float(d["gamma"]))


def causal_distributions(
    preds: dict[str, np.ndarray], actual: np.ndarray, origins: np.ndarray, **kwargs
) -> dict[str, Distribution]:
    """``causal_distribution`` for each forecaster (model and baselines) with the same settings,
    each calibrated on its own residuals, so their scores compare like for like."""
    return {name: causal_distribution(p, actual, origins, **kwargs) for name, p in preds.items()}
