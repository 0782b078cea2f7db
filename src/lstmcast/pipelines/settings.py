"""The effective settings of a config file (or of one watchlist entry) and where each came from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lstmcast import settings as S
from lstmcast.errors import ConfigError

RUN_TABLES = ("watchlist", "promotion", "log", "keep_runs", "run")


def effective_settings(
    data_dir: Path, *, config: Path | None = None, entry: str | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{"config", "entry", "settings", "sources", "run_threads_default"}``; sources name the file and line."""
    from lstmcast import workspace
    from lstmcast.config import load_config
    from lstmcast.workspace import ENV_CONFIG, find_config

    env = os.environ if env is None else env
    path: Path | None
    if config is None and not env.get(ENV_CONFIG) and not workspace.config_path(data_dir).exists():
        path = None
    else:
        path = find_config(config, data_dir=Path(data_dir), env=env)
    if path is None:
        if entry:
            raise ConfigError(f"--entry {entry}: there is no config file with a watchlist")
        settings, sources = S.layered([])
        return _report(None, None, settings, sources)
    text = path.read_text(encoding="utf-8")
    doc = _toml(text, path)
    if any(k in doc for k in RUN_TABLES):  # a whole lstmcast.toml
        cfg = load_config(path)
        picked = cfg.select([entry])[0] if entry else None
        settings, sources = cfg.sourced(picked)
        table = "train" if "train" in doc else "defaults"
        over = ("watchlist", cfg.watchlist.index(picked), "overrides") if picked else None
        for key, src in sources.items():
            if src == "[defaults]":
                sources[key] = _at(path, text, (table, key), f"[{table}]")
            elif src != "default" and over is not None:
                loc = (*over, key) if key in picked.overrides.model_dump(exclude_none=True) else (*over[:2], key)
                sources[key] = _at(path, text, loc, f"watchlist {picked.spec} overrides")
        return _report(path, picked.spec if picked else None, settings, sources)
    if entry:
        raise ConfigError(f"--entry {entry}: {path} has no watchlist")
    values, table = S.read_table(path)
    values.pop("interval", None)
    settings, sources = S.layered([(f"[{table}]", values)])
    sources = {k: (_at(path, text, (table, k), f"[{table}]") if v != "default" else v) for k, v in sources.items()}
    return _report(path, None, settings, sources)


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e


def _at(path: Path, text: str, loc: tuple[Any, ...], what: str) -> str:
    line = S.key_line(text, loc)
    return f"{path}:{line} {what}" if line else f"{path} {what}"


def _report(path: Path | None, entry: str | None, settings: S.Settings, sources: dict[str, str]) -> dict[str, Any]:
    return {
        "config": str(path) if path else None,
        "entry": entry,
        "settings": settings.model_dump(mode="json"),
        "sources": sources,
        "run_threads_default": S.default_run_threads(),
    }
