"""`lstmcast models list`, `lstmcast models show` and `lstmcast models promote`."""

from __future__ import annotations

import typer

from lstmcast.cli import common

models_app = typer.Typer(help="Inspect trained models (runs).", no_args_is_help=True)


def list_cmd(
    ctx: typer.Context,
    symbol: str | None = typer.Argument(None, help="Only this SYMBOL or SOURCE:SYMBOL."),
    interval: str = typer.Option("1d", "--interval", "-i", help="Interval (with SYMBOL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List saved runs, oldest first per series; the current model is marked."""
    from lstmcast import registry as checkpoint

    data_dir = common.settings(ctx).data_dir
    key = common.store(ctx).resolve(symbol, interval) if symbol else None
    runs = checkpoint.list_runs(data_dir, key)
    if as_json:
        common.print_json([r.to_dict() for r in runs])
        return
    con = common.out()
    if not runs:
        con.print(f"no models under {data_dir / 'models'}; train one with `lstmcast train SYMBOL`")
        return
    C = common.Col
    cols = [C("run", common.ID), C("series", common.ID), C("status", common.ID, drop=1), C("MASE", common.NUM),
            C("naive", common.NUM), C("beats", common.ID)]
    short = common.short_ids([r.run_id for r in runs])
    rows = []
    for r in runs:
        m = r.metrics or {}
        rows.append([
            short[r.run_id] + (" *" if r.current else ""),
            f"{r.key.spec} {r.key.interval}",
            r.status,
            common.fmt_num((m.get("model") or {}).get("mase")),
            common.fmt_num((m.get("naive") or {}).get("mase")),
            "-" if r.beats_naive is None else ("yes" if r.beats_naive else "no"),
        ])
    t = common.table(f"models in {data_dir / 'models'}", cols, rows)
    con.print(t)
    con.print("* current model. Run ids are shortened to a unique prefix, which `models show` takes. "
              "MASE below the naive forecast's means skill; beats: a lower MAE than naive with DM p < 0.05.")


def show_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="A run id (or a unique prefix of one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full metadata as JSON."),
) -> None:
    """Show one run: series, data range, configs, validation metrics, versions; verifies its checksums."""
    from lstmcast import registry as checkpoint

    data_dir = common.settings(ctx).data_dir
    info = checkpoint.find_run(data_dir, run)
    loaded = checkpoint.load_run(data_dir, info.key, info.run_id)  # raises CheckpointError when damaged
    meta = loaded.meta
    if as_json:
        common.print_json({**meta, "current": info.current, "path": str(info.path)})
        return
    _render_run(info, meta, data_dir=data_dir)


def _kv(d: dict | None) -> str:
    """A settings dict as ``name value`` pairs, not a Python repr."""
    if not d:
        return "-"

    def one(v) -> str:  # type: ignore[no-untyped-def]
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, list | tuple):
            return ",".join(map(str, v))
        return "-" if v is None else str(v)

    return ", ".join(f"{k} {one(v)}" for k, v in d.items())


def _render_run(info, meta: dict, *, data_dir) -> None:  # type: ignore[no-untyped-def]
    d = meta["data"]
    try:  # relative to the data directory: short enough for 80 columns with the run id whole
        where = f"DATA_DIR/{info.path.relative_to(data_dir)}"
    except ValueError:
        where = str(info.path)
    tr = meta.get("train") or {}  # a linear or baseline run records no seed, lr or batch
    pairs = [
        ("path", where),
        ("data", f"{d['rows']} bars {common.fmt_time(d['first'])} .. {common.fmt_time(d['last'])} ({d['kind']}), "
                 f"training part to {common.fmt_time(d['train_end'])}, sha256 {str(d['sha256'])[:12]}..."),
        ("features", _kv(meta.get("features"))),
        ("inputs", ", ".join(map(str, meta.get("feature_names") or [])) or "-"),
        ("model", _kv(meta.get("model"))),
        ("training", f"best epoch {meta['best_epoch']} of {len(meta['history'])}, {meta['training_seconds']}s "
                     f"on {meta['device']}, seed {tr.get('seed', '-')}, lr {tr.get('lr', '-')}, "
                     f"batch {tr.get('batch_size', '-')}"),
        ("versions", f"lstmcast {meta['versions']['lstmcast']}, torch {meta['versions'].get('torch') or '-'}"),
    ]
    m = meta.get("metrics") or {}
    for who in ("model", "naive") if m else ():
        x = m[who]
        pairs.append((f"{who} skill", f"MAE {common.fmt_num(x['mae'])}  RMSE {common.fmt_num(x['rmse'])}  "
                                      f"MASE {common.fmt_num(x['mase'])}  direction {100 * (x['hit_rate'] or 0):.1f}%"))
    if m:
        pairs.append(("beats naive", "yes" if meta.get("beats_naive") else "no"))
    title = (f"run {info.run_id} {info.key.spec} {info.key.interval} "
             f"({meta['status']}{', current' if info.current else ''})")
    common.out().print(common.key_values(pairs, title=title))


def promote_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="A run id (or a unique prefix of one)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make an earlier complete run the current model of its series (a manual rollback).

    Refuses interrupted and incomplete runs. Recorded in DATA_DIR/logs/lstmcast.log. The next
    `lstmcast run` treats it as the champion a new challenger must beat.
    """
    from lstmcast import runlog
    from lstmcast.pipelines import live

    data_dir = common.settings(ctx).data_dir
    r = live.promote(data_dir, run)
    if r.changed:
        with runlog.run_logging(data_dir, terminal=False) as log:
            log.info("models promote: run %s of %s %s is current (was %s)", r.run_id, r.series, r.interval,
                     r.previous or "none")
    if as_json:
        common.print_json(r.to_dict())
        return
    con = common.out()
    if r.changed:
        con.print(f"run {r.run_id} is now the current model of {r.series} {r.interval} (was {r.previous or 'none'})",
                  markup=False, soft_wrap=True)
    else:
        con.print(f"run {r.run_id} is already the current model of {r.series} {r.interval}", markup=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    models_app.command("list")(list_cmd)
    models_app.command("show")(show_cmd)
    models_app.command("promote")(promote_cmd)
    app.add_typer(models_app, name="models")
