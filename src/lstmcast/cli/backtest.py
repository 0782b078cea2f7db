"""`lstmcast backtest`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common


def backtest_cmd(
    ctx: typer.Context,
    symbols: list[str] | None = typer.Argument(
        None, help="SYMBOL or SOURCE:SYMBOL of stored series (one or more).", show_default=False
    ),
    all_series: bool = typer.Option(False, "--all", help="Every stored series of this --interval."),
    symbols_file: Path | None = typer.Option(
        None, "--symbols-file", metavar="FILE",
        help="A file of symbols, one a line (blank lines and # comments skipped)."
    ),
    interval: str = typer.Option("1d", "--interval", "-i", metavar="INTERVAL", help=common.HELP_INTERVAL),
    start: str | None = typer.Option(
        None, "--start", metavar="DATE", help="First forecast origin [default: last 250 bars]."
    ),
    end: str | None = typer.Option(None, "--end", metavar="DATE", help="Last forecast origin."),
    horizon: int | None = common.scored_horizon_option(),
    train_horizon: int | None = common.train_horizon_option(),
    refit_every: int = typer.Option(20, "--refit-every", min=1, metavar="K", help="Refit the model every K origins."),
    window: str = typer.Option("expanding", "--window", metavar="WINDOW", help=common.HELP_WINDOW),
    train_size: int | None = typer.Option(None, "--train-size", metavar="N", help="Rows per fit for --window rolling."),
    fee_bps: float = typer.Option(10.0, "--fee-bps", min=0.0, metavar="BPS", help="Fee per trade in basis points."),
    long_short: bool = typer.Option(False, "--long-short", help="Short when the forecast is below minus the fee."),
    plot: Path | None = typer.Option(
        None, "--plot", metavar="FILE",
        help="Write a PNG: 1-step forecasts vs actual, equity curves, PIT; and beside it FILE-steps.png, error "
        "and coverage by step (several series: FILE-SYMBOL.png, FILE-SYMBOL-steps.png)."
    ),
    intervals: str = typer.Option(
        "adaptive", "--intervals", help="adaptive (volatility-scaled, ACI) or split conformal; both are scored."
    ),
    output: Path | None = typer.Option(
        None, "--output", metavar="FILE", help="Write every origin and step's forecasts: .csv, .parquet or .json."
    ),
    use_model: str | None = typer.Option(
        None, "--model", metavar="RUN_ID",
        help="Take the model settings from this run [default: the current model's, if any]."
    ),
    config: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="TOML file with a [train] table; flags override its values."
    ),
    lookback: int | None = typer.Option(
        None, "--lookback", metavar="N", help="Bars per input window [default: the model setup's]."
    ),
    hidden: int | None = typer.Option(
        None, "--hidden", metavar="N", help="LSTM/GRU hidden size [default: the model setup's]."
    ),
    layers: int | None = typer.Option(
        None, "--layers", metavar="N", help="Stacked layers [default: the model setup's]."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", metavar="N", help="Maximum epochs per refit [default: the model setup's]."
    ),
    patience: int | None = typer.Option(
        None, "--patience", metavar="N",
        help="Early-stopping patience per refit, in epochs [default: the model setup's]."
    ),
    target: str | None = typer.Option(None, "--target", metavar="TARGET", help=common.HELP_TARGET),
    device: str | None = typer.Option(
        None, "--device", metavar="DEVICE", help=common.HELP_DEVICE + " [default: the model setup's]"
    ),
    family: str | None = typer.Option(
        None, "--model-family", metavar="FAMILIES",
        help="One or more of lstm, gru, linear, naive, drift, moving_average, mean_return, comma-separated "
        "(lstm,gru,linear: each on identical origins, one leaderboard) [default: the model setup's, else lstm].",
    ),
    threads: int | None = typer.Option(
        None, "--threads", metavar="N", help="torch threads per task [default: cores // workers]."
    ),
    seed: int | None = typer.Option(
        None, "--seed", metavar="N", help="Random seed: the same seed repeats the same results."
    ),
    executor: str | None = common.executor_option("local when there are several tasks"),
    workers: int | None = common.workers_option(),
    ray_address: str | None = common.ray_address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON, with the per-origin records."),
) -> None:
    """Walk-forward backtest: refit one or more model families as time moves on and score them
    against naive, drift, moving-average and mean-return forecasts on exactly the same origins,
    with a trading strategy.

    At every origin only data up to that origin fits the scaler and the model; between refits the
    last model is reused without peeking. Every refit of every family on every series is one task
    (--executor). With several series it ends with a cross-series table whose count of series that
    beat naive is corrected for multiple testing (Benjamini-Hochberg). Exit 3 when a series or a
    task failed (the others are still reported).
    """
    from lstmcast.cli import backtest_render
    from lstmcast.errors import EXIT_PARTIAL
    from lstmcast.evaluate.backtest import BacktestConfig
    from lstmcast.evaluate.metrics import MASE_SCALE_WINDOW
    from lstmcast.evaluate.report import INTERVAL_CHOICES
    from lstmcast.executor import make_executor
    from lstmcast.pipelines import train as T
    from lstmcast.pipelines.backtest import backtest_many

    if intervals not in INTERVAL_CHOICES:
        from lstmcast.errors import UsageError

        raise UsageError(f"--intervals must be one of {', '.join(INTERVAL_CHOICES)}, got {intervals!r}")
    backtest_render.check_output(output)
    st = common.store(ctx)
    specs = common.symbols(st, symbols, all_series=all_series, symbols_file=symbols_file, interval=interval)
    families = parse_families(family)
    file_options = T.read_config_file(config) if config else {}
    flags = {"lookback": lookback, "hidden": hidden, "layers": layers, "epochs": epochs,
             "patience": patience, "target": target, "device": device, "threads": threads, "seed": seed}
    setup = walk_forward_setup(st, specs, interval=interval, use_model=use_model, families=families,
                               horizon=horizon, train_horizon=train_horizon, flags=flags, file_options=file_options)
    families = setup.families
    bt = BacktestConfig(
        horizon=setup.base.features.horizon, refit_every=refit_every, window=window, train_size=train_size,
        fee_bps=fee_bps, long_short=long_short, intervals=intervals, scale_window=MASE_SCALE_WINDOW,
    )
    common.check_executor_flags(executor, workers, ray_address)

    def executor_for(n_tasks: int):
        return make_executor(executor, n_tasks=n_tasks, workers=workers, ray_address=ray_address)

    with contextlib.nullcontext((None, None)) if as_json else task_bar(bt, families) as (on_plan, on_progress):
        multi = backtest_many(st, specs, interval=interval, settings_for=setup.settings_for, families=families,
                              config=bt, start=start, end=end, executor=executor_for,
                              on_plan=on_plan, on_progress=on_progress, horizon=horizon)
    if len(specs) == 1 and multi.failures and multi.failures[0].exc is not None and not multi.series:
        raise multi.failures[0].exc  # one series that cannot be read or planned: its own error and exit code
    plots = _write_plots(multi, plot) if plot is not None else {}  # spec -> (step 1's plot, per-step figure)
    # the per-origin tables, computed once: --output writes them, --json (one series) carries them as records
    need_tables = output is not None or (as_json and len(specs) == 1)
    tables = {s.key.spec: s.table() for s in multi.series} if need_tables else {}
    if output is not None and multi.series:
        import pandas as pd

        backtest_render.write_table(pd.concat(list(tables.values()), ignore_index=True), output)
    if as_json:
        d = _json(multi, single=len(specs) == 1, plots=plots, tables=tables)
        d["output"] = str(output) if output else None
        common.print_json(d)
    else:
        for s in multi.series:
            _render_series(s, plots.get(s.key.spec), output)
        if len(specs) > 1:
            _render_cross_series(multi)
    if multi.failures:
        _render_failures(multi)
        raise typer.Exit(EXIT_PARTIAL)


@dataclass(frozen=True)
class WalkForwardSetup:
    """What `backtest` and `report` hand ``pipelines.backtest.backtest_many``: each series' settings
    (the model each refit trains, its horizon H) and the families; ``base`` is the flags' setup alone."""

    settings_for: Callable[[str], Any]
    families: list[str]
    base: Any  # pipelines.train setup from the flags and the config file


def walk_forward_setup(
    st: Any, specs: list[str], *, interval: str, use_model: str | None, families: list[str],
    horizon: int | None, train_horizon: int | None, flags: dict[str, Any],
    file_options: dict[str, Any] | None = None,
) -> WalkForwardSetup:
    """The horizon flags checked (``--horizon N``: steps scored, as predict's; ``--train-horizon H``:
    the trained model's) and each series' settings: its model setup (its current model's, or
    ``--model RUN``'s), then the config file, then the flags. A bad flag is a usage error before any
    series is read. No family named: the setup's (one series), else lstm."""
    from lstmcast.forecast import default_setup_options

    common.check_horizon("--horizon", horizon)
    common.check_horizon("--train-horizon", train_horizon)
    file_options = file_options or {}
    flags = {**flags, "horizon": train_horizon, "family": families[0] if families else None, "interval": interval}
    common.training_setup(flags)

    def settings_for(spec: str):
        options: dict[str, Any] = default_setup_options(st, spec, interval=interval, run_id=use_model)
        return common.training_setup(flags, base={**options, **file_options}).settings

    if not families:  # the model setup's family (its current model's), else lstm
        families = [settings_for(specs[0]).family] if len(specs) == 1 else ["lstm"]
    return WalkForwardSetup(settings_for=settings_for, families=list(families),
                            base=common.training_setup(flags, base=file_options))


def parse_families(value: str | None) -> list[str]:
    from lstmcast.errors import UsageError
    from lstmcast.forecasters import FAMILIES

    if value is None:
        return []
    names = [f.strip() for f in value.split(",") if f.strip()]
    for f in names:
        if f not in FAMILIES:
            raise UsageError(f"--model-family {f!r} is not one of: {', '.join(FAMILIES)}")
    if len(set(names)) != len(names):
        raise UsageError(f"--model-family names a family twice: {value}")
    if not names:
        raise UsageError("--model-family is empty")
    return names


def _write_plots(multi, plot: Path) -> dict[str, tuple[str, str]]:
    """Per series: PLOT itself for one series, PLOT-SYMBOL.png for several (step 1's forecasts), and
    beside it the error and coverage by step (``plot.steps_plot_path``: PLOT-steps.png)."""
    from lstmcast.evaluate.plot import plot_backtest, plot_steps, steps_plot_path

    out = {}
    for s in multi.series:
        path = plot if len(multi.series) + len(multi.failures) == 1 else plot.with_name(
            f"{plot.stem}-{s.key.symbol.replace('/', '_')}{plot.suffix or '.png'}")
        first = s.first
        sc = s.scoring.get(next(iter(s.results)))
        plot_backtest(first, path, index=s.index, others={f: r for f, r in s.results.items()},
                      title=f"{s.key.spec} {s.key.interval}: " + _title(s), pit=sc.pit if sc else None)
        steps = plot_steps(first, steps_plot_path(path), title=f"{s.key.spec} {s.key.interval}, "
                           f"{next(iter(s.results))}: {_steps_note(first.config)}")
        out[s.key.spec] = (str(path), str(steps))
    return out


def _title(s) -> str:
    if len(s.results) == 1:
        return s.first.verdict
    return ", ".join(f"{f} MASE {r.metrics['model'].mase:.2f}" for f, r in s.results.items()) + (
        f", naive {s.first.metrics['naive'].mase:.2f}")


def _json(multi, *, single: bool, plots: dict[str, tuple[str, str]], tables: dict[str, Any]) -> dict[str, Any]:
    """One series: the first family's result at the top level (the historical schema) plus
    ``leaderboard`` and ``families``; several: ``series``, ``cross_series`` and ``failures``."""
    with_series = False  # --plot never changes the JSON's shape; `records` carry the per-origin data
    if single and multi.series:
        s = multi.series[0]
        d = {"series": s.key.spec, "interval": s.key.interval, "setup": s.setup,
             **s.first.to_dict(series=with_series)}
        full = s.to_dict(series=with_series)
        paths = plots.get(s.key.spec, (None, None))
        d.update(origins_from=full["origins_from"], origins_to=full["origins_to"],
                 leaderboard=full["leaderboard"], families=full["families"], failures=full["failures"],
                 plot=paths[0], plot_steps=paths[1])
        first = next(iter(s.results))
        if first in s.scoring:  # the first family's scores and per-origin records at the top level
            from lstmcast.evaluate.export import records

            table = tables[s.key.spec]
            d["scores"] = s.scoring[first].to_dict()
            d["records"] = records(table[table["family"] == first].drop(columns=["series", "family"])
                                   .reset_index(drop=True))
        return d
    d = multi.to_dict(series=with_series)
    d["plots"] = {k: v[0] for k, v in plots.items()}
    d["step_plots"] = {k: v[1] for k, v in plots.items()}
    return d


@contextlib.contextmanager
def task_bar(bt, families: list[str]) -> Iterator[tuple[Any, Any]]:
    """One progress bar over tasks (every refit of every family on every series), on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    con = common.err()
    with Progress(TextColumn("tasks"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                  console=con) as bar:
        task = bar.add_task("backtest", total=None)

        def on_plan(n_tasks: int, plans) -> None:
            for sp in plans:
                con.print(f"{sp.key.spec}: walk-forward of {sp.plan.n_origins} origins, {sp.plan.n_refits} "
                          f"refit(s) (every {bt.refit_every}, {bt.window} window) x {len(families)} "
                          f"famil{'y' if len(families) == 1 else 'ies'}, {_steps_note(sp.config)}")
            bar.update(task, total=n_tasks)

        def on_progress(done: int, total: int, key: str) -> None:
            bar.update(task, completed=done, total=total)

        yield on_plan, on_progress


def _steps_note(config) -> str:
    """``horizon 5: 1 direct + 4 recursive steps``."""
    m = config.methods
    d, r = m.count("direct"), m.count("recursive")
    return f"horizon {config.horizon}: {d} direct" + (f" + {r} recursive" if r else "") + " step(s)"


# -- rendering (each piece on its own, so other reports can be added beside them) ----------------


def _render_series(s, plot: tuple[str, str] | None, output: Path | None = None) -> None:
    """One series. One family: its scores (``backtest_render.render``: accuracy, probabilistic scores,
    calibration tests, strategies with their uncertainty, the selection line). Several: the
    leaderboard first, then each family's scores under its name."""
    from lstmcast.cli import backtest_render
    from lstmcast.pipelines.backtest import BacktestReport

    if s.scoring:
        con = common.out()
        if len(s.results) > 1:
            _render_leaderboard(s)
        for family, res in s.results.items():
            if len(s.results) > 1:
                con.rule(family)
            report = BacktestReport(key=s.key, index=s.index, result=res, setup=s.setup,
                                    scoring=s.scoring.get(family))
            backtest_render.render(report, None, output, family if len(s.results) > 1 else None)
        _print_plots(plot)
        return
    r = s.first
    con = common.out()
    fit = sum(sum(x.fit_seconds) for x in s.results.values())
    con.print(
        f"[bold]{s.key.spec}[/] {s.key.interval}: {len(r.origins)} origins "
        f"{common.fmt_time(s.index[r.origins[0]].isoformat())} .. "
        f"{common.fmt_time(s.index[r.origins[-1]].isoformat())}, horizon {r.config.horizon}, "
        f"{r.plan.n_refits} refit(s) x {len(s.results)} famil{'y' if len(s.results) == 1 else 'ies'}, "
        f"{fit:.1f}s fitting"
    )
    _render_leaderboard(s)
    for family, res in s.results.items():
        backtest_render.render_steps(res, family if len(s.results) > 1 else None)
    _render_strategies(s)
    for family, res in s.results.items():
        prefix = f"{family}: " if len(s.results) > 1 else ""
        con.print(f"[bold]{prefix}{res.verdict}[/]")
    _print_plots(plot)


def _print_plots(plot: tuple[str, str] | None) -> None:
    if plot is not None:
        common.out().print(f"plot: {plot[0]}\nsteps plot: {plot[1]}", markup=False, highlight=False, soft_wrap=True)


def _render_leaderboard(s) -> None:
    C, NUM = common.Col, common.NUM
    board = s.leaderboard()
    levels = sorted({lv for row in board for lv in row["coverage"]}, key=float)
    # narrow: the fit time goes first, then RMSE and the coverage columns (also in --json)
    cols = [C("forecaster", common.ID), C("MAE", NUM), C("RMSE", NUM, drop=2), C("MASE", NUM), C("hit rate", NUM),
            *[C(f"cover {100 * float(lv):g}%", NUM, drop=1) for lv in levels],
            C("DM p vs naive", NUM), C("fit s/refit", NUM, drop=3)]
    rows = []
    for row in board:
        name = row["forecaster"] if row["role"] == "family" else f"{row['forecaster']} (baseline)"
        rows.append([
            name, common.fmt_num(row["mae"]), common.fmt_num(row["rmse"]), common.fmt_num(row["mase"], 3),
            f"{100 * row['hit_rate']:.1f}%",
            *[f"{100 * row['coverage'][lv]:.1f}%" if lv in row["coverage"] else "-" for lv in levels],
            "-" if row["dm_p_vs_naive"] is None else common.fmt_num(row["dm_p_vs_naive"], 3),
            "-" if row["fit_seconds_per_refit"] is None else f"{row['fit_seconds_per_refit']:.2f}",
        ])
    common.out().print(common.table("forecast accuracy (all steps), same origins for every forecaster", cols, rows))


def _render_strategies(s) -> None:
    C, NUM = common.Col, common.NUM
    con = common.out()
    if not s.first.strategies:
        con.print("no trading strategy: a value series has no price to trade")
        return
    cols = [C("strategy", common.ID), C("total", NUM), C("annual", NUM), C("volatility", NUM, drop=1),
            C("Sharpe", NUM), C("max drawdown", NUM), C("trades", NUM, drop=2)]
    rows = {}
    for family, res in s.results.items():
        rows[family if len(s.results) > 1 else "model"] = res.strategies["model"]
    rows.update({k: v for k, v in s.first.strategies.items() if k != "model"})
    cells = []
    for name, res in rows.items():
        d = res.to_dict(series=False)
        cells.append([name, f"{100 * d['total_return']:+.1f}%", f"{100 * d['annual_return']:+.1f}%",
                      f"{100 * d['annual_volatility']:.1f}%", common.fmt_num(d["sharpe"], 3),
                      f"{100 * d['max_drawdown']:.1f}%", str(d["trades"])])
    con.print(common.table("strategy (1-step forecasts, fees applied per trade)", cols, cells))


def _render_cross_series(multi) -> None:
    """Per series and family: MASE, MAE ratio, DM p and its adjustment; then the summary per family."""
    C, NUM, ID = common.Col, common.NUM, common.ID
    cs = multi.cross_series()
    con = common.out()
    # narrow: the raw p goes first (the adjusted one decides), then naive's MASE (MAE ratio says it)
    cols = [C("series", ID), C("family", ID), C("MASE", NUM), C("naive MASE", NUM, drop=1),
            C("MAE ratio", NUM), C("DM p", NUM, drop=2), C("adjusted p", NUM), C("beats naive", ID)]
    rows = [[r["series"], r["family"], common.fmt_num(r["mase"], 3), common.fmt_num(r["naive_mase"], 3),
             common.fmt_num(r["mae_ratio"], 3), common.fmt_num(r["dm_p"], 3),
             common.fmt_num(r["dm_p_adjusted"], 3), "yes" if r["beats_naive"] else "no"] for r in cs["rows"]]
    con.print(common.table(f"across {len(multi.series)} series: each family against naive", cols, rows))
    con.print(f"p-values adjusted with {cs['correction']} (false discovery rate {cs['alpha']:g}) per family "
              f"across series; 'beats naive' = lower MAE and adjusted p < {cs['alpha']:g}")
    for sm in cs["summary"]:
        con.print(f"[bold]{sm['family']}[/]: median MASE ratio vs naive {common.fmt_num(sm['median_mase_ratio'], 3)}; "
                  f"beats naive on {sm['beats_naive']} of {sm['series']} series after {cs['correction']} "
                  f"({sm['beats_naive_unadjusted']} before the correction); worse than naive on "
                  f"{sm['worse_than_naive']}")


def _render_failures(multi) -> None:
    con = common.err()
    con.print(f"[red]{len(multi.failures)} failed[/]:")
    for f in multi.failures:
        con.print(f"  {f.line()}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_cmd)
