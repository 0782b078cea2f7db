"""The unattended run: for each watchlist entry fetch, maybe retrain, promote only a better model,
forecast, record and score forecasts, prune old model runs.

The steps that need the data sources, the trainer and the checkpoint registry come in as a
``Steps`` value, so this loop is the same for cron and for tests. Entries are independent: one
failure is logged and recorded, and the rest go on. ``InterruptedRun`` (SIGTERM) is not a failure of
one entry: it stops the whole run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lstmcast.config import ModelDefaults, RunConfig, WatchEntry
from lstmcast.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, ConfigError, InterruptedRun, LstmcastError


def should_promote(
    champion_metric: float | None, challenger_metric: float, *, min_improvement: float
) -> bool:
    """The champion/challenger rule: promote when there is no champion, or when the challenger's
    error is lower than the champion's by at least ``min_improvement`` (a fraction: 0.02 = 2%).
    Errors are lower-is-better (MAE, RMSE, MASE); a NaN challenger never wins."""
    import math

    if not 0 <= min_improvement < 1:
        raise ValueError(f"min_improvement must be in [0, 1), got {min_improvement}")
    if challenger_metric is None or not math.isfinite(challenger_metric):
        return False
    if champion_metric is None or not math.isfinite(champion_metric):
        return True
    return challenger_metric < champion_metric * (1 - min_improvement)


@dataclass(frozen=True)
class FetchResult:
    """What the fetch step did for one entry."""

    rows_added: int  # new bars stored by this fetch
    last: str | None = None  # ISO time of the newest stored bar


@dataclass(frozen=True)
class Promotion:
    """The outcome of scoring challenger and champion on the same recent held-out bars."""

    promoted: bool
    metric: str
    challenger: float
    champion: float | None  # None: there was no champion


@dataclass(frozen=True)
class Steps:
    """The per-entry operations ``run_watchlist`` calls, in this order. ``lstmcast run`` builds
    them with ``default_steps``; tests inject their own."""

    fetch: Callable[[WatchEntry], FetchResult]
    # True when there are new complete bars since the current model's data end (or no model yet)
    needs_training: Callable[[WatchEntry], bool]
    # trains a challenger with these settings and saves it (not current); returns its run id
    train_challenger: Callable[[WatchEntry, ModelDefaults], str | None]
    # scores challenger and champion on the same holdout; makes the challenger current if it wins
    evaluate_and_promote: Callable[[WatchEntry, str], Promotion]
    # the current model's forecast from the newest stored bar (a forecasts.Forecast)
    forecast: Callable[[WatchEntry], Any]
    # deletes model runs beyond the newest ``keep`` (never the current one); returns the deleted ids
    prune: Callable[[WatchEntry, int], list[str]]


@dataclass
class EntryOutcome:
    """One row of the run summary."""

    entry: str
    fetched: int | None = None  # rows added; None: the fetch did not happen or failed
    trained: str | None = None  # challenger run id
    promoted: bool | None = None
    forecast: str | None = None  # "2024-05-02: 187.3" (first step)
    scored: int = 0  # earlier forecast rows whose outcome is now known
    pruned: int = 0
    error: str | None = None  # "train: not enough data ..."
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunSummary:
    run_id: str
    started: str
    finished: str | None = None
    entries: list[EntryOutcome] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every entry succeeded (or there were none), 3 when some failed, 1 when all failed."""
        failed = sum(not e.ok for e in self.entries)
        if failed == 0:
            return EXIT_OK
        return EXIT_ERROR if failed == len(self.entries) else EXIT_PARTIAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started": self.started,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "entries": [{**asdict(e), "ok": e.ok} for e in self.entries],
        }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_watchlist(
    data_dir: Path,
    config: RunConfig,
    *,
    only: list[str] | None = None,
    force: bool = False,
    steps: Steps,
    log: logging.Logger,
    stop: Any | None = None,
) -> RunSummary:
    """Run every (or every ``only``) watchlist entry through ``steps``; never raises for one entry's
    failure. ``stop`` (a ``runlog.StopRequest``) is checked between steps; ``InterruptedRun`` ends
    the run and propagates after the summary so far is logged."""
    entries = config.select(only)
    started = _now()
    summary = RunSummary(run_id=dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"), started=started)
    names = ", ".join(str(e) for e in entries) or "none"
    log.info(
        "run %s started: %d entr%s (%s)%s",
        summary.run_id,
        len(entries),
        "y" if len(entries) == 1 else "ies",
        names,
        ", --force" if force else "",
    )
    try:
        for entry in entries:
            if stop is not None:
                stop.check()
            summary.entries.append(
                _run_entry(data_dir, config, entry, force=force, steps=steps, log=log, stop=stop)
            )
    except InterruptedRun as e:
        summary.interrupted = True
        log.warning("run %s interrupted: %s", summary.run_id, e)
        raise
    finally:
        summary.finished = _now()
        ok = sum(e.ok for e in summary.entries)
        log.info(
            "run %s ended: %d ok, %d failed%s, exit code %d",
            summary.run_id,
            ok,
            len(summary.entries) - ok,
            " (interrupted)" if summary.interrupted else "",
            130 if summary.interrupted else summary.exit_code,
        )
    return summary


def _run_entry(
    data_dir: Path,
    config: RunConfig,
    entry: WatchEntry,
    *,
    force: bool,
    steps: Steps,
    log: logging.Logger,
    stop: Any | None,
) -> EntryOutcome:
    out = EntryOutcome(entry=str(entry))
    t0 = time.monotonic()
    stage = "fetch"

    def between(next_stage: str) -> None:
        nonlocal stage
        if stop is not None:
            stop.check()
        stage = next_stage

    try:
        fetched = steps.fetch(entry)
        out.fetched = fetched.rows_added
        log.info(
            "%s: fetched %d new bar(s)%s",
            entry,
            fetched.rows_added,
            f", last {fetched.last}" if fetched.last else "",
        )
        between("check")
        if force or steps.needs_training(entry):
            between("train")
            out.trained = steps.train_challenger(entry, config.effective(entry))
            if out.trained:
                log.info("%s: trained challenger %s", entry, out.trained)
                between("promote")
                promo = steps.evaluate_and_promote(entry, out.trained)
                out.promoted = promo.promoted
                champ = (
                    "no champion"
                    if promo.champion is None
                    else f"champion {promo.metric} {promo.champion:.6g}"
                )
                log.info(
                    "%s: challenger %s %.6g vs %s: %s",
                    entry,
                    promo.metric,
                    promo.challenger,
                    champ,
                    "promoted" if promo.promoted else "kept the champion",
                )
        else:
            log.info("%s: no new complete bars since the current model's data; not retrained", entry)
        between("forecast")
        fc = steps.forecast(entry)
        out.forecast, out.scored = _record_forecast(data_dir, fc)
        log.info(
            "%s: forecast %s (model %s)%s",
            entry,
            out.forecast,
            fc.run_id,
            f"; scored {out.scored} earlier forecast row(s)" if out.scored else "",
        )
        between("prune")
        pruned = steps.prune(entry, config.keep_runs)
        out.pruned = len(pruned)
        if pruned:
            log.info("%s: pruned %d old model run(s): %s", entry, len(pruned), ", ".join(pruned))
    except InterruptedRun:
        raise
    except LstmcastError as e:
        out.error = f"{stage}: {e}"
        log.error("%s: failed at %s: %s", entry, stage, e)
    except Exception as e:  # a bug in one entry must not stop the others; keep its traceback in the log
        out.error = f"{stage}: {type(e).__name__}: {e}"
        log.exception("%s: failed at %s with an unexpected error", entry, stage)
    finally:
        out.seconds = round(time.monotonic() - t0, 3)
    if out.ok:
        log.info("%s: ok in %.1fs", entry, out.seconds)
    return out


def _record_forecast(data_dir: Path, fc: Any) -> tuple[str, int]:
    """Write the forecast into its history and score earlier rows against the stored prices."""
    from lstmcast import forecasts
    from lstmcast.data.store import Store

    store = Store(data_dir)
    frame = store.load(fc.key) if store.exists(fc.key) else None
    before = forecasts.load_history(data_dir, fc.key)
    history = forecasts.record(data_dir, fc, frame=frame)
    scored = int(history["actual"].notna().sum()) - int(before["actual"].notna().sum())
    first = f"{fc.target_times[0].isoformat().replace('T00:00:00+00:00', '')}: {fc.predicted[0]:.6g}"
    return first, max(scored, 0)


# -- integration point ----------------------------------------------------------------------------
def default_steps(data_dir: Path, config: RunConfig) -> Steps:
    """INTEGRATION POINT: the real steps for ``lstmcast run``.

    On this branch the fetch, training and predict modules do not exist yet, so each step says so
    (``ConfigError``) when an entry reaches it: an empty watchlist runs cleanly, any entry fails
    honestly instead of pretending. The integrator replaces each stub with the real call.
    """

    def missing(what: str) -> Callable[..., Any]:
        def step(entry: WatchEntry, *args: Any) -> Any:
            raise ConfigError(f"{what} for {entry} is not wired yet in this build of lstmcast run")

        return step

    return Steps(
        fetch=missing("incremental fetch"),
        needs_training=missing("the model data-end check"),
        train_challenger=missing("training"),
        evaluate_and_promote=missing("champion/challenger evaluation"),
        forecast=missing("forecasting"),
        prune=missing("pruning old model runs"),
    )
