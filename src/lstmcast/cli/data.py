"""`lstmcast import`, `lstmcast data list`, `lstmcast data show`."""

from __future__ import annotations

from pathlib import Path

import typer

from lstmcast.cli import common

data_app = typer.Typer(help="Inspect the local price store.", no_args_is_help=True)


def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or Parquet file, also .gz, .bz2, .xz or a .zip holding one file."),
    symbol: str = typer.Option(..., "--symbol", "-s", metavar="SYMBOL",
                               help="Symbol to store it as, e.g. BTC-USD, 7203.T."),
    interval: str = typer.Option("1d", "--interval", "-i", metavar="INTERVAL",
                                 help=f"Bar interval of the file: {common.INTERVALS}."),
    source: str = typer.Option("import", "--source", metavar="NAME", help="Source name to file it under."),
    value_column: str | None = typer.Option(
        None, "--value-column", metavar="COLUMN",
        help="Import a plain univariate series (not a price) from this column."
    ),
    market: str | None = typer.Option(
        None, "--market", metavar="MARKET",
        help="crypto (or 24/7), equity (NYSE), an exchange code such as XTKS or XLON, fx or continuous "
        "(default: from the symbol's suffix, else 24/7 if bars fall on weekends, else NYSE).",
    ),
    asset: str | None = typer.Option(None, "--asset", metavar="ASSET",
                                     help="The asset to read from a wide ASSET:field file."),
    date_format: str | None = typer.Option(
        None, "--date-format", metavar="FORMAT",
        help="strftime format of the dates, e.g. '%d.%m.%Y' or '%Y-%m-%d %I-%p'."
    ),
    dayfirst: bool = typer.Option(False, "--dayfirst", help="Dates such as 01/02/2013 are day-first (1 Feb)."),
    tz: str | None = typer.Option(
        None, "--tz", metavar="ZONE",
        help="Zone of intraday times written without a UTC offset, e.g. UTC or America/New_York."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import a CSV or Parquet price file into the store (upsert: newer bars win)."""
    from lstmcast.data.importer import import_file

    res = import_file(
        common.store(ctx), file, symbol=symbol, interval=interval, source=source,
        value_column=value_column, market=market, asset=asset, date_format=date_format, dayfirst=dayfirst, tz=tz,
    )
    m = res.upsert.manifest
    summary = {
        "series": res.upsert.key.spec,
        "status": "unchanged" if res.unchanged else "updated",
        "interval": m["interval"],
        "kind": m["kind"],
        "market": m["market"],
        "market_reason": res.market_reason,
        "rows_in_file": res.upsert.rows_added + res.upsert.rows_replaced,
        "rows_added": res.upsert.rows_added,
        "rows_replaced": res.upsert.rows_replaced,
        "rows_changed": res.rows_changed,
        "rows_unchanged": res.rows_unchanged,
        "rows_stored": m["rows"],
        "first": m["first"],
        "last": m["last"],
        "missing_bars": m["gaps"]["missing_bars"],
        "quality": res.quality,
        "repairs": res.notes,
        "damaged_file_kept_as": res.upsert.set_aside,
    }
    if as_json:
        common.print_json(summary)
        return
    con = common.out()
    head = f"[bold]{common.escape(summary['series'])}[/] {m['interval']} ({m['kind']}, {common.escape(m['market'])})"
    stored = f"stored {m['rows']} rows {common.fmt_time(m['first'])} .. {common.fmt_time(m['last'])}"
    if res.unchanged:
        con.print(f"{head} unchanged: the {summary['rows_in_file']} rows in the file are already stored; {stored}")
    else:
        con.print(
            f"imported {head}: {summary['rows_in_file']} rows, {summary['rows_added']} new, "
            f"{summary['rows_changed']} changed, {summary['rows_unchanged']} unchanged; {stored}"
        )
    con.print(f"  - market {common.escape(m['market'])}: {common.escape(res.market_reason)}")
    for note in res.notes:
        con.print(f"  - {common.escape(note)}")
    for s in res.quality.get("likely_splits", []):
        con.print(f"  - [yellow]likely unadjusted {s['split']} split[/] at {common.fmt_time(s['time'])} "
                  f"(log return {s['log_return']})")
    split_times = {s["time"] for s in res.quality.get("likely_splits", [])}
    for j in res.quality.get("jumps", []):
        if j["time"] not in split_times:
            con.print(f"  - [yellow]one-bar jump[/] at {common.fmt_time(j['time'])} (log return {j['log_return']})")
    if res.upsert.set_aside:
        con.print(f"  - the stored series was damaged; its file was kept as {common.escape(res.upsert.set_aside)}")
    gaps = m["gaps"]
    if gaps["missing_bars"]:
        con.print(f"  - gaps: {gaps['missing_bars']} missing bar(s) in {gaps['runs']} run(s)")


def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List every stored series; a damaged one is listed as such, a rebuilt manifest with a note."""
    manifests = common.store(ctx).list()
    if as_json:
        common.print_json(manifests)
        return
    con = common.out()
    if not manifests:
        con.print(
            f"no series stored yet in {common.escape(str(common.settings(ctx).data_dir))} "
            f"({_data_dir_origin(common.settings(ctx).data_dir)}); "
            "add some with `lstmcast import FILE --symbol S` or `lstmcast fetch SYMBOL`",
            soft_wrap=True,
        )
        return
    C = common.Col
    cols = [C("series", common.ID), C("interval", common.ID), C("kind", common.ID, drop=2),
            C("market", common.ID, drop=1), C("rows", common.NUM), C("first", common.DATE),
            C("last", common.DATE), C("gaps", common.NUM, drop=3)]
    rows = []
    for m in manifests:
        name = common.escape(f"{m['source']}:{m['symbol']}")
        if m["status"] == "damaged":
            rows.append([name, m["interval"], "[bold red]DAMAGED[/]", "-", "-", "-", "-", "-"])
            continue
        rows.append([
            name, m["interval"], m["kind"], common.escape(m["market"]), str(m["rows"]),
            common.fmt_time(m["first"]), common.fmt_time(m["last"]), str(m["gaps"]["missing_bars"]),
        ])
    t = common.table(f"series in {common.settings(ctx).data_dir}", cols, rows)
    con.print(t)
    for m in manifests:
        if m["note"]:
            color = "bold red" if m["status"] == "damaged" else "yellow"
            name = common.escape(m["source"] + ":" + m["symbol"])
            con.print(f"[{color}]{name} {m['interval']}:[/] {common.escape(m['note'])}", soft_wrap=True)


def _data_dir_origin(data_dir: Path) -> str:
    """Why this folder is the data directory, for a new user wondering where their data went."""
    import os

    from lstmcast.workspace import ENV_HOME, default_data_dir

    if data_dir == default_data_dir().resolve():
        return f"the per-user data folder; --data-dir DIR or ${ENV_HOME} choose another"
    if os.environ.get(ENV_HOME) and Path(os.environ[ENV_HOME]).expanduser().resolve() == data_dir:
        return f"from ${ENV_HOME}"
    return "from --data-dir"


def show_cmd(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="SYMBOL or SOURCE:SYMBOL."),
    interval: str = typer.Option("1d", "--interval", "-i", metavar="INTERVAL", help=common.HELP_INTERVAL),
    tail: int = typer.Option(5, "--tail", min=0, metavar="N", help="How many of the last bars to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one series: range, rows, gaps and the last bars."""
    st = common.store(ctx)
    key = st.resolve(symbol, interval)
    manifest = st.manifest(key)
    frame = st.load(key)
    last = frame.tail(tail)
    if as_json:
        rows = [{"time": t.isoformat(), **{c: float(v) for c, v in row.items()}} for t, row in last.iterrows()]
        common.print_json({"manifest": manifest, "last_bars": rows})
        return
    con = common.out()
    g = manifest["gaps"]
    con.print(
        f"[bold]{common.escape(key.spec)}[/] {key.interval}  {manifest['kind']}, {manifest['market']}  "
        f"{manifest['rows']} rows  {common.fmt_time(manifest['first'])} .. {common.fmt_time(manifest['last'])}"
    )
    con.print(f"missing bars: {g['missing_bars']} in {g['runs']} run(s); file sha256 {manifest['sha256'][:12]}...")
    for run in g["largest"][:5]:
        con.print(f"  gap {common.fmt_time(run['from'])} .. {common.fmt_time(run['to'])}: {run['bars']} bar(s)")
    cols = [common.Col("time", common.DATE), *(common.Col(c, common.NUM) for c in last.columns)]
    rows = [[common.fmt_time(ts.isoformat()), *(common.fmt_num(float(v)) for v in row.to_numpy())]
            for ts, row in last.iterrows()]
    t = common.table("last bars", cols, rows)
    con.print(t)


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    data_app.command("list")(list_cmd)
    data_app.command("show")(show_cmd)
    app.add_typer(data_app, name="data")
