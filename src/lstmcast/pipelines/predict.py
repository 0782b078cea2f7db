"""The predict pipeline: forecasts after the last stored bar from saved models, for one series or many.

No torch on this path: the recurrent families load as the numpy artifact unless an accelerator
``device`` is asked for. Any horizon works: steps up to the model's trained horizon are direct,
later ones recursive (``forecasters.recursive``), each with split-conformal intervals from
held-out residuals of forecasts made the same way. Returns data; never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import calendar
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import EXIT_PARTIAL, DataError, LstmcastError, UsageError
from lstmcast.evaluate.conformal import DEFAULT_LEVELS

MODEL_LAG_WARN_BARS = 5  # warn when the store has more than this many bars the model never saw
MAX_HORIZON = 1000  # a recursion of thousands of steps is a typo, not a forecast


@dataclass
class PredictStep:
    step: int
    time: pd.Timestamp
    predicted: float
    change_pct: float
    naive: float
    intervals: dict[float, tuple[float, float]]  # level -> (lo, hi)
    method: str = "direct"  # "direct" (within the trained horizon) | "recursive"
    calibration_n: int = 0  # held-out residuals behind this step's intervals


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
    family: str = "lstm"
    trained_horizon: int = 1
    # signed calibration residuals [n, steps] behind the intervals (``recursive.step_residuals``),
    # when asked for (``calibration=True``: `lstmcast run` reads them at its adaptive tail levels)
    calibration: np.ndarray | None = field(default=None, repr=False)
    mode: str = "log"  # residual space of the intervals (conformal.mode_for(kind))

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.key.spec,
            "interval": self.key.interval,
            "ok": True,
            "kind": self.kind,
            "market": self.market,
            "model": {"run_id": self.run_id, "series": self.model_key.spec, "interval": self.model_key.interval,
                      "family": self.family, "trained_horizon": self.trained_horizon,
                      "trained_on_data_up_to": self.model_data_last},
            "data_last_bar": self.data_last.isoformat(),
            "last_close": self.last_close,
            "calibration_residuals": self.calibration_n,
            "forecast": [
                {
                    "step": s.step,
                    "time": s.time.isoformat(),
                    "method": s.method,
                    "predicted_close": s.predicted,
                    "change_pct": s.change_pct,
                    "naive_close": s.naive,
                    "intervals": {f"{lv:g}": {"lo": lo, "hi": hi} for lv, (lo, hi) in s.intervals.items()},
                    "calibration_residuals": s.calibration_n,
                }
                for s in self.steps
            ],
            "warnings": self.warnings,
        }


@dataclass
class PredictFailure:
    """One requested series that could not be forecast, and why (the error's one line and exit code)."""

    spec: str
    interval: str
    error: str
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.spec, "interval": self.interval, "ok": False,
                "error": self.error, "exit_code": self.exit_code}


@dataclass
class PredictBatch:
    """Forecasts of many series in request order; a failure of one never hides the others."""

    results: list[PredictReport | PredictFailure]

    @property
    def reports(self) -> list[PredictReport]:
        return [r for r in self.results if isinstance(r, PredictReport)]

    @property
    def failures(self) -> list[PredictFailure]:
        return [r for r in self.results if isinstance(r, PredictFailure)]

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failures else 0

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]


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
    device: str = "cpu",
    calibration: bool = False,
) -> PredictReport:
    """Forecast the bars after the last stored bar with the current model (or ``run_id``).

    ``horizon`` beyond the model's trained horizon forecasts the extra steps recursively.
    ``device="cpu"`` predicts with numpy (no torch import); ``cuda``/``mps`` with torch there.
    ``calibration=True`` also returns the signed residuals the intervals were calibrated on.
    """
    from lstmcast import registry
    from lstmcast.evaluate import conformal
    from lstmcast.features import prepare
    from lstmcast.forecasters.recursive import methods, predict_ahead, step_intervals, step_residuals

    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    frame = store.load(key)
    kind, market = manifest.get("kind", "price"), manifest.get("market", "crypto")
    warnings: list[str] = []
    if run_id is None:
        loaded = registry.load_run(store.root, key, device=device)
    else:
        info = registry.find_run(store.root, run_id)  # run_id may be a unique prefix
        run_id = info.run_id
        loaded = registry.load_run(store.root, info.key, run_id, device=device)
        if (info.key.source, info.key.symbol) != (key.source, key.symbol):
            warnings.append(f"model {run_id} was trained on {info.key.spec}, not {key.spec}")
        if info.key.interval != key.interval:
            warnings.append(f"model {run_id} was trained on {info.key.interval} bars, the data is {key.interval}")
    meta = loaded.meta
    if meta.get("kind", "price") != kind:
        raise DataError(f"model {loaded.run_id} was trained on a {meta.get('kind')} series; {key} is {kind}")
    feats = loaded.features
    trained = feats.horizon
    h = trained if horizon is None else horizon
    if h < 1:
        raise UsageError(f"--horizon must be at least 1 (got {h})")
    if h > MAX_HORIZON:
        raise UsageError(f"--horizon must be at most {MAX_HORIZON} (got {h})")
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
    pred = predict_ahead(loaded.fitted, prepared, np.array([origin]), horizon=h)
    last_close = float(prepared.close[origin])
    bands, counts = step_intervals(loaded.fitted, prepared, pred, direct_residuals=loaded.residuals,
                                   levels=tuple(levels), mode=conformal.mode_for(kind), last_row=origin)
    cal = (step_residuals(loaded.fitted, prepared, direct_residuals=loaded.residuals, horizon=h,
                          mode=conformal.mode_for(kind), last_row=origin) if calibration else None)
    times = calendar.next_bars(frame.index[-1], h, iv, market)
    kinds = methods(trained, h)
    steps = []
    for j in range(h):
        p = float(pred[0, j])
        steps.append(
            PredictStep(
                step=j + 1, time=times[j], predicted=p,
                change_pct=100.0 * (p / last_close - 1.0) if last_close else float("nan"),
                naive=last_close,
                intervals={lv: (float(lo[0, j]), float(hi[0, j])) for lv, (lo, hi) in bands.items()},
                method=kinds[j], calibration_n=counts[j] if j < len(counts) else 0,
            )
        )
    return PredictReport(
        key=key, run_id=loaded.run_id, model_key=loaded.key, model_data_last=model_last,
        data_last=frame.index[-1], last_close=last_close, kind=kind, market=market,
        levels=tuple(levels), steps=steps, calibration_n=len(loaded.residuals), warnings=warnings,
        family=loaded.family, trained_horizon=trained, calibration=cal, mode=conformal.mode_for(kind),
    )


def series_with_models(store: Store, *, interval: str | None = None) -> list[SeriesKey]:
    """Every stored series with a current model (of ``interval``, or of any interval), sorted."""
    from lstmcast import registry

    keys = registry.current_series(store.root)
    if interval is not None:
        name = calendar.parse_interval(interval).name
        keys = [k for k in keys if k.interval == name]
    return keys


def predict_many(
    store: Store,
    specs: list[str] | list[SeriesKey],
    *,
    interval: str = "1d",
    run_id: str | None = None,
    horizon: int | None = None,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    now: pd.Timestamp | None = None,
    device: str = "cpu",
) -> PredictBatch:
    """``predict_series`` for each series, in order; a domain error of one becomes its failure entry.

    ``specs`` are ``SYMBOL``/``SOURCE:SYMBOL`` strings (of ``interval``) or exact ``SeriesKey``s.
    """
    if run_id is not None and len(specs) > 1:
        raise UsageError("--model names one run; use it with one symbol")
    if not specs:
        raise UsageError("no series to forecast: name a SYMBOL, or use --all")
    seen: set[tuple[str, str]] = set()
    results: list[PredictReport | PredictFailure] = []
    for item in specs:
        spec, iv = (item.spec, item.interval) if isinstance(item, SeriesKey) else (str(item), interval)
        if (spec, iv) in seen:
            continue
        seen.add((spec, iv))
        try:
            results.append(predict_series(store, spec, interval=iv, run_id=run_id, horizon=horizon,
                                          levels=levels, now=now, device=device))
        except UsageError:
            raise  # a bad option is bad for every series: refuse the whole call
        except LstmcastError as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            results.append(PredictFailure(spec=spec, interval=iv, error=msg, exit_code=e.exit_code))
    return PredictBatch(results=results)
