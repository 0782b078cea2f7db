"""`lstmcast backtest`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common


def backtest_cmd(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL of a stored series."),
    interval: str = typer.Option("1d", "--interval", "-i", help="Bar interval."),
    start: str | None = typer.Option(None, "--start", help="First forecast origin (date) [default: last 250 bars]."),
    end: str | None = typer.Option(None, "--end", help="Last forecast origin (date)."),
    horizon: int | None = typer.Option(None, "--horizon", help="Bars ahead [default: the model setup's]."),
    refit_every: int = typer.Option(20, "--refit-every", min=1, help="Refit the model every K origins."),
    window: str = typer.Option("expanding", "--window", help="expanding or rolling training window."),
    train_size: int | None = typer.Option(None, "--train-size", help="Rows per fit for --window rolling."),
    fee_bps: float = typer.Option(10.0, "--fee-bps", min=0.0, help="Fee per trade in basis points."),
    long_short: bool = typer.Option(False, "--long-short", help="Short when the forecast is below minus the fee."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG: forecast vs actual, equity, PIT."),
    intervals: str = typer.Option(
        "adaptive", "--intervals", help="adaptive (volatility-scaled, ACI) or split conformal; both are scored."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write every origin and step's forecasts: .csv, .parquet or .json."
    ),
    use_model: str | None = typer.Option(
        None, "--model", help="Take the model settings from this run [default: the current model's, if any]."
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file with a [train] table."),
    lookback: int | None = typer.Option(None, "--lookback"),
    hidden: int | None = typer.Option(None, "--hidden"),
    layers: int | None = typer.Option(None, "--layers"),
    epochs: int | None = typer.Option(None, "--epochs"),
    patience: int | None = typer.Option(None, "--patience"),
    target: str | None = typer.Option(None, "--target", help="return or price."),
    device: str | None = typer.Option(None, "--device"),
    family: str | None = typer.Option(
        None, "--model-family", help="lstm, gru, linear, naive, drift, moving_average or mean_return [default: lstm]."
    ),
    threads: int | None = typer.Option(None, "--threads"),
    seed: int | None = typer.Option(None, "--seed", help="Random seed: the same seed repeats the same results."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON, with the per-origin records."),
) -> None:
    """Walk-forward backtest: refit the LSTM as time moves on and score it against naive, drift,
    moving-average and mean-return forecasts on exactly the same origins, with a trading strategy.

    At every origin only data up to that origin fits the scaler and the model; between refits the
    last model is reused without peeking.
    """
    from lstmcast import train as T
    from lstmcast.cli import backtest_render
    from lstmcast.evaluate.backtest import BacktestConfig
    from lstmcast.evaluate.metrics import MASE_SCALE_WINDOW
    from lstmcast.evaluate.report import INTERVAL_CHOICES
    from lstmcast.forecast import backtest_series, default_setup_options

    if intervals not in INTERVAL_CHOICES:
        from lstmcast.errors import UsageError

        raise UsageError(f"--intervals must be one of {', '.join(INTERVAL_CHOICES)}, got {intervals!r}")
    backtest_render.check_output(output)
    st = common.store(ctx)
    options: dict[str, Any] = default_setup_options(st, symbol, interval=interval, run_id=use_model)
    if config:
        options.update(T.read_config_file(config))
    flags = {"lookback": lookback, "horizon": horizon, "hidden": hidden, "layers": layers, "epochs": epochs,
             "patience": patience, "target": target, "device": device, "threads": threads, "seed": seed,
             "family": family, "interval": interval}
    setup = common.training_setup(flags, base=options)
    bt = BacktestConfig(
        horizon=setup.features.horizon, refit_every=refit_every, window=window, train_size=train_size,
        fee_bps=fee_bps, long_short=long_short, intervals=intervals, scale_window=MASE_SCALE_WINDOW,
    )
    with contextlib.nullcontext((None, None)) if as_json else _origin_bar(bt) as (on_plan, on_progress):
        report = backtest_series(st, symbol, interval=interval, settings=setup.settings, config=bt,
                                 start=start, end=end,
                                 on_plan=on_plan, on_progress=on_progress)
    if plot is not None:
        from lstmcast.evaluate.plot import plot_backtest

        plot_backtest(report.result, plot, index=report.index,
                      title=f"{report.key.spec} {report.key.interval}: {report.result.verdict}",
                      pit=report.scoring.pit if report.scoring else None)
    if output is not None:
        backtest_render.write_table(report.table(), output)
    if as_json:
        d = report.to_dict()
        d["plot"] = str(plot) if plot else None
        d["output"] = str(output) if output else None
        common.print_json(d)
    else:
        backtest_render.render(report, plot, output)


@contextlib.contextmanager
def _origin_bar(bt) -> Iterator[tuple[Any, Any]]:
    """A progress bar over origins (stderr); yields the (on_plan, on_progress) callbacks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    con = common.err()
    with Progress(TextColumn("origins"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                  console=con) as bar:
        task = bar.add_task("backtest", total=None)

        def on_plan(plan) -> None:
            con.print(f"walk-forward: {plan.n_origins} origins, {plan.n_refits} refit(s) "
                      f"(every {bt.refit_every}, {bt.window} window)")
            bar.update(task, total=plan.n_origins)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield on_plan, on_progress


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_cmd)
