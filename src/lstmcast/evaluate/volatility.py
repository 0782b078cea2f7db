"""Volatility known at each forecast origin, to scale residuals before conformal calibration.

Both estimators return ``vol[t]``: the forecast, made at bar ``t``, of the standard deviation of
the next log return ``r[t+1] = log(c[t+1] / c[t])``. It uses returns up to and including ``r[t]``
(the origin bar's own close) and nothing later, so ``vol[origin]`` may scale the residuals of a
forecast made at that origin. Entries with no return yet (``t = 0``) are NaN.

- ``ewma_volatility``: RiskMetrics (J.P. Morgan 1996): ``v[t] = lam * v[t-1] + (1 - lam) * r[t]^2``
  with ``lam = 0.94`` for daily data and zero mean. The recursion starts from the mean of the
  squared returns seen so far (an expanding mean over the first ``warmup`` returns), which is
  itself causal; it needs no fitting.
- ``fit_garch`` + ``Garch.volatility``: GARCH(1,1) (Bollerslev 1986),
  ``v[t] = omega + alpha * e[t]^2 + beta * v[t-1]`` with ``e = r - mu``, fitted by Gaussian
  quasi-maximum likelihood on training rows only; the fitted parameters then filter the whole
  series, which stays causal because the recursion reads only past returns.

Prices must be positive; NaN closes are refused rather than skipped (a gap would silently shift
every later estimate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmcast.errors import DataError, ModelError, UsageError

RISKMETRICS_LAMBDA = 0.94
"""RiskMetrics' decay for daily returns (0.97 for monthly)."""


def log_returns(close: np.ndarray) -> np.ndarray:
    """``r[t] = log(c[t] / c[t-1])``, with ``r[0] = NaN``; same length as ``close``."""
    c = np.asarray(close, dtype="float64")
    if c.ndim != 1:
        raise UsageError(f"close must be a 1-d array, got shape {c.shape}")
    if not np.isfinite(c).all() or np.any(c <= 0):
        bad = int(np.flatnonzero(~np.isfinite(c) | (c <= 0))[0])
        raise DataError(f"volatility needs positive, finite closes; row {bad} is {c[bad]!r}")
    r = np.empty_like(c)
    r[0] = np.nan
    r[1:] = np.diff(np.log(c))
    return r


def ewma_volatility(close: np.ndarray, *, lam: float = RISKMETRICS_LAMBDA, warmup: int = 20) -> np.ndarray:
    """RiskMetrics EWMA volatility known at each bar: ``[len(close)]``, NaN at bar 0.

    For the first ``warmup`` returns the variance is their expanding mean (no decay yet), then the
    recursion takes over from that value.
    """
    if not 0 < lam < 1:
        raise UsageError(f"EWMA decay must lie strictly between 0 and 1, got {lam}")
    if warmup < 1:
        raise UsageError(f"EWMA warm-up must be at least 1 return, got {warmup}")
    r = log_returns(close)
    n = len(r)
    v = np.full(n, np.nan)
    if n < 2:
        return v
    r2 = r[1:] ** 2
    w = min(warmup, len(r2))
    v[1 : w + 1] = np.cumsum(r2[:w]) / np.arange(1, w + 1)
    for t in range(w + 1, n):
        v[t] = lam * v[t - 1] + (1 - lam) * r[t] ** 2
    return np.sqrt(v)


@dataclass(frozen=True)
class Garch:
    """Fitted GARCH(1,1) on log returns; parameters in (log return)^2 units."""

    mu: float
    omega: float
    alpha: float
    beta: float
    v0: float  # variance that starts the filter: the training returns' sample variance
    end: int  # fitted on rows [start, end)

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta

    def volatility(self, close: np.ndarray) -> np.ndarray:
        """Volatility known at each bar, ``[len(close)]`` (NaN at bar 0), from the fixed parameters."""
        r = log_returns(close)
        return np.sqrt(_filter(r[1:] - self.mu, self.omega, self.alpha, self.beta, self.v0, prepend=True))


def _filter(e: np.ndarray, omega: float, alpha: float, beta: float, v0: float, *, prepend: bool) -> np.ndarray:
    """Variances: ``out[k]`` is the forecast of ``e[k+1]``'s variance (``prepend`` adds the leading NaN).

    ``v[k] = omega + alpha * e[k]^2 + beta * v[k-1]`` with ``v[-1] = v0``; each output reads only
    earlier inputs. (A plain loop: scipy.signal.lfilter would do it, but importing it costs seconds.)
    """
    x = (omega + alpha * np.asarray(e, dtype="float64") ** 2).tolist()
    v = np.empty(len(x))
    prev = v0
    for k, xk in enumerate(x):
        prev = xk + beta * prev
        v[k] = prev
    return np.concatenate([[np.nan], v]) if prepend else v


def _neg_loglik(params: np.ndarray, e: np.ndarray, v0: float) -> float:
    omega, alpha, beta = params
    if omega <= 0 or alpha < 0 or beta < 0 or alpha + beta >= 1:
        return 1e12
    # variance of e[k] is the forecast made after e[k-1]; e[0]'s is v0
    v = np.concatenate([[v0], _filter(e[:-1], omega, alpha, beta, v0, prepend=False)])
    return float(0.5 * np.sum(np.log(v) + e**2 / v))


def fit_garch(close: np.ndarray, *, start: int = 0, end: int | None = None) -> Garch:
    """Gaussian QMLE of GARCH(1,1) on the log returns inside rows ``[start, end)`` only.

    Returns are standardised by their training standard deviation before optimising (SLSQP with
    ``alpha + beta < 1``), which keeps the problem well conditioned for any price scale.
    """
    from scipy.optimize import minimize

    c = np.asarray(close, dtype="float64")
    end = len(c) if end is None else end
    if not 0 <= start < end <= len(c):
        raise UsageError(f"GARCH training rows [{start}, {end}) do not fit a series of {len(c)} rows")
    r = log_returns(c[start:end])[1:]
    if len(r) < 50:
        raise ModelError(f"GARCH(1,1) needs at least 50 returns to fit, got {len(r)} (rows {start}..{end - 1})")
    mu = float(np.mean(r))
    sd = float(np.std(r))
    if sd == 0:
        raise ModelError(f"GARCH(1,1) cannot fit constant prices (rows {start}..{end - 1})")
    x = (r - mu) / sd
    res = minimize(
        _neg_loglik, x0=np.array([0.05, 0.05, 0.90]), args=(x, 1.0), method="SLSQP",
        bounds=[(1e-8, 10.0), (0.0, 1.0), (0.0, 1.0)],
        constraints=[{"type": "ineq", "fun": lambda p: 0.9999 - p[1] - p[2]}],
    )
    omega, alpha, beta = (float(v) for v in res.x)
    if not (math.isfinite(omega) and omega > 0 and alpha + beta < 1):
        raise ModelError(f"GARCH(1,1) fit did not converge on rows {start}..{end - 1}: {res.message}")
    return Garch(mu=mu, omega=omega * sd**2, alpha=alpha, beta=beta, v0=sd**2, end=end)
