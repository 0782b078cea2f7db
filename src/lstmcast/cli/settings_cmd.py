"""`lstmcast config show`: the effective settings and where each value came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common

config_app = typer.Typer(help="Inspect the settings lstmcast trains with.", no_args_is_help=True)


def show_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", metavar="FILE",
        help="lstmcast.toml or a file with a [train] table (default: $LSTMCAST_CONFIG, "
        "else DATA_DIR/lstmcast.toml, else none)."
    ),
    entry: str | None = typer.Option(None, "--entry", metavar="SYMBOL",
                                     help="Show the settings of this watchlist symbol."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the effective feature, model and training settings and where each value came from
    (default, the file's [defaults]/[train] table with its line, or a watchlist entry's overrides)."""
    from lstmcast.pipelines.settings import effective_settings

    report = effective_settings(common.settings(ctx).data_dir, config=config, entry=entry)
    if as_json:
        common.print_json(report)
        return
    from rich.markup import escape

    con = common.out()
    con.print(f"config: {report['config'] or 'none (built-in defaults)'}"
              + (f"; entry {report['entry']}" if report["entry"] else ""), markup=False)
    cols = [common.Col("setting", common.ID), common.Col("value", common.ID), common.Col("from", common.TEXT)]
    rows = [[escape(key), escape(_show(value)), escape(report["sources"][key])]
            for key, value in report["settings"].items()]
    t = common.table(None, cols, rows)
    con.print(t)
    con.print(f"lstmcast run without a threads setting uses {report['run_threads_default']} torch thread(s) "
              "per process", markup=False)


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def register(app: typer.Typer) -> None:
    config_app.command("show")(show_cmd)
    app.add_typer(config_app, name="config")
