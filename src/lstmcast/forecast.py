"""``backtest_series`` (walk-forward refits of the LSTM, scored against the baselines); ``predict_series``
lives in ``pipelines.predict`` and is re-exported here for old imports.

Both build features once (``features.prepare``, causal: row t uses bars <= t) and hand the model
only rows up to each origin; scalers are fitted inside ``train.fit`` on training rows only.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import DataError, UsageError

# -- predict: moved to pipelines.predict; these names stay importable from here -----------------
from lstmcast.pipelines.predict import (  # noqa: E402,F401
    MODEL_LAG_WARN_BARS,
    PredictReport,
    PredictStep,
    predict_series,
    staleness,
)

# -- backtest ----------------------------------------------------------------------------------


@dataclass
class BacktestReport:
    key: SeriesKey
    index: pd.DatetimeIndex
    result: Any  # evaluate.backtest.BacktestResult
    train_seconds_reference: float | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    scoring: Any = None  # evaluate.report.Scoring

    def table(self):
        """The per-origin, per-step forecasts (``evaluate.export.forecast_table``)."""
        from lstmcast.evaluate.export import forecast_table

        return forecast_table(self.result, self.index, self.scoring.chosen.distributions["model"])

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """``series`` adds the older row-index arrays; ``records`` (timestamps) are always there."""
        from lstmcast.evaluate.export import records

        r = self.result
        d = {"series": self.key.spec, "interval": self.key.interval, "setup": self.setup, **r.to_dict(series=series)}
        d["origins_from"] = self.index[r.origins[0]].isoformat()
        d["origins_to"] = self.index[r.origins[-1]].isoformat()
        if self.scoring is not None:
            d["scores"] = self.scoring.to_dict()
            d["records"] = records(self.table())
        return d


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
) -> BacktestReport:
    """Walk-forward backtest of one model family on a stored series; every fold sees rows <= its origin only."""
    from lstmcast import registry as checkpoint
    from lstmcast.evaluate import backtest, conformal
    from lstmcast.features import FeatureConfig, bars_needed, prepare
    from lstmcast.forecasters import forecaster
    from lstmcast.train import compose

    if settings is None:
        settings = compose(features=features, model=model, train=train, family=family)
    features, model, train = FeatureConfig.from_settings(settings), settings.network(), settings.training()
    family = settings.family
    recipe = forecaster(settings)
    config = config or backtest.BacktestConfig(horizon=features.horizon)
    if config.horizon != features.horizon:
        raise UsageError(f"backtest horizon ({config.horizon}) must equal the model horizon ({features.horizon})")
    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    frame = store.load(key)
    kind, market = manifest.get("kind", "price"), manifest.get("market", "crypto")
    prepared = prepare(frame, kind=kind, features=features)  # once; folds slice it
    need = bars_needed(features, val_fraction=train.val_fraction)
    if config.window == "rolling" and config.train_size is not None and config.train_size < need:
        raise UsageError(f"--train-size ({config.train_size}) must be at least {need} bars for this look-back")
    origins = choose_origins(frame.index, first_allowed=need - 1, horizon=features.horizon, start=start, end=end)
    if on_plan is not None:
        on_plan(backtest.plan(len(prepared), origins=origins, config=config))
    mode = conformal.mode_for(kind)

    def fit_fold(lo: int, hi: int):
        return recipe.fit(prepared, start=lo, end=hi)

    def predict(fitted, at: np.ndarray) -> np.ndarray:
        return fitted.predict_close(prepared, at)

    def calibrate(fitted) -> conformal.Conformal:
        # The fold's own validation residuals: they precede the refit origin, like predict's.
        return conformal.fit(checkpoint.residuals(fitted, kind=kind), levels=config.levels, mode=mode)

    t0 = time.perf_counter()
    result = backtest.walk_forward(
        prepared.close, origins=origins, config=config, fit=fit_fold, predict=predict,
        calibrate=calibrate if config.intervals == "model" else None, kind=kind,
        bars_per_year=result_bpy(key, market), on_progress=on_progress,
    )
    from lstmcast.evaluate.report import score_backtest

    scoring = None
    if config.intervals in ("adaptive", "split"):  # both are scored; the config picks the one shown
        scoring = score_backtest(result, prepared.close, intervals=config.intervals,
                                 bars_per_year=result_bpy(key, market))
    setup = {
        "family": family, "intervals": config.intervals,
        "features": features.to_dict(), "model": model.to_dict(), "train": train.to_dict(),
        "seconds": round(time.perf_counter() - t0, 3),
        "run_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return BacktestReport(key=key, index=frame.index, result=result, setup=setup, scoring=scoring)


def result_bpy(key: SeriesKey, market: str) -> float:
    return calendar.bars_per_year(calendar.parse_interval(key.interval), market)


def default_setup_options(store: Store, spec: str, *, interval: str, run_id: str | None = None) -> dict[str, Any]:
    """The training options of ``run_id`` (or of the series' current model, if any) as a flat mapping.

    ``lstmcast backtest`` starts from these so it evaluates the setup the user actually runs; an
    explicit ``run_id`` that does not exist is an error, a missing current model is not.
    """
    from lstmcast import registry as checkpoint
    from lstmcast.errors import DataNotFoundError
    from lstmcast.train import OPTIONS

    if run_id is not None:
        info = checkpoint.find_run(store.root, run_id)  # run_id may be a unique prefix
        meta = checkpoint.load_run(store.root, info.key, info.run_id).meta
    else:
        try:
            meta = checkpoint.load_run(store.root, store.resolve(spec, interval)).meta
        except DataNotFoundError:
            return {}
    merged = {**meta.get("features", {}), **meta.get("model", {}), **meta.get("train", {}),
              "family": meta.get("family", "lstm")}
    return {k: v for k, v in merged.items() if k in OPTIONS and k != "interval" and v is not None}
