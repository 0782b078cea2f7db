"""`lstmcast report`."""

from __future__ import annotations

import re
from pathlib import Path

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
    horizon: int | None = common.scored_horizon_option(),
    train_horizon: int | None = common.train_horizon_option(),
    refit_every: int = typer.Option(20, "--refit-every", min=1, help="Refit the model every K origins."),
    fee_bps: float = typer.Option(10.0, "--fee-bps", min=0.0, help="Fee per trade in basis points."),
    intervals: str = typer.Option("adaptive", "--intervals", help="adaptive or split (both are scored)."),
    use_model: str | None = typer.Option(None, "--model", help="Take the model settings from this run."),
    family: str | None = typer.Option(
        None, "--model-family", help=f"Model family: {common.HELP_FAMILY} [default: the model setup's, else lstm]."
    ),
    lookback: int | None = typer.Option(None, "--lookback"),
    epochs: int | None = typer.Option(None, "--epochs"),
    seed: int | None = typer.Option(None, "--seed", help="Random seed: the same seed repeats the same results."),
    executor: str | None = common.executor_option("local when there are several refits"),
    workers: int | None = common.workers_option(),
    ray_address: str | None = common.ray_address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print {\"report\": PATH, ..., \"steps\"} instead of a line."),
) -> None:
    """Run a walk-forward backtest and write it as one self-contained HTML page: leaderboard,
    per-step accuracy and coverage (direct and recursive steps, as `backtest --horizon N`),
    calibration (reliability diagram, PIT), equity curves, drawdowns and the run's settings.

    The page embeds its figures and needs no server or internet connection.
    """
    import contextlib

    from lstmcast.atomic import write_text
    from lstmcast.cli.backtest import parse_families, task_bar, walk_forward_setup
    from lstmcast.errors import UsageError
    from lstmcast.evaluate.backtest import BacktestConfig
    from lstmcast.evaluate.html_report import render_html
    from lstmcast.evaluate.metrics import MASE_SCALE_WINDOW
    from lstmcast.evaluate.report import INTERVAL_CHOICES
    from lstmcast.executor import make_executor
    from lstmcast.pipelines.backtest import BacktestReport, backtest_many

    if intervals not in INTERVAL_CHOICES:
        raise UsageError(f"--intervals must be one of {', '.join(INTERVAL_CHOICES)}, got {intervals!r}")
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--output {output}: the report is an HTML file (.html)")
    common.check_executor_flags(executor, workers, ray_address)
    families = parse_families(family)
    if len(families) > 1:
        raise UsageError(f"--model-family: the report shows one family, got {family} (compare several with backtest)")
    st = common.store(ctx)
    flags = {"lookback": lookback, "epochs": epochs, "seed": seed}
    setup = walk_forward_setup(st, [symbol], interval=interval, use_model=use_model, families=families,
                               horizon=horizon, train_horizon=train_horizon, flags=flags)
    bt = BacktestConfig(horizon=setup.base.features.horizon, refit_every=refit_every, fee_bps=fee_bps,
                        intervals=intervals, scale_window=MASE_SCALE_WINDOW)
    with contextlib.nullcontext((None, None)) if as_json else task_bar(bt, setup.families) as (on_plan, on_progress):
        multi = backtest_many(st, [symbol], interval=interval, settings_for=setup.settings_for,
                              families=setup.families, config=bt, start=start, end=end,
                              executor=lambda n: make_executor(executor, n_tasks=n, workers=workers,
                                                               ray_address=ray_address),
                              on_plan=on_plan, on_progress=on_progress, horizon=horizon)
    if multi.failures:  # one series, one family: its error and exit code
        f = multi.failures[0]
        if f.exc is not None:
            raise f.exc
        from lstmcast.errors import ModelError

        raise ModelError(f.line())
    s = multi.series[0]
    fam = next(iter(s.results))
    report = BacktestReport(key=s.key, index=s.index, result=s.first, setup={**s.setup, "intervals": intervals},
                            scoring=s.scoring.get(fam))
    path = output or Path(re.sub(r"[^A-Za-z0-9._-]+", "_", f"{report.key.symbol}-{report.key.interval}-report.html"))
    write_text(path, render_html(report))
    r = report.result
    if as_json:
        common.print_json({"report": str(path), "series": report.key.spec, "interval": report.key.interval,
                           "verdict": r.verdict, "horizon": r.config.horizon,
                           "trained_horizon": r.config.trained_horizon, "steps": r.steps()})
    else:
        common.out().print(f"report: {path}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
