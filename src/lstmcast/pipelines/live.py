"""What happens after ``lstmcast run``, and what ``lstmcast status`` shows: the live checks per
entry, the run record, the one notification per run, model expiry and ``models promote``.

``after_run`` is called by ``cli/run.py`` once ``runner.run_watchlist`` has returned. For each entry
(failed ones too: a failing fetch is what makes data stale) it runs every check of
``lstmcast.monitor`` and writes the result beside the forecast history
(``forecasts/{source}/{symbol}/{interval}/checks.json``) and into the log; then it sends one
notification for the run. Nothing here fails the run: a check that cannot be computed is logged
and skipped, a notification that cannot be delivered is logged.

Where the inputs come from:

* decay band: the current model's own validation part (``calibration.val_pred`` / ``val_actual`` in
  its checkpoint, the naive forecast being the close at each validation origin), as rolling-``window``
  MAE ratios (``monitor.decay_band``). A model with fewer validation origins than ``window`` has no
  band, and the decay check falls back to the one-sided Diebold-Mariano test against naive.
* drift: the model's training feature rows (``rows.start`` to ``rows.train_end`` of the stored series,
  with the model's own feature settings) against the newest ``drift_rows`` rows.
* staleness: the store's last bar against the market calendar; the model's ``created``; the entry's
  last successful run from ``logs/runs.jsonl``. An imported series (a source ``run`` does not fetch)
  is never flagged stale for its data: only a new import can refresh it.

The library returns data; the caller prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.errors import CheckpointError, LstmcastError
from lstmcast.monitor import Check, DecayBand, EntryStatus, MonitorSettings, check_drift, decay_band, entry_status
from lstmcast.monitor.base import to_utc

CHECKS_FORMAT = 1
LOGGER = "lstmcast.live"


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("s")


# -- model expiry (for `predict`) ---------------------------------------------------------------------
def model_age_warning(meta: Mapping[str, Any] | None, settings: MonitorSettings | None, now: Any = None) -> str | None:
    """The warning ``predict`` prints when the model is older than ``max_model_age`` (None: no
    warning, or no limit set). ``--strict`` turns it into exit code 4 like every predict warning."""
    from lstmcast.monitor import check_model_age

    if settings is None or settings.max_model_age is None or not meta:
        return None
    c = check_model_age(meta, now=_utc_now() if now is None else now, max_age=settings.max_model_age)
    return c.reason if c.flagged else None


def model_age_warnings(data_dir: Path, run_id: str, *, config: Any = None, now: Any = None) -> list[str]:
    """``predict``'s model-expiry warning for run ``run_id`` under the ``[monitor] max_model_age`` of
    the config (``--config``, ``$LSTMCAST_CONFIG`` or ``DATA_DIR/lstmcast.toml``); ``[]`` when there
    is no config file, no limit, or the model is young enough. An invalid config raises ConfigError."""
    from lstmcast import registry
    from lstmcast.errors import ConfigError
    from lstmcast.workspace import find_config

    try:
        path = find_config(config, data_dir=data_dir)
    except ConfigError:
        return []  # no config file: models never expire
    from lstmcast.config import load_config  # pydantic: only when there is a config to read

    settings = load_config(path).monitor
    if settings.max_model_age is None:
        return []
    w = model_age_warning(registry.find_run(data_dir, run_id).to_dict(), settings, now)
    return [w] if w else []


# -- run records ---------------------------------------------------------------------------------------
def last_runs(records: Sequence[Mapping[str, Any]], entry: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the newest run record of ``entry``, as ``monitor.entry_record`` gives it; the finish time of
    its newest successful run) from ``runlog.run_records``."""
    from lstmcast.monitor import entry_record

    last, last_ok = None, None
    for rec in reversed(records):
        r = entry_record(rec, entry)
        if r is None:
            continue
        if rec.get("interrupted"):
            r = {**r, "interrupted": True}
        if last is None:
            last = r
        if r["ok"]:
            last_ok = r.get("finished")
            break
    return last, last_ok


# -- one entry's checks ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryChecks:
    """One entry's live checks and what they were computed from."""

    entry: str
    status: EntryStatus | None  # None: the checks could not be computed (``error``)
    band: dict[str, Any] | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.status.checks if self.status is not None else ()

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "error": self.error, "band": self.band, "notes": list(self.notes),
                "status": self.status.to_dict() if self.status is not None else None}


def _band_of(loaded: Any, close: np.ndarray, settings: MonitorSettings) -> DecayBand | None:
    """The decay band from the model's validation part, or None (too few origins: DM fallback)."""
    f = loaded.fitted
    vo = np.asarray(f.val_origins, dtype="int64")
    if vo.size < settings.window or vo.max(initial=-1) >= len(close):
        return None
    pred, actual = np.asarray(f.val_pred, dtype="float64"), np.asarray(f.val_actual, dtype="float64")
    naive = np.broadcast_to(close[vo][:, None], pred.shape)
    try:
        return decay_band(actual, pred, naive, window=settings.window, quantile=settings.band_quantile)
    except ValueError:
        return None


def _drift_of(loaded: Any, prepared: Any, settings: MonitorSettings) -> Check:
    rows = loaded.meta.get("rows") or {}
    start, train_end = int(rows.get("start", 0)), int(rows.get("train_end", 0))
    if train_end <= start or train_end > len(prepared.raw):
        return Check("drift", "drift", "skip", f"model {loaded.run_id} records no usable training rows", {})
    return check_drift(
        prepared.raw[start:train_end], prepared.raw[-settings.drift_rows:], names=list(prepared.names),
        psi_threshold=settings.psi_threshold, ks_alpha=settings.ks_alpha,
    )


def _imported(c: Check) -> Check:
    what = c.reason.removeprefix("data is stale: ").removeprefix("data fresh: ")
    return replace(c, status="skip", reason=f"imported series, not fetched by `run`: {what}")


def entry_checks(
    data_dir: Path,
    entry: str,
    key: Any,
    *,
    settings: MonitorSettings,
    now: Any,
    fetchable: bool = True,
    records: Sequence[Mapping[str, Any]] = (),
    next_run: Any = None,
    live_model: bool = True,
) -> EntryChecks:
    """Every live check of one entry (``key``: its ``SeriesKey``).

    ``live_model``: load the current model to build its decay band and check drift (what ``run``
    does); otherwise (``status``) reuse the band and drift of the last run's ``checks.json`` when it
    was made with the same current model."""
    from lstmcast import forecasts, registry
    from lstmcast.data.store import Store

    now = to_utc(now)
    notes: list[str] = []
    store = Store(data_dir)
    last_run, last_ok = last_runs(records, entry)
    data_last = bars_behind = None
    frame = kind = None
    if store.exists(key):
        m = store.manifest(key)
        data_last, kind = m.get("last"), m.get("kind", "price")
        if data_last is not None:
            from lstmcast.data import calendar
            from lstmcast.pipelines.predict import staleness  # the rule predict warns with

            bars_behind = staleness(pd.Timestamp(data_last), interval=calendar.parse_interval(key.interval),
                                    market=m.get("market") or "crypto", now=now)
        if live_model:
            frame = store.load(key)
    model_meta: dict[str, Any] | None = None
    band: DecayBand | None = None
    drift: Check | None = None
    current = None
    try:
        current = registry.current_run_id(data_dir, key)
    except CheckpointError as e:
        notes.append(str(e))
    if current is not None:
        if live_model:
            try:
                loaded = registry.load_run(data_dir, key)
                model_meta = loaded.meta
                if frame is not None:
                    from lstmcast.features import prepare

                    prepared = prepare(frame, kind=kind or "price", features=loaded.features)
                    band = _band_of(loaded, prepared.close, settings)
                    if band is None:
                        notes.append(f"model {loaded.run_id} has under {settings.window} validation origins: "
                                     "decay uses the DM test against naive")
                    drift = _drift_of(loaded, prepared, settings)
            except LstmcastError as e:
                notes.append(f"current model not usable for the checks: {e}")
        else:
            info = next((r for r in registry.list_runs(data_dir, key) if r.run_id == current), None)
            if info is not None:
                model_meta = {"run_id": info.run_id, "family": info.family, "created": info.created}
            saved = read_checks(data_dir, key)
            if saved and saved.get("model_run_id") == current:
                band = DecayBand.from_dict(saved["band"]) if saved.get("band") else None
                d = ((saved.get("status") or {}).get("checks") or {}).get("drift")
                if d:
                    drift = Check(d["name"], d["event"], d["status"], d["reason"], d.get("values") or {})
            else:
                drift = Check("drift", "drift", "skip", f"not checked since model {current} became current", {})
    history = forecasts.load_history(data_dir, key)
    status = entry_status(
        entry, now=now, interval=key.interval, settings=settings, last_run=last_run, last_ok=last_ok,
        data_last=data_last, bars_behind=bars_behind, model_meta=model_meta, history=history, band=band,
        drift=drift, next_run=next_run,
    )
    if not fetchable:
        status = replace(status, checks=tuple(_imported(c) if c.name == "data_age" else c for c in status.checks))
    return EntryChecks(entry=entry, status=status, band=band.to_dict() if band else None, notes=tuple(notes))


def read_checks(data_dir: Path, key: Any) -> dict[str, Any] | None:
    """The last run's ``checks.json`` of ``key`` (None when absent or unreadable)."""
    import json

    from lstmcast import forecasts

    try:
        out = json.loads(forecasts.checks_path(data_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) and out.get("format") == CHECKS_FORMAT else None


def write_checks(data_dir: Path, key: Any, result: EntryChecks, *, run_id: str | None, now: Any) -> Path:
    from lstmcast import atomic, forecasts
    from lstmcast.jsonable import to_jsonable

    st = result.status
    body = {
        "format": CHECKS_FORMAT, "run_id": run_id, "checked_at": to_utc(now).isoformat(), "entry": result.entry,
        "model_run_id": (st.model or {}).get("run_id") if st is not None else None, "band": result.band,
        "notes": list(result.notes), "status": st.to_dict() if st is not None else None,
    }
    path = forecasts.checks_path(data_dir, key)
    atomic.write_json(path, to_jsonable(body))
    return path


# -- after a run -------------------------------------------------------------------------------------
@dataclass
class LiveReport:
    """What ``after_run`` did: each entry's checks, the notification's deliveries."""

    entries: list[EntryChecks] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # notify.Event
    deliveries: list[Any] = field(default_factory=list)  # notify.Delivery
    rollbacks: list[Any] = field(default_factory=list)
    rollback_entries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": {e.entry: {"flags": e.status.flags if e.status else [], "error": e.error,
                                 "checks": {c.name: {"status": c.status, "reason": c.reason} for c in e.checks}}
                       for e in self.entries},
            "events": [e.to_dict() for e in self.events],
            "notifications": [d.to_dict() for d in self.deliveries],
            "rollbacks": [{"entry": n, **r.to_dict()} for n, r in zip(self.rollback_entries, self.rollbacks,
                                                                       strict=True)],
        }


def after_run(
    data_dir: Path,
    config: Any,
    summary: Mapping[str, Any],
    *,
    entries: Iterable[Any],
    key_of: Callable[[Any], Any],
    is_fetchable: Callable[[str | None], bool],
    log: logging.Logger | None = None,
    now: Any = None,
    next_run: Any = None,
) -> LiveReport:
    """Record the run in ``logs/runs.jsonl``, check every entry of it, write each ``checks.json``,
    log the results and send one notification. ``summary``: ``RunSummary.to_dict()``; ``entries``:
    the run's ``WatchEntry`` values; ``key_of`` / ``is_fetchable``: ``runner.series_key`` and
    ``runner.is_fetchable``. Never raises for a check or a notification."""
    from lstmcast import notify, runlog
    from lstmcast.pipelines import rollback

    log = log or logging.getLogger(LOGGER)
    now = _utc_now() if now is None else to_utc(now)
    report = LiveReport()
    try:
        runlog.append_run_record(data_dir, runlog.run_record(summary))
    except LstmcastError as e:
        log.error("%s", e)
    try:
        records = runlog.run_records(data_dir)
    except LstmcastError as e:
        log.error("%s", e)
        records = []
    settings: MonitorSettings = config.monitor
    for entry in entries:
        name = str(entry)
        if settings.rollback_after:
            try:
                rb = rollback.rollback_check(data_dir, name, key_of(entry), settings=settings, records=records)
            except Exception:  # the rule must never fail the run
                rb = None
                log.exception("%s: the rollback check failed with an unexpected error", name)
            if rb is not None:
                report.rollbacks.append(rb)
                report.rollback_entries.append(name)
                (log.warning if rb.rolled_back else log.info)("%s: rollback rule: %s", name, rb.reason)
        try:
            key = key_of(entry)
            res = entry_checks(data_dir, name, key, settings=settings, now=now, fetchable=is_fetchable(entry.source),
                               records=records, next_run=next_run)
            write_checks(data_dir, key, res, run_id=summary.get("run_id"), now=now)
        except Exception as e:  # a check must never fail the run; keep the traceback for a bug
            res = EntryChecks(entry=name, status=None, error=f"{type(e).__name__}: {e}")
            if isinstance(e, LstmcastError):
                log.warning("%s: live checks not computed: %s", name, e)
            else:
                log.exception("%s: live checks failed with an unexpected error", name)
        report.entries.append(res)
        for note in res.notes:
            log.info("%s: %s", name, note)
        for c in res.checks:
            if c.flagged:
                log.warning("%s: %s check flagged: %s", name, c.name, c.reason)
            else:
                log.info("%s: %s check %s: %s", name, c.name, c.status, c.reason)
    report.events = notify.events_from_summary(summary)
    report.events += [notify.Event("promoted", rb.reason, entry=name)
                      for name, rb in zip(report.rollback_entries, report.rollbacks, strict=True) if rb.rolled_back]
    for res in report.entries:
        report.events += notify.events_from_checks(res.entry, res.checks)
    if config.notify.all_targets():
        try:
            report.deliveries = notify.send_run(config.notify, report.events, run_id=summary.get("run_id"), log=log)
        except Exception:  # send_run never raises by contract; this guards the run against a bug in it
            log.exception("notification failed with an unexpected error")
    return report


# -- status -------------------------------------------------------------------------------------------
def watchlist_status(
    data_dir: Path,
    config: Any,
    *,
    key_of: Callable[[Any], Any],
    is_fetchable: Callable[[str | None], bool],
    now: Any = None,
    next_run: Any = None,
) -> list[EntryChecks]:
    """The ``lstmcast status`` rows: every watchlist entry's checks, now, without loading models
    (band and drift come from the last run's ``checks.json`` when the current model is unchanged)."""
    from lstmcast import runlog

    now = _utc_now() if now is None else to_utc(now)
    records = runlog.run_records(data_dir)
    out = []
    for entry in config.watchlist:
        try:
            key = key_of(entry)
            out.append(entry_checks(data_dir, str(entry), key, settings=config.monitor, now=now,
                                    fetchable=is_fetchable(entry.source), records=records, next_run=next_run,
                                    live_model=False))
        except LstmcastError as e:
            out.append(EntryChecks(entry=str(entry), status=None, error=str(e)))
    return out


# -- promote ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromoteResult:
    run_id: str
    series: str
    interval: str
    previous: str | None  # the run that was current before (None: none)
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "series": self.series, "interval": self.interval,
                "previous": self.previous, "changed": self.changed}


def promote(data_dir: Path, run: str) -> PromoteResult:
    """Make run ``run`` (an id or a unique prefix) the current model of its series, under the model
    lock. Only a complete run qualifies: an interrupted or incomplete one is refused."""
    from lstmcast import registry

    info = registry.find_run(data_dir, run)
    if info.status != registry.STATUS_COMPLETE:
        why = f" ({info.incomplete_reason})" if info.incomplete_reason else ""
        raise CheckpointError(
            f"run {info.run_id} of {info.key} is {info.status}{why}; only a complete run can be made current"
        )
    try:
        previous = registry.current_run_id(data_dir, info.key)
    except CheckpointError:
        previous = None
    if previous != info.run_id:
        registry.set_current(data_dir, info.key, info.run_id)  # takes the model lock, re-checks the run
    return PromoteResult(info.run_id, info.key.spec, info.key.interval, previous, previous != info.run_id)
