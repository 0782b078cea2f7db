"""How `lstmcast backtest` shows a result (80 columns) and writes its per-origin table (--output)."""

from __future__ import annotations

import math
from pathlib import Path

from lstmcast.cli import common

OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")


def check_output(path: Path | None) -> None:
    """Refuse an unknown --output suffix before any fitting starts."""
    if path is not None and path.suffix.lower() not in OUTPUT_SUFFIXES:
        from lstmcast.errors import UsageError

        raise UsageError(f"--output {path}: the suffix must be one of {', '.join(OUTPUT_SUFFIXES)}")


def write_table(table, path: Path) -> None:
    """Write the forecast table atomically as CSV, Parquet or JSON (records), by suffix."""
    from lstmcast.atomic import write_with

    check_output(path)
    suffix = path.suffix.lower()

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            table.to_csv(tmp, index=False, float_format="%.17g")
        elif suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", double_precision=15)

    write_with(path, write)


def _p(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _pct(x: float | None, digits: int = 1, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:+.{digits}f}%" if sign else f"{100 * x:.{digits}f}%"


def render_steps(r, family: str | None = None) -> None:
    """One row per step: its method (direct within the trained horizon, recursive after), MAE, MASE,
    skill against naive at that step, and the coverage of the intervals `lstmcast predict` gives
    (calibrated as predict does, before each refit origin) with the number of forecasts; then the
    backtest's own (--intervals) coverage, which goes first at 80 columns."""
    C, NUM, ID = common.Col, common.NUM, common.ID
    steps = r.steps()
    pred_levels = [f"{lv:g}" for lv in r.predict_coverage]
    own_levels = [f"{lv:g}" for lv in r.coverage]
    method = r.config.intervals
    cols = [C("step", NUM), C("method", ID), C("MAE", NUM), C("MASE", NUM), C("skill", NUM),
            *(C(f"predict {100 * float(k):g}%", NUM) for k in pred_levels), C("n", NUM),
            *(C(f"{method} {100 * float(k):g}%", NUM, drop=1) for k in own_levels)]
    rows = []
    for st in steps:
        pc, oc = st["predict_coverage"], st["coverage"]
        n = pc[pred_levels[0]]["n"] if pred_levels else st["n"]
        rows.append([str(st["step"]), st["method"], common.fmt_num(st["mae"]), common.fmt_num(st["mase"], 3),
                     _pct(st["skill"], 1, sign=True), *(_pct(pc[k]["observed"]) for k in pred_levels), str(n),
                     *(_pct(oc[k]["observed"]) for k in own_levels)])
    title = f"per step{f' ({family})' if family else ''}: skill = 1 - MAE / naive MAE at that step"
    con = common.out()
    con.print(common.table(title, cols, rows))
    if pred_levels:
        con.print("predict N%: coverage of the intervals `lstmcast predict` gives (each refit calibrated on "
                  "held-out residuals before its origin; recursive steps on recursive forecasts); n: forecasts "
                  "with an interval.")


def render(report, plot: Path | None, output: Path | None = None, family: str | None = None) -> None:
    C, NUM, ID = common.Col, common.NUM, common.ID
    r = report.result
    sc = report.scoring
    con = common.out()
    con.print(
        f"[bold]{report.key.spec}[/] {report.key.interval}: {len(r.origins)} origins "
        f"{common.fmt_time(report.index[r.origins[0]].isoformat())} .. "
        f"{common.fmt_time(report.index[r.origins[-1]].isoformat())}, horizon {r.config.horizon}, "
        f"{r.plan.n_refits} refit(s), {sum(r.fit_seconds):.1f}s fitting"
    )

    cols = [C("forecaster", ID), C("MAE", NUM), C("MASE", NUM), C("hit rate", NUM), C("always-up", NUM),
            C("p", NUM)]
    rows = []
    for name, m in r.metrics.items():
        hr = sc.hit_rate.get(name) if sc else None
        if hr is None:
            hit, base, p = (f"{100 * m.hit_rate:.1f}%" if name != "naive" else "-"), "-", "-"
        else:
            hit = f"{100 * hr.hit_rate:.1f}% ({100 * hr.low:.0f}-{100 * hr.high:.0f})"
            base, p = f"{100 * hr.baseline_hit_rate:.1f}%", _p(hr.p)
        rows.append([name, common.fmt_num(m.mae), common.fmt_num(m.mase, 3), hit, base, p])
    con.print(common.table("forecast accuracy (all steps)", cols, rows))
    if sc and r.config.horizon > 1 and "model" in sc.hit_rate:
        steps = ", ".join(f"{s['step']}: {100 * s['hit_rate']:.0f}% vs {100 * s['baseline_hit_rate']:.0f}% "
                          f"p {_p(s['p'])}" for s in sc.hit_rate["model"].by_step)
        con.print(f"model hit rate per step vs always-up: {steps}")

    render_steps(r, family)

    if sc is None:
        if r.coverage:
            cov = ", ".join(f"{100 * lv:g}%: {100 * c['observed']:.1f}% of {c['n']}" for lv, c in r.coverage.items())
            con.print(f"interval coverage (nominal: observed): {cov}")
    else:
        rep = sc.chosen
        levels = [f"{lv:g}" for lv in r.config.levels]
        cols = [C("forecaster", ID), C("CRPS", NUM), C("skill", NUM), C("DM p", NUM), C("RPS skill", NUM),
                *(C(f"cov {100 * float(k):g}%", NUM) for k in levels)]
        rows = []
        for name, f in rep.forecasters.items():
            covs = [_pct(f.scores.coverage[k].observed, 0) for k in levels]
            rows.append([name, f"{f.scores.crps:.5f}", _pct(f.crps_skill, 1, sign=True) if name != "naive" else "-",
                         _p(f.crps_dm_p), _pct(f.rps_skill, 1, sign=True), *covs])
        con.print(common.table(f"predictive distribution ({sc.intervals} intervals, log space)", cols, rows))
        cols = [C("intervals", ID), C("nominal", NUM), C("observed", NUM), C("n", NUM), C("Kupiec p", NUM),
                C("Christ. p", NUM), C("width", NUM)]
        rows = []
        for method, by_level in sc.coverage.items():
            for v in by_level.values():
                mark = "*" if method == sc.intervals else ""
                rows.append([f"{method}{mark}", _pct(v["nominal"], 0), _pct(v["observed"]), str(v["n"]),
                             _p(v["step1"]["kupiec_p"]), _p(v["step1"]["christoffersen_p"]),
                             f"{100 * v['mean_width']:.2f}%"])
        con.print(common.table("model interval coverage: adaptive vs split (all steps)", cols, rows))
        con.print(f"* the {sc.intervals} intervals are the ones plotted and exported. Kupiec and "
                  "Christoffersen p (step 1): small p = wrong miss rate / clustered misses. "
                  "Pinball per quantile: --json.")

    if r.strategies:
        # narrow: the trade count goes first, then the time in the market (both in --json)
        cols = [C("strategy", ID), C("total", NUM), C("Sharpe (95% CI)", NUM), C("PSR", NUM),
                C("in mkt", NUM, drop=1), C("max DD", NUM), C("trades", NUM, drop=2)]
        rows = []
        for name, res in r.strategies.items():
            st = sc.strategies.get(name) if sc else None
            if st is not None and not st.in_market:
                sharpe, psr = "never in market", "-"
            elif st is not None and st.sharpe is not None:
                sharpe = f"{st.sharpe:.2f} ({st.sharpe_low:.1f}..{st.sharpe_high:.1f})"
                psr = _p(st.psr) if name != "buy_and_hold" else "-"
            else:
                sharpe, psr = common.fmt_num(res.sharpe, 2), "-"
            rows.append([name, _pct(res.total_return, 1, sign=True), sharpe, psr, _pct(res.exposure, 0),
                         _pct(res.max_drawdown, 1), str(res.trades)])
        con.print(common.table("strategy (1-step forecasts, fees per trade)", cols, rows))
        if sc:
            con.print("PSR: probability that the true Sharpe beats buy-and-hold's.")
            con.print(f"selection: {sc.selection_note}", markup=False)
    else:
        con.print("no trading strategy: a value series has no price to trade")
    con.print(f"[bold]{r.verdict}[/]")
    if plot is not None:
        con.print(f"plot: {plot}")
    if output is not None:
        con.print(f"forecasts: {output}")
