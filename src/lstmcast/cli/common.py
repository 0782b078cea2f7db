"""Helpers shared by the command modules: settings from the context, consoles, JSON and file output,
symbol completion."""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from lstmcast.errors import LstmcastError

if TYPE_CHECKING:  # config imports pydantic: `lstmcast --help` and `--version` must not pay for it
    from lstmcast.config import AppSettings

PIPE_WIDTH = 160
# ctx.meta keys (meta is shared by every context of one invocation)
META_JSON = "lstmcast.json"  # this run prints JSON (root --json or the command's own)
META_DATA_DIR = "lstmcast.data_dir"  # --data-dir given after the subcommand
OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")


def is_app_settings(obj: object) -> bool:
    """``obj`` is an ``AppSettings``, without importing config (and pydantic) just to ask."""
    config = sys.modules.get("lstmcast.config")
    return config is not None and isinstance(obj, config.AppSettings)


def settings(ctx: typer.Context) -> AppSettings:
    from lstmcast.config import AppSettings

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


def print_json_error(code: int, error: BaseException | str) -> None:
    """``{"error": {"code": N, "message": ...}}`` on stdout, for scripts that read only stdout."""
    text = str(error)
    msg = text.splitlines()[0] if text else type(error).__name__
    sys.stdout.write(json.dumps({"error": {"code": int(code), "message": msg}}) + "\n")


def check_output(path: Path) -> Path:
    """An ``--output`` path whose suffix names a format we write; otherwise a usage error (exit 2)."""
    from lstmcast.errors import UsageError

    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(
            f"--output {path}: unknown file type {path.suffix or '(no suffix)'}; "
            f"use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; give a file name")
    return path


def write_output(path: Path, rows: Any) -> Path:
    """Write a table (a DataFrame or a list of row dicts) to ``path`` as CSV, Parquet or JSON, by its
    suffix; atomically (a reader never sees half a file). Timestamps are ISO 8601, missing values
    empty (CSV) or null (JSON)."""
    import pandas as pd

    from lstmcast import atomic
    from lstmcast.jsonable import to_jsonable

    path = check_output(path)
    suffix = path.suffix.lower()
    frame = rows.reset_index(drop=True) if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if suffix == ".parquet":
        atomic.write_with(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=False))
        return path
    records = to_jsonable(frame.astype(object).where(frame.notna(), None).to_dict(orient="records"))
    if suffix == ".json":
        atomic.write_text(path, json.dumps(records, indent=2, allow_nan=False) + "\n")
    else:
        text = pd.DataFrame(records, columns=list(frame.columns)).to_csv(index=False, lineterminator="\n")
        atomic.write_text(path, text)
    return path


@dataclass(frozen=True)
class Completion:
    """One shell-completion candidate (what click's completion classes read: value, help, type)."""

    value: str
    help: str | None = None
    type: str = "plain"


def complete_symbol(ctx: Any, param: Any, incomplete: str) -> list[Completion]:
    """Shell completion for SYMBOL arguments: the stored series, read from the folder names (no
    pandas, no torch: it runs on every <TAB>). A bare symbol is offered where one source holds it."""
    from urllib.parse import unquote

    from lstmcast.config import resolve_data_dir

    try:
        flag = ctx.meta.get(META_DATA_DIR) or ctx.find_root().params.get("data_dir")
        series = resolve_data_dir(flag) / "series"
        found = sorted(
            (src.name, unquote(sym.name))
            for src in series.iterdir() if src.is_dir()
            for sym in src.iterdir() if sym.is_dir() and any(sym.glob("*.parquet"))
        )
    except (OSError, ValueError, LstmcastError):
        return []
    by_symbol: dict[str, list[str]] = {}
    for source, symbol in found:
        by_symbol.setdefault(symbol, []).append(source)
    items = []
    for symbol, sources in by_symbol.items():
        if len(sources) == 1:
            items.append(Completion(symbol, sources[0]))
        items += [Completion(f"{s}:{symbol}", s) for s in sources]
    return [c for c in items if c.value.startswith(incomplete)]


# -- what reaches the screen --------------------------------------------------------------------
SLOW_IMPORTS = ("torch", "yfinance", "ccxt")
WARNINGS_LOGGER = "lstmcast.warnings"


def route_warnings(*, verbose: bool) -> None:
    """Third-party warnings (yfinance's Pandas4Warning, ...) go to the log (logger
    ``lstmcast.warnings``, INFO: in ``run``'s log file), not the screen; ``--verbose`` shows them."""
    import logging

    if verbose:
        warnings.showwarning = _SHOWWARNING
        return
    log = logging.getLogger(WARNINGS_LOGGER)

    def to_log(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        log.info("%s (%s:%s): %s", category.__name__, filename, lineno, message)

    warnings.showwarning = to_log


_SHOWWARNING = warnings.showwarning  # Python's own, for --verbose


class _AnnounceSlowImports:
    """A ``sys.meta_path`` finder that finds nothing: it only prints "loading torch..." on stderr the
    first time one of the slow packages is imported, so the seconds that follow are not a blank screen."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.pending = set(names)

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        if fullname in self.pending:
            self.pending.discard(fullname)
            if fullname not in sys.modules:
                sys.stderr.write(f"loading {fullname}...\n")
                sys.stderr.flush()
            if not self.pending and self in sys.meta_path:
                sys.meta_path.remove(self)
        return None


def announce_slow_imports(names: tuple[str, ...] = SLOW_IMPORTS) -> None:
    """Install the announcer (the CLI's ``main`` does, when stderr is a terminal)."""
    if not any(isinstance(f, _AnnounceSlowImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _AnnounceSlowImports(names))


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
    from lstmcast import train as T
    from lstmcast.errors import ConfigError, UsageError

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        T.setup_from_options(given)
    except ConfigError as e:
        raise UsageError(str(e)) from e
    setup = T.setup_from_options({**(base or {}), **given})
    if setup.train.device != "auto":
        # a named device that is missing fails here, before any progress bar is drawn
        T.resolve_device(setup.train.device)
    return setup

