"""The backtest picture: forecasts against what happened, and what trading them would have earned.

matplotlib is imported inside the function with the non-interactive Agg backend, so importing
this module costs nothing and no display is ever needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstmcast.atomic import write_with

if TYPE_CHECKING:
    import pandas as pd

    from lstmcast.evaluate.backtest import BacktestResult


def plot_backtest(
    result: BacktestResult,
    path: Path,
    *,
    index: pd.DatetimeIndex | None = None,
    step: int = 1,
    title: str | None = None,
    pit: dict[str, np.ndarray] | None = None,
    others: dict[str, BacktestResult] | None = None,
) -> Path:
    """Write a PNG: top, actual close vs the model's ``step``-ahead forecast with its interval
    bands and the naive forecast; bottom, the model strategy's equity against buy-and-hold (left
    out for a value series, which has no strategy); with ``pit`` (forecaster -> PIT values), a
    PIT histogram of the model's and naive's predictive distributions (flat when calibrated).

    ``index`` maps row positions to timestamps for the x axis (row numbers without it).
    ``others``: several families' results on the same origins (family -> result, ``result`` among
    them): each gets its forecast line and equity curve, labelled with its MASE, as the leaderboard.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result.config.horizon
    if not 1 <= step <= h:
        from lstmcast.errors import UsageError

        raise UsageError(f"plot step must be between 1 and the horizon ({h}), got {step}")
    s = step - 1
    target = result.origins + step  # the bar each step-ahead forecast is for
    traded = result.origins + 1  # equity after each traded bar

    def x(pos: np.ndarray):
        return index[pos] if index is not None else pos

    trades = bool(result.strategies)  # a value series has no strategy: forecasts only
    ratios = [3] + ([2] if trades else []) + ([2] if pit else [])
    fig = plt.figure(figsize=(11, 2.2 * sum(ratios) / 1.5 + 0.5), constrained_layout=True)
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios)
    ax1 = fig.add_subplot(grid[0])
    if trades:
        ax2 = fig.add_subplot(grid[1], sharex=ax1)
    if pit:
        pit_histogram(fig.add_subplot(grid[-1]), pit)
    # widest band first and lightest, narrower ones drawn darker on top of it
    shades = ["#deebf7", "#9ecae1", "#6baed6"]
    for i, level in enumerate(sorted(result.intervals, reverse=True)):
        lo, hi = result.intervals[level]
        ax1.fill_between(x(target), lo[:, s], hi[:, s], color=shades[min(i, 2)], linewidth=0,
                         label=f"{level:.0%} interval")
    ax1.plot(x(target), result.actual[:, s], color="black", linewidth=1.0, label="actual")
    families = others if others and len(others) > 1 else {"model": result}
    colors = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (name, res) in enumerate(families.items()):
        label = f"model, {step}-step"
        if name != "model":
            label = f"{name}, {step}-step (MASE {res.metrics['model'].mase:.2f})"
        ax1.plot(x(target), res.forecast[:, s], color=colors[i % len(colors)], linewidth=1.0, label=label)
    ax1.plot(x(target), result.baselines["naive"][:, s], color="#7f7f7f", linewidth=0.8,
             linestyle="--", label="naive")
    ax1.set_ylabel("close")
    ax1.set_title(title or result.verdict)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)

    if trades:
        eq_x = np.concatenate([[result.origins[0]], traded])
        bh = result.strategies["buy_and_hold"]
        for i, (name, res) in enumerate(families.items()):
            eq = res.strategies["model"].equity
            ax2.plot(x(eq_x), eq, color=colors[i % len(colors)],
                     label=f"{'model' if name == 'model' else name} strategy ({eq[-1] - 1:+.1%})")
        ax2.plot(x(eq_x), bh.equity, color="black", label=f"buy and hold ({bh.total_return:+.1%})")
        ax2.axhline(1.0, color="#7f7f7f", linewidth=0.6)
        ax2.set_ylabel(f"equity (fees {result.config.fee_bps:g} bps)")
        ax2.legend(loc="upper left", fontsize=8)
        ax2.grid(alpha=0.3)

    return save_png(fig, path)


def save_png(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write ``fig`` as a PNG at ``path`` atomically, and close it whatever happens."""
    import matplotlib.pyplot as plt

    try:
        write_with(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
    return Path(path)


def steps_plot_path(plot: Path) -> Path:
    """Where the per-step figure of ``plot`` goes: beside it, ``NAME-steps.png``."""
    return plot.with_name(f"{plot.stem}-steps{plot.suffix or '.png'}")


def steps_figure(result: BacktestResult, *, title: str | None = None):
    """The matplotlib figure of error and coverage by step (``plot_steps`` draws it to a file, the
    HTML report embeds it): left, the model's and naive's MAE per step (recursive steps shaded);
    right, per level the observed coverage per step of the intervals predict gives (solid) and of
    the backtest's own (dashed), against the nominal level (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, result.config.horizon + 1)
    methods = result.methods
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    recursive = [s for s, m in zip(steps, methods, strict=True) if m == "recursive"]
    for ax in (a1, a2):
        if recursive:
            ax.axvspan(recursive[0] - 0.5, recursive[-1] + 0.5, color="#f2f2f2", zorder=0,
                       label=f"recursive (steps {recursive[0]}-{recursive[-1]})" if ax is a1 else None)
        ax.set_xticks(steps)
        ax.set_xlim(0.5, steps[-1] + 0.5)
        ax.set_xlabel("step (bars ahead)")
        ax.grid(alpha=0.3)
    for name, color, style in (("model", "#d62728", "-"), ("naive", "#7f7f7f", "--")):
        mae = [m.mae for m in result.metrics_by_step[name]]
        a1.plot(steps, mae, marker="o", markersize=4, color=color, linestyle=style, label=name)
    a1.set_ylabel("MAE")
    a1.set_title("error by step: model vs naive")
    a1.legend(fontsize=8, loc="upper left")

    colors = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, level in enumerate(sorted(set(result.predict_coverage) | set(result.coverage))):
        color = colors[i % len(colors)]
        a2.axhline(level, color=color, linestyle=":", linewidth=1, label=f"nominal {level:.0%}")
        for cov, style, what in ((result.predict_coverage, "-", "predict"),
                                 (result.coverage, "--", result.config.intervals)):
            if level in cov:
                y = np.array(cov[level]["by_step"], dtype="float64")  # None (no interval yet) -> nan
                a2.plot(steps, y, marker="o", markersize=4, color=color, linestyle=style,
                        label=f"{what} {level:.0%}")
    a2.set_ylim(0, 1.02)
    a2.set_ylabel("observed coverage")
    a2.set_title("interval coverage by step")
    if a2.get_legend_handles_labels()[0]:
        a2.legend(fontsize=7, loc="lower left", ncol=2)
    else:
        a2.text(0.5, 0.5, "no intervals", ha="center", va="center", transform=a2.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_steps(result: BacktestResult, path: Path, *, title: str | None = None) -> Path:
    """Write a PNG of error and coverage by step (``steps_figure``), atomically."""
    return save_png(steps_figure(result, title=title), path)


def pit_histogram(
    ax, pit: dict[str, np.ndarray], *, names: tuple[str, ...] = ("model", "naive"), bins: int = 10
) -> None:
    """Side-by-side PIT histograms (density; 1.0 everywhere when calibrated) on ``ax``."""
    shown = [n for n in names if n in pit]
    width = 1.0 / bins / (len(shown) + 1)
    colors = {"model": "#d62728", "naive": "#7f7f7f"}
    for i, name in enumerate(shown):
        v = np.asarray(pit[name], dtype="float64").reshape(-1)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        counts, edges = np.histogram(v, bins=bins, range=(0.0, 1.0))
        ax.bar(edges[:-1] + (i + 0.5) * width, counts / len(v) * bins, width=width, align="edge",
               color=colors.get(name, None), label=f"{name} (n={len(v)})")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":", label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT: forecast CDF at the realised value")
    ax.set_ylabel("density")
    ax.legend(loc="upper center", fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
