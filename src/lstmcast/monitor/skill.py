"""Decay of live skill against the backtest band, and interval coverage against nominal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.jsonable import to_jsonable
from lstmcast.monitor.base import Check


# -- decay ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecayBand:
    """The spread of rolling-``window`` MAE ratios (model / naive) the walk-forward backtest showed."""

    window: int
    quantile: float
    low: float  # the (1 - quantile) quantile
    median: float
    high: float  # the quantile: the decay threshold
    ratio: float  # over all backtest origins
    n_windows: int
    n_origins: int

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecayBand:
        f = {k: d[k] for k in ("window", "quantile", "low", "median", "high", "ratio", "n_windows", "n_origins")}
        return cls(**{k: (float("nan") if v is None else v) for k, v in f.items()})


def _origin_loss(actual: np.ndarray, pred: np.ndarray) -> np.ndarray:
    a, p = np.asarray(actual, dtype="float64"), np.asarray(pred, dtype="float64")
    if a.ndim == 1:
        a = a[:, None]
    if p.ndim == 1:
        p = p[:, None]
    return np.abs(a - p).mean(axis=1)


def _rolling_sums(x: np.ndarray, window: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    return c[window:] - c[:-window]


def decay_band(
    actual: np.ndarray, forecast: np.ndarray, naive: np.ndarray, *, window: int = 20, quantile: float = 0.95
) -> DecayBand:
    """The band from backtest arrays ``[n_origins]`` or ``[n_origins, horizon]`` in origin order
    (``BacktestResult.actual``, ``.forecast``, ``.baselines["naive"]``; or a model's validation part)."""
    lm, ln = _origin_loss(actual, forecast), _origin_loss(actual, naive)
    n = len(lm)
    if n < window:
        raise ValueError(f"a decay band over {window} forecasts needs at least {window} backtest origins, got {n}")
    sm, sn = _rolling_sums(lm, window), _rolling_sums(ln, window)
    ok = sn > 0
    ratios = sm[ok] / sn[ok]
    if ratios.size == 0:
        raise ValueError("the naive forecast has zero error on every backtest window; no band")
    total = float(lm.sum() / ln.sum()) if ln.sum() > 0 else float("nan")
    return DecayBand(
        window=window,
        quantile=quantile,
        low=float(np.quantile(ratios, 1 - quantile)),
        median=float(np.median(ratios)),
        high=float(np.quantile(ratios, quantile)),
        ratio=total,
        n_windows=int(ratios.size),
        n_origins=n,
    )


def scored_forecasts(history: pd.DataFrame, *, run_id: str | None = None) -> pd.DataFrame:
    """One row per fully scored forecast (origin), oldest first: ``origin``, ``run_id``, ``steps``,
    ``model_loss`` and ``naive_loss`` (mean absolute error over its steps). Where several runs
    forecast from the same origin, the one made last counts. ``run_id`` keeps one model's only."""
    cols = ["origin", "run_id", "steps", "model_loss", "naive_loss"]
    h = history if run_id is None else history[history["run_id"] == run_id]
    if h.empty:
        return pd.DataFrame({c: [] for c in cols})
    g = h.assign(
        _m=(h["actual"] - h["predicted"]).abs(), _n=(h["actual"] - h["naive"]).abs(), _done=h["actual"].notna()
    ).groupby(["origin", "run_id"], sort=False)
    per = g.agg(
        steps=("step", "size"), done=("_done", "all"), model_loss=("_m", "mean"), naive_loss=("_n", "mean"),
        made_at=("made_at", "max"),
    ).reset_index()
    per = per[per["done"]].sort_values(["origin", "made_at"], kind="stable")
    per = per.drop_duplicates("origin", keep="last")
    return per[cols].reset_index(drop=True)


def _one_sided_dm(model_loss: np.ndarray, naive_loss: np.ndarray) -> tuple[float, float]:
    """(DM statistic, one-sided p for "the model's loss is higher than naive's")."""
    from scipy import stats

    from lstmcast.evaluate.metrics import diebold_mariano

    stat, _ = diebold_mariano(model_loss, naive_loss, horizon=1, power=1)
    if math.isnan(stat):
        return stat, float("nan")
    if math.isinf(stat):  # a constant, non-zero differential
        return stat, 0.0 if stat > 0 else 1.0
    return stat, float(stats.t.sf(stat, df=len(model_loss) - 1))


def check_decay(
    history: pd.DataFrame,
    *,
    band: DecayBand | Mapping[str, Any] | None,
    window: int = 20,
    alpha: float = 0.05,
    run_id: str | None = None,
) -> Check:
    """Decay of live skill: the live MAE ratio of the last ``window`` scored forecasts against the
    backtest ``band`` (its window wins when given), or a one-sided DM test without one."""
    if isinstance(band, Mapping):
        band = DecayBand.from_dict(band)
    n_need = band.window if band is not None else window
    scored = scored_forecasts(history, run_id=run_id)
    values: dict[str, Any] = {"n": int(len(scored)), "window": n_need}
    if band is not None:
        values.update(band_low=band.low, band_high=band.high, band_quantile=band.quantile)
    if len(scored) < n_need:
        return Check("decay", "decay", "skip", f"{len(scored)} scored forecast(s); the decay check needs {n_need}",
                     values)
    last = scored.tail(n_need)
    lm, ln = last["model_loss"].to_numpy("float64"), last["naive_loss"].to_numpy("float64")
    ratio = float(lm.sum() / ln.sum()) if ln.sum() > 0 else float("nan")
    stat, p = _one_sided_dm(lm, ln)
    values.update(ratio=ratio, dm_stat=stat, dm_p_worse=p, first=last["origin"].iloc[0], last=last["origin"].iloc[-1])
    what = f"live MAE ratio vs naive {ratio:.3f} over the last {n_need} forecasts"
    if band is not None:
        if not math.isfinite(ratio):
            return Check("decay", "decay", "skip", f"{what}: undefined (naive error is 0)", values)
        pct = f"{band.quantile * 100:g}th percentile"
        if ratio > band.high:
            return Check("decay", "decay", "flag",
                         f"{what} is above the backtest's {pct} {band.high:.3f} (band {band.low:.3f}-{band.high:.3f})",
                         values)
        return Check("decay", "decay", "ok", f"{what}, within the backtest band {band.low:.3f}-{band.high:.3f}",
                     values)
    if math.isfinite(p) and p < alpha:
        return Check("decay", "decay", "flag", f"{what}: worse than naive (one-sided DM p = {p:.3g} < {alpha:g})",
                     values)
    return Check("decay", "decay", "ok", f"{what}; no backtest band, and not worse than naive by DM (p = {p:.2g})",
                 values)


# -- coverage ---------------------------------------------------------------------------------------
def check_coverage(history: pd.DataFrame, *, window: int = 20, alpha: float = 0.05) -> Check:
    """Interval coverage of the last ``window`` scored forecasts at the newest level, against nominal."""
    from scipy import stats

    scored = scored_forecasts(history)
    bounded = history[history["actual"].notna() & history["lower"].notna() & history["upper"].notna()]
    values: dict[str, Any] = {"window": window}
    if bounded.empty:
        return Check("coverage", "decay", "skip", "no scored forecast has an interval", {**values, "n": 0})
    level = float(bounded.sort_values(["origin", "made_at"], kind="stable")["level"].iloc[-1])
    keep = scored.tail(window)[["origin", "run_id"]]
    rows = bounded[bounded["level"] == level].merge(keep, on=["origin", "run_id"])
    n_fc = int(rows["origin"].nunique())
    values.update(nominal=level, forecasts=n_fc)
    if n_fc < window:
        return Check("coverage", "decay", "skip",
                     f"{n_fc} scored forecast(s) with {level:g} intervals; the coverage check needs {window}",
                     {**values, "n": int(len(rows))})
    inside = (rows["actual"] >= rows["lower"]) & (rows["actual"] <= rows["upper"])
    k, n = int(inside.sum()), int(len(rows))
    p = float(stats.binomtest(k, n, level, alternative="less").pvalue)
    values.update(n=n, inside=k, observed=k / n, p_low=p)
    what = f"{k}/{n} actuals inside the {level:.0%} interval ({k / n:.0%}) over the last {window} forecasts"
    if p < alpha:
        return Check("coverage", "decay", "flag", f"{what}: below nominal (binomial p = {p:.3g} < {alpha:g})", values)
    return Check("coverage", "decay", "ok", f"{what}: consistent with nominal (binomial p = {p:.2g})", values)
