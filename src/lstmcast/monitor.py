"""Live checks of one watchlist entry: decay, interval coverage, input drift, staleness.

numpy / scipy / pandas only; no torch, no I/O. Every check takes plain inputs (the forecast history
frame as ``lstmcast.forecasts`` stores it, feature arrays, ISO times, the model's meta dict) and
returns a ``Check``: ``status`` ok / flag / skip (not enough data), the numbers, one line of reason,
and the notification event it raises when flagged. ``entry_status`` runs them all for one entry and
gives the row of ``lstmcast status``.

The rules (defaults in ``MonitorSettings``):

* **decay**: per forecast (one origin; its loss is the mean absolute error over its steps), the live
  MAE ratio vs naive over the last ``window`` fully scored forecasts. With a backtest band (the
  rolling-``window`` ratios of the walk-forward, ``decay_band``), flag when the live ratio is above
  the band's ``band_quantile`` (95th percentile): under an unchanged model that happens in about 5%
  of windows. Without a band, flag when a one-sided Diebold-Mariano test on the live loss
  differential (model minus naive) says the model is worse than naive at level ``alpha``.
* **coverage**: of the last ``window`` scored forecasts' rows with interval bounds at the newest
  level, the share inside the interval; flag when a one-sided exact binomial test rejects "coverage
  >= nominal" at ``alpha`` (too-wide intervals are not flagged).
* **drift**: per feature, the newest ``drift_rows`` feature rows against the training rows. A feature
  drifts when its population stability index (deciles of the training rows) is at least
  ``psi_threshold`` (0.25: the usual "major shift") *and* a two-sample Kolmogorov-Smirnov test
  rejects equality at ``ks_alpha`` divided by the number of features (Bonferroni). Both are needed:
  PSI alone is biased upward on a few dozen rows, KS alone flags negligible shifts on long series.
  Feature rows are autocorrelated, so the KS p-value is optimistic; PSI carries the size.
* **staleness**: ``data_age`` flags when more than ``max_bars_behind`` complete bars are missing after
  the last stored bar (pass the calendar-aware count; otherwise it is estimated from wall-clock time);
  ``model_age`` when the current model is older than ``max_model_age``; ``run_age`` when the entry's
  last successful run is older than ``max_run_age`` (or there is none).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lstmcast.jsonable import to_jsonable

Status = Literal["ok", "flag", "skip"]


@dataclass(frozen=True)
class Check:
    """One check's outcome. ``event`` is the notification kind it raises when flagged."""

    name: str  # decay | coverage | drift | data_age | model_age | run_age
    event: str  # decay | drift | stale
    status: Status
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.status == "flag"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


# -- settings ---------------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w|wk)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800, "wk": 604800}


def parse_duration(value: Any) -> dt.timedelta:
    """``"90m"``, ``"36h"``, ``"30d"``, ``"2w"`` (or a timedelta, or seconds) -> timedelta."""
    if isinstance(value, dt.timedelta):
        td = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        td = dt.timedelta(seconds=value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration like 90m, 36h, 30d or 2w")
        td = dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    if td <= dt.timedelta(0):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return td


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


class MonitorSettings(BaseModel):
    """The live checks' windows and thresholds (a ``[monitor]`` table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: Annotated[int, Field(ge=5, le=10_000)] = 20  # scored forecasts per decay/coverage check
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # DM (no band) and coverage test level
    band_quantile: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    drift_rows: Annotated[int, Field(ge=10, le=100_000)] = 60  # newest feature rows vs the training rows
    psi_threshold: Annotated[float, Field(gt=0.0)] = 0.25
    ks_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    max_bars_behind: Annotated[int, Field(ge=0)] = 1
    max_model_age: Duration | None = None  # None: models never expire
    max_run_age: Duration | None = dt.timedelta(days=2)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    t = pd.Timestamp(value)
    if t is pd.NaT:
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _age_text(td: pd.Timedelta | dt.timedelta) -> str:
    s = pd.Timedelta(td).total_seconds()
    if s >= 2 * 86400:
        return f"{s / 86400:.1f} days"
    if s >= 2 * 3600:
        return f"{s / 3600:.1f} hours"
    return f"{s / 60:.0f} minutes"


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


# -- drift ------------------------------------------------------------------------------------------
PSI_EPS = 1e-4  # floor for an empty bin's share: keeps the log finite


def psi(reference: np.ndarray, recent: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference``, on the reference's quantile bins."""
    ref = np.asarray(reference, dtype="float64")
    new = np.asarray(recent, dtype="float64")
    ref, new = ref[np.isfinite(ref)], new[np.isfinite(new)]
    if ref.size == 0 or new.size == 0:
        return float("nan")
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # right-closed bins (a value equal to an edge goes left), the same for both samples
    a = np.bincount(np.searchsorted(inner, ref, side="left"), minlength=inner.size + 1) / ref.size
    b = np.bincount(np.searchsorted(inner, new, side="left"), minlength=inner.size + 1) / new.size
    a, b = np.maximum(a, PSI_EPS), np.maximum(b, PSI_EPS)
    return float(np.sum((b - a) * np.log(b / a)))


def check_drift(
    reference: np.ndarray | pd.DataFrame,
    recent: np.ndarray | pd.DataFrame,
    *,
    names: Sequence[str] | None = None,
    psi_threshold: float = 0.25,
    ks_alpha: float = 0.01,
    min_reference: int = 50,
    min_recent: int = 10,
) -> Check:
    """Input drift of ``recent`` feature rows ``[m, f]`` against the training rows ``reference`` ``[n, f]``
    (a model's ``raw[start:train_end]`` and the newest ``drift_rows`` of ``raw``)."""
    from scipy import stats

    if isinstance(reference, pd.DataFrame):
        names = list(reference.columns) if names is None else names
        reference = reference.to_numpy("float64")
    if isinstance(recent, pd.DataFrame):
        recent = recent.to_numpy("float64")
    ref, new = np.asarray(reference, dtype="float64"), np.asarray(recent, dtype="float64")
    ref = ref[:, None] if ref.ndim == 1 else ref
    new = new[:, None] if new.ndim == 1 else new
    if ref.shape[1] != new.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} feature(s), recent has {new.shape[1]}")
    names = list(names) if names is not None else [f"feature_{i}" for i in range(ref.shape[1])]
    if len(names) != ref.shape[1]:
        raise ValueError(f"{len(names)} name(s) for {ref.shape[1]} feature(s)")
    values: dict[str, Any] = {
        "n_reference": int(ref.shape[0]), "n_recent": int(new.shape[0]), "psi_threshold": psi_threshold,
        "ks_alpha": ks_alpha, "features": {}, "drifted": [],
    }
    if ref.shape[0] < min_reference or new.shape[0] < min_recent:
        return Check("drift", "drift", "skip",
                     f"{new.shape[0]} recent and {ref.shape[0]} training row(s); drift needs {min_recent} and "
                     f"{min_reference}", values)
    level = ks_alpha / len(names)
    for i, name in enumerate(names):
        r, c = ref[:, i][np.isfinite(ref[:, i])], new[:, i][np.isfinite(new[:, i])]
        p_index = psi(r, c)
        ks = stats.ks_2samp(r, c)
        drifted = bool(p_index >= psi_threshold and ks.pvalue < level)
        values["features"][name] = {"psi": p_index, "ks": float(ks.statistic), "p": float(ks.pvalue),
                                    "drifted": drifted}
        if drifted:
            values["drifted"].append(name)
    feats = values["features"]
    if values["drifted"]:
        parts = ", ".join(f"{n} (PSI {feats[n]['psi']:.2f}, KS p {feats[n]['p']:.1g})" for n in values["drifted"])
        return Check("drift", "drift", "flag",
                     f"the newest {new.shape[0]} rows differ from the training rows: {parts}", values)
    worst = max(names, key=lambda n: feats[n]["psi"] if math.isfinite(feats[n]["psi"]) else -1.0)
    return Check("drift", "drift", "ok",
                 f"no feature drifted (largest PSI {feats[worst]['psi']:.2f}: {worst}) over the newest "
                 f"{new.shape[0]} rows", values)


# -- staleness --------------------------------------------------------------------------------------
def interval_delta(interval: str | dt.timedelta | pd.Timedelta) -> pd.Timedelta:
    """``"1d"``, ``"4h"``, ``"15m"``, ``"1wk"`` -> Timedelta."""
    if isinstance(interval, dt.timedelta | pd.Timedelta):
        return pd.Timedelta(interval)
    m = re.match(r"^(\d+)(m|h|d|wk)$", interval)
    if not m:
        raise ValueError(f"unknown interval {interval!r}")
    n, unit = int(m.group(1)), m.group(2)
    return pd.Timedelta(minutes=n) if unit == "m" else pd.Timedelta(hours=n) if unit == "h" else (
        pd.Timedelta(days=n) if unit == "d" else pd.Timedelta(days=7 * n)
    )


def check_data_age(
    data_last: Any, *, now: Any, interval: str | dt.timedelta, bars_behind: int | None = None, max_bars_behind: int = 1
) -> Check:
    """The stored series' last bar against ``now``. ``bars_behind``: complete bars that should exist
    after it (``forecast.staleness``, which knows market calendars); without it, estimated as whole
    intervals elapsed since that bar closed (weekends and holidays then count as bars)."""
    last, now_ = _ts(data_last), _ts(now)
    assert now_ is not None
    if last is None:
        return Check("data_age", "stale", "skip", "no stored data", {"last": None})
    delta = interval_delta(interval)
    calendar = bars_behind is not None
    if bars_behind is None:
        bars_behind = max(0, int((now_ - last) // delta) - 1)
    age = now_ - last
    values = {"last": last, "age_hours": age.total_seconds() / 3600, "bars_behind": int(bars_behind),
              "max_bars_behind": max_bars_behind, "calendar": calendar}
    what = f"last bar {last.isoformat()}, {bars_behind} complete bar(s) behind"
    if bars_behind > max_bars_behind:
        return Check("data_age", "stale", "flag", f"data is stale: {what} (allowed {max_bars_behind})", values)
    return Check("data_age", "stale", "ok", f"data fresh: {what}", values)


def check_model_age(model_meta: Mapping[str, Any] | None, *, now: Any, max_age: dt.timedelta | None) -> Check:
    """The current model's age (``meta["created"]``) against ``max_model_age``; ``predict`` warns with
    ``reason`` when flagged, and ``--strict`` fails."""
    if not model_meta:
        return Check("model_age", "stale", "skip", "no current model", {})
    created, now_ = _ts(model_meta.get("created")), _ts(now)
    assert now_ is not None
    run_id = model_meta.get("run_id")
    if created is None:
        return Check("model_age", "stale", "skip", f"model {run_id} records no creation time", {"run_id": run_id})
    age = now_ - created
    values = {"run_id": run_id, "created": created, "age_days": age.total_seconds() / 86400,
              "max_age_days": None if max_age is None else max_age.total_seconds() / 86400}
    if max_age is not None and age > pd.Timedelta(max_age):
        return Check("model_age", "stale", "flag",
                     f"model {run_id} is {_age_text(age)} old, over max_model_age {_age_text(max_age)}; retrain it",
                     values)
    return Check("model_age", "stale", "ok", f"model {run_id} is {_age_text(age)} old", values)


def check_run_age(last_ok: Any, *, now: Any, max_age: dt.timedelta | None) -> Check:
    """Time since the entry's last successful run (its finish time) against ``max_run_age``."""
    done, now_ = _ts(last_ok), _ts(now)
    assert now_ is not None
    if done is None:
        status: Status = "flag" if max_age is not None else "skip"
        return Check("run_age", "stale", status, "no successful run of this entry on record", {"last_ok": None})
    age = now_ - done
    values = {"last_ok": done, "age_hours": age.total_seconds() / 3600,
              "max_age_hours": None if max_age is None else max_age.total_seconds() / 3600}
    if max_age is not None and age > pd.Timedelta(max_age):
        return Check("run_age", "stale", "flag",
                     f"last successful run {_age_text(age)} ago, over max_run_age {_age_text(max_age)}", values)
    return Check("run_age", "stale", "ok", f"last successful run {_age_text(age)} ago", values)


# -- the status row ---------------------------------------------------------------------------------
def entry_record(summary: Mapping[str, Any], entry: str) -> dict[str, Any] | None:
    """The plain per-entry run record ``entry_status`` takes, from a ``RunSummary.to_dict()``:
    ``{"run_id", "finished", "ok", "error"}`` (None when the run did not include ``entry``)."""
    for e in summary.get("entries") or []:
        if e.get("entry") == entry:
            ok = bool(e.get("ok", e.get("error") is None))
            return {"run_id": summary.get("run_id"), "finished": summary.get("finished"), "ok": ok,
                    "error": e.get("error")}
    return None


@dataclass(frozen=True)
class EntryStatus:
    """One row of ``lstmcast status``; ``checks`` is every live check, in a fixed order."""

    entry: str
    last_run: dict[str, Any] | None  # {"run_id", "finished", "ok", "error"}
    data_last: str | None
    model: dict[str, Any] | None  # {"run_id", "family", "created", "age_days"}
    live: dict[str, Any]  # {"ratio", "n", "band_low", "band_high", "coverage", "nominal"}
    next_run: str | None
    checks: tuple[Check, ...]

    @property
    def flags(self) -> list[str]:
        return [c.name for c in self.checks if c.flagged]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def cells(self) -> dict[str, str]:
        """Short plain-text cells for the ``lstmcast status`` table (the CLI adds colour)."""
        def when(iso: Any) -> str:
            t = _ts(iso)
            return "-" if t is None else t.strftime("%m-%d %H:%M")

        def mark(name: str) -> str:
            return " !" if self.check(name).flagged else ""

        run = "never"
        if self.last_run:
            run = f"{'ok' if self.last_run.get('ok') else 'FAILED'} {when(self.last_run.get('finished'))}"
        d = self.check("data_age").values
        data = "-" if self.data_last is None else f"{d.get('bars_behind', 0)} behind"
        model = "-"
        if self.model:
            age = self.model.get("age_days")
            model = f"{self.model.get('family') or '?'} {'?' if age is None else f'{age:.0f}d'}"
        lv = self.live
        skill = "-" if lv.get("ratio") is None else f"{lv['ratio']:.2f}"
        if lv.get("band_low") is not None and lv.get("band_high") is not None:
            skill += f" [{lv['band_low']:.2f}-{lv['band_high']:.2f}]"
        cov = "-" if lv.get("coverage") is None else f"{lv['coverage']:.0%}/{lv['nominal']:.0%}"
        drifted = self.check("drift").values.get("drifted") or []
        return {
            "entry": self.entry, "last run": run, "data": data + mark("data_age"),
            "model": model + mark("model_age"), "skill": skill + mark("decay"), "coverage": cov + mark("coverage"),
            "drift": ",".join(drifted) if drifted else ("-" if self.check("drift").status == "skip" else "no"),
            "next run": when(self.next_run),
        }

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({
            "entry": self.entry, "last_run": self.last_run, "data_last": self.data_last, "model": self.model,
            "live": self.live, "next_run": self.next_run, "flags": self.flags,
            "checks": {c.name: c.to_dict() for c in self.checks},
        })


def _family(meta: Mapping[str, Any]) -> str | None:
    # checkpoints before the forecaster seam carry no family; they are all LSTMs
    return meta.get("family") or ("lstm" if "model" in meta else None)


def entry_status(
    entry: str,
    *,
    now: Any,
    interval: str,
    settings: MonitorSettings | None = None,
    last_run: Mapping[str, Any] | None = None,
    last_ok: Any = None,
    data_last: Any = None,
    bars_behind: int | None = None,
    model_meta: Mapping[str, Any] | None = None,
    history: pd.DataFrame | None = None,
    band: DecayBand | Mapping[str, Any] | None = None,
    drift: Check | None = None,
    next_run: Any = None,
) -> EntryStatus:
    """Every live check for one entry, from plain inputs, as the ``lstmcast status`` row.

    ``last_run``: ``entry_record`` of the newest run that included the entry; ``last_ok``: the finish
    time of its newest successful one. ``history``: ``forecasts.load_history``. ``band``: the decay
    band of the current model's settings (``decay_band``), if one was stored. ``drift``: a
    ``check_drift`` result (it needs the feature rows, which the caller prepares); None -> skipped.
    """
    s = settings or MonitorSettings()
    if history is None:
        history = pd.DataFrame({c: [] for c in ("origin", "run_id", "step", "predicted", "naive", "lower", "upper",
                                                "level", "made_at", "actual")})
    decay = check_decay(history, band=band, window=s.window, alpha=s.alpha)
    coverage = check_coverage(history, window=s.window, alpha=s.alpha)
    checks = (
        check_data_age(data_last, now=now, interval=interval, bars_behind=bars_behind,
                       max_bars_behind=s.max_bars_behind),
        check_model_age(model_meta, now=now, max_age=s.max_model_age),
        check_run_age(last_ok, now=now, max_age=s.max_run_age),
        decay,
        coverage,
        drift or Check("drift", "drift", "skip", "not checked", {}),
    )
    model = None
    if model_meta:
        model = {"run_id": model_meta.get("run_id"), "family": _family(model_meta),
                 "created": model_meta.get("created"), "age_days": checks[1].values.get("age_days")}
    live = {
        "ratio": decay.values.get("ratio"), "n": decay.values.get("n", 0),
        "band_low": decay.values.get("band_low"), "band_high": decay.values.get("band_high"),
        "coverage": coverage.values.get("observed"), "nominal": coverage.values.get("nominal"),
    }
    last = _ts(data_last)
    nxt = _ts(next_run)
    return EntryStatus(
        entry=entry,
        last_run=dict(last_run) if last_run else None,
        data_last=last.isoformat() if last is not None else None,
        model=model,
        live=live,
        next_run=nxt.isoformat() if nxt is not None else None,
        checks=checks,
    )
