"""`lstmcast status`: one row per watchlist entry: last run, data, model, live skill, coverage, drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from lstmcast.cli import common

COLUMNS = ("entry", "last run", "data", "model", "skill", "coverage", "drift", "next run")
# widest a column may get: cells wrap at their spaces ("ok 12-02 07:53" -> "ok 12-02" / "07:53"),
# so eight columns fit 80 terminal columns without cutting anything
_MAX_WIDTH = {"entry": 16, "last run": 8, "data": 7, "model": 7, "skill": 11, "coverage": 8, "drift": 9,
              "next run": 5}
_EMPTY = {"last_run": None, "data_last": None, "model": None, "live": None, "next_run": None, "flags": [],
          "checks": {}}


def status_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="Config file (default: $LSTMCAST_CONFIG, else DATA_DIR/lstmcast.toml)."
    ),
    tabfile: Path | None = typer.Option(None, "--tabfile", hidden=True, help="Read this file instead of the crontab."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema in the README)."),
) -> None:
    """One table over the watchlist: each entry's last run and its outcome, data freshness, current
    model (family, age), live skill vs the validation band, interval coverage, drift, next cron run.

    A "!" marks a flagged check; the reasons are listed under the table. Times are UTC. Band and
    drift come from the last run's checks (checks.json); the rest is computed now.
    """
    from lstmcast import runner
    from lstmcast.config import load_config
    from lstmcast.monitor.base import to_utc
    from lstmcast.pipelines import live
    from lstmcast.workspace import find_config

    data_dir = common.settings(ctx).data_dir
    path = find_config(config, data_dir=data_dir)
    cfg = load_config(path)
    cron, next_run = _schedule(data_dir, tabfile)
    now = live._utc_now()
    rows = live.watchlist_status(data_dir, cfg, key_of=runner.series_key, is_fetchable=runner.is_fetchable,
                                 now=now, next_run=next_run)
    if as_json:
        nxt = to_utc(next_run)
        common.print_json({
            "generated": now.isoformat(),
            "data_dir": str(data_dir),
            "config": str(path),
            "schedule": None if cron is None else {"cron": cron, "next_run": nxt.isoformat() if nxt else None},
            "entries": [status_dict(r) for r in rows],
        })
        return
    render(rows, common.out(), cron=cron)


def status_dict(r: Any) -> dict[str, Any]:
    """One entry of ``status --json``."""
    body = r.status.to_dict() if r.status is not None else {**_EMPTY, "entry": r.entry}
    return {**body, "error": r.error, "band": r.band, "notes": list(r.notes)}


def _schedule(data_dir: Path, tabfile: Path | None) -> tuple[str | None, Any]:
    """(cron expression, next run time) of this data directory's crontab entry, or (None, None)."""
    from lstmcast import schedule
    from lstmcast.errors import LstmcastError

    try:
        entry, times = schedule.show(data_dir=data_dir, tabfile=tabfile, n=1)
    except LstmcastError:  # no crontab binary, unreadable crontab: nothing is scheduled as far as we can tell
        return None, None
    if entry is None:
        return None, None
    return entry.cron, times[0] if times else None


def render(rows: list[Any], con: Any, *, cron: str | None = None) -> None:
    """The status table; it fits 80 columns (cells wrap, never end in an ellipsis)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if not rows:
        con.print("watchlist is empty: nothing to show (add [[watchlist]] entries to lstmcast.toml)", markup=False)
        return
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for col in COLUMNS:
        t.add_column(col, overflow="fold", justify="left", max_width=_MAX_WIDTH[col])
    reasons: list[str] = []
    for r in rows:
        if r.status is None:
            t.add_row(Text(r.entry), Text("checks failed", style="red"), *["-"] * (len(COLUMNS) - 2))
            reasons.append(f"{r.entry}: {r.error}")
            continue
        cells = r.status.cells()
        styled = []
        for col in COLUMNS:
            v = cells[col].replace(",", ", ") if col == "drift" else cells[col]
            style = "yellow" if v.endswith(" !") or (col == "drift" and v not in ("-", "no")) else None
            if col == "last run" and v.startswith("FAILED"):
                style = "red"
            styled.append(Text(v, style=style or ""))
        t.add_row(*styled)
        for c in r.status.checks:
            if c.flagged:
                reasons.append(f"{r.entry}: {c.name}: {c.reason}")
        if r.status.last_run and not r.status.last_run.get("ok") and r.status.last_run.get("error"):
            reasons.append(f"{r.entry}: last run failed: {r.status.last_run['error']}")
    con.print(t)
    con.print("skill: live MAE / naive MAE [validation band]; coverage: observed/nominal; ! flagged; times UTC",
              markup=False, style="dim")
    if cron is None:
        con.print("no cron entry for this data directory (`lstmcast schedule install`)", markup=False, style="dim")
    for line in reasons:
        con.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("status")(status_cmd)
