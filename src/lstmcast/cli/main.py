"""Root app, global options and the single error boundary.

A ``LstmcastError`` becomes one red line on stderr and its documented exit code; with
``--verbose`` it keeps its traceback. Any other exception is a bug and keeps its traceback, with
locals hidden (they may hold API keys).
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from lstmcast import __version__
from lstmcast.errors import EXIT_INTERRUPTED, LstmcastError


class _Boundary(TyperGroup):
    """Every subcommand runs inside this group's ``invoke``: the one place errors are rendered."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except LstmcastError as e:
            obj = ctx.obj
            if getattr(obj, "verbose", False):
                raise
            from lstmcast.cli.common import print_error

            print_error(e)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            from lstmcast.cli.common import err

            err().print("[yellow]interrupted[/]", markup=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=_Boundary,
    name="lstmcast",
    help="Forecast stock and crypto prices with an LSTM, and say honestly whether it beats the naive forecast.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstmcast {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: $LSTMCAST_HOME, else ./data).", show_default=False
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    from lstmcast.config import AppSettings, resolve_data_dir

    try:
        ctx.obj = AppSettings(data_dir=resolve_data_dir(data_dir), verbose=verbose)
    except LstmcastError as e:
        from lstmcast.cli.common import print_error

        print_error(e)
        raise typer.Exit(e.exit_code) from None


def _register() -> None:
    # Each command module adds its commands through register(app); its top-level imports stay light
    # (no torch, pandas, yfinance or ccxt) so that `lstmcast --help` starts fast.
    from lstmcast.cli import backtest, data, fetch, forecasts, models, predict, run, schedule, settings_cmd, train
    from lstmcast.cli import status as status_cmd

    data.register(app)
    fetch.register(app)
    train.register(app)
    models.register(app)
    predict.register(app)
    backtest.register(app)
    run.register(app)
    schedule.register(app)
    forecasts.register(app)
    settings_cmd.register(app)
    status_cmd.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
