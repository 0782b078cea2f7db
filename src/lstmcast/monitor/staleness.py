"""Staleness: of the stored data, of the current model, of the last successful run."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from lstmcast.monitor.base import Check, Status, age_text, to_utc


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
    last, now_ = to_utc(data_last), to_utc(now)
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
    created, now_ = to_utc(model_meta.get("created")), to_utc(now)
    assert now_ is not None
    run_id = model_meta.get("run_id")
    if created is None:
        return Check("model_age", "stale", "skip", f"model {run_id} records no creation time", {"run_id": run_id})
    age = now_ - created
    values = {"run_id": run_id, "created": created, "age_days": age.total_seconds() / 86400,
              "max_age_days": None if max_age is None else max_age.total_seconds() / 86400}
    if max_age is not None and age > pd.Timedelta(max_age):
        return Check("model_age", "stale", "flag",
                     f"model {run_id} is {age_text(age)} old, over max_model_age {age_text(max_age)}; retrain it",
                     values)
    return Check("model_age", "stale", "ok", f"model {run_id} is {age_text(age)} old", values)


def check_run_age(last_ok: Any, *, now: Any, max_age: dt.timedelta | None) -> Check:
    """Time since the entry's last successful run (its finish time) against ``max_run_age``."""
    done, now_ = to_utc(last_ok), to_utc(now)
    assert now_ is not None
    if done is None:
        status: Status = "flag" if max_age is not None else "skip"
        return Check("run_age", "stale", status, "no successful run of this entry on record", {"last_ok": None})
    age = now_ - done
    values = {"last_ok": done, "age_hours": age.total_seconds() / 3600,
              "max_age_hours": None if max_age is None else max_age.total_seconds() / 3600}
    if max_age is not None and age > pd.Timedelta(max_age):
        return Check("run_age", "stale", "flag",
                     f"last successful run {age_text(age)} ago, over max_run_age {age_text(max_age)}", values)
    return Check("run_age", "stale", "ok", f"last successful run {age_text(age)} ago", values)
