"""Helpers shared by the command modules: settings from the context, consoles, JSON output."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from lstmcast.config import AppSettings

PIPE_WIDTH = 160


def settings(ctx: typer.Context) -> AppSettings:
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, AppSettings):  # invoked without the root callback (should not happen)
        from lstmcast.config import resolve_data_dir

        obj = AppSettings(data_dir=resolve_data_dir(None))
        root.obj = obj
    return obj


def store(ctx: typer.Context):
    from lstmcast.data.store import Store

    return Store(settings(ctx).data_dir)


def out() -> Console:
    """Console for results (stdout). Created per call so test runners' captured streams are honoured."""
    # Piped output (CI logs, `make demo | less`, tests) would otherwise be cut to 80 columns and
    # tables would truncate dates and symbols with an ellipsis.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


def err() -> Console:
    return Console(file=sys.stderr, highlight=False)


def print_json(obj: Any) -> None:
    """Strict JSON on stdout (NaN/inf become null)."""
    from lstmcast.jsonable import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}", markup=True, highlight=False)


def print_error(e: BaseException) -> None:
    """One red line on stderr. The message is escaped: file names and symbols may hold '[' or ']'."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    err().print(f"[bold red]error:[/] {escape(msg)}", markup=True, highlight=False, soft_wrap=True)


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    ax = abs(x)
    if ax >= 1e5:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:,.2f}"
    return f"{x:.{digits}g}"


def fmt_time(iso: str | None) -> str:
    if not iso:
        return "-"
    return iso.replace("T00:00:00+00:00", "").replace("+00:00", "Z").replace("T", " ")


def training_setup(flags: dict[str, Any], *, base: dict[str, Any] | None = None):
    """Training configs from option flags over ``base`` (a config file, a run's settings).

    A flag value that is invalid on its own is a usage error (exit 2); one that only clashes with
    the file's values is a config error (exit 1), as is a bad file.
    """
    from lstmcast.errors import ConfigError, UsageError
    from lstmcast.pipelines import train as T

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        T.setup_from_options(given)
    except ConfigError as e:
        raise UsageError(str(e)) from e
    return T.setup_from_options({**(base or {}), **given})

