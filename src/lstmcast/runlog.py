"""Safety for unattended runs: the single-instance run lock, the rotating log file, SIGTERM.

* ``run_lock(data_dir)``: ``{data_dir}/run.lock``, taken without waiting; a second run gets
  ``LockedError`` (exit code 75) at once instead of piling up behind a slow one.
* ``run_logging(data_dir, ...)``: ``{data_dir}/logs/lstmcast.log`` (rotated, plain text, no colour
  codes) plus the terminal; removed again on exit so in-process callers do not collect handlers.
* ``sigterm_stops()``: SIGTERM becomes ``InterruptedRun`` (exit code 130). Inside
  ``stop.critical()`` the exception is held back until the block ends, so a multi-file update
  finishes; single-file writes are atomic anyway, so a write cut short is simply abandoned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import logging.handlers
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from lstmcast import workspace
from lstmcast.errors import InterruptedRun, LockedError

LOGGER_NAME = "lstmcast"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


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
    fmt = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z")
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    file_handler.setFormatter(fmt)
    handlers: list[logging.Handler] = [file_handler]
    if terminal:
        term = logging.StreamHandler(sys.stderr)
        term.setFormatter(fmt)
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
