"""`lstmcast forecasts SYMBOL`: past forecasts against what happened, and the live scores."""

from __future__ import annotations

from pathlib import Path

import typer

from lstmcast.cli import common


def forecasts_cmd(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL."),
    interval: str = typer.Option("1d", "--interval", "-i", metavar="INTERVAL", help=common.HELP_INTERVAL),
    last: int = typer.Option(10, "--last", "-n", min=1, metavar="N", help="How many recent forecast origins to list."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Also write the listed rows to FILE: .csv, .parquet or .json by its suffix.",
        show_default=False,
    ),
) -> None:
    """Recent forecasts against what happened; live error and hit rate next to the naive forecast's,
    the coverage of the recorded intervals and their current adaptive (ACI) tail levels."""
    from lstmcast import forecasts, liveaci

    if output is not None:
        common.check_output(output)  # a bad suffix fails before any work
    data_dir = common.settings(ctx).data_dir
    key = forecasts.find_series(data_dir, symbol, interval)
    history = forecasts.load_history(data_dir, key)
    st = common.store(ctx)
    if st.exists(key):  # outcomes that arrived since the last run (a manual fetch): scored in memory
        history = forecasts.score(history, st.load(key), interval=key.interval)
    live = forecasts.summary(history)
    aci = None
    if liveaci.path(data_dir, key).exists():  # read only: `lstmcast run` alone updates it
        state, warning = liveaci.load(data_dir, key, level=None, gamma=None)
        if warning:
            common.err().print(f"warning: {warning}", markup=False, soft_wrap=True)
        else:
            aci = liveaci.summary(state)
    origins = sorted(history["origin"].unique())[-last:]
    recent = history[history["origin"].isin(origins)].sort_values(["origin", "run_id", "step"])
    if output is not None:
        common.write_output(output, recent)
        common.err().print(f"wrote {len(recent)} row(s) to {output}", markup=False, soft_wrap=True)
    if as_json:
        common.print_json(
            {
                "series": key.spec,
                "interval": key.interval,
                "live": live.to_dict(),
                "aci": aci,
                "rows": recent.to_dict(orient="records"),
            }
        )
        return
    C = common.Col
    cols = [C("origin", common.DATE), C("model", common.ID), C("step", common.NUM), C("target", common.DATE),
            C("predicted", common.NUM), C("interval", common.NUM, drop=2), C("naive", common.NUM, drop=1),
            C("actual", common.NUM), C("error", common.NUM, drop=3)]
    short = common.short_ids([str(x) for x in recent["run_id"]])
    rows = []
    for r in recent.itertuples():
        bounds = "-" if r.lower != r.lower else f"{common.fmt_num(r.lower)} .. {common.fmt_num(r.upper)}"
        err = "-" if r.actual != r.actual else common.fmt_num(r.predicted - r.actual)
        rows.append([
            common.fmt_time(r.origin.isoformat()), short[str(r.run_id)], str(r.step),
            common.fmt_time(r.target_time.isoformat()), common.fmt_num(r.predicted), bounds,
            common.fmt_num(r.naive), common.fmt_num(r.actual), err,
        ])
    t = common.table(f"forecasts for {key}", cols, rows)
    con = common.out()
    con.print(t)
    if aci is not None:
        con.print("intervals: " + "; ".join(
            f"step {st['step']} {st['method']} at tail levels {st['level_lower']:.3g} / {st['level_upper']:.3g} "
            f"after {st['n']} realised row(s)" for st in aci["steps"]
        ) + f" (nominal {aci['level']:g}, ACI step {aci['gamma']:g})" if aci["steps"] else
            f"intervals: split at the nominal {aci['level']:g} (no realised rows yet)", markup=False, soft_wrap=True)
    if live.n == 0:
        con.print(f"no outcomes yet ({live.pending} forecast step(s) pending)")
        return
    pct = lambda x: "-" if x != x else f"{100 * x:.0f}%"  # noqa: E731
    con.print(
        f"live over {live.n} scored step(s) ({live.pending} pending): "
        f"MAE {common.fmt_num(live.mae)} vs naive "
        f"{common.fmt_num(live.naive_mae)} (skill {pct(live.skill)}), RMSE {common.fmt_num(live.rmse)} vs "
        f"{common.fmt_num(live.naive_rmse)}; direction hit rate {pct(live.hit_rate)} "
        f"[{pct(live.hit_low)}, {pct(live.hit_high)}] (naive calls no direction); "
        f"interval coverage {pct(live.coverage)}"
    )


def register(app: typer.Typer) -> None:
    app.command("forecasts")(forecasts_cmd)
