"""Adaptive conformal inference (ACI) for the live forecasts of ``lstmcast run``.

Each series keeps one state file beside its forecast history,
``forecasts/{source}/{symbol}/{interval}/aci.json``: per horizon step, the effective quantile levels
of the recorded interval's two tails (``evaluate.adaptive.AdaptiveLevels``; an 80% interval starts
at 0.1 and 0.9), how many realised forecast rows moved them, and the last target time folded in.

Each run, after the earlier forecasts are scored, every newly realised row (its ``actual`` known,
its target at or before the new forecast's origin) updates its step's levels once, in target-time
order, with the rule of Gibbs & Candes (2021) per tail: ``level += gamma * (nominal - 1{actual <=
bound})``. A miss below the lower bound lowers the lower level, a miss above the upper bound raises
the upper level (wider); hits pull them back in (narrower). The new forecast's interval is then
read at those levels from the signed calibration residuals ``predict`` uses
(``conformal.tail_interval``). Rows are remembered by their target time, so running twice on the
same data updates nothing the second time. ``gamma = 0`` keeps the nominal levels.

A state file that cannot be read restarts at the nominal levels (``load`` returns one line to log);
rows already realised then count as seen, so the restarted levels move only on later outcomes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast import atomic, forecasts
from lstmcast.data.store import SeriesKey
from lstmcast.errors import LstmcastError
from lstmcast.evaluate.adaptive import DEFAULT_GAMMA, AdaptiveLevels

STATE = "aci.json"
FORMAT = 1
SPLIT, ACI = "split", "aci"


@dataclass(frozen=True)
class StepState:
    """The ACI levels of one horizon step."""

    levels: AdaptiveLevels  # nominal and effective (lower tail, upper tail)
    n: int = 0  # realised rows folded in
    through: pd.Timestamp | None = None  # the newest target time folded in (or skipped)


@dataclass(frozen=True)
class LiveAci:
    """One series' ACI state: the interval ``level`` and, per step, its tail levels."""

    level: float
    gamma: float = DEFAULT_GAMMA
    steps: tuple[StepState, ...] = ()
    restarted: bool = False  # a damaged file was replaced by this state (not saved)

    @classmethod
    def start(cls, level: float, *, gamma: float = DEFAULT_GAMMA) -> LiveAci:
        return cls(level=float(level), gamma=float(gamma))

    def nominal_tails(self) -> tuple[float, float]:
        return (round((1 - self.level) / 2, 10), round((1 + self.level) / 2, 10))

    def step(self, s: int) -> StepState:
        """Step ``s`` (1-based); a step never seen starts at the nominal levels."""
        if 1 <= s <= len(self.steps):
            return self.steps[s - 1]
        return StepState(levels=AdaptiveLevels.start(self.nominal_tails(), gamma=self.gamma))

    def method(self, s: int) -> str:
        """``aci`` once realised rows moved step ``s`` (and adaptation is on), else ``split``."""
        return ACI if self.gamma > 0 and self.step(s).n > 0 else SPLIT

    def read_tails(self, s: int) -> tuple[float, float]:
        """The tail levels step ``s`` reads its interval at (clipped to [0, 1])."""
        lo, hi = self.step(s).levels.read_levels()
        return float(lo), float(hi)

    def fold(
        self, s: int, actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, *, through: pd.Timestamp | None
    ) -> LiveAci:
        """Step ``s`` after the realised outcomes ``actual`` of forecasts with bounds ``lower`` /
        ``upper``, oldest first: per tail, ``level += gamma * (nominal - 1{actual <= bound})``."""
        st = self.step(s)
        levels = st.levels
        for a, lo, hi in zip(np.asarray(actual, "float64"), np.asarray(lower, "float64"),
                             np.asarray(upper, "float64"), strict=True):
            levels = levels.update(np.array([a <= lo, a <= hi], dtype="float64"))
        return self.with_step(s, StepState(levels=levels, n=st.n + len(np.atleast_1d(actual)),
                                           through=st.through if through is None else through))

    def with_step(self, s: int, st: StepState) -> LiveAci:
        steps = [self.step(k) for k in range(1, max(s, len(self.steps)) + 1)]
        steps[s - 1] = st
        return replace(self, steps=tuple(steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "level": self.level,
            "gamma": self.gamma,
            "steps": [
                {
                    "step": s,
                    "levels": st.levels.to_dict(),
                    "n": st.n,
                    "through": None if st.through is None else st.through.isoformat(),
                    "method": self.method(s),
                }
                for s, st in enumerate(self.steps, start=1)
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiveAci:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"unsupported format {d.get('format') if isinstance(d, dict) else None!r}")
        level, gamma = float(d["level"]), float(d["gamma"])
        steps = []
        for k, item in enumerate(d["steps"], start=1):
            if int(item["step"]) != k:
                raise ValueError(f"step {item['step']} out of order")
            lv = AdaptiveLevels.from_dict(item["levels"])
            if len(lv.nominal) != 2 or not all(math.isfinite(x) for x in lv.effective):
                raise ValueError(f"step {k} has no two finite tail levels")
            t = item.get("through")
            steps.append(StepState(levels=lv, n=int(item["n"]), through=None if t is None else _utc(t)))
        out = cls(level=level, gamma=gamma, steps=tuple(steps))
        if not 0 < level < 1 or any(st.levels.nominal != out.nominal_tails() for st in steps):
            raise ValueError(f"level {level} does not match the steps' nominal tail levels")
        return out


def _utc(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def path(data_dir: Path, key: SeriesKey) -> Path:
    return forecasts.folder(data_dir, key) / STATE


def load(
    data_dir: Path, key: SeriesKey, *, level: float | None, gamma: float | None = DEFAULT_GAMMA
) -> tuple[LiveAci, str | None]:
    """The stored state (at the configured ``gamma``), or a fresh one at the nominal levels; the
    second item is a one-line warning when a stored file could not be used. ``level=None`` /
    ``gamma=None``: whatever the file holds (to show it; a fresh state is then at 0.8)."""
    if level is None or gamma is None:
        p = path(data_dir, key)
        try:
            stored = json.loads(p.read_text(encoding="utf-8"))
            level = float(stored["level"]) if level is None else level
            gamma = float(stored["gamma"]) if gamma is None else gamma
        except (OSError, ValueError, KeyError, TypeError):
            level, gamma = level or 0.8, DEFAULT_GAMMA if gamma is None else gamma
    p = path(data_dir, key)
    if not p.exists():
        return LiveAci.start(level, gamma=gamma), None
    try:
        state = LiveAci.from_dict(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LstmcastError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        msg = f"cannot read the ACI state {p} ({why}); restarted from the nominal levels"
        return replace(LiveAci.start(level, gamma=gamma), restarted=True), msg
    if abs(state.level - level) > 1e-12:
        msg = f"the ACI state {p} is for a {state.level:g} interval, not {level:g}; restarted from the nominal levels"
        return replace(LiveAci.start(level, gamma=gamma), restarted=True), msg
    # the configured step size applies from now on; the levels reached so far are kept
    steps = tuple(replace(st, levels=replace(st.levels, gamma=float(gamma))) for st in state.steps)
    return replace(state, gamma=float(gamma), steps=steps), None


def save(data_dir: Path, key: SeriesKey, state: LiveAci) -> Path:
    p = path(data_dir, key)
    atomic.write_json(p, state.to_dict())
    return p


def realised(history: pd.DataFrame, *, origin: pd.Timestamp) -> pd.DataFrame:
    """History rows whose outcome is known at ``origin``: ``actual`` set, target at or before it."""
    if history.empty:
        return history
    done = history[history["actual"].notna() & (history["target_time"] <= origin)]
    return done.sort_values(["target_time", "step", "origin", "run_id"], kind="stable")


def update(state: LiveAci, history: pd.DataFrame, *, origin: pd.Timestamp) -> tuple[LiveAci, int]:
    """Fold the rows realised since the last update into the levels; returns (state, rows used).

    A row counts once: per step, only targets after the step's ``through`` are read, and only those
    at or before ``origin`` (the new forecast's bar), so nothing after the origin moves its levels.
    Rows without an interval, or with an interval at another level, advance ``through`` but do not
    move the levels. A ``restarted`` state marks the rows already realised as seen.
    """
    rows = realised(history, origin=pd.Timestamp(origin))
    used = 0
    for s, part in rows.groupby("step", sort=True):
        s = int(s)
        st = state.step(s)
        if st.through is not None:
            part = part[part["target_time"] > st.through]
        if part.empty:
            continue
        ok = part[part["lower"].notna() & part["upper"].notna() & ((part["level"] - state.level).abs() < 1e-9)]
        if state.restarted:
            ok = ok.iloc[:0]
        state = state.fold(s, *(ok[c].to_numpy("float64") for c in ("actual", "lower", "upper")),
                           through=part["target_time"].max())
        used += len(ok)
    return replace(state, restarted=False), used


def apply(state: LiveAci, fc: forecasts.Forecast) -> forecasts.Forecast:
    """``fc`` with its interval read at the state's tail levels from ``fc.calibration`` (the signed
    residuals its split interval came from), saying which levels and method it carries.

    Without residuals (a step that gives only bounds) the bounds are kept and labelled ``split`` at
    the nominal tails. Too few residuals for a finite ``level`` interval: no interval, as before.
    """
    from lstmcast.evaluate import conformal

    n = len(fc.predicted)
    if fc.calibration is None:
        if fc.lower is None or fc.level is None:
            return replace(fc, tail_levels=None, interval_method=None)
        lo, hi = LiveAci.start(fc.level).nominal_tails()
        return replace(fc, tail_levels=tuple((lo, hi) for _ in range(n)), interval_method=SPLIT)
    tails = [state.read_tails(s) for s in range(1, n + 1)]
    lower, upper = conformal.tail_interval(
        np.asarray(fc.calibration, dtype="float64"), np.asarray(fc.predicted, dtype="float64"),
        lower=np.array([t[0] for t in tails]), upper=np.array([t[1] for t in tails]), mode=fc.mode,
        min_count=conformal.min_calibration(state.level),
    )
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
        return replace(fc, lower=None, upper=None, level=None, tail_levels=None, interval_method=None)
    methods = {state.method(s) for s in range(1, n + 1)}
    return replace(
        fc,
        lower=tuple(float(x) for x in lower),
        upper=tuple(float(x) for x in upper),
        level=state.level,
        tail_levels=tuple(tails),
        interval_method=ACI if ACI in methods else SPLIT,
    )


def summary(state: LiveAci) -> dict[str, Any]:
    """The state as ``lstmcast forecasts`` shows it (JSON: README "JSON output")."""
    d = state.to_dict()
    return {
        "level": d["level"],
        "gamma": d["gamma"],
        "steps": [
            {
                "step": item["step"],
                "method": item["method"],
                "level_lower": item["levels"]["effective"][0],
                "level_upper": item["levels"]["effective"][1],
                "n": item["n"],
                "through": item["through"],
            }
            for item in d["steps"]
        ],
    }
