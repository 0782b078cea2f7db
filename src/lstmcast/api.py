"""The Python API behind ``import lstmcast``: fit, predict, backtest and load on pandas frames.

``lstmcast/__init__.py`` imports this module only when one of its names is first used, so that
``import lstmcast`` stays light (no pandas, no torch). Nothing here prints or writes to disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.errors import DataError, UsageError

# yfinance's column names -> the store's
_COLUMNS = {"open": "open", "high": "high", "low": "low", "close": "close", "adj close": "adj_close",
            "adj_close": "adj_close", "volume": "volume"}
_REQUIRED = ("open", "high", "low", "close", "volume")
DEFAULT_LEVELS = (0.8, 0.95)


def as_bars(frame: pd.DataFrame, *, interval: str = "1d") -> pd.DataFrame:
    """A yfinance-style frame (``Open/High/Low/Close/Adj Close/Volume``, any case) as the store's
    canonical bars: lower-case columns, float64, a UTC ``time`` index in time order.

    A naive index is read as UTC. A tz-aware index of daily (or longer) bars keeps each bar's local
    date (yfinance stamps NYSE days at 00:00 New York time; the store puts them at 00:00 UTC).
    One-ticker frames from ``yf.download`` (two column levels) are accepted; several tickers are refused.
    """
    from lstmcast.data import calendar, schema

    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"expected a pandas DataFrame of bars, got {type(frame).__name__}")
    df = frame
    if isinstance(df.columns, pd.MultiIndex):
        tickers = [lv for lv in range(df.columns.nlevels) if not any(str(c).lower() in _COLUMNS
                                                                       for c in df.columns.get_level_values(lv))]
        for lv in sorted(tickers, reverse=True):
            names = sorted({str(c) for c in df.columns.get_level_values(lv)})
            if len(names) > 1:
                raise UsageError(f"the frame holds several tickers ({', '.join(names)}); pass one, "
                                 f"e.g. df.xs({names[0]!r}, axis=1, level={lv})")
            df = df.droplevel(lv, axis=1)
    renamed: dict[Any, str] = {}
    for c in df.columns:
        name = _COLUMNS.get(str(c).strip().lower())
        if name is not None:
            if name in renamed.values():
                raise UsageError(f"the frame has two {name} columns (e.g. {c!r}); keep one")
            renamed[c] = name
    missing = [c for c in _REQUIRED if c not in renamed.values()]
    if missing:
        raise UsageError(f"the frame lacks column(s) {', '.join(missing)} (have: {', '.join(map(str, df.columns))})")
    df = df[list(renamed)].rename(columns=renamed)
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        try:
            idx = pd.DatetimeIndex(idx)
        except (TypeError, ValueError) as e:
            raise UsageError(f"the frame's index must be bar times (a DatetimeIndex): {e}") from e
    if idx.tz is not None and calendar.parse_interval(interval).daily_or_longer:
        idx = idx.tz_localize(None).normalize()  # the local trading date
    df = df.set_axis(idx, axis=0)
    out, _ = schema.clean(df)
    return schema.validate(out)


def _market(index: pd.DatetimeIndex, market: str | None) -> str:
    """The market whose calendar spaces future bars: given, or "crypto" for a series with weekend bars."""
    from lstmcast.data import calendar

    if market is not None:
        return calendar.check_market(market)
    if len(index) and (index.day_of_week >= 5).any():
        return "crypto"
    raise UsageError("the frame has no weekend bars, so its market is ambiguous; "
                     "pass market= (e.g. market='equity:XNYS' for US stocks, 'crypto' for 24/7 series)")


@dataclass
class Model:
    """A fitted (or loaded) forecaster together with what it needs to forecast a frame.

    ``metrics`` are the validation metrics of the fit (model, naive and the Diebold-Mariano test)
    or, for a loaded run, those it was saved with.
    """

    fitted: Any
    kind: str
    interval: str
    market: str | None
    frame: pd.DataFrame | None = None  # the bars it was fit on (or the stored series of a loaded run)
    metrics: dict[str, Any] = field(default_factory=dict)
    residuals: np.ndarray | None = None  # [n, horizon] held-out calibration residuals
    run_id: str | None = None

    @property
    def family(self) -> str:
        return str(getattr(self.fitted, "family", "lstm"))

    @property
    def horizon(self) -> int:
        return int(self.fitted.features.horizon)

    def predict(self, frame: pd.DataFrame | None = None, *, horizon: int | None = None,
                levels: Sequence[float] = DEFAULT_LEVELS) -> pd.DataFrame:
        """Forecast the bars after the last bar of ``frame`` (default: the frame it was fit on).

        Returns a DataFrame indexed by the future bar times (UTC) with ``forecast`` (the point
        forecast of the close), ``naive`` (the last close) and ``lower_80``/``upper_80``... per level.
        """
        from lstmcast.data import calendar
        from lstmcast.evaluate import conformal
        from lstmcast.features import prepare

        bars = self.frame if frame is None else as_bars(frame, interval=self.interval)
        if bars is None:
            raise UsageError("no frame to forecast from: pass predict(frame)")
        h = self.horizon if horizon is None else int(horizon)
        if not 1 <= h <= self.horizon:
            raise UsageError(f"horizon must be in 1..{self.horizon} for this model (got {h})")
        feats = self.fitted.features
        if len(bars) < feats.lookback:
            raise DataError(f"the frame has {len(bars)} bars; the model needs a look-back of {feats.lookback}")
        market = _market(bars.index, self.market)
        prepared = prepare(bars, kind=self.kind, features=feats)
        origin = len(prepared) - 1
        pred = self.fitted.predict_close(prepared, np.array([origin]))[:, :h]
        out = pd.DataFrame({"forecast": pred[0], "naive": float(prepared.close[origin])},
                           index=calendar.next_bars(bars.index[-1], h, calendar.parse_interval(self.interval), market))
        res = self.residuals[:, :h] if self.residuals is not None else np.empty((0, h))
        if len(res) and levels:
            bands = conformal.fit(res, levels=tuple(levels), mode=conformal.mode_for(self.kind)).interval(pred)
            for level, (lo, hi) in bands.items():
                pct = f"{100 * level:g}"
                out[f"lower_{pct}"], out[f"upper_{pct}"] = lo[0], hi[0]
        out.index.name = "time"
        return out


def fit(frame: pd.DataFrame, *, family: str = "lstm", interval: str = "1d", market: str | None = None,
        kind: str = "price", **settings: Any) -> Model:
    """Fit a forecaster on a frame of bars; ``settings`` are ``lstmcast train``'s options
    (``lookback=30, horizon=5, epochs=20, seed=1, ...``). The newest bars are held out for
    validation and calibrate the intervals, as in ``lstmcast train``."""
    from lstmcast import registry
    from lstmcast.features import FeatureConfig, prepare
    from lstmcast.pipelines.train import fit_artifact, validation_metrics
    from lstmcast.settings import build

    s = build({**settings, "family": family}, where="lstmcast.fit")
    bars = as_bars(frame, interval=interval)
    prepared = prepare(bars, kind=kind, features=FeatureConfig.from_settings(s))
    fitted = fit_artifact(prepared, s)
    return Model(fitted=fitted, kind=kind, interval=interval, market=market, frame=bars,
                 metrics=validation_metrics(fitted, prepared), residuals=registry.residuals(fitted, kind=kind))


def backtest(frame: pd.DataFrame, *, family: str = "lstm", interval: str = "1d", market: str | None = None,
             kind: str = "price", refit_every: int = 20, start: str | None = None, end: str | None = None,
             window: str = "expanding", levels: Sequence[float] = DEFAULT_LEVELS, **settings: Any) -> pd.DataFrame:
    """Walk-forward backtest on a frame: refit every ``refit_every`` origins, each fit on rows before
    its origin only. Returns one row per forecaster (the model, naive and the other baselines) with
    MAE, RMSE, MAPE, MASE and hit rate; ``.attrs`` holds ``mae_ratio`` (model / naive), the
    Diebold-Mariano test vs naive (``dm``), ``beats_naive``, ``verdict`` and ``coverage``."""
    from lstmcast.data.store import SeriesKey
    from lstmcast.errors import ModelError
    from lstmcast.evaluate import backtest as bt
    from lstmcast.pipelines.backtest import plan_frame, run_plans
    from lstmcast.settings import build

    s = build({**settings, "family": family}, where="lstmcast.backtest")
    bars = as_bars(frame, interval=interval)
    config = bt.BacktestConfig(horizon=s.horizon, refit_every=refit_every, window=window, levels=tuple(levels))
    # the same walk-forward as `lstmcast backtest`: one task per refit, seeded from the task
    plan = plan_frame(bars, key=SeriesKey("frame", "frame", interval), kind=kind, market=_market(bars.index, market),
                      settings=s, config=config, start=start, end=end)
    multi = run_plans([plan], [family], config=config, score=False)
    if multi.failures:
        f = multi.failures[0]
        if f.exc is not None:
            raise f.exc
        raise ModelError(f.error)
    result = multi.series[0].first
    table = pd.DataFrame({name: m.to_dict() for name, m in result.metrics.items()}).T
    table.index.name = "forecaster"
    d = result.to_dict(series=False)
    table.attrs.update({k: d[k] for k in ("mae_ratio", "beats_naive", "verdict", "dm", "coverage", "n_origins")})
    return table


def load(data_dir: str | Path, symbol: str, *, interval: str = "1d", run_id: str | None = None) -> Model:
    """A saved run (the current one unless ``run_id``) of a stored series, e.g. ``load("data", "AAPL")``;
    its ``frame`` is the stored series, so ``load(...).predict()`` forecasts after the last stored bar."""
    from lstmcast import registry
    from lstmcast.data.store import Store

    store = Store(Path(data_dir))
    key = store.resolve(symbol, interval)
    loaded = registry.load_run(store.root, key, run_id)
    frame = store.load(key) if store.exists(key) else None
    manifest = store.manifest(key) if store.exists(key) else {}
    return Model(fitted=loaded.fitted, kind=str(loaded.meta.get("kind", "price")), interval=key.interval,
                 market=manifest.get("market") or loaded.meta.get("market"), frame=frame,
                 metrics=dict(loaded.meta.get("metrics") or {}), residuals=loaded.residuals, run_id=loaded.run_id)
