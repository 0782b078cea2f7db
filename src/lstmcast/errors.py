"""The lstmcast error tree.

Every error a user can cause or fix derives from ``LstmcastError``; the CLI's single error
boundary (``cli/main.py``) turns it into one line on stderr and ``exit_code``. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

# Documented exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_ERROR = 1  # a domain error: bad input, missing data, failed fetch ...
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_PARTIAL = 3  # a multi-item command (fetch, run) where some items failed
EXIT_STRICT = 4  # --strict and a warning was raised (stale data, mismatched model)
EXIT_LOCKED = 75  # another process holds the lock (EX_TEMPFAIL: try again later)
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM


class LstmcastError(Exception):
    """Base class: a problem the user can understand and fix; one line, no traceback."""

    exit_code = EXIT_ERROR


class ConfigError(LstmcastError):
    """Invalid settings, options or config file."""


class UsageError(ConfigError):
    """An option value that cannot work (wrong combination, out of range)."""

    exit_code = EXIT_USAGE


class DataError(LstmcastError):
    """A price frame that fails validation, or a file that cannot be read as one."""


class DataNotFoundError(LstmcastError):
    """The requested series (or model) is not in the store."""


class StoreError(LstmcastError):
    """The local store cannot be read or written (permissions, corrupt file)."""


class LockedError(LstmcastError):
    """Another process holds the lock we need."""

    exit_code = EXIT_LOCKED


class DataSourceError(LstmcastError):
    """A vendor (Yahoo, an exchange) refused or failed the request permanently."""


class TemporaryFetchError(DataSourceError):
    """A failure worth retrying: network fault, timeout, rate limit, HTTP 5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.attempts = 1


class ServiceUnreachableError(TemporaryFetchError):
    """DNS failure or connection refused: retried briefly, then reported (no minutes of waiting)."""


class ModelError(LstmcastError):
    """Training or inference cannot proceed (too little data, bad device, ...)."""


class CheckpointError(ModelError):
    """A checkpoint is missing, tampered with, truncated or does not match."""


class MissingExtraError(ConfigError):
    """An optional feature whose extra is not installed; the message names it (pip install 'lstmcast[X]')."""


class ExecutorError(LstmcastError):
    """The parallel executor cannot run the tasks (its pool or cluster is unusable)."""


class ClusterUnreachableError(ExecutorError):
    """No Ray cluster answers at the given address (or none runs, for ``auto``)."""


class InterruptedRun(LstmcastError):
    """The user (Ctrl-C) or the system (SIGTERM) stopped the run."""

    exit_code = EXIT_INTERRUPTED
