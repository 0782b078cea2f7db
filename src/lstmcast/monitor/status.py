"""One entry's row of ``lstmcast status``: every live check from plain inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lstmcast.jsonable import to_jsonable
from lstmcast.monitor.base import Check, MonitorSettings, to_utc
from lstmcast.monitor.skill import DecayBand, check_coverage, check_decay
from lstmcast.monitor.staleness import check_data_age, check_model_age, check_run_age


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
            t = to_utc(iso)
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
    last = to_utc(data_last)
    nxt = to_utc(next_run)
    return EntryStatus(
        entry=entry,
        last_run=dict(last_run) if last_run else None,
        data_last=last.isoformat() if last is not None else None,
        model=model,
        live=live,
        next_run=nxt.isoformat() if nxt is not None else None,
        checks=checks,
    )
