"""`lstmcast schedule install|show|remove`: the crontab entry that runs `lstmcast run`."""

from __future__ import annotations

from pathlib import Path

import typer

from lstmcast.cli import common

schedule_app = typer.Typer(
    help="Install, show or remove the cron entry that runs `lstmcast run`.", no_args_is_help=True
)

_TABFILE = typer.Option(None, "--tabfile", hidden=True, help="Edit this file instead of the user's crontab.")


def _times(times) -> list[str]:
    return [t.isoformat(timespec="minutes") for t in times]


@schedule_app.command("install")
def install_cmd(
    ctx: typer.Context,
    cron: str = typer.Option("0 6 * * *", "--cron", metavar="'M H DOM MON DOW'",
                             help="When to run: five cron fields (local time), e.g. '30 22 * * 1-5'."),
    config: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="Config file (default: $LSTMCAST_CONFIG, else DATA_DIR/lstmcast.toml)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the entry; change nothing."),
    tabfile: Path | None = _TABFILE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add the cron entry for this data directory (replacing ours if present; other entries untouched)."""
    from lstmcast import schedule, workspace
    from lstmcast.workspace import find_config

    data_dir = common.settings(ctx).data_dir
    schedule.check_cron(cron)  # a bad expression is named first, whatever else is missing
    path = find_config(config, data_dir=data_dir)
    if dry_run:
        entry = schedule.entry_line(cron, config_path=path, data_dir=data_dir)
    else:
        entry = schedule.install(cron, config_path=path, data_dir=data_dir, tabfile=tabfile)
    times = schedule.next_runs(entry.cron, n=3)
    if as_json:
        common.print_json(
            {
                "installed": not dry_run,
                "line": entry.line,
                "cron": entry.cron,
                "command": entry.command,
                "next_runs": _times(times),
                "log": str(schedule.cron_log_path(data_dir)),
            }
        )
        return
    con = common.out()
    con.print(("would install" if dry_run else "installed") + ":", markup=False)
    con.print(entry.line, markup=False, soft_wrap=True)
    con.print(f"next runs: {', '.join(_times(times))}", markup=False, soft_wrap=True)
    con.print(
        f"output goes to {schedule.cron_log_path(data_dir)}; the run log is "
        f"{workspace.log_path(data_dir)}",
        markup=False,
        soft_wrap=True,
    )


@schedule_app.command("show")
def show_cmd(
    ctx: typer.Context,
    n: int = typer.Option(5, "--next", "-n", min=1, max=100, metavar="N", help="How many upcoming run times."),
    tabfile: Path | None = _TABFILE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show this data directory's cron entry and its next run times."""
    from lstmcast import schedule

    data_dir = common.settings(ctx).data_dir
    entry, times = schedule.show(data_dir=data_dir, tabfile=tabfile, n=n)
    if as_json:
        common.print_json(
            {
                "installed": entry is not None,
                "line": entry.line if entry else None,
                "cron": entry.cron if entry else None,
                "next_runs": _times(times),
            }
        )
        return
    con = common.out()
    if entry is None:
        con.print(f"no lstmcast entry for {data_dir}; add one with `lstmcast schedule install`", markup=False)
        return
    con.print(common.key_values(
        [("cron", entry.cron), ("command", entry.command), *(("next run", t) for t in _times(times))],
        title=f"cron entry for {data_dir}",
    ))


@schedule_app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    tabfile: Path | None = _TABFILE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove this data directory's cron entry (only ours; nothing else changes)."""
    from lstmcast import schedule

    data_dir = common.settings(ctx).data_dir
    entry = schedule.remove(data_dir=data_dir, tabfile=tabfile)
    if as_json:
        common.print_json({"removed": entry is not None, "line": entry.line if entry else None})
        return
    msg = f"removed: {entry.line}" if entry else f"no lstmcast entry for {data_dir}; nothing changed"
    common.out().print(msg, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
