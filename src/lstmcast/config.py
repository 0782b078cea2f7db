"""Settings and data-directory resolution.

The data directory is chosen as: ``--data-dir`` flag, else ``LSTMCAST_HOME``, else ``./data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lstmcast.errors import ConfigError

ENV_HOME = "LSTMCAST_HOME"


def resolve_data_dir(flag: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> Path:
    """Return the absolute data directory (not created here)."""
    env = os.environ if env is None else env
    raw = flag if flag not in (None, "") else env.get(ENV_HOME) or "data"
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
