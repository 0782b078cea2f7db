"""The live status of `lstmcast run` on a terminal: one line per watchlist entry, its stage and a
short result, updated from the runner's ``Steps.on_stage`` hook (rich ``Live`` on stderr).

Only for a terminal: cron, pipes and ``--json`` keep the plain log lines. While the display is up,
log records at ``WARNING`` and above (every record with ``--verbose``) print above it; the log
file keeps every line either way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

# a runner stage -> (what the line says, its style)
LABELS = {
    "waiting": ("waiting", "dim"),
    "fetching": ("fetching", "cyan"),
    "training": ("training challenger", "magenta"),
    "promoting": ("promoting", "cyan"),
    "forecasting": ("forecasting", "cyan"),
    "done": ("done", "green"),
    "failed": ("failed", "red"),
}
_ACTIVE = ("fetching", "training", "promoting", "forecasting")


def result(stage: str, out: Any) -> str:
    """The short result of an entry's outcome so far (a ``runner.EntryOutcome``)."""
    if stage == "failed":
        return out.error or "failed"
    parts = []
    if out.fetched is not None:
        parts.append(f"{out.fetched} new bar{'' if out.fetched == 1 else 's'}")
    if out.promoted is not None:
        parts.append("challenger promoted" if out.promoted else "champion kept")
    elif stage == "done" and out.trained is None:
        parts.append("not retrained")
    if out.forecast is not None:
        parts.append(f"forecast {out.forecast_line}")
    return ", ".join(parts)


class RunDisplay:
    """The per-entry lines; ``on_stage`` is the runner's hook. Rendered by ``Live`` in its own thread."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._rows: dict[str, tuple[str, str, float, float]] = {}  # entry -> (stage, result, since, seconds)
        self._lock = threading.Lock()

    def on_stage(self, entry: str, stage: str, out: Any) -> None:
        with self._lock:
            old = self._rows.get(entry)
            since = old[2] if old is not None and old[0] == stage else time.monotonic()
            self._rows[entry] = (stage, result(stage, out), since, out.seconds)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = time.monotonic()
        with self._lock:
            rows = list(self._rows.items())
        # entry, stage and time keep their width; a long result (an error) is cut at the terminal's edge
        widths = [max((len(e) for e, _ in rows), default=0), max(len(label) for label, _ in LABELS.values()), 6]
        room = max(10, options.max_width - sum(widths) - 2 * len(widths))
        grid = Table.grid(padding=(0, 2))
        for w in widths:
            grid.add_column(no_wrap=True, width=w)
        grid.add_column(no_wrap=True)
        for entry, (stage, text, since, seconds) in rows:
            label, style = LABELS.get(stage, (stage, ""))
            took = ""  # time in the stage so far; once finished, the entry's own time
            if stage in _ACTIVE:
                took = f"{now - since:.0f}s"
            elif stage in ("done", "failed"):
                took = f"{seconds:.1f}s"
            res = Text(text, style="red" if stage == "failed" else "")
            res.truncate(room, overflow="ellipsis")
            grid.add_row(Text(entry), Text(label, style=style), Text(took.rjust(6), style="dim"), res)
        yield grid

    @contextlib.contextmanager
    def showing(self) -> Iterator[RunDisplay]:
        """The live lines for the block; they go when it ends (the summary table follows)."""
        with Live(self, console=self.console, transient=True, refresh_per_second=4):
            yield self


class ConsoleLogHandler(logging.Handler):
    """Log records through the display's console, so that they print above the live lines."""

    def __init__(self, console: Console, *, level: int, fmt: logging.Formatter) -> None:
        super().__init__(level)
        self.console = console
        self.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = "red" if record.levelno >= logging.ERROR else "yellow" if record.levelno >= logging.WARNING else ""
            self.console.print(Text(self.format(record), style=style), soft_wrap=False, highlight=False)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def terminal_status(log: logging.Logger, *, verbose: bool) -> Iterator[RunDisplay]:
    """A ``RunDisplay`` on stderr, with ``log``'s records at WARNING and above (all with
    ``verbose``) printed through it for the block. ``log`` has no terminal handler of its own."""
    from lstmcast import runlog
    from lstmcast.cli import common

    console = common.err()
    fmt = logging.Formatter(runlog.LOG_FORMAT, datefmt=runlog.LOG_DATE_FORMAT)
    handler = ConsoleLogHandler(console, level=logging.NOTSET if verbose else logging.WARNING, fmt=fmt)
    log.addHandler(handler)
    try:
        yield RunDisplay(console)
    finally:
        log.removeHandler(handler)
