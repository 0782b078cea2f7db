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
    symbols: list[str] | None = typer.Argument(
        None, help="SYMBOL or SOURCE:SYMBOL of stored series (one or more).", show_default=False
    ),
    all_series: bool = typer.Option(False, "--all", help="Every stored series with a current model."),
    interval: str | None = typer.Option(
        None, "--interval", "-i", help="Bar interval [default: 1d; with --all: every interval].", show_default=False
    ),
    horizon: int | None = typer.Option(
        None, "--horizon", help="Steps to forecast [default: the model's horizon]; beyond it: recursive."
    ),
    model: str | None = typer.Option(None, "--model", help="Run id to use instead of the current model."),
    levels: str = typer.Option("80,95", "--levels", help="Prediction-interval levels in percent."),
    device: str = typer.Option(
        "cpu", "--device", help="cpu: numpy, no torch; cuda, cuda:N, mps or auto: torch on that device."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit with code 4 when any warning is raised."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: a list, one object per series."),
) -> None:
    """Forecast the next bars with the current model: predicted close, change, conformal intervals, naive.

    Several symbols (or --all) give one table, one row per symbol and step. Steps up to the
    model's trained horizon are direct; later steps (--horizon N) feed the model's own predictions
    back (recursive). Intervals are split-conformal from held-out residuals of forecasts made the
    same way, per step. Warns when the data is stale, when the model has not seen many newer bars,
    or when the model belongs to another series; with --strict those warnings exit with code 4.
    A series that fails is reported on stderr (and in the JSON); the others still print; exit 3.
    """
    from lstmcast.errors import EXIT_STRICT, UsageError
    from lstmcast.pipelines.predict import predict_many, predict_series, series_with_models

    store = common.store(ctx)
    lv = _levels(levels)
    if device not in ("cpu", "mps", "auto") and not device.startswith("cuda"):
        raise UsageError(f"--device {device!r}: expected cpu, cuda, cuda:N, mps or auto")
    symbols = list(symbols or [])
    if all_series and symbols:
        raise UsageError("give SYMBOLs or --all, not both")
    if all_series:
        specs = series_with_models(store, interval=interval)
        if not specs:
            raise UsageError("--all: no stored series has a current model; run `lstmcast train SYMBOL` first")
    elif not symbols:
        raise UsageError("name at least one SYMBOL, or use --all")
    else:
        specs = symbols
    if len(specs) == 1 and not all_series:
        # one series: its error is the command's error, with its own exit code
        report = predict_series(store, symbols[0], interval=interval or "1d", run_id=model, horizon=horizon,
                                levels=lv, device=device)
        results, code = [report], 0
    else:
        batch = predict_many(store, specs, interval=interval or "1d", run_id=model, horizon=horizon,
                             levels=lv, device=device)
        results, code = batch.results, batch.exit_code
    from lstmcast.pipelines import live

    for r in results:  # [monitor] max_model_age: an expired model warns (and --strict fails)
        if hasattr(r, "warnings"):
            r.warnings.extend(live.model_age_warnings(store.root, r.run_id))
    if as_json:
        common.print_json([r.to_dict() for r in results])
    else:
        _render(results, lv)
    warned = False
    for r in results:
        if hasattr(r, "warnings"):
            for w in r.warnings:
                common.warn(f"{r.key.spec}: {w}" if len(results) > 1 else w)
                warned = True
        else:
            common.print_error(RuntimeError(f"{r.spec} {r.interval}: {r.error}"))
    if code:
        raise typer.Exit(code)
    if strict and warned:
        raise typer.Exit(EXIT_STRICT)


def _render(results: list, levels: tuple[float, ...]) -> None:
    from rich.table import Table

    con = common.out()
    reports = [r for r in results if hasattr(r, "steps")]
    if not reports:
        return
    many = len(results) > 1
    if not many:
        report = reports[0]
        con.print(
            f"[bold]{report.key.spec}[/] {report.key.interval}  last bar "
            f"{common.fmt_time(report.data_last.isoformat())} close {common.fmt_num(report.last_close)}"
        )
        rec = sum(s.method == "recursive" for s in report.steps)
        con.print(
            f"model {report.run_id} ({report.family}, {report.trained_horizon} step(s), trained on data up to "
            f"{common.fmt_time(report.model_data_last)}); intervals from {report.calibration_n} held-out residuals"
            + (f"; steps after {report.trained_horizon} are recursive" if rec else "")
        )
    C = common.Col
    # narrow: the wider intervals go first, then naive, then method; the narrowest level stays longest
    cols = [*((C("series", common.ID), C("model", common.ID, drop=4)) if many else ()),
            C("step", common.NUM), C("method", common.ID, drop=3), C("time", common.DATE),
            C("predicted", common.NUM), C("change", common.NUM),
            *(C(f"{100 * lv:g}% interval", common.NUM, drop=1 if i == 0 else 3) for i, lv in enumerate(levels)),
            C("naive", common.NUM, drop=2)]
    short = common.short_ids([r.run_id for r in reports]) if many else {}

    def rows_of(report, head: bool) -> list[list[str]]:
        rows = []
        for s in report.steps:
            bands = []
            for lv in levels:
                lo, hi = s.intervals.get(lv, (float("nan"), float("nan")))
                bands.append(f"{common.fmt_num(lo)} .. {common.fmt_num(hi)}")
            rows.append([*([f"{report.key.spec} {report.key.interval}", short[report.run_id]] if head else []),
                         str(s.step), s.method, common.fmt_time(s.time.isoformat()),
                         common.fmt_num(s.predicted), f"{s.change_pct:+.2f}%", *bands, common.fmt_num(s.naive)])
        return rows

    t = common.table(None, cols, [row for report in reports for row in rows_of(report, many)])
    if many and not isinstance(t, Table):
        # too narrow for one table with every column: one table per series, titled with it and its model
        for report in reports:
            con.print(common.table(f"{report.key.spec} {report.key.interval}  model {short[report.run_id]}",
                                   cols[2:], rows_of(report, False)))
        return
    con.print(t)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
