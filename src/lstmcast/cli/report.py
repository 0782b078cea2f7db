"""`lstmcast report`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common


def report_cmd(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL of a stored series."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write [default: SYMBOL-INTERVAL-report.html here]."
    ),
    interval: str = typer.Option("1d", "--interval", "-i", help="Bar interval."),
    start: str | None = typer.Option(None, "--start", help="First forecast origin (date) [default: last 250 bars]."),
    end: str | None = typer.Option(None, "--end", help="Last forecast origin (date)."),
    horizon: int | None = typer.Option(None, "--horizon", help="Bars ahead [default: the model setup's]."),
    refit_every: int = typer.Option(20, "--refit-every", min=1, help="Refit the model every K origins."),
    fee_bps: float = typer.Option(10.0, "--fee-bps", min=0.0, help="Fee per trade in basis points."),
    intervals: str = typer.Option("adaptive", "--intervals", help="adaptive or split (both are scored)."),
    use_model: str | None = typer.Option(None, "--model", help="Take the model settings from this run."),
    family: str | None = typer.Option(None, "--model-family", help="Model family [default: lstm]."),
    lookback: int | None = typer.Option(None, "--lookback"),
    epochs: int | None = typer.Option(None, "--epochs"),
    seed: int | None = typer.Option(None, "--seed", help="Random seed: the same seed repeats the same results."),
    as_json: bool = typer.Option(False, "--json", help="Print {\"report\": PATH, ...} instead of a line."),
) -> None:
    """Run a walk-forward backtest and write it as one self-contained HTML page: leaderboard,
    calibration (reliability diagram, PIT), equity curves, drawdowns and the run's settings.

    The page embeds its figures and needs no server or internet connection.
    """
    from lstmcast.atomic import write_text
    from lstmcast.errors import UsageError
    from lstmcast.evaluate.backtest import BacktestConfig
    from lstmcast.evaluate.html_report import render_html
    from lstmcast.evaluate.metrics import MASE_SCALE_WINDOW
    from lstmcast.evaluate.report import INTERVAL_CHOICES
    from lstmcast.forecast import backtest_series, default_setup_options

    if intervals not in INTERVAL_CHOICES:
        raise UsageError(f"--intervals must be one of {', '.join(INTERVAL_CHOICES)}, got {intervals!r}")
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--output {output}: the report is an HTML file (.html)")
    st = common.store(ctx)
    options: dict[str, Any] = default_setup_options(st, symbol, interval=interval, run_id=use_model)
    flags = {"lookback": lookback, "horizon": horizon, "epochs": epochs, "seed": seed, "family": family,
             "interval": interval}
    setup = common.training_setup(flags, base=options)
    bt = BacktestConfig(horizon=setup.features.horizon, refit_every=refit_every, fee_bps=fee_bps,
                        intervals=intervals, scale_window=MASE_SCALE_WINDOW)
    report = backtest_series(st, symbol, interval=interval, settings=setup.settings, config=bt, start=start, end=end)
    path = output or Path(re.sub(r"[^A-Za-z0-9._-]+", "_", f"{report.key.symbol}-{report.key.interval}-report.html"))
    write_text(path, render_html(report))
    if as_json:
        common.print_json({"report": str(path), "series": report.key.spec, "interval": report.key.interval,
                           "verdict": report.result.verdict})
    else:
        common.out().print(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
