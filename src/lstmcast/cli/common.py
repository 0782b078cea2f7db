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

from lstmcast.errors import LstmcastError
from lstmcast.workspace import AppSettings

if TYPE_CHECKING:  # rich loads on first output: `lstmcast --help` does not need it
    from rich.console import Console

PIPE_WIDTH = 160
# ctx.meta keys (meta is shared by every context of one invocation)
META_JSON = "lstmcast.json"  # this run prints JSON (root --json or the command's own)
META_DATA_DIR = "lstmcast.data_dir"  # --data-dir given after the subcommand
OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")

# Help texts that list the choices, shared so every command says the same (typer options take them
# as help=...; metavars follow the usual DATE / N / FILE / DEVICE style).
INTERVALS = "1m, 5m, 15m, 30m, 1h, 4h (ccxt), 1d, 1wk"
HELP_INTERVAL = f"{INTERVALS}."  # the metavar INTERVAL says what it is
HELP_DEVICE = "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps."
HELP_TARGET = "return (next log returns) or price (the scaled level, the tutorial style)."
HELP_WINDOW = "expanding (all data up to the origin) or rolling (the last --train-size rows)."
HELP_FAMILY = "lstm, gru, linear, naive, drift, moving_average or mean_return."
HELP_SCORED_HORIZON = (
    "Bars ahead to forecast and score, as `predict --horizon N`: steps beyond the trained horizon "
    "are recursive [default: the trained horizon]."
)
HELP_TRAIN_HORIZON = "Horizon of the model trained at each refit [default: the model setup's]."


# Options several commands take with one meaning (backtest, report, train, run): one definition, so their flags,
# metavars and help cannot drift apart. A factory, as typer reads each command's defaults itself.
def scored_horizon_option() -> Any:
    """``--horizon N``: the steps a walk-forward forecasts and scores (predict's meaning)."""
    return typer.Option(None, "--horizon", metavar="N", help=HELP_SCORED_HORIZON)


def train_horizon_option() -> Any:
    """``--train-horizon H``: the horizon of the model each refit trains."""
    return typer.Option(None, "--train-horizon", metavar="H", help=HELP_TRAIN_HORIZON)


def executor_option(default: str) -> Any:
    """``--executor KIND``: where the command's tasks run; ``default`` says what happens without it."""
    return typer.Option(None, "--executor", metavar="KIND",
                        help=f"serial, local (process pool) or ray [default: {default}].")


def workers_option() -> Any:
    return typer.Option(None, "--workers", metavar="N", help="Parallel tasks [default: one per core].")


def ray_address_option() -> Any:
    return typer.Option(None, "--ray-address", metavar="ADDRESS",
                        help="With --executor ray: join this cluster (auto, or ray://host:port) "
                        "[default: start a local Ray].")


def check_horizon(flag: str, value: int | None) -> None:
    """A horizon flag within train's bounds, or a usage error naming the flag."""
    if value is None:
        return
    from lstmcast.errors import ConfigError, UsageError
    from lstmcast.settings import check_value

    try:
        check_value("horizon", value)
    except ConfigError as e:
        raise UsageError(f"{flag} {str(e).removeprefix('horizon ')}") from e


def is_app_settings(obj: object) -> bool:
    """``obj`` is the root's ``AppSettings`` (global options), not yet set or something else."""
    return isinstance(obj, AppSettings)


def settings(ctx: typer.Context) -> AppSettings:
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, AppSettings):  # invoked without the root callback (should not happen)
        from lstmcast.workspace import resolve_data_dir

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
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width, emoji=False)


def err() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, emoji=False)


def escape(text: str) -> str:
    """rich's markup escape, for names and messages printed with markup (imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


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

    from lstmcast.workspace import resolve_data_dir

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


def fmt_range(first: str | None, last: str | None, *, wide: int = 24) -> str:
    """``first .. last``; on two lines when longer than ``wide`` characters (intraday times), so a
    range column stays narrow without cutting either end."""
    if not first:
        return "-"
    a, b = fmt_time(first), fmt_time(last)
    one = f"{a} .. {b}"
    return one if len(one) <= wide else f"{a} ..\n{b}"


def fmt_time(iso: str | None) -> str:
    if not iso:
        return "-"
    # whole minutes drop their seconds (an hourly bar is "2019-10-03 23:00Z"): narrower columns
    text = iso.replace("T00:00:00+00:00", "").replace(":00+00:00", "+00:00")
    return text.replace("+00:00", "Z").replace("T", " ")


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
    setup = T.setup_from_options({**(base or {}), **given})
    if setup.train.device != "auto":
        # a named device that is missing fails here, before any progress bar is drawn
        from lstmcast.forecasters.rnn.loop import resolve_device

        resolve_device(setup.train.device)
    return setup


# -- many series, one command (train, backtest) ----------------------------------------------------


def check_executor_flags(kind: str | None, workers: int | None, ray_address: str | None) -> None:
    """Refuse bad --executor/--workers/--ray-address before any series is read."""
    from lstmcast.errors import UsageError
    from lstmcast.executor import BACKENDS

    if kind is not None and kind not in BACKENDS:
        raise UsageError(f"unknown executor {kind!r}: choose one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if ray_address and kind != "ray":
        raise UsageError("--ray-address needs --executor ray")


def symbols(st: Any, symbols: list[str] | None, *, all_series: bool, symbols_file: Path | None,
            interval: str) -> list[str]:
    """The series a multi-series command works on: the arguments, --symbols-file, or --all (never a
    mix with --all); a series named twice is refused."""
    from lstmcast.data import calendar
    from lstmcast.errors import DataError, DataNotFoundError, UsageError

    specs = list(symbols or [])
    if all_series:
        if specs or symbols_file:
            raise UsageError("--all means every stored series: give no symbols and no --symbols-file with it")
        iv = calendar.parse_interval(interval).name
        specs = [f"{m['source']}:{m['symbol']}" for m in st.list() if m["interval"] == iv]
        if not specs:
            raise DataNotFoundError(f"no stored {iv} series; `lstmcast fetch` or `lstmcast import` some first")
    if symbols_file is not None:
        try:
            text = symbols_file.read_text(encoding="utf-8")
        except OSError as e:
            raise DataError(f"--symbols-file {symbols_file}: {e.strerror or e}") from e
        specs += [s for line in text.splitlines() if (s := line.split("#", 1)[0].strip())]
    if not specs:
        raise UsageError("name a series: SYMBOL..., --symbols-file FILE or --all")
    dupes = sorted({s for s in specs if specs.count(s) > 1})
    if dupes:
        raise UsageError(f"{dupes[0]} is named twice")
    return specs



# -- tables that fit the terminal ---------------------------------------------------------------
# Numbers, dates, ids and series names are never cut: rich would end them with "…" when a table is
# wider than the terminal, and a cut number is worse than none. So those columns get a minimum width
# of their widest cell; only free-text columns fold. When even that does not fit, optional columns
# are dropped (least important first), and as a last resort every row becomes a block of
# "header  value" lines (the stacked layout).
NUM, DATE, ID, TEXT = "num", "date", "id", "text"
TEXT_MIN = 12  # a folding text column narrower than this is unreadable


@dataclass(frozen=True)
class Col:
    """One table column. ``kind``: ``num`` (right-aligned), ``date``, ``id`` (symbols, run ids: kept
    whole) or ``text`` (folds). ``drop`` > 0 marks an optional column; higher numbers go first when
    the table is too wide."""

    header: str
    kind: str = TEXT
    drop: int = 0
    justify: str | None = None


def _cell_len(cell: Any) -> int:
    from rich.text import Text

    if isinstance(cell, Text):
        return max((len(line) for line in cell.plain.splitlines()), default=0)
    return max((len(line) for line in Text.from_markup(str(cell)).plain.splitlines()), default=0)


def _table_width(widths: list[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1  # rich's default box: a bar and a space either side


def table(title: str | None, cols: list[Col], rows: list[list[Any]], *, width: int | None = None) -> Any:
    """A rich renderable for ``rows`` that fits ``width`` (default: the output console's) with no
    number, date, id or name cut: a table (fewer columns when narrow), or the stacked layout.

    Cells are markup strings or ``rich.text.Text``. Print it with ``out().print(...)``."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    width = width or out().width
    keep = list(range(len(cols)))

    def fixed(i: int) -> int:
        return max([_cell_len(cols[i].header), *(_cell_len(r[i]) for r in rows)])

    def needed(idx: list[int]) -> int:
        return _table_width([fixed(i) if cols[i].kind != TEXT else min(TEXT_MIN, fixed(i)) for i in idx])

    for level in sorted({c.drop for c in cols if c.drop}, reverse=True):
        if needed(keep) <= width:
            break
        keep = [i for i in keep if cols[i].drop < level]
    if needed(keep) > width:
        return _stacked(title, cols, rows)
    t = Table(title=Text(title) if title else None, title_justify="left")
    for i in keep:
        c = cols[i]
        whole = c.kind != TEXT
        t.add_column(
            c.header, justify=c.justify or ("right" if c.kind == NUM else "left"),  # type: ignore[arg-type]
            no_wrap=whole, overflow="fold", min_width=fixed(i) if whole else min(TEXT_MIN, fixed(i)),
        )
    for r in rows:
        t.add_row(*(r[i] for i in keep))
    dropped = [cols[i].header for i in range(len(cols)) if i not in keep]
    if not dropped:
        return t
    note = Text(f"(narrow terminal: left out {', '.join(dropped)}; widen it or use --json)", style="dim")
    return Group(t, note)


def _stacked(title: str | None, cols: list[Col], rows: list[list[Any]]) -> Any:
    """Each row as a block of ``header  value`` lines: nothing is cut at any width."""
    from rich.console import Group
    from rich.text import Text

    pad = max(len(c.header) for c in cols)
    parts: list[Any] = [Text(title, style="bold")] if title else []
    for r in rows:
        for j, (c, cell) in enumerate(zip(cols, r, strict=True)):
            line = Text(("- " if j == 0 else "  ") + c.header.ljust(pad) + "  ")
            line.append(cell if isinstance(cell, Text) else Text.from_markup(str(cell)))
            parts.append(line)
    return Group(*parts)


def short_ids(ids: list[str], *, min_len: int = 15) -> dict[str, str]:
    """Each id mapped to its shortest prefix (at least ``min_len``: a run id's date and time to the
    second) that no other id in ``ids`` shares, as git shows commits; ``models show`` and ``--model``
    accept such a prefix."""
    uniq = sorted(set(ids))
    out_: dict[str, str] = {}
    for i, x in enumerate(uniq):
        n = min_len
        for y in (uniq[i - 1] if i else None, uniq[i + 1] if i + 1 < len(uniq) else None):
            if y is None:
                continue
            common_len = next((k for k, (a, b) in enumerate(zip(x, y, strict=False)) if a != b), min(len(x), len(y)))
            n = max(n, common_len + 1)
        out_[x] = x[: min(n, len(x))]
    return out_


def key_values(pairs: list[tuple[str, Any]], *, title: str | None = None) -> Any:
    """Labelled lines (``label  value``), values folding under themselves on a narrow terminal: for
    ``models show`` and other one-record views."""
    from rich.table import Table
    from rich.text import Text

    t = Table.grid(padding=(0, 2))
    t.add_column(no_wrap=True, style="bold")
    t.add_column(overflow="fold")
    if title:
        t.title, t.title_justify = Text(title, style="bold"), "left"
    for label, value in pairs:
        t.add_row(label, value if isinstance(value, Text) else Text(str(value)))
    return t


def fmt_compact(x: float | None) -> str:
    """A number in at most ~7 characters (12.3k, 4.56M) for narrow columns; ``fmt_num`` otherwise."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    ax = abs(x)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if ax >= div:
            return f"{x / (div if suffix != 'k' else 1e3):.3g}{suffix}"
    return fmt_num(x)
