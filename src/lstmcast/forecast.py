"""The two forecasting paths over a stored series: ``predict_series`` (from a saved model) and
``backtest_series`` (walk-forward refits of the LSTM, scored against the baselines).

Both build features once (``features.prepare``, causal: row t uses bars <= t) and hand the model
only rows up to each origin; scalers are fitted inside ``train.fit`` on training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import DataError, UsageError
from lstmcast.evaluate.conformal import DEFAULT_LEVELS

MODEL_LAG_WARN_BARS = 5  # warn when the store has more than this many bars the model never saw


# -- predict -----------------------------------------------------------------------------------


@dataclass
class PredictStep:
    step: int
    time: pd.Timestamp
    predicted: float
    change_pct: float
    naive: float
    intervals: dict[float, tuple[float, float]]  # level -> (lo, hi)


@dataclass
class PredictReport:
    key: SeriesKey
    run_id: str
    model_key: SeriesKey
    model_data_last: str | None
    data_last: pd.Timestamp
    last_close: float
    kind: str
    market: str
    levels: tuple[float, ...]
    steps: list[PredictStep]
    calibration_n: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.key.spec,
            "interval": self.key.interval,
            "kind": self.kind,
            "market": self.market,
            "model": {"run_id": self.run_id, "series": self.model_key.spec, "interval": self.model_key.interval,
                      "trained_on_data_up_to": self.model_data_last},
            "data_last_bar": self.data_last.isoformat(),
            "last_close": self.last_close,
            "calibration_residuals": self.calibration_n,
            "forecast": [
                {
                    "step": s.step,
                    "time": s.time.isoformat(),
                    "predicted_close": s.predicted,
                    "change_pct": s.change_pct,
                    "naive_close": s.naive,
                    "intervals": {f"{lv:g}": {"lo": lo, "hi": hi} for lv, (lo, hi) in s.intervals.items()},
                }
                for s in self.steps
            ],
            "warnings": self.warnings,
        }


def staleness(
    last: pd.Timestamp, *, interval: calendar.Interval, market: str, now: pd.Timestamp
) -> int:
    """How many complete bars should exist after ``last`` by ``now`` (0: the data is fresh)."""
    if now <= last:
        return 0
    expected = calendar.expected_bars(last, now, interval, market)
    complete = expected[(expected > last) & (expected + interval.delta <= now)]
    return len(complete)


def predict_series(
    store: Store,
    spec: str,
    *,
    interval: str = "1d",
    run_id: str | None = None,
    horizon: int | None = None,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    now: pd.Timestamp | None = None,
) -> PredictReport:
    """Forecast the bars after the last stored bar with the current model (or ``run_id``)."""
    from lstmcast import registry as checkpoint
    from lstmcast.evaluate import conformal
    from lstmcast.features import prepare

    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    frame = store.load(key)
    kind, market = manifest.get("kind", "price"), manifest.get("market", "crypto")
    warnings: list[str] = []
    if run_id is None:
        loaded = checkpoint.load_run(store.root, key)
    else:
        info = checkpoint.find_run(store.root, run_id)  # run_id may be a unique prefix
        run_id = info.run_id
        loaded = checkpoint.load_run(store.root, info.key, run_id)
        if (info.key.source, info.key.symbol) != (key.source, key.symbol):
            warnings.append(f"model {run_id} was trained on {info.key.spec}, not {key.spec}")
        if info.key.interval != key.interval:
            warnings.append(f"model {run_id} was trained on {info.key.interval} bars, the data is {key.interval}")
    meta = loaded.meta
    if meta.get("kind", "price") != kind:
        raise DataError(f"model {loaded.run_id} was trained on a {meta.get('kind')} series; {key} is {kind}")
    feats = loaded.features
    h = feats.horizon if horizon is None else horizon
    if h < 1:
        raise UsageError(f"--horizon must be at least 1 (got {h})")
    if h > feats.horizon:
        raise UsageError(
            f"model {loaded.run_id} forecasts {feats.horizon} step(s); retrain with --horizon {h} for more"
        )
    if len(frame) < feats.lookback:
        raise DataError(f"{key} has {len(frame)} bars; the model needs a look-back of {feats.lookback}")

    iv = calendar.parse_interval(key.interval)
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    behind = staleness(frame.index[-1], interval=iv, market=market, now=now)
    if behind:
        how = (
            f"re-import newer data with `lstmcast import FILE --symbol {key.symbol}`"
            if key.source == "import"
            else f"run `lstmcast fetch {key.spec} --interval {iv.name}`"
        )
        warnings.append(
            f"data is stale: the last bar is {frame.index[-1].isoformat()}, {behind} complete {iv.name} bar(s) "
            f"behind now; {how}"
        )
    model_last = meta.get("data", {}).get("last")
    if model_last:
        newer = int((frame.index > pd.Timestamp(model_last)).sum())
        if newer > MODEL_LAG_WARN_BARS:
            warnings.append(
                f"model {loaded.run_id} was trained on data up to {model_last}; the store has {newer} newer "
                f"bars; retrain with `lstmcast train {key.spec}`"
            )

    prepared = prepare(frame, kind=kind, features=feats)
    origin = len(prepared) - 1
    pred = loaded.predict_close(prepared, np.array([origin]))[:, :h]
    last_close = float(prepared.close[origin])
    mode = conformal.mode_for(kind)
    res = loaded.residuals[:, :h]
    bands: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    if len(res):
        bands = conformal.fit(res, levels=tuple(levels), mode=mode).interval(pred)
    times = calendar.next_bars(frame.index[-1], h, iv, market)
    steps = []
    for j in range(h):
        p = float(pred[0, j])
        steps.append(
            PredictStep(
                step=j + 1, time=times[j], predicted=p,
                change_pct=100.0 * (p / last_close - 1.0) if last_close else float("nan"),
                naive=last_close,
                intervals={lv: (float(lo[0, j]), float(hi[0, j])) for lv, (lo, hi) in bands.items()},
            )
        )
    return PredictReport(
        key=key, run_id=loaded.run_id, model_key=loaded.key, model_data_last=model_last,
        data_last=frame.index[-1], last_close=last_close, kind=kind, market=market,
        levels=tuple(levels), steps=steps, calibration_n=len(res), warnings=warnings,
    )


# -- backtest ---------------------------------------------------------------------------------

# The walk-forward lives in pipelines.backtest; these names stay importable from here.
from lstmcast.pipelines.backtest import BacktestReport, backtest_series, choose_origins  # noqa: E402

__all__ = ["BacktestReport", "PredictReport", "PredictStep", "backtest_series", "choose_origins",
           "default_setup_options", "predict_series", "staleness"]


def default_setup_options(store: Store, spec: str, *, interval: str, run_id: str | None = None) -> dict[str, Any]:
    """The training options of ``run_id`` (or of the series' current model, if any) as a flat mapping.

    ``lstmcast backtest`` starts from these so it evaluates the setup the user actually runs; an
    explicit ``run_id`` that does not exist is an error, a missing current model is not.
    """
    from lstmcast import registry as checkpoint
    from lstmcast.errors import DataNotFoundError
    from lstmcast.pipelines.train import OPTIONS

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
