"""`lstmcast init` and `lstmcast run` (the command cron calls)."""

from __future__ import annotations

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
    executor: str | None = typer.Option(
        None, "--executor",
        help="Train the challengers together as tasks of serial, local (process pool) or ray "
        "[default: the config's [run] executor, else one entry after another].",
    ),
    workers: int | None = typer.Option(None, "--workers", help="Parallel tasks [default: one per core]."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="With --executor ray: auto or ray://host:port [default: a local Ray]."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Fetch, retrain, promote and forecast every watchlist entry; the command cron runs.

    Exit codes: 0 all entries succeeded, 3 some failed, 1 all failed, 75 another run holds the
    lock, 130 stopped by SIGTERM or Ctrl-C. Logs go to DATA_DIR/logs/lstmcast.log.
    """
    from lstmcast import runlog, runner
    from lstmcast.config import find_config, load_config
    from lstmcast.errors import LockedError

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
    try:
        with runlog.run_logging(data_dir, **logs) as log, runlog.sigterm_stops() as stop:
            log.info("config %s, data directory %s", path, data_dir)
            summary = runner.run_watchlist(
                data_dir,
                cfg,
                only=picked,
                force=force,
                steps=steps,
                log=log,
                stop=stop,
            )
    finally:
        lock.__exit__(None, None, None)
    if as_json:
        common.print_json(summary.to_dict())
    else:
        _render(summary)
    raise typer.Exit(summary.exit_code)


def _render(summary) -> None:
    from rich.table import Table
    from rich.text import Text

    con = common.out()
    if not summary.entries:
        con.print(
            "watchlist is empty: nothing to do (add [[watchlist]] entries to lstmcast.toml)", markup=False
        )
        return
    t = Table(title=f"lstmcast run {summary.run_id}")
    for col in ("entry", "fetched", "trained", "promoted", "forecast", "error"):
        t.add_column(col, overflow="fold")

    def show(v) -> str:
        return "-" if v is None else ("yes" if v is True else "no" if v is False else str(v))

    for e in summary.entries:
        t.add_row(
            e.entry,
            show(e.fetched),
            show(e.trained),
            show(e.promoted),
            show(e.forecast),
            Text(e.error or "", style="red"),
        )
    con.print(t)


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    app.command("run")(run_cmd)
