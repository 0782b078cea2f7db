"""`lstmcast fetch`: download bars from Yahoo Finance or a crypto exchange into the store."""

from __future__ import annotations

import sys

import typer

from lstmcast.cli import common
from lstmcast.errors import EXIT_ERROR, EXIT_PARTIAL


def fetch_cmd(
    ctx: typer.Context,
    symbols: list[str] = typer.Argument(
        ..., help="AAPL, ^GSPC, EURUSD=X, BTC-USD (Yahoo) or EXCHANGE:BASE/QUOTE such as binance:BTC/USDT (ccxt)."
    ),
    interval: str = typer.Option("1d", "--interval", "-i", metavar="INTERVAL", help=common.HELP_INTERVAL),
    start: str | None = typer.Option(None, "--start", metavar="DATE",
                                     help="First date (YYYY-MM-DD); default: all history."),
    end: str | None = typer.Option(None, "--end", metavar="DATE",
                                   help="End date, exclusive (YYYY-MM-DD); default: now."),
    full: bool = typer.Option(False, "--full", help="Refetch everything and replace the stored series."),
    source: str | None = typer.Option(None, "--source", metavar="SOURCE",
                                      help="yahoo or ccxt, instead of guessing from the symbol."),
    include_partial: bool = typer.Option(
        False, "--include-partial", help="Also store the still-forming current bar."
    ),
    workers: int = typer.Option(4, "--workers", min=1, max=16, metavar="N", help="Symbols fetched at the same time."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Fetch price bars into the store, incrementally (from the last stored bar) unless --full.

    Exit code 0 when every symbol succeeded, 3 when some failed, 1 when all failed.
    """
    from lstmcast.data.update import check_request, fetch_many

    # bad symbols, dates or intervals fail once, as a usage error, before any network traffic
    check_request(symbols, interval=interval, start=start, end=end, source=source)
    store = common.store(ctx)
    kwargs = dict(interval=interval, start=start, end=end, full=full, source=source,
                  include_partial=include_partial)
    if as_json or not sys.stderr.isatty():
        # no live display; with --verbose each retry is a plain line on stderr (why a fetch was slow)
        plain = _plain_retries if common.settings(ctx).verbose else None
        results = fetch_many(store, symbols, max_workers=workers, on_activity=plain, **kwargs)
    else:
        results = _with_progress(store, symbols, workers, kwargs)

    if as_json:
        common.print_json({"results": [r.to_dict() for r in results],
                           "ok": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)})
    else:
        _render(results)
    failed = [r for r in results if not r.ok]
    if failed and len(failed) == len(results):
        raise typer.Exit(EXIT_ERROR)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def retry_line(a) -> str:  # type: ignore[no-untyped-def]
    """``429 from binance, waiting 1 s (retry 2)`` for a ``FetchActivity`` that is a retry."""
    why = f"{a.status} from {a.source}" if a.status else (a.error or f"temporary error from {a.source}")
    if len(why) > 100:
        why = why[:97] + "..."
    wait = f"{a.wait_s:.0f}" if a.wait_s >= 1 else f"{a.wait_s:.1f}"
    return f"{why}, waiting {wait} s (retry {a.retry})"


def _plain_retries(a) -> None:  # type: ignore[no-untyped-def]
    if a.retry:
        common.err().print(f"{a.spec}: {retry_line(a)}", markup=False, highlight=False, soft_wrap=True)


def _with_progress(store, symbols: list[str], workers: int, kwargs: dict):
    """One live line per symbol: pages and rows so far, the retry being waited out; each retry
    also leaves a line above the display."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from lstmcast.data.update import fetch_many

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=common.err(), transient=True) as progress:
        tasks = {s: progress.add_task(f"waiting  {common.escape(s)}", total=1) for s in symbols}

        def on_progress(spec: str, event: str, result) -> None:
            if event == "start":
                progress.update(tasks[spec], description=f"fetching {common.escape(spec)}")
            else:
                progress.update(tasks[spec], description=f"{result.status:<8} {common.escape(spec)}", completed=1)

        def on_activity(a) -> None:  # type: ignore[no-untyped-def]
            got = f"page {a.pages}, {a.rows:,} rows" if a.pages else "first page"
            if a.retry:
                line = f"[yellow]{common.escape(a.spec)}:[/] {common.escape(retry_line(a))}"
                progress.console.print(line, highlight=False)
                why = f"{a.status}" if a.status else "error"
                progress.update(tasks[a.spec], description=f"fetching {common.escape(a.spec)}  {got}; {why}, "
                                                           f"retry {a.retry} in {a.wait_s:.1f} s")
            else:
                progress.update(tasks[a.spec], description=f"fetching {common.escape(a.spec)}  {got}")

        return fetch_many(store, symbols, max_workers=workers, on_progress=on_progress, on_activity=on_activity,
                          **kwargs)


def _render(results) -> None:
    if len(results) == 1 and not results[0].ok and results[0].status == "failed":
        common.err().print(f"[bold red]error:[/] {results[0].error}{_stored(results[0])}", markup=True,
                           highlight=False, soft_wrap=True)
        return
    C = common.Col
    cols = [C("series", common.ID), C("status", common.ID), C("added", common.NUM), C("bars", common.NUM),
            C("new range", common.DATE), C("gaps", common.NUM, drop=1), C("flags", common.TEXT, drop=2)]
    rows = []
    for r in results:
        rng = common.fmt_range(r.first, r.last)
        gaps = sum(g["bars"] for g in r.new_gaps)
        flags = []
        if r.quality.get("zero_volume"):
            flags.append(f"{r.quality['zero_volume']} zero-vol")
        if r.quality.get("jumps"):
            flags.append(f"{len(r.quality['jumps'])} jumps")
        if r.quality.get("likely_splits"):
            flags.append(f"{len(r.quality['likely_splits'])} likely splits")
        color = {"ok": "green", "up-to-date": "green", "partial": "yellow"}.get(r.status, "red")
        bars = f"{r.bars_received}/{r.bars_expected}" if r.bars_expected or r.bars_received else "-"
        rows.append([common.escape(r.key.spec if r.key else r.spec), f"[{color}]{r.status}[/]", str(r.rows_added), bars,
                     rng, str(gaps), ", ".join(flags) or "-"])
    t = common.table("fetch", cols, rows)
    common.out().print(t)
    common.out().print("bars: received/expected by the market calendar; gaps: new missing bars; flags: "
                       "zero-volume bars, |log return| > 50% jumps, likely unadjusted splits", style="dim")
    con = common.err()
    for r in results:
        if r.error:
            con.print(f"[bold red]{r.spec}:[/] {r.error}{_stored(r)}", markup=True, highlight=False,
                      soft_wrap=True)
        for note in r.notes:
            con.print(f"[yellow]{r.spec}:[/] {note}", markup=True, highlight=False, soft_wrap=True)


def _stored(r) -> str:
    """What the store holds after a fetch that did not get everything."""
    if r.key is None:
        return ""
    got = f"received {r.bars_received} of {r.bars_expected} expected bars; " if r.bars_expected else ""
    return f" ({got}{r.rows_stored} rows stored)"


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch_cmd)
