"""`lstmcast init` and `lstmcast run` (the command cron calls)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import typer

from lstmcast.cli import common


def init_cmd(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Overwrite an existing lstmcast.toml."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write a commented example lstmcast.toml (defaults, promotion, watchlist) into the data directory."""
    from lstmcast.config import write_example_config

    path = write_example_config(common.settings(ctx).data_dir, force=force)
    if as_json:
        common.print_json({"config": str(path)})
        return
    common.out().print(
        f"wrote {path}; edit the [[watchlist]] entries, then try `lstmcast run`", markup=False, soft_wrap=True
    )


def run_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="Config file (default: $LSTMCAST_CONFIG, else DATA_DIR/lstmcast.toml)."
    ),
    only: list[str] | None = typer.Option(
        None, "--only", help="Run only this watchlist symbol (repeatable, or comma-separated)."
    ),
    force: bool = typer.Option(False, "--force", help="Train a challenger even without new bars."),
    executor: str | None = common.executor_option(
        "the config's [run] executor, else one entry after another; with one, the challengers train together"
    ),
    workers: int | None = common.workers_option(),
    ray_address: str | None = common.ray_address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Fetch, retrain, promote and forecast every watchlist entry; the command cron runs.

    After the run, each entry's live checks (decay, coverage, drift, staleness) go to the log and to
    checks.json beside its forecast history, the run to DATA_DIR/logs/runs.jsonl, and one
    notification to the [notify] URLs; neither the checks nor a notification changes the exit code.

    On a terminal, one live line per entry shows its stage and result (warnings and errors above
    it); elsewhere, and with --json, the log lines go to stderr.

    Exit codes: 0 all entries succeeded, 3 some failed, 1 all failed, 75 another run holds the
    lock, 130 stopped by SIGTERM or Ctrl-C. Logs go to DATA_DIR/logs/lstmcast.log.
    """
    from lstmcast import runlog, runner
    from lstmcast.config import load_config
    from lstmcast.errors import InterruptedRun, LockedError
    from lstmcast.pipelines import live
    from lstmcast.workspace import find_config

    settings = common.settings(ctx)
    data_dir = settings.data_dir
    path = find_config(config, data_dir=data_dir)
    cfg = load_config(path)
    picked = [s.strip() for item in (only or []) for s in item.split(",") if s.strip()]
    cfg.select(picked)  # an unknown --only fails before anything is locked or logged
    steps = runner.default_steps(data_dir, cfg, executor=executor, workers=workers, ray_address=ray_address)
    level = "DEBUG" if settings.verbose else cfg.log.level
    logs = {"level": level, "max_bytes": cfg.log.max_bytes, "backups": cfg.log.backups}
    try:
        lock = runlog.run_lock(data_dir)
        lock.__enter__()
    except LockedError as e:
        with runlog.run_logging(data_dir, terminal=False, **logs) as log:
            log.error("%s", e)  # so the log shows why a scheduled run did nothing
        raise
    # on a terminal, one live line per entry (run_display); cron, pipes and --json: the plain log lines
    live_lines = not as_json and sys.stderr.isatty()
    try:
        with runlog.run_logging(data_dir, terminal=not live_lines, **logs) as log, runlog.sigterm_stops() as stop, \
                _status(log, live_lines, verbose=settings.verbose) as display:
            log.info("config %s, data directory %s", path, data_dir)
            started = _utc_iso()
            try:
                with display.showing() if display else contextlib.nullcontext():
                    summary = runner.run_watchlist(
                        data_dir,
                        cfg,
                        only=picked,
                        force=force,
                        steps=replace(steps, on_stage=display.on_stage) if display else steps,
                        log=log,
                        stop=stop,
                    )
            except InterruptedRun:
                # the summary so far stays inside the runner; record that the run did not finish
                with contextlib.suppress(Exception):
                    runlog.append_run_record(data_dir, {"run_id": None, "started": started, "finished": _utc_iso(),
                                                        "interrupted": True, "exit_code": 130, "entries": []})
                raise
            report = live.after_run(
                data_dir, cfg, summary.to_dict(), entries=cfg.select(picked), key_of=runner.series_key,
                is_fetchable=runner.is_fetchable, log=log,
            )
    finally:
        lock.__exit__(None, None, None)
    if as_json:
        common.print_json({**summary.to_dict(), **report.to_dict()})
    else:
        _render(summary)
        _render_live(report)
    raise typer.Exit(summary.exit_code)


def _status(log, live_lines: bool, *, verbose: bool):  # type: ignore[no-untyped-def]
    """The live display's context (``run_display.terminal_status``), or one that yields None."""
    if not live_lines:
        return contextlib.nullcontext()
    from lstmcast.cli.run_display import terminal_status

    return terminal_status(log, verbose=verbose)


def _utc_iso() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _render_live(report) -> None:
    con = common.out()
    for e in report.entries:
        if e.error:
            con.print(f"{e.entry}: live checks not computed: {e.error}", markup=False, soft_wrap=True)
        for c in e.checks:
            if c.flagged:
                con.print(f"{e.entry}: {c.name}: {c.reason}", style="yellow", markup=False, soft_wrap=True)
    for d in report.deliveries:
        what = "sent" if d.delivered else f"NOT delivered ({d.error})"
        con.print(f"notification to {d.target}: {what}", markup=False, soft_wrap=True)


def _render(summary) -> None:
    from rich.text import Text

    con = common.out()
    if not summary.entries:
        con.print(
            "watchlist is empty: nothing to do (add [[watchlist]] entries to lstmcast.toml)", markup=False
        )
        return

    def show(v) -> str:
        return "-" if v is None else ("yes" if v is True else "no" if v is False else str(v))

    C = common.Col
    cols = [C("entry", common.ID), C("fetched", common.ID, drop=1), C("trained", common.ID, drop=1),
            C("promoted", common.ID), C("forecast", common.ID), C("error", common.TEXT)]
    short = common.short_ids([e.trained for e in summary.entries if isinstance(e.trained, str)])
    rows = [[Text(e.entry), Text(show(e.fetched)), Text(short.get(e.trained, show(e.trained))), Text(show(e.promoted)),
             Text(show(e.forecast_line)), Text(e.error or "", style="red")] for e in summary.entries]
    con.print(common.table(f"lstmcast run {summary.run_id}", cols, rows))

def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    app.command("run")(run_cmd)
