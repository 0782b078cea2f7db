"""`lstmcast train`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common


def train_cmd(
    ctx: typer.Context,
    symbols: list[str] | None = typer.Argument(
        None, help="SYMBOL or SOURCE:SYMBOL of stored series (one or more).", show_default=False
    ),
    all_series: bool = typer.Option(False, "--all", help="Every stored series of this --interval."),
    symbols_file: Path | None = typer.Option(
        None, "--symbols-file", metavar="FILE",
        help="A file of symbols, one a line (blank lines and # comments skipped).",
    ),
    interval: str | None = typer.Option(
        None, "--interval", "-i", metavar="INTERVAL", help=common.HELP_INTERVAL + " [default: 1d]"
    ),
    lookback: int | None = typer.Option(None, "--lookback", metavar="N", help="Bars per input window [default: 60]."),
    horizon: int | None = typer.Option(None, "--horizon", metavar="N", help="Bars ahead to forecast [default: 1]."),
    hidden: int | None = typer.Option(None, "--hidden", metavar="N", help="LSTM hidden size [default: 64]."),
    layers: int | None = typer.Option(None, "--layers", metavar="N", help="Stacked LSTM layers [default: 2]."),
    dropout: float | None = typer.Option(
        None, "--dropout", metavar="P", help="Dropout between LSTM layers [default: 0.1]."
    ),
    epochs: int | None = typer.Option(None, "--epochs", metavar="N", help="Maximum epochs [default: 100]."),
    batch_size: int | None = typer.Option(None, "--batch-size", metavar="N", help="Windows per batch [default: 64]."),
    lr: float | None = typer.Option(None, "--lr", metavar="RATE", help="AdamW learning rate [default: 0.001]."),
    patience: int | None = typer.Option(
        None, "--patience", metavar="N",
        help="Stop after this many epochs without a better validation loss [default: 10]."
    ),
    val_fraction: float | None = typer.Option(
        None, "--val-fraction", metavar="SHARE",
        help="Share of the latest windows held out for validation [default: 0.2]."
    ),
    device: str | None = typer.Option(
        None, "--device", metavar="DEVICE", help=common.HELP_DEVICE + " [default: auto]"
    ),
    seed: int | None = typer.Option(
        None, "--seed", metavar="N", help="Random seed; CPU runs repeat bit for bit [default: 0]."
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        metavar="TARGET",
        help=common.HELP_TARGET + " [default: return]",
    ),
    deterministic: bool | None = typer.Option(
        None,
        "--deterministic/--no-deterministic",
        help="Deterministic algorithms only (slower on CUDA; see README).",
        show_default=False,
    ),
    family: str | None = typer.Option(
        None, "--model-family", metavar="FAMILY", help=common.HELP_FAMILY + " [default: lstm]"
    ),
    threads: int | None = typer.Option(
        None, "--threads", metavar="N", help="CPU threads for torch [default: torch's]."
    ),
    config: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="TOML file with a [train] table; flags override its values."
    ),
    executor: str | None = common.executor_option("local when there are several series"),
    workers: int | None = common.workers_option(),
    ray_address: str | None = common.ray_address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (no progress bar)."),
) -> None:
    """Train an LSTM on a stored series, report validation skill against the naive forecast, save the run.

    The newest bars are held out for validation (no shuffling across the split; the scaler sees
    the training part only). The finished run becomes the current model of the series; an
    interrupted run (Ctrl-C) is saved but does not replace the current model.

    Several series (SYMBOL..., --all, --symbols-file) train as tasks of --executor, each with the
    seed derived from (seed, series, interval, family), and end with one summary table. Exit 3 when
    a series failed (the others are still trained and saved).
    """
    from lstmcast.errors import InterruptedRun
    from lstmcast.pipelines import train as T

    flags: dict[str, Any] = {
        "interval": interval,
        "lookback": lookback,
        "horizon": horizon,
        "hidden": hidden,
        "layers": layers,
        "dropout": dropout,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "patience": patience,
        "val_fraction": val_fraction,
        "device": device,
        "seed": seed,
        "target": target,
        "deterministic": deterministic,
        "threads": threads,
        "family": family,
    }
    common.check_executor_flags(executor, workers, ray_address)
    setup = common.training_setup(flags, base=T.read_config_file(config) if config else None)
    store = common.store(ctx)
    specs = common.symbols(store, symbols, all_series=all_series, symbols_file=symbols_file,
                           interval=setup.interval)
    if len(specs) > 1 or all_series or symbols_file is not None or executor is not None or workers is not None:
        _train_many(store, specs, setup, executor=executor, workers=workers, ray_address=ray_address,
                    as_json=as_json)
        return
    symbol = specs[0]
    with contextlib.nullcontext() if as_json else _epoch_bar(setup.train.epochs) as progress:
        report = T.train_series(store, symbol, interval=setup.interval, settings=setup.settings, progress=progress)
    if as_json:
        common.print_json(report.to_dict())
    else:
        _render(report)
    if report.interrupted:
        raise InterruptedRun(
            f"training interrupted; best weights so far saved as run {report.run.run_id} (not made current)"
        )


@contextlib.contextmanager
def _epoch_bar(epochs: int) -> Iterator[Any]:
    """A rich progress bar over epochs (on stderr) that also moves within an epoch, batch by batch;
    yields the callback for ``train_series`` (its ``on_batch`` is what the loop calls per batch)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("{task.fields[batch]}"),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        console=common.err(),
        transient=False,
    ) as bar:
        task = bar.add_task("train", total=epochs, losses="", epoch=0, batch="")
        seen = [0]

        class Callback:
            def __call__(self, s: Any) -> None:
                seen[0] = s.epoch
                mark = " *" if s.best else ""
                bar.update(
                    task,
                    completed=s.epoch,
                    epoch=s.epoch,
                    batch="",
                    losses=f"train {s.train_loss:.4f}  val {s.val_loss:.4f}  lr {s.lr:.1e}{mark}",
                )

            def on_batch(self, epoch: int, done: int, total: int) -> None:
                bar.update(task, completed=epoch - 1 + done / total, epoch=epoch, batch=f"batch {done}/{total}")

        yield Callback()
        bar.update(task, total=max(1, seen[0]), completed=seen[0])  # early stopping ends the bar full


def _render(report: Any) -> None:
    from rich.table import Table

    con = common.out()
    f = report.fitted
    d = report.data_info
    con.print(
        f"[bold]{report.key.spec}[/] {report.key.interval}: {d['rows']} bars "
        f"{common.fmt_time(d['first'])} .. {common.fmt_time(d['last'])}; "
        f"trained {len(f.history)} epoch(s) on {report.device} in {f.seconds:.1f}s, "
        f"best epoch {f.best_epoch}"
    )
    m = report.metrics
    if not m:
        con.print("no validation split (--val-fraction 0): no skill to report")
    else:
        con.print(
            f"validation: {len(f.val_origins)} origins {common.fmt_time(d['val_first_origin'])} .. "
            f"{common.fmt_time(d['val_last_origin'])} "
            f"(horizon {f.features.horizon}, target {f.features.target})"
        )
        t = Table()
        t.add_column("metric")
        t.add_column("model", justify="right")
        t.add_column("naive", justify="right")
        for label, name in (("MAE (close)", "mae"), ("RMSE (close)", "rmse"), ("MASE", "mase")):
            t.add_row(label, common.fmt_num(m["model"][name]), common.fmt_num(m["naive"][name]))
        t.add_row(
            "directional accuracy",
            f"{100 * m['model']['hit_rate']:.1f}%",
            f"{100 * m['naive']['hit_rate']:.1f}%",
        )
        con.print(t)
        con.print(
            f"beats naive: [bold]{'yes' if report.beats_naive else 'no'}[/] "
            f"(MAE {common.fmt_num(m['model']['mae'])} vs {common.fmt_num(m['naive']['mae'])}, "
            f"DM p = {m['dm']['p']:.2f}; yes needs a lower MAE and p < 0.05. "
            "Naive = last close, which calls no direction)"
        )
    state = (
        "current model"
        if report.promoted
        else "interrupted, not made current" if report.interrupted
        else f"incomplete: {report.incomplete_reason}; not made current" if report.incomplete_reason
        else "not made current"
    )
    con.print(f"saved run {report.run.run_id} ({state}): {report.run.path}")


def _train_many(store: Any, specs: list[str], setup: Any, *, executor: str | None, workers: int | None,
                ray_address: str | None, as_json: bool) -> None:
    """Several series (or an executor asked for): one task per series, one summary, exit 3 on a failure."""
    from lstmcast.errors import EXIT_PARTIAL, InterruptedRun, LstmcastError, UsageError
    from lstmcast.executor import make_executor
    from lstmcast.pipelines import train as T

    results: dict[str, Any] = {}
    items = []
    seen: dict[Any, str] = {}
    for spec in specs:
        try:
            key = store.resolve(spec, setup.interval)
        except LstmcastError as e:  # this series fails; the others go on
            results[spec] = e
            continue
        if key in seen:  # AAPL and yahoo:AAPL: the same series twice is ambiguous, not two runs
            raise UsageError(f"{spec} and {seen[key]} are the same series ({key.spec} {key.interval})")
        seen[key] = spec
        items.append((spec, key, setup.settings))
    ex = make_executor(executor, n_tasks=max(1, len(items)), workers=workers, ray_address=ray_address)
    with ex, contextlib.nullcontext(None) if as_json else _task_bar(len(items)) as on_progress:
        results.update(T.train_many(store, items, executor=ex, promote=True, on_progress=on_progress))
    ordered = [(spec, results[spec]) for spec in specs]
    failed = [(spec, r) for spec, r in ordered if isinstance(r, BaseException)]
    if as_json:
        common.print_json([_json_row(spec, r) for spec, r in ordered])
    else:
        _render_summary(ordered, executor=ex)
    for spec, e in failed:
        common.print_error(Exception(f"{spec}: {_error_line(e)}"))
    stopped = [r for _, r in ordered if not isinstance(r, BaseException) and r.interrupted]
    if stopped:  # serial: Ctrl-C during a fit saves its best weights, not current, and stops there
        raise InterruptedRun(f"training interrupted; {stopped[0].key.spec}'s best weights so far saved as run "
                             f"{stopped[0].run.run_id} (not made current)")
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def _error_line(e: BaseException) -> str:
    """One line for a failed series: our errors as they are, anything else with its type."""
    from lstmcast.errors import LstmcastError

    text = str(e).splitlines()[0] if str(e) else ""
    if isinstance(e, LstmcastError) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _json_row(spec: str, r: Any) -> dict[str, Any]:
    """One series of ``train SYM SYM ... --json``: ``report`` is what ``train SYM --json`` prints."""
    if isinstance(r, BaseException):
        return {"symbol": spec, "ok": False, "error": _error_line(r), "report": None}
    return {"symbol": spec, "ok": True, "error": None, "report": r.to_dict()}


@contextlib.contextmanager
def _task_bar(n: int) -> Iterator[Any]:
    """One progress bar over the training tasks (one per series) across every worker, on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("training"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[last]}"),
                  TimeElapsedColumn(), console=common.err()) as bar:
        task = bar.add_task("train", total=n, last="")

        def on_progress(done: int, total: int, key: str) -> None:
            bar.update(task, completed=done, total=total, last=key)

        yield on_progress


def _render_summary(ordered: list[tuple[str, Any]], *, executor: Any) -> None:
    con = common.out()
    rows = []
    for spec, r in ordered:
        if isinstance(r, BaseException):
            rows.append([spec, "-", "[red]failed[/]", "-", "-", "-"])
            continue
        m = r.metrics
        state = ("current" if r.promoted else "interrupted" if r.interrupted
                 else "incomplete" if r.incomplete_reason else r.run.status)
        rows.append([
            r.key.spec, r.run.run_id, state,
            common.fmt_num(m["model"]["mase"], 3) if m else "-",
            common.fmt_num(m["naive"]["mase"], 3) if m else "-",
            ("yes" if r.beats_naive else "no") if m else "-",
        ])
    cols = [common.Col("series", common.ID), common.Col("run", common.ID), common.Col("status"),
            common.Col("MASE", common.NUM), common.Col("naive MASE", common.NUM),
            common.Col("beats naive", justify="right")]
    n_ok = sum(not isinstance(r, BaseException) for _, r in ordered)
    con.print(common.table(f"trained {n_ok} of {len(ordered)} series on the {executor.name} executor "
                           f"({executor.workers} worker(s))", cols, rows))
    con.print("beats naive = lower validation MAE and DM p < 0.05 on that series alone (no correction across "
              "series); MASE is scaled by the naive 1-step error of the recent training bars", markup=False,
              soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
