"""Walk-forward (rolling-origin) backtest of any forecaster against the baselines.

The model enters through two callables, so this module never imports torch:

- ``fit(start, end) -> model`` trains on rows ``[start, end)`` only. At a refit origin ``t`` the
  engine calls it with ``end = t + 1`` (the origin bar is the last one the model may see), and
  ``start = 0`` (expanding window) or ``end - train_size`` (rolling window).
- ``predict(model, origins) -> [n, horizon]`` predicted closes for bars ``t+1 .. t+horizon`` of
  each origin ``t``. Between refits the last fitted model is reused; it is never refitted on, or
  shown, a later bar.

Refits happen at ``origins[0]``, ``origins[refit_every]``, ... so their number is known up front
(``plan``). All forecasters (model and baselines) are scored on exactly the same origins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lstmcast.errors import ModelError, UsageError
from lstmcast.evaluate import conformal
from lstmcast.evaluate.baselines import baseline_forecasts, check_origins
from lstmcast.evaluate.metrics import PointMetrics, beats_naive, diebold_mariano, naive_scale, point_metrics
from lstmcast.evaluate.strategy import StrategyResult, buy_and_hold, run_strategy
from lstmcast.jsonable import to_jsonable

WINDOWS = ("expanding", "rolling")
METHOD_DIRECT, METHOD_RECURSIVE = "direct", "recursive"  # as forecasters.recursive labels them
INTERVAL_METHODS = ("adaptive", "split", "causal", "model", "none")


@dataclass(frozen=True)
class BacktestConfig:
    """How the walk-forward runs and is scored.

    ``intervals``: "adaptive" (the default) reads them from ``adaptive.causal_distribution``: the
    walk-forward's own signed residuals whose targets were already observed at each origin, divided
    by the EWMA volatility known at their origin (prices), with adaptive conformal inference on each
    tail; "split" is the same without volatility scaling or adaptation (plain split conformal on
    those causal residuals); "causal" calibrates symmetric conformal intervals on the absolute
    causal residuals; "model" asks ``calibrate(model)`` for a
    ``Conformal`` at every refit (e.g. from the model's validation residuals, which precede the
    refit origin); "none" skips intervals.
    """

    horizon: int = 1
    refit_every: int = 20
    window: str = "expanding"
    train_size: int | None = None  # rows per fit for window="rolling"
    ma_window: int = 20
    levels: tuple[float, ...] = (0.8, 0.95)
    intervals: str = "adaptive"
    calibration_window: int | None = None  # causal: keep only the most recent residuals
    fee_bps: float = 10.0
    long_short: bool = False
    alpha: float = 0.05  # DM significance for the verdict
    # MASE denominator from the last `scale_window` rows up to the first origin (None: all of
    # them, the textbook in-sample scale). For prices that grew 50-fold, early bars make the
    # in-sample changes tiny and every MASE large; a recent window keeps MASE near 1 for naive.
    scale_window: int | None = None
    # The model's own (trained) horizon H: steps 1..min(H, horizon) are its direct forecasts,
    # later ones recursive (its predictions fed back). None: the same as ``horizon`` (all direct).
    trained_horizon: int | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise UsageError(f"horizon must be at least 1, got {self.horizon}")
        if self.trained_horizon is not None and self.trained_horizon < 1:
            raise UsageError(f"trained horizon must be at least 1, got {self.trained_horizon}")
        if self.refit_every < 1:
            raise UsageError(f"refit-every must be at least 1, got {self.refit_every}")
        if self.window not in WINDOWS:
            raise UsageError(f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}")
        if self.window == "rolling" and (self.train_size is None or self.train_size < 2):
            raise UsageError(f"a rolling window needs a train size of at least 2 rows, got {self.train_size}")
        if self.intervals not in INTERVAL_METHODS:
            raise UsageError(
                f"intervals must be one of {', '.join(INTERVAL_METHODS)}, got {self.intervals!r}"
            )
        if self.fee_bps < 0:
            raise UsageError(f"fee must not be negative, got {self.fee_bps} bps")
        if self.scale_window is not None and self.scale_window < 2:
            raise UsageError(f"MASE scale window must be at least 2 rows, got {self.scale_window}")

    @property
    def methods(self) -> list[str]:
        """Each step's method: "direct" up to the trained horizon, "recursive" after."""
        h = self.horizon if self.trained_horizon is None else self.trained_horizon
        return [METHOD_DIRECT if s <= h else METHOD_RECURSIVE for s in range(1, self.horizon + 1)]


@dataclass(frozen=True)
class Fold:
    """One refit: fit on rows ``[start, end)``, then forecast at ``origins`` (``end - 1`` first)."""

    start: int
    end: int
    origins: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "first_origin": int(self.origins[0]),
                "last_origin": int(self.origins[-1]), "n_origins": len(self.origins)}


@dataclass(frozen=True)
class Plan:
    folds: tuple[Fold, ...]

    @property
    def n_refits(self) -> int:
        return len(self.folds)

    @property
    def n_origins(self) -> int:
        return sum(len(f.origins) for f in self.folds)

    def to_dict(self) -> dict:
        return {"n_refits": self.n_refits, "n_origins": self.n_origins,
                "folds": [f.to_dict() for f in self.folds]}


def plan(n_rows: int, *, origins: np.ndarray, config: BacktestConfig) -> Plan:
    """The refit schedule, computed before any fitting (the CLI shows the number of refits)."""
    o = check_origins(origins, n_rows=n_rows, horizon=config.horizon, min_origin=1)
    folds = []
    for i in range(0, len(o), config.refit_every):
        block = o[i : i + config.refit_every]
        end = int(block[0]) + 1
        if config.window == "rolling":
            assert config.train_size is not None
            if config.train_size > end:
                raise UsageError(
                    f"rolling train size ({config.train_size}) is larger than the {end} rows up to "
                    f"the first origin ({int(block[0])})"
                )
            start = end - config.train_size
        else:
            start = 0
        folds.append(Fold(start=start, end=end, origins=block))
    return Plan(folds=tuple(folds))


def level_key(level: float) -> str:
    return f"{level:g}"


@dataclass
class BacktestResult:
    """Everything a backtest found. Arrays are ``[n_origins]`` or ``[n_origins, horizon]``."""

    config: BacktestConfig
    kind: str
    plan: Plan
    origins: np.ndarray
    last: np.ndarray  # close at each origin
    actual: np.ndarray
    forecast: np.ndarray  # the model's
    baselines: dict[str, np.ndarray]
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lo, hi); {} if none
    coverage: dict[float, dict[str, Any]]  # level -> nominal, observed, by_step, n, n_by_step
    scale: float  # MASE denominator: naive in-sample MAE of the rows up to the first origin
    metrics: dict[str, PointMetrics]  # "model" and each baseline, over all steps
    metrics_by_step: dict[str, list[PointMetrics]]
    dm: dict[str, Any]  # model vs naive: stat, p, power, by_step
    strategies: dict[str, StrategyResult]  # "model", each baseline, "buy_and_hold"; {} for a value series
    mae_ratio: float  # model MAE / naive MAE on the same origins: below 1 beats naive
    beats_naive: bool
    verdict: str
    fit_seconds: list[float]
    predict_seconds: float
    # The intervals `lstmcast predict` would have given at each origin (each fold calibrated like
    # predict, on residuals before its refit origin) and their coverage; {} when the folds gave none.
    predict_intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    predict_coverage: dict[float, dict[str, Any]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return self.config.methods

    def steps(self) -> list[dict[str, Any]]:
        """One row per step: its method, MAE, MASE and MAE ratio / skill against naive at that step,
        and per level the coverage (with its number of forecasts) of the backtest's intervals
        (``coverage``) and of the intervals predict gives (``predict_coverage``)."""
        out = []
        for s, method in enumerate(self.methods):
            m, nv = self.metrics_by_step["model"][s], self.metrics_by_step["naive"][s]
            ratio = m.mae / nv.mae if nv.mae else math.nan
            out.append({
                "step": s + 1, "method": method, "n": int(len(self.origins)), "mae": m.mae, "mase": m.mase,
                "naive_mase": nv.mase, "mae_ratio": ratio, "skill": 1.0 - ratio,
                "coverage": {level_key(lv): {"observed": c["by_step"][s], "n": c["n_by_step"][s]}
                             for lv, c in self.coverage.items()},
                "predict_coverage": {level_key(lv): {"observed": c["by_step"][s], "n": c["n_by_step"][s]}
                                     for lv, c in self.predict_coverage.items()},
            })
        return out

    def to_dict(self, *, series: bool = True) -> dict:
        """JSON-able summary; ``series=False`` leaves out the per-origin arrays."""
        d: dict[str, Any] = {
            "config": asdict(self.config),
            "kind": self.kind,
            "plan": self.plan.to_dict(),
            "n_origins": len(self.origins),
            "scale": self.scale,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "metrics_by_step": {k: [m.to_dict() for m in v] for k, v in self.metrics_by_step.items()},
            "dm": self.dm,
            "coverage": {level_key(k): v for k, v in self.coverage.items()},
            "predict_coverage": {level_key(k): v for k, v in self.predict_coverage.items()},
            "steps": self.steps(),
            "strategies": {k: v.to_dict(series=series) for k, v in self.strategies.items()},
            "mae_ratio": self.mae_ratio,
            "beats_naive": self.beats_naive,
            "verdict": self.verdict,
            "timing": {"fit_seconds": self.fit_seconds, "predict_seconds": self.predict_seconds,
                       "mean_fit_seconds": float(np.mean(self.fit_seconds)) if self.fit_seconds else None},
        }
        if series:
            d["series"] = {
                "origins": self.origins, "last": self.last, "actual": self.actual,
                "forecast": self.forecast, "baselines": self.baselines,
                "intervals": {level_key(k): {"lo": lo, "hi": hi} for k, (lo, hi) in self.intervals.items()},
            }
        return to_jsonable(d)


def walk_forward(
    close: np.ndarray,
    *,
    origins: np.ndarray,
    config: BacktestConfig,
    fit: Callable[[int, int], Any],
    predict: Callable[[Any, np.ndarray], np.ndarray],
    calibrate: Callable[[Any], conformal.Conformal] | None = None,
    prior_residuals: np.ndarray | None = None,
    kind: str = "price",
    bars_per_year: float = 252.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Refit-and-forecast over ``origins``, then score model and baselines on the same origins.

    ``close`` is the whole series (targets must exist: ``origins[-1] + horizon < len(close)``).
    ``prior_residuals`` ``[m, horizon]`` seed the causal intervals (they must come from forecasts
    whose targets precede ``origins[0]``). ``on_progress(done, total)`` is called after each fold
    with the number of origins forecast so far.
    """
    if config.intervals == "model" and calibrate is None:
        raise UsageError("intervals='model' needs a calibrate(model) callable")
    sched = plan(len(close), origins=origins, config=config)
    total = sum(len(f.origins) for f in sched.folds)
    outputs: list[FoldOutput] = []
    done = 0
    if on_progress:
        on_progress(0, total)
    for fold in sched.folds:
        outputs.append(run_fold(fold, fit=fit, predict=predict,
                                calibrate=calibrate if config.intervals == "model" else None))
        done += len(fold.origins)
        if on_progress:
            on_progress(done, total)
    return assemble(close, origins=origins, config=config, folds=outputs, prior_residuals=prior_residuals,
                    kind=kind, bars_per_year=bars_per_year)


@dataclass
class FoldOutput:
    """What one refit produced: forecasts at its origins, the model's own interval bounds (level ->
    (lo, hi), calibrated as predict does; empty when not asked for), and how long fitting and
    predicting took."""

    forecast: np.ndarray  # [len(fold.origins), horizon]
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]
    fit_seconds: float
    predict_seconds: float


def run_fold(
    fold: Fold,
    *,
    fit: Callable[[int, int], Any],
    predict: Callable[[Any, np.ndarray], np.ndarray],
    calibrate: Callable[[Any], conformal.Conformal] | None = None,
    bound: Callable[[Any, np.ndarray], dict[float, tuple[np.ndarray, np.ndarray]]] | None = None,
) -> FoldOutput:
    """Fit on the fold's rows, forecast its origins and bound them: ``calibrate(model)`` gives a
    ``Conformal`` for the forecasts, or ``bound(model, forecasts)`` the bounds themselves.

    Independent of every other fold given the plan, so folds may run in any order or process.
    """
    t0 = time.perf_counter()
    model = fit(fold.start, fold.end)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = np.asarray(predict(model, fold.origins), dtype="float64")
    predict_s = time.perf_counter() - t0
    bounds: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    if pred.ndim == 2 and np.isfinite(pred).all():
        if bound is not None:
            bounds = {lv: (np.asarray(lo), np.asarray(hi)) for lv, (lo, hi) in bound(model, pred).items()}
        elif calibrate is not None:
            bounds = {lv: (np.asarray(lo), np.asarray(hi)) for lv, (lo, hi) in calibrate(model).interval(pred).items()}
    return FoldOutput(forecast=pred, bounds=bounds, fit_seconds=fit_s, predict_seconds=predict_s)


def assemble(
    close: np.ndarray,
    *,
    origins: np.ndarray,
    config: BacktestConfig,
    folds: list[FoldOutput],
    prior_residuals: np.ndarray | None = None,
    kind: str = "price",
    bars_per_year: float = 252.0,
) -> BacktestResult:
    """Put the folds' forecasts (in plan order) together and score them against the baselines."""
    c = np.asarray(close, dtype="float64")
    if kind not in ("price", "value"):
        raise UsageError(f"kind must be 'price' or 'value', got {kind!r}")
    sched = plan(len(c), origins=origins, config=config)
    if len(folds) != sched.n_refits:
        raise ModelError(f"{len(folds)} fold result(s) for a plan of {sched.n_refits} refit(s)")
    o = np.concatenate([f.origins for f in sched.folds])
    h = config.horizon
    total = len(o)

    forecast = np.empty((total, h))
    model_bounds: dict[float, tuple[np.ndarray, np.ndarray]] = {
        lv: (np.full((total, h), np.nan), np.full((total, h), np.nan)) for lv in config.levels
    } if config.intervals == "model" or any(out.bounds for out in folds) else {}
    fit_seconds: list[float] = []
    predict_seconds = 0.0
    done = 0
    for fold, out in zip(sched.folds, folds, strict=False):
        fit_seconds.append(out.fit_seconds)
        predict_seconds += out.predict_seconds
        pred = np.asarray(out.forecast, dtype="float64")
        if pred.shape != (len(fold.origins), h):
            raise ModelError(f"predict returned shape {pred.shape}, expected {(len(fold.origins), h)}")
        bad = ~np.isfinite(pred).all(axis=1)
        if bad.any():
            first = int(fold.origins[bad][0])
            raise ModelError(f"the model produced a non-finite forecast at origin {first}")
        sl = slice(done, done + len(fold.origins))
        forecast[sl] = pred
        for lv, (lo, hi) in out.bounds.items():
            if lv in model_bounds:
                model_bounds[lv][0][sl], model_bounds[lv][1][sl] = lo, hi
        done += len(fold.origins)

    steps = np.arange(1, h + 1)
    actual = c[o[:, None] + steps[None, :]]
    last = c[o]
    baselines = baseline_forecasts(c, o, h, ma_window=config.ma_window, kind=kind)
    mode = conformal.mode_for(kind)

    if config.intervals in ("adaptive", "split"):
        from lstmcast.evaluate.report import model_distribution

        dist = model_distribution(c, o, actual, forecast, kind=kind, method=config.intervals,
                                  levels=config.levels, window=config.calibration_window)
        bounds = {lv: dist.interval(lv) for lv in config.levels}
    elif config.intervals == "causal":
        bounds, _ = conformal.causal_intervals(
            forecast, actual, o, levels=config.levels, mode=mode,
            prior=prior_residuals, window=config.calibration_window,
        )
    elif config.intervals == "model":
        bounds = model_bounds
    else:
        bounds = {}
    cov = _coverage(actual, bounds)

    # MASE denominator: one-step naive MAE on the history the first model could see.
    first = int(o[0]) + 1
    lo = 0 if config.scale_window is None else max(0, first - config.scale_window)
    scale = naive_scale(c[lo:first])
    preds = {"model": forecast, **baselines}
    metrics = {k: point_metrics(actual, p, last=last, scale=scale) for k, p in preds.items()}
    by_step = {
        k: [point_metrics(actual[:, s], p[:, s], last=last, scale=scale) for s in range(h)]
        for k, p in preds.items()
    }

    # DM on absolute loss (consistent with MAE/MASE): headline on the per-origin mean loss over
    # all steps, whose overlap makes errors autocorrelated up to lag h-1; then step by step.
    e_m, e_n = actual - forecast, actual - baselines["naive"]
    stat, p = diebold_mariano(np.abs(e_m).mean(axis=1), np.abs(e_n).mean(axis=1), horizon=h, power=1)
    dm_steps = [diebold_mariano(e_m[:, s], e_n[:, s], horizon=s + 1, power=1) for s in range(h)]
    dm = {"stat": stat, "p": p, "power": 1, "by_step": [{"stat": a, "p": b} for a, b in dm_steps]}

    # A value series (may be 0 or negative) has no price to trade: its "returns" are meaningless.
    strategies: dict[str, StrategyResult] = {}
    if kind == "price":
        strategies = {
            k: run_strategy(c, o, pr[:, 0], fee_bps=config.fee_bps, long_short=config.long_short,
                            bars_per_year=bars_per_year, name=k)
            for k, pr in preds.items()
        }
        strategies["buy_and_hold"] = buy_and_hold(c, o, fee_bps=config.fee_bps, bars_per_year=bars_per_year)

    m_mase, n_mase = metrics["model"].mase, metrics["naive"].mase
    ratio = metrics["model"].mae / metrics["naive"].mae if metrics["naive"].mae else math.nan
    beats = beats_naive(metrics["model"].mae, metrics["naive"].mae, p, alpha=config.alpha)
    verdict = (
        f"beats naive: {'yes' if beats else 'no'}, MASE {m_mase:.2f} vs naive {n_mase:.2f} "
        f"(MAE ratio {ratio:.3f}), DM p = {p:.2f}"
    )

    return BacktestResult(
        config=config, kind=kind, plan=sched, origins=o, last=last, actual=actual, forecast=forecast,
        baselines=baselines, intervals=bounds, coverage=cov, scale=scale, metrics=metrics,
        metrics_by_step=by_step, dm=dm, strategies=strategies, mae_ratio=ratio, beats_naive=beats,
        verdict=verdict, fit_seconds=fit_seconds, predict_seconds=predict_seconds,
        predict_intervals=model_bounds, predict_coverage=_coverage(actual, model_bounds),
    )


def _coverage(actual: np.ndarray, bounds: dict[float, tuple[np.ndarray, np.ndarray]]) -> dict[float, dict[str, Any]]:
    """Per level: nominal, observed coverage over all steps and per step, and the number of
    forecasts with an interval (``n``, ``n_by_step``)."""
    cov = {}
    for lv, (lo, hi) in bounds.items():
        valid = ~np.isnan(lo) & ~np.isnan(hi) & np.isfinite(actual)
        cov[lv] = {
            "nominal": lv,
            "observed": conformal.coverage(actual, lo, hi),
            "by_step": conformal.coverage(actual, lo, hi, axis=0).tolist(),
            "n": int(valid.sum()),
            "n_by_step": valid.sum(axis=0).astype(int).tolist(),
        }
    return cov
