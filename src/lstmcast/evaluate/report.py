"""Everything a backtest reports beyond point accuracy, in one call: ``score_backtest``.

From the arrays a ``BacktestResult`` holds it computes, for the model and every baseline:

- the predictive distribution of both interval methods ("adaptive": EWMA-normalised causal
  residuals with adaptive conformal inference; "split": plain split conformal on the same causal
  residuals), each scored by CRPS (skill vs naive, Diebold-Mariano p), pinball per quantile,
  coverage per nominal level with Kupiec and Christoffersen p-values, the PIT histogram and the M6
  RPS skill against the uniform quintile forecast;
- the directional hit rate tested against the always-up call on the same origins (per step too);
- each strategy's time in market, Sharpe interval and PSR against buy-and-hold's Sharpe ("never in
  the market" kept as such);
- the selection correction over the forecast-driven strategies compared (the model's, each
  baseline's and any ``extra_trials`` such as other families): the Deflated Sharpe Ratio of the
  best, and the PBO when at least 4 were compared.

Pure numpy/scipy: no I/O, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstmcast.evaluate import adaptive, conformal, significance, volatility
from lstmcast.evaluate.conformal import coverage as observed_coverage
from lstmcast.evaluate.metrics import direction_hits
from lstmcast.evaluate.probabilistic import ProbabilisticReport, probabilistic_scores
from lstmcast.jsonable import to_jsonable

INTERVAL_CHOICES = ("adaptive", "split")
"""``--intervals``: the backtest's (and the plot's) intervals; both are always scored."""
PBO_BLOCKS = 10
"""CSCV blocks: C(10, 5) = 252 splits, enough for a stable share, cheap for any number of origins."""


def _method(name: str) -> tuple[str, bool]:
    """(adaptive.causal_distribution method, volatility scaling) for an interval choice."""
    return ("aci", True) if name == "adaptive" else ("split", False)


def model_distribution(
    close: np.ndarray, origins: np.ndarray, actual: np.ndarray, forecast: np.ndarray, *,
    kind: str, method: str, levels: tuple[float, ...], window: int | None = None,
) -> adaptive.Distribution:
    """The model's causal predictive distribution for interval choice ``method`` -- exactly the one
    ``score_backtest`` scores, so the backtest's intervals and its scores agree."""
    m, scaled = _method(method)
    c = np.asarray(close, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    vol = volatility.ewma_volatility(c[: int(o.max()) + 1])[o] if (scaled and kind == "price") else None
    with np.errstate(over="ignore", invalid="ignore"):  # absurd forecasts give inf bounds, not noise
        return adaptive.causal_distribution(
            forecast, actual, o, scale=vol, quantiles=adaptive.levels_for(levels), method=m,
            mode=conformal.mode_for(kind), window=window,
        )


@dataclass
class Scoring:
    intervals: str  # the chosen method ("adaptive" or "split")
    methods: dict[str, ProbabilisticReport]  # both interval methods
    coverage: dict[str, dict[str, dict[str, Any]]]  # method -> level -> the model's coverage summary
    hit_rate: dict[str, significance.HitRateTest]  # forecaster -> test vs always-up
    strategies: dict[str, significance.SharpeStats]
    deflated: significance.Deflated | None
    pbo: significance.PBO | None
    n_trials: int
    selection_note: str
    pit: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # forecaster -> PIT values (chosen)

    @property
    def chosen(self) -> ProbabilisticReport:
        return self.methods[self.intervals]

    def to_dict(self) -> dict:
        return to_jsonable({
            "intervals": self.intervals,
            "distribution": {k: v.to_dict() for k, v in self.methods.items()},
            "coverage": self.coverage,
            "hit_rate": {k: v.to_dict() for k, v in self.hit_rate.items()},
            "strategies": {k: v.to_dict() for k, v in self.strategies.items()},
            "selection": {
                "n_trials": self.n_trials,
                "deflated": self.deflated.to_dict() if self.deflated else None,
                "pbo": self.pbo.to_dict() if self.pbo else None,
                "note": self.selection_note,
            },
        })


def net_returns(res) -> np.ndarray:
    e = np.asarray(res.equity, dtype="float64")
    return e[1:] / e[:-1] - 1


def score_backtest(
    result: Any,
    close: np.ndarray,
    *,
    intervals: str = "adaptive",
    bars_per_year: float = 252.0,
    extra_trials: dict[str, np.ndarray] | None = None,
) -> Scoring:
    """Distributional scores, hit-rate tests, strategy uncertainty and selection correction.

    ``result`` is a ``BacktestResult`` (origins, actual, forecast, baselines, last, strategies,
    config, kind); ``close`` the series it ran on. ``extra_trials`` maps other configurations'
    names to their per-bar strategy net returns over the same bars (for the DSR / PBO).
    """
    from lstmcast.errors import UsageError

    if intervals not in INTERVAL_CHOICES:
        raise UsageError(f"--intervals must be one of {', '.join(INTERVAL_CHOICES)}, got {intervals!r}")
    import warnings

    with warnings.catch_warnings():  # short runs leave some forecasters with no calibrated origin yet
        warnings.simplefilter("ignore", RuntimeWarning)
        return _score(result, close, intervals=intervals, bars_per_year=bars_per_year, extra_trials=extra_trials)


def _score(result: Any, close: np.ndarray, *, intervals: str, bars_per_year: float,
           extra_trials: dict[str, np.ndarray] | None) -> Scoring:
    cfg = result.config
    preds = {"model": result.forecast, **result.baselines}
    methods: dict[str, ProbabilisticReport] = {}
    coverage: dict[str, dict[str, dict[str, Any]]] = {}
    for name in INTERVAL_CHOICES:
        m, scaled = _method(name)
        rep = probabilistic_scores(
            close, origins=result.origins, actual=result.actual, preds=preds, kind=result.kind, method=m,
            scale=scaled, interval_levels=tuple(cfg.levels), window=cfg.calibration_window,
        )
        methods[name] = rep
        d = rep.distributions["model"]
        tests = rep.forecasters["model"].scores.coverage
        cov = {}
        for lv in cfg.levels:
            lo, hi = d.interval(lv)
            t = tests[f"{lv:g}"]
            cov[f"{lv:g}"] = {
                "nominal": lv, "observed": observed_coverage(result.actual, lo, hi),
                "n": int((np.isfinite(lo) & np.isfinite(hi)).sum()),
                "step1": {"observed": t.observed, "n": t.n, "kupiec_p": t.kupiec_p,
                          "christoffersen_p": t.christoffersen_p},
                "mean_width": float(np.nanmean(np.log(hi / lo) if result.kind == "price" else hi - lo)),
            }
        coverage[name] = cov

    chosen = methods[intervals]
    pit = {}
    from lstmcast.evaluate import scores

    for name, d in chosen.distributions.items():
        y, q = result.actual, d.quantiles
        if result.kind == "price":
            with np.errstate(divide="ignore", invalid="ignore"):
                y, q = np.log(y), np.log(q)
        pit[name] = scores.pit(y, q, levels=d.levels)

    up = significance.always_up_hits(result.actual, result.last)
    hit_rate = {
        name: significance.hit_rate_vs_baseline(direction_hits(result.actual, p, result.last), up)
        for name, p in preds.items() if name != "naive"  # naive calls no direction
    }

    strat_stats: dict[str, significance.SharpeStats] = {}
    deflated = pbo = None
    n_trials = 1
    if result.strategies:
        strat_stats = significance.strategy_significance(result.strategies, bars_per_year=bars_per_year)
        trials = {k: net_returns(v) for k, v in result.strategies.items() if k != "buy_and_hold"}
        trials.update(extra_trials or {})
        n_trials = len(trials)
        cols = np.column_stack(list(trials.values())) if trials else np.empty((0, 0))
        traded = int((cols.std(axis=0, ddof=1) > 0).sum()) if cols.shape[0] >= 3 else 0
        if n_trials >= 2 and traded >= 2:
            deflated = significance.deflated_sharpe_of_trials(cols, bars_per_year=bars_per_year)
        if n_trials >= 4 and cols.shape[0] >= 2 * PBO_BLOCKS:
            pbo = significance.pbo_cscv(cols, n_blocks=PBO_BLOCKS)
        names = list(trials)
        note = significance.selection_note(deflated, pbo)
        if deflated is not None:
            note = f"{note} (best: {names[deflated.best]}; trials: {', '.join(names)})"
    else:
        note = "no trading strategy: nothing to correct for selection"
    return Scoring(
        intervals=intervals, methods=methods, coverage=coverage, hit_rate=hit_rate, strategies=strat_stats,
        deflated=deflated, pbo=pbo, n_trials=n_trials, selection_note=note, pit=pit,
    )
