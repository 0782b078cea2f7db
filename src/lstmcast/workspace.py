"""The data directory's layout: which folder holds what, and the rules that keep paths inside it.

::

    DATA_DIR/series/{source}/{symbol}/{interval}.parquet|.json   the store (data/store.py writes it)
    DATA_DIR/models/{source}/{symbol}/{interval}/{run_id}/       one model run (registry.py)
    DATA_DIR/models/{source}/{symbol}/{interval}/current         {"run_id": ...}
    DATA_DIR/forecasts/{source}/{symbol}/{interval}/             forecast history + latest (forecasts.py)
    DATA_DIR/forecasts/{source}/{symbol}/{interval}/checks.json  the last run's live checks (pipelines/live.py)
    DATA_DIR/logs/lstmcast.log                                   the run log (runlog.py)
    DATA_DIR/logs/runs.jsonl                                     one record per `lstmcast run` (runlog.py)
    DATA_DIR/logs/cron.log                                       cron's output (schedule.py)
    DATA_DIR/run.lock                                            held by `lstmcast run` (runlog.py)
    DATA_DIR/lstmcast.toml                                       the default config file (config.py)

Every module finds its folder here; none spells a folder name itself. (``data/store.py`` still
names ``series`` itself: it is being edited elsewhere; ``series_root`` is the same folder.)

A run id read from a file (the ``current`` pointer) is data, not a path: it must match
``RUN_ID_RE`` and resolve to a direct child of its series folder, or it is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lstmcast.errors import CheckpointError, ConfigError, DataNotFoundError

SERIES = "series"
MODELS = "models"
FORECASTS = "forecasts"
LOGS = "logs"
CURRENT = "current"
CHECKS = "checks.json"
RUNS_LOG = "runs.jsonl"
CONFIG_NAME = "lstmcast.toml"
RUN_LOCK = "run.lock"
LOG_FILE = "lstmcast.log"
CRON_LOG_FILE = "cron.log"  # what cron saw (stdout, stderr), next to the run log
# 20261121T101500123Z-ab12cd (registry.new_run_id; ids of early versions had no milliseconds)
RUN_ID_RE = re.compile(r"^\d{8}T\d{6}(\d{3})?Z-[0-9a-f]{6}$")


def series_root(data_dir: Path) -> Path:
    return Path(data_dir) / SERIES


def models_root(data_dir: Path) -> Path:
    return Path(data_dir) / MODELS


def runs_log_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOGS / RUNS_LOG
def forecasts_root(data_dir: Path) -> Path:
    return Path(data_dir) / FORECASTS


def logs_root(data_dir: Path) -> Path:
    return Path(data_dir) / LOGS


def log_path(data_dir: Path) -> Path:
    """The run log of ``lstmcast run`` (rotated next to itself)."""
    return logs_root(data_dir) / LOG_FILE


def run_lock_path(data_dir: Path) -> Path:
    """The lock one ``lstmcast run`` at a time holds on a data directory."""
    return Path(data_dir) / RUN_LOCK


def config_path(data_dir: Path) -> Path:
    """Where ``lstmcast.toml`` is looked for when neither ``--config`` nor ``$LSTMCAST_CONFIG`` names one."""
    return Path(data_dir) / CONFIG_NAME


def run_folder(series_folder: Path, run_id: str, *, what: str | None = None) -> Path:
    """``series_folder / run_id`` after checking that ``run_id`` is a run id and stays inside.

    ``what`` names the file the id was read from (a refused pointer is a ``CheckpointError``);
    without it the id came from the user, and one that is not a run id is simply not found.
    """
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        if what is None:
            raise DataNotFoundError(f"no run {str(run_id)[:80]} in {series_folder}")
        raise CheckpointError(f"{what} holds {str(run_id)[:80]!r}, which is not a run id; refusing to follow it")
    folder = series_folder / run_id
    if folder.resolve().parent != series_folder.resolve():
        raise CheckpointError(f"{what or 'run id'} points at {run_id!r} outside {series_folder}; refusing to follow it")
    return folder


# -- where the data directory and the config file are (no pydantic: every command starts here) ------
ENV_HOME = "LSTMCAST_HOME"
APP_NAME = "lstmcast"


def default_data_dir() -> Path:
    """The per-user data folder, used when neither ``--data-dir`` nor ``LSTMCAST_HOME`` is set."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def resolve_data_dir(flag: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> Path:
    """Return the absolute data directory (not created here)."""
    env = os.environ if env is None else env
    raw = flag if flag not in (None, "") else env.get(ENV_HOME) or default_data_dir()
    path = Path(raw).expanduser()
    if "\x00" in str(path):
        raise ConfigError("data directory path contains a NUL byte")
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"data directory {path} exists and is not a directory")
    return path


@dataclass(frozen=True)
class AppSettings:
    """Global options shared by every command."""

    data_dir: Path
    verbose: bool = False


ENV_CONFIG = "LSTMCAST_CONFIG"


def find_config(
    flag: str | os.PathLike[str] | None, *, data_dir: Path, env: dict[str, str] | None = None
) -> Path:
    """The config file to use: ``--config``, else ``$LSTMCAST_CONFIG``, else ``{data_dir}/lstmcast.toml``."""
    env = os.environ if env is None else env
    if flag not in (None, ""):
        path, why = Path(flag).expanduser(), "--config"
    elif env.get(ENV_CONFIG):
        path, why = Path(env[ENV_CONFIG]).expanduser(), f"${ENV_CONFIG}"
    else:
        path = config_path(data_dir)
        if not path.exists():
            raise ConfigError(
                f"no config file at {path}; create one with `lstmcast init` or pass --config FILE"
            )
        return path.resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} (from {why}) does not exist")
    return path.resolve()
