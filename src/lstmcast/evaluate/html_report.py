"""One self-contained HTML page for a backtest (``lstmcast report``): tables and matplotlib figures
embedded as base64 PNG, no script, no external resource, so it opens offline in any browser.

``render_html`` returns the page as a string; the CLI writes it. matplotlib is imported lazily
with the Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from typing import Any

import numpy as np

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
tr.recursive td{background:#fafafa}table.steps td:nth-child(2),table.steps th:nth-child(2){text-align:left}
th,td{padding:.25em .7em;border-bottom:1px solid #e3e3e3;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
img{max-width:100%;height:auto;display:block;margin:.6em 0;border:1px solid #eee}
.note{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
"""


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, spec)


def _pct(x: Any, digits: int = 1, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:+.{digits}f}%" if sign else f"{100 * x:.{digits}f}%"


def _table(header: list[str], rows: list[list[str]], *, cls: str | None = None,
           row_classes: list[str] | None = None) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = []
    for i, r in enumerate(rows):
        rc = row_classes[i] if row_classes else ""
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in r)
        trs.append((f'<tr class="{html.escape(rc)}">' if rc else "<tr>") + cells + "</tr>")
    attr = f' class="{html.escape(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>"


def _span(steps: list[int]) -> str:
    return f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}"


def _steps_section(r: Any) -> list[str]:
    """The per-step table (step, method, MAE, MASE, skill, coverage per level with n) and, in words,
    which steps are recursive and how their intervals are calibrated."""
    steps = r.steps()
    pred_levels = [f"{lv:g}" for lv in r.predict_coverage]
    own_levels = [f"{lv:g}" for lv in r.coverage]
    own = r.config.intervals
    header = ["step", "method", "MAE", "MASE", "naive MASE", "skill vs naive",
              *(f"predict {100 * float(k):g}%" for k in pred_levels), *(["n (predict)"] if pred_levels else []),
              *(f"{own} {100 * float(k):g}%" for k in own_levels), *([f"n ({own})"] if own_levels else [])]
    rows = []
    for st in steps:
        pc, oc = st["predict_coverage"], st["coverage"]
        rows.append([
            str(st["step"]), st["method"], _fmt(st["mae"]), _fmt(st["mase"], ".3f"), _fmt(st["naive_mase"], ".3f"),
            _pct(st["skill"], 1, True), *(_pct(pc[k]["observed"]) for k in pred_levels),
            *([str(pc[pred_levels[0]]["n"])] if pred_levels else []),
            *(_pct(oc[k]["observed"]) for k in own_levels), *([str(oc[own_levels[0]]["n"])] if own_levels else []),
        ])
    h, n = r.config.trained_horizon or r.config.horizon, r.config.horizon
    direct = [st["step"] for st in steps if st["method"] == "direct"]
    recursive = [st["step"] for st in steps if st["method"] == "recursive"]
    if recursive:
        how = (f"{_span(direct).capitalize()} {'is' if len(direct) == 1 else 'are'} the model's own (direct) "
               f"forecast{'' if len(direct) == 1 else 's'}; {_span(recursive)} "
               f"{'is' if len(recursive) == 1 else 'are'} recursive: the model, trained for {h} "
               f"step{'s' if h != 1 else ''}, is fed its own predictions as the next bars, as "
               f"<code>lstmcast predict --horizon {n}</code> does, so errors can compound step by step. ")
    else:
        how = (f"With a model trained for {h} step{'s' if h != 1 else ''}, all {n} step{'s' if n != 1 else ''} "
               f"are direct: the model's own forecasts, nothing fed back. ")
    if pred_levels:
        cal = ("<b>predict N%</b>: coverage of the intervals <code>lstmcast predict</code> gives, each refit "
               "calibrated before its origin by split conformal on the fit's held-out validation residuals"
               + (" (direct steps) and on recursive forecasts made at its validation origins (recursive steps), "
                  "so a recursive step's interval reflects the recursive forecasts' own errors" if recursive else "")
               + "; no residual whose target lies after the refit origin is used. ")
    else:
        cal = "The folds gave no predict-style intervals. "
    if own_levels:
        cal += (f"<b>{html.escape(own)} N%</b>: the backtest's own intervals from each step's causal residuals "
                "(below). n: forecasts with an interval.")
    note = ('<p class="note">' + how + cal + " Skill: 1 - MAE / naive's MAE at that step (above 0: better "
            "than naive).</p>")
    return [_table(header, rows, cls="steps", row_classes=[st["method"] for st in steps]), note]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _figures(report: Any) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lstmcast.evaluate.plot import pit_histogram, steps_figure

    r, sc, idx = report.result, report.scoring, report.index
    figs: dict[str, str] = {}
    target = idx[r.origins + 1]
    fig, ax = plt.subplots(figsize=(10, 3.8), constrained_layout=True)
    d = sc.chosen.distributions["model"]
    for lv, shade in ((0.95, "#deebf7"), (0.8, "#9ecae1")):
        if lv in r.config.levels:
            lo, hi = d.interval(lv)
            ax.fill_between(target, lo[:, 0], hi[:, 0], color=shade, linewidth=0, label=f"{lv:.0%} interval")
    ax.plot(target, r.actual[:, 0], color="black", linewidth=1, label="actual")
    ax.plot(target, r.forecast[:, 0], color="#d62728", linewidth=1, label="model, 1-step")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"forecasts and {sc.intervals} intervals")
    figs["forecast"] = _img(fig, "forecast against actual with intervals")

    figs["steps"] = _img(steps_figure(r), "error and interval coverage by step")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    a1.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=0.8, label="calibrated")
    curves = [("model", sc.intervals, "#d62728"), ("naive", sc.intervals, "#7f7f7f")]
    other = "split" if sc.intervals == "adaptive" else "adaptive"
    curves.append(("model", other, "#1f77b4"))
    for name, method, color in curves:
        dist = sc.methods[method].distributions[name]
        q = dist.quantiles
        ok = np.isfinite(q).all(axis=-1) & np.isfinite(r.actual)
        if not ok.any():
            continue
        below = (r.actual[..., None] <= q)[ok].mean(axis=0)
        a1.plot(dist.levels, below, marker="o", markersize=3, color=color, label=f"{name} ({method})")
    a1.set_xlabel("nominal quantile level")
    a1.set_ylabel("observed share of actuals below")
    a1.set_title("reliability diagram")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    pit_histogram(a2, sc.pit)
    a2.set_title(f"PIT histogram ({sc.intervals})")
    figs["calibration"] = _img(fig, "reliability diagram and PIT histogram")

    if r.strategies:
        eq_x = idx[np.concatenate([[r.origins[0]], r.origins + 1])]
        fig, (e1, e2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True,
                                     gridspec_kw={"height_ratios": [3, 2]})
        for name, res in r.strategies.items():
            style = {"color": "black", "linewidth": 1.4} if name == "buy_and_hold" else {"linewidth": 1}
            e1.plot(eq_x, res.equity, label=f"{name} ({res.total_return:+.1%})", **style)
            e2.plot(eq_x, res.equity / np.maximum.accumulate(res.equity) - 1, label=name, **style)
        e1.axhline(1.0, color="#7f7f7f", linewidth=0.6)
        e1.set_ylabel(f"equity (fees {r.config.fee_bps:g} bps)")
        e1.set_title("equity curves")
        e1.legend(fontsize=8, loc="upper left")
        e1.grid(alpha=0.3)
        e2.set_ylabel("drawdown")
        e2.set_title("drawdowns")
        e2.grid(alpha=0.3)
        figs["equity"] = _img(fig, "equity curves and drawdowns")
    return figs


def _horizon_note(r: Any) -> str:
    h = r.config.trained_horizon or r.config.horizon
    return f"horizon {r.config.horizon} (model trained for {h} step{'s' if h != 1 else ''})"


def render_html(report: Any, *, title: str | None = None) -> str:
    """The page for a ``forecast.BacktestReport`` that carries its ``scoring``."""
    r, sc = report.result, report.scoring
    if sc is None:
        from lstmcast.errors import UsageError

        raise UsageError("the report needs a backtest scored with adaptive or split intervals")
    figs = _figures(report)
    head = title or f"{report.key.spec} {report.key.interval} backtest"
    levels = [f"{lv:g}" for lv in r.config.levels]
    board = []
    for name, m in r.metrics.items():
        f = sc.chosen.forecasters[name]
        hr = sc.hit_rate.get(name)
        board.append([
            name, _fmt(m.mae), _fmt(m.mase, ".3f"), _fmt(f.scores.crps, ".5f"),
            _pct(f.crps_skill, 1, True) if name != "naive" else "-", _fmt(f.crps_dm_p, ".2f"),
            _pct(f.rps_skill, 1, True), *(_pct(f.scores.coverage[k].observed) for k in levels),
            f"{100 * hr.hit_rate:.1f}% vs {100 * hr.baseline_hit_rate:.1f}% (p {_fmt(hr.p, '.2f')})" if hr else "-",
        ])
    cov_rows = [
        [method + (" (shown)" if method == sc.intervals else ""), _pct(v["nominal"], 0), _pct(v["observed"]),
         str(v["n"]), _fmt(v["step1"]["kupiec_p"], ".3f"), _fmt(v["step1"]["christoffersen_p"], ".3f"),
         _pct(v["mean_width"], 2)]
        for method, by in sc.coverage.items() for v in by.values()
    ]
    strat_rows = []
    for name, res in r.strategies.items():
        st = sc.strategies.get(name)
        if st is not None and not st.in_market:
            sharpe, psr = "never in the market", "-"
        elif st is not None and st.sharpe is not None:
            sharpe = f"{st.sharpe:.2f} ({st.sharpe_low:.2f} .. {st.sharpe_high:.2f})"
            psr = _fmt(st.psr, ".2f") if name != "buy_and_hold" else "-"
        else:
            sharpe, psr = _fmt(res.sharpe, ".2f"), "-"
        strat_rows.append([name, _pct(res.total_return, 1, True), sharpe, psr, _pct(res.exposure, 0),
                           _pct(res.max_drawdown), str(res.trades)])
    settings = {"series": report.key.spec, "interval": report.key.interval,
                "origins": f"{report.index[r.origins[0]].isoformat()} .. {report.index[r.origins[-1]].isoformat()}",
                "n_origins": len(r.origins), "refits": r.plan.n_refits, "backtest": r.to_dict(series=False)["config"],
                **report.setup}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(head)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(head)}</h1>",
        f'<p class="note">{len(r.origins)} origins, {_horizon_note(r)}, {r.plan.n_refits} refit(s). '
        f"<b>{html.escape(r.verdict)}</b></p>",
        "<h2>Leaderboard</h2>",
        _table(["forecaster", "MAE", "MASE", "CRPS", "CRPS skill", "DM p", "RPS skill",
                *(f"cov {100 * float(k):g}%" for k in levels), "hit rate vs always-up"], board),
        '<p class="note">CRPS in log space; skill against naive (above 0: better), DM p its Diebold-Mariano '
        "test; RPS skill against the uniform quintile forecast (M6).</p>",
        figs["forecast"],
        "<h2>Per step</h2>",
        *_steps_section(r),
        figs["steps"],
        "<h2>Calibration</h2>",
        _table(["intervals", "nominal", "observed", "n", "Kupiec p", "Christoffersen p", "mean width"], cov_rows),
        '<p class="note">Kupiec: is the miss rate right? Christoffersen: are misses independent? (step 1; '
        "small p = no). The reliability curve should follow the diagonal, the PIT histogram be flat.</p>",
        figs["calibration"],
    ]
    if r.strategies:
        parts += [
            "<h2>Strategy</h2>",
            _table(["strategy", "total", "Sharpe (95% CI)", "PSR vs buy-and-hold", "in market", "max drawdown",
                    "trades"], strat_rows),
            f'<p class="note">Selection: {html.escape(sc.selection_note)}</p>',
            figs["equity"],
        ]
    parts += ["<h2>Settings</h2>",
              f"<pre>{html.escape(json.dumps(settings, indent=2, default=str))}</pre>", "</body></html>"]
    return "\n".join(parts)
