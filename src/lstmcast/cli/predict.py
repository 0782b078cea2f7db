"""`lstmcast predict`."""

from __future__ import annotations

import typer

from lstmcast.cli import common


def _levels(text: str) -> tuple[float, ...]:
    from lstmcast.errors import UsageError

    try:
        levels = tuple(float(x) / (100.0 if float(x) > 1 else 1.0) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise UsageError(f"--levels {text!r}: expected numbers such as 80,95") from e
    if not levels or any(not 0 < lv < 1 for lv in levels):
        raise UsageError(f"--levels {text!r}: each level must lie strictly between 0 and 100 percent")
    return tuple(sorted(set(levels)))


def predict_cmd(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL of a stored series."),
    interval: str = typer.Option("1d", "--interval", "-i", help="Bar interval."),
    horizon: int | None = typer.Option(None, "--horizon", help="Steps to show [default: the model's horizon]."),
    model: str | None = typer.Option(None, "--model", help="Run id to use instead of the current model."),
    levels: str = typer.Option("80,95", "--levels", help="Prediction-interval levels in percent."),
    strict: bool = typer.Option(False, "--strict", help="Exit with code 4 when any warning is raised."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forecast the next bars with the current model: predicted close, change, conformal intervals, naive.

    Intervals are split-conformal from the model's held-out residuals, per horizon step. Warns
    when the data is stale, when the model has not seen many newer bars, or when the model
    belongs to another series; with --strict those warnings exit with code 4.
    """
    from lstmcast.errors import EXIT_STRICT
    from lstmcast.forecast import predict_series

    report = predict_series(
        common.store(ctx), symbol, interval=interval, run_id=model, horizon=horizon, levels=_levels(levels)
    )
    if as_json:
        common.print_json(report.to_dict())
    else:
        _render(report)
    for w in report.warnings:
        common.warn(w)
    if strict and report.warnings:
        raise typer.Exit(EXIT_STRICT)


def _render(report) -> None:
    from rich.table import Table

    con = common.out()
    con.print(
        f"[bold]{report.key.spec}[/] {report.key.interval}  last bar {common.fmt_time(report.data_last.isoformat())} "
        f"close {common.fmt_num(report.last_close)}"
    )
    con.print(
        f"model {report.run_id} (trained on data up to {common.fmt_time(report.model_data_last)}); "
        f"intervals from {report.calibration_n} held-out residuals"
    )
    t = Table()
    for col in ("step", "time", "predicted", "change", *(f"{100 * lv:g}% interval" for lv in report.levels), "naive"):
        t.add_column(col, justify="left" if col == "time" else "right", no_wrap=True)
    for s in report.steps:
        bands = []
        for lv in report.levels:
            lo, hi = s.intervals.get(lv, (float("nan"), float("nan")))
            bands.append(f"{common.fmt_num(lo)} .. {common.fmt_num(hi)}")
        t.add_row(
            str(s.step), common.fmt_time(s.time.isoformat()), common.fmt_num(s.predicted),
            f"{s.change_pct:+.2f}%", *bands, common.fmt_num(s.naive),
        )
    con.print(t)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
