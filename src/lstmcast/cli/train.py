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
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL of a stored series."),
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
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (no progress bar)."),
) -> None:
    """Train an LSTM on a stored series, report validation skill against the naive forecast, save the run.

    The newest bars are held out for validation (no shuffling across the split; the scaler sees
    the training part only). The finished run becomes the current model of the series; an
    interrupted run (Ctrl-C) is saved but does not replace the current model.
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
    setup = common.training_setup(flags, base=T.read_config_file(config) if config else None)
    store = common.store(ctx)
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


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
