"""Walk-forward backtests of one or more model families on one or more stored series.

The driver reads each series from the store, prepares its features once and plans its refits
(``evaluate.backtest.plan``: the schedule exists before the first fit). Every refit of every family
on every series is then an independent task, ``run_refit(task, shared)``: a top-level, picklable
function of arrays + settings + (start, end) that fits a forecaster and returns its forecasts at
the fold's origins. Tasks run through an executor (serial, a local process pool or Ray) or a plain
loop; workers read nothing from the data directory (the driver ships the prepared arrays once, as
the map's ``shared`` input) and write nothing. The folds are then assembled in plan order and
scored against the baselines on exactly the same origins.

Each task's seed is ``executor.task_seed(seed, series, refit index, family)``, so the numbers do
not depend on the backend, the number of workers or the order tasks finish in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import DataError, LstmcastError, ModelError, UsageError
from lstmcast.evaluate import backtest as wf
from lstmcast.evaluate.crossseries import CORRECTION, cross_series
from lstmcast.evaluate.metrics import diebold_mariano
from lstmcast.executor import Task, TaskFailure, describe_error, task_seed
from lstmcast.jsonable import to_jsonable

# -- planning (driver) --------------------------------------------------------------------------


def choose_origins(
    index: pd.DatetimeIndex, *, first_allowed: int, horizon: int, start: str | None, end: str | None,
    default_count: int = 250,
) -> np.ndarray:
    """Consecutive origins between ``start`` and ``end`` (default: the last ``default_count``)."""
    n = len(index)
    last_allowed = n - 1 - horizon  # every origin needs its realised targets
    lo, hi = first_allowed, last_allowed
    if start is not None:
        lo = max(lo, int(index.searchsorted(calendar.parse_utc(start, what="--start"))))
    if end is not None:
        hi = min(hi, int(index.searchsorted(calendar.parse_utc(end, what="--end"), side="right")) - 1)
    if start is None:
        lo = max(lo, hi - default_count + 1)
    if hi < lo:
        raise DataError(
            f"no backtest origins: need {first_allowed + 1} bars of history before the first origin and "
            f"{horizon} after the last (series {index[0].date()} .. {index[-1].date()}, {n} bars)"
        )
    return np.arange(lo, hi + 1)


@dataclass
class SeriesPlan:
    """One series, read and prepared by the driver, with the refit schedule every family shares."""

    key: SeriesKey
    index: pd.DatetimeIndex
    prepared: Any  # features.Prepared
    settings: Any  # settings.Settings (family set per task)
    config: wf.BacktestConfig
    origins: np.ndarray
    plan: wf.Plan
    kind: str
    market: str

    @property
    def bars_per_year(self) -> float:
        return calendar.bars_per_year(calendar.parse_interval(self.key.interval), self.market)


def plan_series(
    store: Store, spec: str, *, interval: str, settings: Any, config: wf.BacktestConfig,
    start: str | None = None, end: str | None = None,
) -> SeriesPlan:
    """Read, prepare and plan one series (the only place the backtest touches the store)."""
    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    return plan_frame(store.load(key), key=key, kind=manifest.get("kind", "price"),
                      market=manifest.get("market", "crypto"), settings=settings, config=config,
                      start=start, end=end)


def plan_frame(
    frame: pd.DataFrame, *, key: SeriesKey, kind: str, market: str, settings: Any, config: wf.BacktestConfig,
    start: str | None = None, end: str | None = None,
) -> SeriesPlan:
    """Prepare and plan the canonical bars ``frame`` of the series ``key`` (a store's, or a frame of
    the Python API's); ``config.horizon`` steps are scored, the model trains for ``settings.horizon``."""
    from lstmcast.features import FeatureConfig, bars_needed, prepare

    features, train = FeatureConfig.from_settings(settings), settings.training()
    if config.trained_horizon not in (None, features.horizon):
        raise UsageError(f"the backtest's trained horizon ({config.trained_horizon}) must equal the model "
                         f"horizon ({features.horizon})")
    config = dataclasses.replace(config, trained_horizon=features.horizon)
    prepared = prepare(frame, kind=kind, features=features)  # once; every fold of every family slices it
    need = bars_needed(features, val_fraction=train.val_fraction)
    if config.window == "rolling" and config.train_size is not None and config.train_size < need:
        raise UsageError(f"--train-size ({config.train_size}) must be at least {need} bars for this look-back")
    origins = choose_origins(frame.index, first_allowed=need - 1, horizon=config.horizon, start=start, end=end)
    sched = wf.plan(len(prepared), origins=origins, config=config)
    return SeriesPlan(key=key, index=frame.index, prepared=prepared, settings=settings, config=config,
                      origins=origins, plan=sched, kind=kind, market=market)


# -- one refit (worker) -------------------------------------------------------------------------


@dataclass(frozen=True)
class RefitTask:
    """Everything one refit needs besides the prepared series (``shared[series]``)."""

    series: str  # the key of the prepared series in the map's shared inputs
    family: str
    refit: int  # 0-based index in the series' plan
    settings: Any  # settings.Settings with this task's family, seed and threads
    start: int
    end: int
    origins: np.ndarray
    kind: str
    levels: tuple[float, ...]
    model_intervals: bool  # bound the forecasts as predict does (held-out residuals before the refit origin)
    horizon: int | None = None  # steps to forecast (None: the model's); beyond its horizon, recursively


def run_refit(task: RefitTask, shared: Mapping[str, Any]) -> wf.FoldOutput:
    """Fit ``task.family`` on rows ``[start, end)`` and forecast the fold's origins (a worker's job):
    ``task.horizon`` steps, those beyond the model's horizon recursively, as ``lstmcast predict`` does.

    Reads only its arguments; returns forecasts (and interval bounds), never writes.
    """
    from lstmcast import registry
    from lstmcast.evaluate import conformal
    from lstmcast.forecasters import forecaster
    from lstmcast.forecasters.recursive import predict_ahead, step_intervals

    prepared = shared[task.series]
    recipe = forecaster(task.settings)
    mode = conformal.mode_for(task.kind)

    def bound(fitted: Any, pred: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        # Calibrated as predict does: the fit's own validation residuals for the direct steps,
        # recursive forecasts at its validation origins for the later ones, every target at or
        # before the refit origin (fitted.end - 1), so no later bar shapes an interval.
        bands, _ = step_intervals(fitted, prepared, pred, direct_residuals=registry.residuals(fitted, kind=task.kind),
                                  levels=task.levels, mode=mode, last_row=fitted.end - 1)
        return bands

    return wf.run_fold(
        wf.Fold(start=task.start, end=task.end, origins=task.origins),
        fit=lambda lo, hi: recipe.fit(prepared, start=lo, end=hi),
        predict=lambda fitted, at: predict_ahead(fitted, prepared, at, horizon=task.horizon),
        bound=bound if task.model_intervals else None,
    )


def refit_tasks(sp: SeriesPlan, families: Sequence[str], *, threads: int | None = None) -> list[Task]:
    """One task per refit per family, keyed ``"SERIES FAMILY refit i/n"``; seeds from the task, not its order."""
    tasks = []
    n = sp.plan.n_refits
    for family in families:
        for i, fold in enumerate(sp.plan.folds):
            values: dict[str, Any] = {"family": family,
                                      "seed": task_seed(sp.settings.seed, sp.key.spec, i, family)}
            if sp.settings.threads is None and threads is not None:
                values["threads"] = threads  # the executor's per-task budget: torch's numbers depend on it
            payload = RefitTask(
                series=sp.key.spec, family=family, refit=i, settings=sp.settings.model_copy(update=values),
                start=fold.start, end=fold.end, origins=fold.origins, kind=sp.kind, levels=sp.config.levels,
                model_intervals=sp.config.intervals != "none", horizon=sp.config.horizon,
            )
            tasks.append(Task(key=task_key(sp.key.spec, family, i, n), payload=payload))
    return tasks


def task_key(series: str, family: str, refit: int, n_refits: int) -> str:
    return f"{series} {family} refit {refit + 1}/{n_refits}"


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A series (or one family on it) that produced no result: ``task`` names the failing task, if any."""

    series: str
    error: str
    family: str | None = None
    task: str | None = None
    exit_code: int = 1
    exc: BaseException | None = field(default=None, repr=False, compare=False)  # the driver-side error, if any

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series, "family": self.family, "task": self.task, "error": self.error}

    def line(self) -> str:
        return f"{self.task or self.series}: {self.error}"


def dm_vs_naive(actual: np.ndarray, pred: np.ndarray, naive: np.ndarray, *, horizon: int) -> float:
    """Diebold-Mariano p-value (absolute loss, per-origin mean over steps) of ``pred`` against naive,
    exactly as the walk-forward's headline DM test."""
    e_m, e_n = np.abs(actual - pred).mean(axis=1), np.abs(actual - naive).mean(axis=1)
    if np.array_equal(e_m, e_n):
        return math.nan
    return diebold_mariano(e_m, e_n, horizon=horizon, power=1)[1]


@dataclass
class SeriesBacktest:
    """Every family's walk-forward on one series, on identical origins."""

    key: SeriesKey
    index: pd.DatetimeIndex
    kind: str
    results: dict[str, wf.BacktestResult]  # family -> result (origins, actual, forecasts, baselines, ...)
    setup: dict[str, Any]
    failures: list[Failure] = field(default_factory=list)
    scoring: dict[str, Any] = field(default_factory=dict)  # family -> evaluate.report.Scoring

    @property
    def first(self) -> wf.BacktestResult:
        return next(iter(self.results.values()))

    def table(self) -> pd.DataFrame:
        """Every family's forecasts, one row per (family, origin, step): ``evaluate.export.forecast_table``
        with ``series`` and ``family`` columns in front."""
        from lstmcast.evaluate.export import forecast_table

        parts = []
        for family, r in self.results.items():
            sc = self.scoring.get(family)
            if sc is None:
                continue
            t = forecast_table(r, self.index, sc.chosen.distributions["model"])
            t.insert(0, "family", family)
            t.insert(0, "series", self.key.spec)
            parts.append(t)
        if not parts:
            raise UsageError("--output needs scored intervals: use --intervals adaptive or split")
        return pd.concat(parts, ignore_index=True)

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per family, then the baselines, all on the same origins.

        Columns: MAE, RMSE, MASE, hit rate, interval coverage (families only), the DM p-value
        against naive and the mean fit time per refit (families only).
        """
        rows = []
        for family, r in self.results.items():
            m = r.metrics["model"]
            rows.append({
                "forecaster": family, "role": "family", "mae": m.mae, "rmse": m.rmse, "mase": m.mase,
                "hit_rate": m.hit_rate, "mae_ratio": r.mae_ratio,
                "coverage": {wf.level_key(lv): c["observed"] for lv, c in r.coverage.items()},
                "dm_p_vs_naive": r.dm["p"], "beats_naive": r.beats_naive,
                "fit_seconds_per_refit": float(np.mean(r.fit_seconds)) if r.fit_seconds else None,
            })
        r = self.first
        naive = r.baselines["naive"]
        for name, pred in r.baselines.items():
            m = r.metrics[name]
            rows.append({
                "forecaster": name, "role": "baseline", "mae": m.mae, "rmse": m.rmse, "mase": m.mase,
                "hit_rate": m.hit_rate,
                "mae_ratio": m.mae / r.metrics["naive"].mae if r.metrics["naive"].mae else math.nan,
                "coverage": {},
                "dm_p_vs_naive": None if name == "naive" else dm_vs_naive(r.actual, pred, naive,
                                                                          horizon=r.config.horizon),
                "beats_naive": None, "fit_seconds_per_refit": None,
            })
        return rows

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        r = self.first
        return to_jsonable({
            "series": self.key.spec, "interval": self.key.interval, "kind": self.kind, "setup": self.setup,
            "n_origins": len(r.origins), "origins_from": self.index[r.origins[0]].isoformat(),
            "origins_to": self.index[r.origins[-1]].isoformat(), "n_refits": r.plan.n_refits,
            "leaderboard": self.leaderboard(),
            "families": {f: {**res.to_dict(series=series),
                             "scores": self.scoring[f].to_dict() if f in self.scoring else None}
                         for f, res in self.results.items()},
            "failures": [f.to_dict() for f in self.failures],
        })


@dataclass
class MultiBacktest:
    """A backtest of several families on several series: per-series results, the cross-series
    table (MASE, MAE ratio, DM p and its multiple-testing adjustment) and its summary."""

    series: list[SeriesBacktest]
    failures: list[Failure]
    families: tuple[str, ...]
    alpha: float
    seconds: float
    tasks: int

    def cross_series(self) -> dict[str, Any]:
        rows = [
            {"series": s.key.spec, "family": f, "mase": r.metrics["model"].mase,
             "naive_mase": r.metrics["naive"].mase, "mae_ratio": r.mae_ratio, "dm_p": r.dm["p"]}
            for s in self.series for f, r in s.results.items()
        ]
        return cross_series(rows, families=self.families, alpha=self.alpha)

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        return to_jsonable({
            "families": list(self.families), "correction": CORRECTION, "alpha": self.alpha,
            "tasks": self.tasks, "seconds": round(self.seconds, 3),
            "series": [s.to_dict(series=series) for s in self.series],
            "cross_series": self.cross_series(),
            "failures": [f.to_dict() for f in self.failures],
        })


# -- the pipeline -------------------------------------------------------------------------------


def backtest_many(
    store: Store,
    specs: Sequence[str],
    *,
    interval: str = "1d",
    settings_for: Callable[[str], Any],
    families: Sequence[str],
    config: wf.BacktestConfig,
    start: str | None = None,
    end: str | None = None,
    executor: Any = None,
    on_plan: Callable[[int, list[SeriesPlan]], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    horizon: int | None = None,
) -> MultiBacktest:
    """Backtest ``families`` on every series in ``specs``; refits × families × series go through one
    ``executor.map`` (a plain in-process loop without one). ``executor`` is an ``executor.Executor``
    or a callable ``n_tasks -> Executor``, made once the plan has counted the tasks and closed here.
    ``settings_for(spec)`` gives each series' settings: the model each refit trains (its horizon H).
    ``horizon`` N is how many steps are forecast and scored (default: H), as ``lstmcast predict
    --horizon N`` would: steps up to H direct, later ones recursive.
    A series that cannot be read or planned, or a family whose refit fails, fails alone: it is listed in ``failures``.
    """
    if not specs:
        raise UsageError("no series to backtest")
    if not families:
        raise UsageError("no model family to backtest")
    if len(set(families)) != len(families):
        raise UsageError(f"--model-family names a family twice: {','.join(families)}")
    t0 = time.perf_counter()
    plans: list[SeriesPlan] = []
    failures: list[Failure] = []
    seen: dict[str, str] = {}
    for spec in specs:
        try:
            settings = settings_for(spec)
            cfg = dataclasses.replace(config, horizon=settings.horizon if horizon is None else horizon,
                                      trained_horizon=settings.horizon)
            sp = plan_series(store, spec, interval=interval, settings=settings, config=cfg, start=start, end=end)
        except LstmcastError as e:
            failures.append(Failure(series=spec, error=str(e), exit_code=e.exit_code, exc=e))
            continue
        if sp.key.spec in seen:
            raise UsageError(f"{spec!r} and {seen[sp.key.spec]!r} are the same series ({sp.key.spec})")
        seen[sp.key.spec] = spec
        plans.append(sp)

    return run_plans(plans, families, config=config, executor=executor, on_plan=on_plan, on_progress=on_progress,
                     failures=failures, t0=t0)


def run_plans(
    plans: list[SeriesPlan],
    families: Sequence[str],
    *,
    config: wf.BacktestConfig,
    executor: Any = None,
    on_plan: Callable[[int, list[SeriesPlan]], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    failures: list[Failure] | None = None,
    t0: float | None = None,
    score: bool = True,
) -> MultiBacktest:
    """Run every refit of every family on every planned series (``backtest_many`` after reading the
    store; ``lstmcast.backtest`` on a frame) and assemble and score each family's walk-forward.
    ``score=False`` skips the probabilistic scores (``SeriesBacktest.scoring`` stays empty)."""
    t0 = time.perf_counter() if t0 is None else t0
    failures = [] if failures is None else failures
    n_tasks = sum(sp.plan.n_refits for sp in plans) * len(families)
    owned = executor is not None and not hasattr(executor, "map")  # a factory: n_tasks -> Executor
    if owned:
        executor = executor(n_tasks) if n_tasks else None
    try:
        outputs = _run_tasks(plans, families, executor=executor, on_plan=on_plan, on_progress=on_progress)
    finally:
        if owned and executor is not None:
            executor.close()

    results: list[SeriesBacktest] = []
    for sp in plans:
        per_family: dict[str, wf.BacktestResult] = {}
        series_failures: list[Failure] = []
        for family in families:
            keys = [task_key(sp.key.spec, family, i, sp.plan.n_refits) for i in range(sp.plan.n_refits)]
            bad = [outputs[k] for k in keys if isinstance(outputs[k], TaskFailure)]
            if bad:
                series_failures.append(Failure(series=sp.key.spec, family=family, task=bad[0].key,
                                               error=bad[0].error, exit_code=3))
                continue
            try:
                per_family[family] = wf.assemble(
                    sp.prepared.close, origins=sp.origins, config=sp.config, folds=[outputs[k] for k in keys],
                    kind=sp.kind, bars_per_year=sp.bars_per_year,
                )
            except LstmcastError as e:
                series_failures.append(Failure(series=sp.key.spec, family=family, error=str(e), exit_code=3, exc=e))
        failures.extend(series_failures)
        scoring = _score_families(per_family, sp, config.intervals) if score else {}
        if per_family:
            setup = {**setup_dict(sp.settings), "families": list(per_family),
                     "seeds": "task_seed(seed, series, refit index, family)",
                     "executor": getattr(executor, "name", None) or "in-process"}
            results.append(SeriesBacktest(key=sp.key, index=sp.index, kind=sp.kind, results=per_family,
                                          setup=setup, failures=series_failures, scoring=scoring))
    return MultiBacktest(series=results, failures=failures, families=tuple(families), alpha=config.alpha,
                         seconds=time.perf_counter() - t0, tasks=n_tasks)


def _score_families(per_family: dict[str, wf.BacktestResult], sp: SeriesPlan, intervals: str) -> dict[str, Any]:
    """``evaluate.report.score_backtest`` for each family (adaptive and split intervals both scored);
    every other family's strategy is one more configuration tried, for the DSR and the PBO."""
    if intervals not in ("adaptive", "split"):
        return {}
    from lstmcast.evaluate.report import net_returns, score_backtest

    out = {}
    for family, r in per_family.items():
        others = {f"{o} strategy": net_returns(x.strategies["model"])
                  for o, x in per_family.items() if o != family and x.strategies}
        out[family] = score_backtest(r, sp.prepared.close, intervals=intervals, bars_per_year=sp.bars_per_year,
                                     extra_trials=others or None)
    return out


def _run_tasks(
    plans: list[SeriesPlan], families: Sequence[str], *, executor: Any,
    on_plan: Callable[[int, list[SeriesPlan]], None] | None,
    on_progress: Callable[[int, int, str], None] | None,
) -> dict[str, Any]:
    """Every refit of every family on every series through one map; results by task key."""
    threads = getattr(executor, "threads", None)
    tasks = [t for sp in plans for t in refit_tasks(sp, families, threads=threads)]
    if on_plan is not None:
        on_plan(len(tasks), plans)
    shared = {sp.key.spec: sp.prepared for sp in plans}  # sent once per worker (Ray: put once)
    outputs: dict[str, Any] = {}
    if executor is None:
        for i, t in enumerate(tasks):
            try:
                outputs[t.key] = run_refit(t.payload, shared)
            except Exception as e:  # a task fails alone, as it would on any executor
                outputs[t.key] = TaskFailure(t.key, describe_error(e), traceback=traceback.format_exc())
            if on_progress:
                on_progress(i + 1, len(tasks), t.key)
    elif tasks:
        with executor.map(run_refit, tasks, shared=shared, on_progress=on_progress) as stream:
            for key, value in stream:
                outputs[key] = value
    return outputs


# -- one family on one series (the historical entry point) ---------------------------------------


@dataclass
class BacktestReport:
    key: SeriesKey
    index: pd.DatetimeIndex
    result: Any  # evaluate.backtest.BacktestResult
    train_seconds_reference: float | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    scoring: Any = None  # evaluate.report.Scoring

    def table(self) -> pd.DataFrame:
        """The per-origin, per-step forecasts (``evaluate.export.forecast_table``)."""
        from lstmcast.evaluate.export import forecast_table

        return forecast_table(self.result, self.index, self.scoring.chosen.distributions["model"])

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """``series`` adds the older row-index arrays; ``records`` (timestamps) are there when scored."""
        from lstmcast.evaluate.export import records

        r = self.result
        d = {"series": self.key.spec, "interval": self.key.interval, "setup": self.setup, **r.to_dict(series=series)}
        d["origins_from"] = self.index[r.origins[0]].isoformat()
        d["origins_to"] = self.index[r.origins[-1]].isoformat()
        if self.scoring is not None:
            d["scores"] = self.scoring.to_dict()
            d["records"] = records(self.table())
        return d


def backtest_series(
    store: Store,
    spec: str,
    *,
    interval: str = "1d",
    features: Any = None,
    model: Any = None,
    train: Any = None,
    config: Any = None,
    start: str | None = None,
    end: str | None = None,
    on_plan: Callable[[Any], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    family: str | None = None,
    settings: Any = None,
    executor: Any = None,
) -> BacktestReport:
    """Walk-forward backtest of one model family on a stored series; every fold sees rows <= its origin only.

    ``config.horizon`` steps are forecast; the model trains for ``settings.horizon`` and forecasts
    any later step recursively."""
    from lstmcast.pipelines.train import compose

    if settings is None:
        settings = compose(features=features, model=model, train=train, family=family)
    config = config or wf.BacktestConfig(horizon=settings.horizon)
    origins_total = 0

    def plan_cb(n_tasks: int, plans: list[SeriesPlan]) -> None:
        nonlocal origins_total
        if plans:
            origins_total = plans[0].plan.n_origins
            if on_plan is not None:
                on_plan(plans[0].plan)

    def progress_cb(done: int, total: int, key: str) -> None:
        if on_progress is not None:  # in origins, as before: tasks are this series' folds
            on_progress(round(origins_total * done / total), origins_total)

    t0 = time.perf_counter()
    multi = backtest_many(store, [spec], interval=interval, settings_for=lambda _s: settings,
                          families=[settings.family], config=config, start=start, end=end, executor=executor,
                          on_plan=plan_cb, on_progress=progress_cb, horizon=config.horizon)
    if multi.failures:
        f = multi.failures[0]
        if f.exc is not None:
            raise f.exc
        raise ModelError(f.line())
    s = multi.series[0]
    setup = {**setup_dict(settings), "intervals": config.intervals, "seconds": round(time.perf_counter() - t0, 3)}
    return BacktestReport(key=s.key, index=s.index, result=s.first, setup=setup,
                          scoring=s.scoring.get(settings.family))


def setup_dict(settings: Any) -> dict[str, Any]:
    """The settings a backtest ran with, in the shape of a run's metadata."""
    from lstmcast.features import FeatureConfig

    return {"family": settings.family, "features": FeatureConfig.from_settings(settings).to_dict(),
            "model": settings.network().to_dict(), "train": settings.training().to_dict(),
            "run_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
