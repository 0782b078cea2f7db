"""One call that turns a walk-forward's point forecasts into distributional scores for every forecaster.

Glue for the backtest and the leaderboard: given the arrays a ``BacktestResult`` already holds
(close, origins, actual, the model's and each baseline's forecasts), it builds each forecaster's
predictive distribution from its own causal residuals (``adaptive.causal_distribution``, scaled by
the EWMA volatility known at each origin), then scores them: CRPS and its skill against naive with
a Diebold-Mariano test, pinball per level, coverage with Kupiec and Christoffersen p-values, the PIT
histogram, and the M6 RPS on next-bar return quintiles against the uniform forecast. Prices are
scored in log space; value series in their own units (and get no RPS, as they have no returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmcast.errors import UsageError
from lstmcast.evaluate import adaptive, conformal, scores, volatility


@dataclass(frozen=True)
class ForecasterScores:
    name: str
    scores: scores.DistributionScores
    crps_skill: float  # vs naive's CRPS on the same origins (0 for naive itself)
    crps_dm_stat: float
    crps_dm_p: float
    rps: float  # mean M6 RPS (NaN for value series)
    rps_skill: float  # vs the uniform quintile forecast

    def to_dict(self) -> dict:
        return {"name": self.name, **self.scores.to_dict(), "crps_skill": self.crps_skill,
                "crps_dm": {"stat": self.crps_dm_stat, "p": self.crps_dm_p}, "rps": self.rps,
                "rps_skill": self.rps_skill}


@dataclass(frozen=True)
class ProbabilisticReport:
    method: str
    scaled: bool
    levels: tuple[float, ...]
    forecasters: dict[str, ForecasterScores]
    distributions: dict[str, adaptive.Distribution] = field(repr=False)

    def to_dict(self) -> dict:
        return {"method": self.method, "scaled": self.scaled, "levels": list(self.levels),
                "forecasters": {k: v.to_dict() for k, v in self.forecasters.items()}}


def probabilistic_scores(
    close: np.ndarray,
    *,
    origins: np.ndarray,
    actual: np.ndarray,
    preds: dict[str, np.ndarray],
    kind: str = "price",
    method: str = "aci",
    scale: bool = True,
    interval_levels: tuple[float, ...] = conformal.DEFAULT_LEVELS,
    gamma: float = adaptive.DEFAULT_GAMMA,
    window: int | None = None,
) -> ProbabilisticReport:
    """Distributions and scores for each forecaster in ``preds`` (``[n, h]`` each; must include "naive").

    ``scale`` normalises residuals by the RiskMetrics EWMA volatility known at each origin (prices
    only; value series are never scaled, as their log returns do not exist).
    """
    if "naive" not in preds:
        raise UsageError("probabilistic scores need the naive forecast as the reference")
    if kind not in ("price", "value"):
        raise UsageError(f"kind must be 'price' or 'value', got {kind!r}")
    c = np.asarray(close, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    a = np.asarray(actual, dtype="float64")
    h = a.shape[1]
    mode = conformal.mode_for(kind)
    vol = volatility.ewma_volatility(c[: int(o.max()) + 1])[o] if (scale and kind == "price") else None
    levels = adaptive.levels_for(interval_levels)
    dists = adaptive.causal_distributions(
        preds, a, o, scale=vol, quantiles=levels, method=method, gamma=gamma, mode=mode, window=window,
    )
    log = kind == "price"

    def crps_of(d: adaptive.Distribution) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            y, q = (np.log(a), np.log(d.quantiles)) if log else (a, d.quantiles)
        ok = np.isfinite(y) & np.isfinite(q).all(axis=-1)
        cr = scores.crps(np.where(ok, y, 0.0), np.where(ok[..., None], q, 0.0), levels=levels)
        return np.where(ok, cr, np.nan)

    crps_naive = crps_of(dists["naive"]).mean(axis=1)
    out = {}
    for name, d in dists.items():
        cr = crps_of(d).mean(axis=1)  # per origin, over steps
        stat, p = scores.dm_on_scores(cr, crps_naive, horizon=h) if name != "naive" else (float("nan"),) * 2
        if log:
            r_m, r_u = scores.rps_for_forecast(c, o, q_next=d.quantiles[:, 0], levels=levels)
        else:  # a value series has no returns to rank
            r_m = r_u = np.full(len(o), np.nan)
        out[name] = ForecasterScores(
            name=name, scores=scores.score_distribution(a, d.quantiles, levels=levels, interval_levels=interval_levels,
                                                        log=log),
            crps_skill=scores.skill(cr, crps_naive), crps_dm_stat=stat, crps_dm_p=p,
            rps=float(np.nanmean(r_m)) if np.isfinite(r_m).any() else float("nan"),
            rps_skill=scores.skill(r_m, r_u),
        )
    return ProbabilisticReport(method=method, scaled=vol is not None, levels=levels, forecasters=out,
                               distributions=dists)
