"""Safety for unattended runs: the single-instance run lock, the rotating log file, SIGTERM.

* ``run_lock(data_dir)``: ``{data_dir}/run.lock``, taken without waiting; a second run gets
  ``LockedError`` (exit code 75) at once instead of piling up behind a slow one.
* ``run_logging(data_dir, ...)``: ``{data_dir}/logs/lstmcast.log`` (rotated, plain text, no colour
  codes) plus the terminal; removed again on exit so in-process callers do not collect handlers.
* ``append_run_record`` / ``run_records``: ``{data_dir}/logs/runs.jsonl``, one JSON line per run
  (run id, start, end, per-entry outcome), appended under a lock; ``lstmcast status`` reads it.
* ``sigterm_stops()``: SIGTERM becomes ``InterruptedRun`` (exit code 130). Inside
  ``stop.critical()`` the exception is held back until the block ends, so a multi-file update
  finishes; single-file writes are atomic anyway, so a write cut short is simply abandoned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lstmcast import workspace
from lstmcast.errors import InterruptedRun, LockedError, StoreError

LOGGER_NAME = "lstmcast"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class WrappingFormatter(logging.Formatter):
    """For a terminal: long lines wrap at spaces to the terminal's width, continued with an indent,
    never inside a word (a run id or a path stays whole, on a line of its own if it must). The
    log file keeps one record per line."""

    def __init__(self, fmt: str, *, datefmt: str | None = None, width: int | None = None) -> None:
        super().__init__(fmt, datefmt=datefmt)
        self.width = width

    def format(self, record: logging.LogRecord) -> str:
        import shutil
        import textwrap

        text = super().format(record)
        width = self.width or shutil.get_terminal_size().columns
        return "\n".join(
            textwrap.fill(line, width=max(40, width), subsequent_indent="    ", break_long_words=False,
                          break_on_hyphens=False)
            for line in text.splitlines()
        )


def log_path(data_dir: Path) -> Path:
    return workspace.log_path(data_dir)


def lock_path(data_dir: Path) -> Path:
    return workspace.run_lock_path(data_dir)


@contextlib.contextmanager
def run_lock(data_dir: Path) -> Iterator[Path]:
    """Hold ``{data_dir}/run.lock`` for the block; raise ``LockedError`` at once if another process has it."""
    from filelock import FileLock, Timeout

    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = path.with_name("run.lock.info")
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        holder = ""
        with contextlib.suppress(OSError):
            holder = f" ({info.read_text(encoding='utf-8').strip()})"
        raise LockedError(
            f"another `lstmcast run` is already running on {data_dir}{holder}; "
            f"this one exits without doing anything (lock: {path})"
        ) from e
    try:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with contextlib.suppress(OSError):  # only for the message above; the lock itself is what counts
            info.write_text(f"pid {os.getpid()}, started {started}\n", encoding="utf-8")
        yield path
    finally:
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()


@contextlib.contextmanager
def run_logging(
    data_dir: Path,
    *,
    level: str = "INFO",
    max_bytes: int = 1_000_000,
    backups: int = 5,
    terminal: bool = True,
) -> Iterator[logging.Logger]:
    """Log to ``{data_dir}/logs/lstmcast.log`` (rotating) and, if ``terminal``, to stderr."""
    path = log_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    fmt = logging.Formatter(LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    file_handler.setFormatter(fmt)
    handlers: list[logging.Handler] = [file_handler]
    if terminal:
        term = logging.StreamHandler(sys.stderr)
        wrap = sys.stderr.isatty()  # a pipe or cron log keeps one record per line
        term.setFormatter(WrappingFormatter(LOG_FORMAT, datefmt=fmt.datefmt) if wrap else fmt)
        handlers.append(term)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(level)
    logger.propagate = False
    for h in handlers:
        logger.addHandler(h)
    try:
        yield logger
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
        logger.setLevel(old_level)
        logger.propagate = old_propagate


class StopRequest:
    """Whether SIGTERM arrived, and a way to defer its exception over a critical block."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._depth = 0

    def _raise(self) -> None:
        name = signal.Signals(self.signal).name if self.signal else "signal"
        raise InterruptedRun(f"stopped by {name}; finished writes are kept, unfinished ones were abandoned")

    def _handler(self, signum: int, frame: object) -> None:
        self.signal = signum
        if self._depth == 0:
            self._raise()

    def check(self) -> None:
        """Raise ``InterruptedRun`` if a stop was requested (call between steps)."""
        if self.signal is not None:
            self._raise()

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A block SIGTERM does not cut: the stop takes effect when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.check()


@contextlib.contextmanager
def sigterm_stops() -> Iterator[StopRequest]:
    """Turn SIGTERM into ``InterruptedRun`` for the block (main thread only; elsewhere a no-op)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, stop._handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the run record -------------------------------------------------------------------------------
RUN_RECORD_KEYS = ("run_id", "started", "finished", "interrupted", "exit_code", "entries")
ENTRY_RECORD_KEYS = ("entry", "ok", "error", "fetched", "trained", "promoted", "forecast", "seconds")


def run_record(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The line ``runs.jsonl`` keeps of a ``RunSummary.to_dict()``: the run and each entry's outcome
    (its forecast as the one-line first step, ``"2024-05-02: 187.3"``)."""
    from lstmcast.forecasts import headline

    def entry(e: Mapping[str, Any]) -> dict[str, Any]:
        row = {k: e.get(k) for k in ENTRY_RECORD_KEYS}
        if isinstance(row["forecast"], Mapping):
            row["forecast"] = headline(row["forecast"])
        return row

    out = {k: summary.get(k) for k in RUN_RECORD_KEYS if k != "entries"}
    out["entries"] = [entry(e) for e in summary.get("entries") or []]
    return out


def append_run_record(data_dir: Path, record: Mapping[str, Any]) -> Path:
    """Append one JSON line to ``logs/runs.jsonl`` under its lock, flushed and fsynced.

    One ``write`` of one line under the lock: a reader sees whole lines, or a last line cut short
    by a crash, which ``run_records`` skips."""
    from filelock import FileLock

    from lstmcast.workspace import runs_log_path

    path = runs_log_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(dict(record), sort_keys=True, separators=(",", ":"), default=str) + "\n"
    try:
        with FileLock(str(path) + ".lock", timeout=30), open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise StoreError(f"cannot append to the run record {path}: {e}") from e
    return path


def run_records(data_dir: Path) -> list[dict[str, Any]]:
    """Every run record, oldest first; lines that are not whole JSON objects are skipped."""
    from lstmcast.workspace import runs_log_path

    path = runs_log_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"cannot read the run record {path}: {e}") from e
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                out.append(rec)
    return out
