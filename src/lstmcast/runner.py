"""The unattended run: for each watchlist entry fetch, maybe retrain, promote only a better model,
forecast, record and score forecasts, prune old model runs.

The steps that need the data sources, the trainer and the checkpoint registry come in as a
``Steps`` value, so this loop is the same for cron and for tests. Entries are independent: one
failure is logged and recorded, and the rest go on. ``InterruptedRun`` (SIGTERM) is not a failure of
one entry: it stops the whole run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lstmcast.config import ModelDefaults, RunConfig, WatchEntry
from lstmcast.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, InterruptedRun, LstmcastError, ModelError
from lstmcast.pipelines.fetch import IMPORT_SOURCE, FetchResult, is_fetchable, series_key
from lstmcast.pipelines.promote import Promotion, should_promote
from lstmcast.pipelines.train import run_settings, train_setup


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
    # optional: trains the challengers of several entries at once (through an executor) and saves
    # them; returns {str(entry): run id, or the exception that entry's training raised}. When set,
    # the run fetches and checks every entry first, trains all challengers together, then
    # promotes, forecasts and prunes entry by entry. Called with ``on_done=`` a callback that takes
    # str(entry) as each one's task finishes (it may ignore it).
    train_challengers: Callable[..., dict[str, Any]] | None = None
    # optional: told each entry's stage as the run moves: ``on_stage(str(entry), stage, outcome)``
    # with a stage of ``STAGES`` and the entry's outcome so far (``lstmcast run``'s live display)
    on_stage: Callable[[str, str, EntryOutcome], None] | None = None


# what ``Steps.on_stage`` is told, per entry, in this order (stages an entry does not need are skipped;
# with ``train_challengers`` an entry waits again between its own steps and the shared training)
STAGES = ("waiting", "fetching", "training", "promoting", "forecasting", "done", "failed")


@dataclass
class EntryOutcome:
    """One row of the run summary."""

    entry: str
    fetched: int | None = None  # rows added; None: the fetch did not happen or failed
    trained: str | None = None  # challenger run id
    promoted: bool | None = None
    forecast: dict[str, Any] | None = None  # the recorded forecast: ``forecasts.Forecast.to_dict()``
    scored: int = 0  # earlier forecast rows whose outcome is now known
    pruned: int = 0
    error: str | None = None  # "train: not enough data ..."
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def forecast_line(self) -> str | None:
        """The forecast's first step as text, ``"2024-05-02: 187.3"`` (None without a forecast)."""
        from lstmcast.forecasts import headline

        return None if self.forecast is None else headline(self.forecast)


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
    kw: dict[str, Any] = {"force": force, "steps": steps, "log": log, "stop": stop}
    for entry in entries:
        _tell(steps, log, str(entry), "waiting", EntryOutcome(entry=str(entry)))
    try:
        if steps.train_challengers is None:
            for entry in entries:
                if stop is not None:
                    stop.check()
                summary.entries.append(_run_entry(data_dir, config, entry, **kw)[0])
        else:
            _run_together(data_dir, config, entries, summary, **kw)
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


def _tell(steps: Steps, log: logging.Logger, entry: str, stage: str, out: EntryOutcome) -> None:
    """``steps.on_stage``, if any. A display that breaks must not fail an entry: it is logged."""
    if steps.on_stage is None:
        return
    try:
        steps.on_stage(entry, stage, out)
    except Exception:
        log.exception("the stage hook failed on %s (%s); the run goes on", entry, stage)


def _run_together(
    data_dir: Path, config: RunConfig, entries: list[WatchEntry], summary: RunSummary, **kw: Any
) -> None:
    """Fetch and check every entry, train the challengers together (``steps.train_challengers``),
    then promote, forecast and prune entry by entry."""
    stop, steps, log = kw["stop"], kw["steps"], kw["log"]
    checked: list[tuple[WatchEntry, EntryOutcome, bool]] = []
    for entry in entries:
        if stop is not None:
            stop.check()
        out, wants = _run_entry(data_dir, config, entry, phase="before", **kw)
        summary.entries.append(out)
        checked.append((entry, out, wants))
        if out.ok:
            _tell(steps, log, str(entry), "waiting", out)
    todo = [(entry, config.effective(entry)) for entry, out, wants in checked if out.ok and wants]
    trained: dict[str, Any] = {}
    if todo:
        if stop is not None:
            stop.check()
        outcomes = {str(e): o for e, o, _ in checked}
        for entry, _ in todo:
            _tell(steps, log, str(entry), "training", outcomes[str(entry)])

        def on_done(name: str) -> None:  # its task finished; it waits for its turn to be promoted
            if name in outcomes:
                _tell(steps, log, name, "waiting", outcomes[name])

        t0 = time.monotonic()
        trained = steps.train_challengers(todo, on_done=on_done)
        share = (time.monotonic() - t0) / len(todo)  # the wall time of the batch, shared out
        for entry, _ in todo:
            next(o for e, o, _ in checked if e is entry).seconds += round(share, 3)
    for entry, out, wants in checked:
        if not out.ok:
            continue
        if stop is not None:
            stop.check()
        _run_entry(data_dir, config, entry, phase="after", out=out, trained=trained.get(str(entry)) if wants else None,
                   **kw)


def _run_entry(
    data_dir: Path,
    config: RunConfig,
    entry: WatchEntry,
    *,
    force: bool,
    steps: Steps,
    log: logging.Logger,
    stop: Any | None,
    phase: str = "all",
    out: EntryOutcome | None = None,
    trained: Any = None,
) -> tuple[EntryOutcome, bool]:
    """One entry through the steps (``phase="all"``), or its first half (``"before"``: fetch and
    check; returns whether to train) or second half (``"after"``: given the challenger's run id, or
    the exception its training raised, from ``train_challengers``)."""
    out = out if out is not None else EntryOutcome(entry=str(entry))
    t0 = time.monotonic()
    stage = "fetch"
    wants = False
    # the step names errors carry -> the stages ``on_stage`` is told
    shown = {"fetch": "fetching", "train": "training", "promote": "promoting", "forecast": "forecasting"}

    def between(next_stage: str) -> None:
        nonlocal stage
        if stop is not None:
            stop.check()
        stage = next_stage
        if next_stage in shown:
            _tell(steps, log, out.entry, shown[next_stage], out)

    try:
        if phase in ("all", "before"):
            _tell(steps, log, out.entry, "fetching", out)
            fetched = steps.fetch(entry)
            if fetched.skipped:
                log.info("%s: not fetched: %s", entry, fetched.skipped)
            else:
                out.fetched = fetched.rows_added
                log.info(
                    "%s: fetched %d new bar(s)%s",
                    entry,
                    fetched.rows_added,
                    f", last {fetched.last}" if fetched.last else "",
                )
            between("check")
            wants = force or steps.needs_training(entry)
            if not wants:
                log.info("%s: no new complete bars since the current model's data; not retrained", entry)
            if phase == "before":
                return out, wants
            if wants:
                between("train")
                out.trained = steps.train_challenger(entry, config.effective(entry))
        else:
            stage = "train"
            if isinstance(trained, BaseException):
                raise trained
            out.trained = trained
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
                "%s: challenger %s %.6g vs %s%s: %s",
                entry,
                promo.metric,
                promo.challenger,
                champ,
                f" on {promo.origins} held-out origin(s) {promo.span}" if promo.origins else "",
                "promoted" if promo.promoted else "kept the champion",
            )
        between("forecast")
        fc = steps.forecast(entry)
        with stop.critical() if stop is not None else contextlib.nullcontext():  # history + latest.json
            out.forecast, out.scored = _record_forecast(data_dir, fc, gamma=config.run.aci_gamma, log=log,
                                                        label=str(entry))
        log.info(
            "%s: forecast %s (model %s)%s",
            entry,
            out.forecast_line,
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
        _stop_if_requested(stop, f"{stage} of {entry}", e)
        out.error = f"{stage}: {e}"
        log.error("%s: failed at %s: %s", entry, stage, e)
    except Exception as e:  # a bug in one entry must not stop the others; keep its traceback in the log
        _stop_if_requested(stop, f"{stage} of {entry}", e)
        out.error = f"{stage}: {type(e).__name__}: {e}"
        log.exception("%s: failed at %s with an unexpected error", entry, stage)
    finally:
        out.seconds = round(out.seconds + time.monotonic() - t0, 3)
    if not out.ok:
        _tell(steps, log, out.entry, "failed", out)
    elif phase != "before":
        log.info("%s: ok in %.1fs", entry, out.seconds)
        _tell(steps, log, out.entry, "done", out)
    return out, wants


def _stop_if_requested(stop: Any | None, where: str, e: Exception) -> None:
    """A step's own error wrapping (a vendor classifier, ``fetch_series``' result) can turn the stop
    into an ordinary failure of one entry; when a stop was requested it is still a stop of the run."""
    if stop is not None and stop.signal is not None:
        raise InterruptedRun(f"stopped by signal during {where}: {e}") from e


def _record_forecast(
    data_dir: Path, fc: Any, *, gamma: float, log: logging.Logger | None = None, label: str = ""
) -> tuple[dict[str, Any], int]:
    """Score earlier rows against the stored prices, fold the newly realised ones into the series'
    ACI levels (``liveaci``), read the forecast's interval at those levels, and write it into the
    history and ``latest.json``; returns the forecast as recorded and how many earlier rows were scored."""
    from lstmcast import forecasts, liveaci
    from lstmcast.data.store import Store

    store = Store(data_dir)
    frame = store.load(fc.key) if store.exists(fc.key) else None
    before = forecasts.load_history(data_dir, fc.key)
    scored_now = before if frame is None else forecasts.score(before, frame, interval=fc.key.interval)
    state, warning = liveaci.load(data_dir, fc.key, level=fc.level or FORECAST_LEVEL, gamma=gamma)
    if warning and log is not None:
        log.warning("%s: %s", label or fc.key, warning)
    state, used = liveaci.update(state, scored_now, origin=fc.origin)
    fc = liveaci.apply(state, fc)
    history = forecasts.record(data_dir, fc, frame=frame)
    liveaci.save(data_dir, fc.key, state)  # after the history: a crash between leaves the rows unread
    if used and log is not None:
        lo, hi = state.read_tails(1)
        log.info("%s: %d realised forecast row(s) moved the interval's tail levels to %.4g / %.4g (aci)",
                 label or fc.key, used, lo, hi)
    scored = int(history["actual"].notna().sum()) - int(before["actual"].notna().sum())
    return fc.to_dict(), max(scored, 0)


# -- the real steps: each one a pipeline ----------------------------------------------------------
FORECAST_LEVEL = 0.8  # the interval written with each forecast (needs 4 calibration residuals)
LOGGER = "lstmcast"  # runlog.LOGGER_NAME: its handlers (file + terminal) receive the steps' records

# names earlier versions imported from here
__all__ = ["IMPORT_SOURCE", "FetchResult", "Promotion", "Steps", "default_steps", "is_fetchable", "run_watchlist",
           "run_settings", "series_key", "should_promote", "train_setup"]


def default_steps(
    data_dir: Path,
    config: RunConfig,
    *,
    fetch_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    log: logging.Logger | None = None,
    executor: str | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
) -> Steps:
    """The real steps for ``lstmcast run``.

    ``fetch_options`` go to ``data.update.fetch_series`` (``session``, ``exchange_overrides``,
    ``sleep``, ``policy``: the seams tests use to reach fake far ends); ``train_options`` to the
    ``TrainConfig`` of every challenger (e.g. ``threads=1``). ``executor`` / ``workers`` /
    ``ray_address`` (else the config's ``[run]`` table): with an executor, the challengers are
    trained together as its tasks (workers fit, this process saves); without, one after another.
    """
    real = _RealSteps(
        Path(data_dir),
        config,
        fetch_options=dict(fetch_options or {}),
        train_options=dict(train_options or {}),
        log=log or logging.getLogger(f"{LOGGER}.steps"),
    )
    run = config.run
    real.executor = executor or run.executor
    real.workers = workers if workers is not None else run.workers
    real.ray_address = ray_address or run.ray_address
    steps = real.steps()
    if real.executor is None:
        if real.workers is not None or real.ray_address:
            from lstmcast.errors import UsageError

            raise UsageError("--workers and ray_address need an executor (--executor serial|local|ray)")
        return steps
    from dataclasses import replace

    from lstmcast.errors import UsageError
    from lstmcast.executor import BACKENDS

    if real.executor not in BACKENDS:  # refused before anything is fetched (make_executor says the same later)
        raise UsageError(f"unknown executor {real.executor!r}: choose one of {', '.join(BACKENDS)}")
    if real.workers is not None and real.workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {real.workers})")
    if real.ray_address and real.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")

    return replace(steps, train_challengers=real.train_challengers)



class _RealSteps:
    """The steps of ``lstmcast run``, each one a pipeline over the store and the registry."""

    def __init__(
        self,
        data_dir: Path,
        config: RunConfig,
        *,
        fetch_options: dict[str, Any],
        train_options: dict[str, Any],
        log: logging.Logger,
    ) -> None:
        from lstmcast.data.store import Store

        self.data_dir, self.config, self.log = data_dir, config, log
        self.fetch_options, self.train_options = fetch_options, train_options
        self.store = Store(data_dir)
        self.executor: str | None = None
        self.workers: int | None = None
        self.ray_address: str | None = None

    def steps(self) -> Steps:
        return Steps(
            fetch=self.fetch,
            needs_training=self.needs_training,
            train_challenger=self.train_challenger,
            evaluate_and_promote=self.evaluate_and_promote,
            forecast=self.forecast,
            prune=self.prune,
        )

    def fetch(self, entry: WatchEntry) -> FetchResult:
        from lstmcast.pipelines.fetch import fetch_entry

        return fetch_entry(self.store, entry, log=self.log, accept_partial=self.config.accept_partial_fetch,
                           **self.fetch_options)

    def needs_training(self, entry: WatchEntry) -> bool:
        import pandas as pd

        from lstmcast.pipelines.promote import current_model

        key = series_key(entry)
        current = current_model(self.data_dir, key, log=self.log)
        if current is None:
            return True
        model_last = (current.meta.get("data") or {}).get("last")
        data_last = self.store.manifest(key).get("last")
        return model_last is None or (
            data_last is not None and pd.Timestamp(data_last) > pd.Timestamp(model_last)
        )

    def settings_of(self, entry: WatchEntry, settings: ModelDefaults) -> ModelDefaults:
        s = run_settings(settings, **self.train_options)
        self.log.info(
            "%s: training a challenger (%s, look-back %d, horizon %d, %s target, hidden %d x %d, up to %d epochs)",
            entry, s.family, s.lookback, s.horizon, s.target, s.hidden, s.layers, s.epochs,
        )
        return s

    def train_challenger(self, entry: WatchEntry, settings: ModelDefaults) -> str | None:
        from lstmcast.pipelines.train import train_series

        key = series_key(entry)
        s = self.settings_of(entry, settings)

        def progress(s: Any) -> None:
            self.log.debug(
                "%s: epoch %d/%d train loss %.4g, val loss %.4g", entry, s.epoch, s.epochs, s.train_loss, s.val_loss
            )

        report = train_series(self.store, key.spec, interval=key.interval, settings=s, promote=False,
                              progress=progress)
        return challenger_id(report)

    def train_challengers(self, items: list[tuple[WatchEntry, ModelDefaults]], *,
                          on_done: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Every entry's challenger as one task of the executor (``pipelines.train.train_many``);
        ``on_done(str(entry))`` as each task finishes (in this process, before its run is saved)."""
        from lstmcast import executor as X
        from lstmcast.pipelines.train import train_many

        ex = X.make_executor(self.executor, n_tasks=len(items), workers=self.workers, ray_address=self.ray_address)
        self.log.info("training %d challenger(s) on the %s executor (%d worker(s), %d thread(s) each)",
                      len(items), ex.name, ex.workers, ex.threads)
        out: dict[str, Any] = {}
        todo = []
        for entry, settings in items:
            try:  # the executor's thread budget per task, unless the settings name one
                s = self.settings_of(entry, settings.with_values({"threads": settings.threads or ex.threads}))
                todo.append((str(entry), series_key(entry), s))
            except Exception as e:  # this entry fails at train; the others go on
                out[str(entry)] = e
        with ex:
            reports = train_many(self.store, todo, executor=ex, promote=False, log=self.log,
                                 on_progress=None if on_done is None else lambda done, total, name: on_done(name))
        for name, r in reports.items():
            try:
                out[name] = r if isinstance(r, BaseException) else challenger_id(r)
            except Exception as e:
                out[name] = e
        return out

    def evaluate_and_promote(self, entry: WatchEntry, run_id: str) -> Promotion:
        from lstmcast.pipelines.promote import evaluate_and_promote

        return evaluate_and_promote(self.store, series_key(entry), run_id, promotion=self.config.promotion,
                                    log=self.log, label=str(entry))

    def forecast(self, entry: WatchEntry) -> Any:
        import math

        from lstmcast.forecasts import Forecast
        from lstmcast.pipelines.predict import predict_series  # numpy on the CPU: no torch import

        key = series_key(entry)
        r = predict_series(self.store, key.spec, interval=key.interval, levels=(FORECAST_LEVEL,), calibration=True)
        for w in r.warnings:
            if w.startswith("data is stale") and not is_fetchable(entry.source):
                continue  # an imported series is as fresh as its last import; `fetch` cannot help
            self.log.warning("%s: %s", entry, w)
        bounds = [s.intervals.get(FORECAST_LEVEL) for s in r.steps]
        finite = all(b is not None and math.isfinite(b[0]) and math.isfinite(b[1]) for b in bounds)
        return Forecast(
            key=r.key,
            run_id=r.run_id,
            origin=r.data_last,
            last_close=r.last_close,
            target_times=tuple(s.time for s in r.steps),
            predicted=tuple(s.predicted for s in r.steps),
            lower=tuple(b[0] for b in bounds) if finite else None,  # type: ignore[index]
            upper=tuple(b[1] for b in bounds) if finite else None,  # type: ignore[index]
            level=FORECAST_LEVEL if finite else None,
            calibration=r.calibration,  # the run reads the interval at its ACI levels from these
            mode=r.mode,
        )

    def prune(self, entry: WatchEntry, keep: int) -> list[str]:
        from lstmcast import registry

        return registry.prune_runs(self.data_dir, series_key(entry), keep)


def challenger_id(report: Any) -> str:
    """The run id of a trained challenger (a ``pipelines.train.TrainReport``), or why it is none."""
    if report.interrupted:  # Ctrl-C inside the loop: saved as interrupted, never a challenger
        raise InterruptedRun(f"training of {report.key} was interrupted (run {report.run.run_id} kept, not current)")
    if report.incomplete_reason:  # not a real model: it never competes with the champion
        raise ModelError(
            f"challenger {report.run.run_id} is incomplete ({report.incomplete_reason}); the champion stays"
        )
    return report.run.run_id
