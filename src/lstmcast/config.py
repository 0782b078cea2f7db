"""The run config (``lstmcast.toml``: defaults, promotion rule, watchlist), validated by pydantic.

``load_config`` reads it; ``workspace.find_config`` says which file. The
data directory's resolution lives in ``workspace`` too, so commands that never read the config do
not import pydantic for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lstmcast import workspace
from lstmcast.errors import ConfigError, LstmcastError
from lstmcast.monitor.base import MonitorSettings
from lstmcast.notify import NotifySettings
from lstmcast.settings import AciGamma, Settings, dotted, key_line, suggest


def _field_kwargs(f: Any) -> dict[str, Any]:
    """The bounds of a ``Settings`` field, to repeat them on its optional override."""
    out: dict[str, Any] = {}
    for m in f.metadata:
        for attr in ("ge", "gt", "le", "lt", "pattern", "allow_inf_nan"):
            v = getattr(m, attr, None)
            if v is not None:
                out[attr] = v
    return out

# -- the config file (lstmcast.toml) ----------------------------------------------------------------
# Found as: --config FILE, else $LSTMCAST_CONFIG, else {data_dir}/lstmcast.toml. Validated on load;
# every error names the key and, where the key can be found in the text, the file line.

CONFIG_NAME = workspace.CONFIG_NAME  # the layout is workspace.py's

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# The settings table ([defaults], or [train]: the same schema) and per-entry overrides are the one
# settings model of settings.py; the overrides are the same fields, each optional.
ModelDefaults = Settings  # the old name, kept for callers
ModelOverrides = create_model(
    "ModelOverrides",
    __config__=_FROZEN,
    **{name: (f.annotation | None, Field(None, **_field_kwargs(f))) for name, f in Settings.model_fields.items()},
)


class PromotionSettings(BaseModel):
    """When a freshly trained challenger replaces the current model (the champion)."""

    model_config = _FROZEN

    metric: Literal["mae", "rmse", "mase"] = "mae"
    # the challenger must be better by at least this fraction of the champion's error (0.02 = 2%)
    min_improvement: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # the most recent bars both models are scored on; neither was trained on them
    holdout: Annotated[int, Field(ge=5, le=100_000)] = 60


class RunSettings(BaseModel):
    """How ``lstmcast run`` trains the watchlist's challengers (``--executor`` / ``--workers`` override)."""

    model_config = _FROZEN

    # None: one entry after another in this process, as before; serial, local or ray: every
    # challenger is a task of that executor, seeded from (seed, series, family)
    executor: Literal["serial", "local", "ray"] | None = None
    workers: Annotated[int, Field(ge=1, le=4096)] | None = None  # None: one per core, at most one per entry
    ray_address: str | None = None  # "auto" or "ray://host:port" (executor = "ray"); None: a local runtime
    # step size of the adaptive conformal levels of the recorded intervals (liveaci); 0: plain split
    # conformal. The default is evaluate.adaptive.DEFAULT_GAMMA (not imported: numpy at start-up)
    aci_gamma: AciGamma = 0.005


class LogSettings(BaseModel):
    model_config = _FROZEN

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: Annotated[int, Field(ge=10_000)] = 1_000_000
    backups: Annotated[int, Field(ge=0, le=100)] = 5


def _as_value_error(check: Any, value: Any) -> Any:
    # pydantic only collects ValueErrors; our checks raise domain errors with good messages
    try:
        return check(value)
    except LstmcastError as e:
        raise ValueError(str(e)) from e


class WatchEntry(BaseModel):
    """One series to keep fresh: ``symbol = "AAPL"`` or ``symbol = "binance:BTC/USDT"``."""

    model_config = _FROZEN

    symbol: str
    source: str | None = None  # None: the fetch step picks the default source for the symbol
    interval: str = "1d"
    # the model family this entry trains (a shorthand for overrides.family)
    family: Literal["lstm", "gru", "linear", "naive", "drift", "moving_average", "mean_return"] | None = None
    overrides: ModelOverrides = ModelOverrides()  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _split_spec(cls, data: Any) -> Any:
        # "binance:BTC/USDT" is the same as symbol="BTC/USDT", source="binance"
        if isinstance(data, dict) and isinstance(data.get("symbol"), str):
            from lstmcast.data.store import parse_spec

            source, symbol = parse_spec(data["symbol"])
            if source is not None:
                given = data.get("source")
                if given is not None and given != source:
                    raise ValueError(f"symbol says source {source!r} but source = {given!r}")
                data = {**data, "symbol": symbol, "source": source}
        return data

    @field_validator("symbol")
    @classmethod
    def _check_symbol(cls, v: str) -> str:
        from lstmcast.data.store import check_symbol

        return _as_value_error(check_symbol, v)

    @field_validator("source")
    @classmethod
    def _check_source(cls, v: str | None) -> str | None:
        from lstmcast.data.store import check_source

        return None if v is None else _as_value_error(check_source, v)

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, v: str) -> str:
        from lstmcast.data.calendar import parse_interval

        return _as_value_error(parse_interval, v).name

    @property
    def spec(self) -> str:
        return f"{self.source}:{self.symbol}" if self.source else self.symbol

    def __str__(self) -> str:
        return f"{self.spec} {self.interval}"


class RunConfig(BaseModel):
    """The whole ``lstmcast.toml``."""

    model_config = _FROZEN

    defaults: Settings = Settings()
    promotion: PromotionSettings = PromotionSettings()
    # model runs kept per series: older ones are pruned, never the current one
    keep_runs: Annotated[int, Field(ge=1, le=10_000)] = 5
    # a fetch that ended "partial" (some bars stored, the rest missing) fails its entry: no retrain,
    # no forecast from incomplete data; true trains and forecasts from what was stored
    accept_partial_fetch: bool = False
    log: LogSettings = LogSettings()
    # apprise URLs and the events each hears about (notify.py); never printed, even in errors
    notify: NotifySettings = NotifySettings()
    # the live checks after each run and `lstmcast status` (monitor/)
    monitor: MonitorSettings = MonitorSettings()
    run: RunSettings = RunSettings()
    watchlist: tuple[WatchEntry, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _train_table(cls, data: Any) -> Any:
        # [train] is the same table as [defaults] (train --config reads either)
        if isinstance(data, dict) and "train" in data:
            if "defaults" in data:
                raise PydanticCustomError("both_tables", "has both [train] and [defaults]; keep one (the same table)")
            data = {**data, "defaults": data["train"]}
            del data["train"]
        return data

    @field_validator("watchlist")
    @classmethod
    def _no_duplicates(cls, entries: tuple[WatchEntry, ...]) -> tuple[WatchEntry, ...]:
        seen: dict[tuple[str, str, str], int] = {}
        for i, e in enumerate(entries):
            k = (e.source or "yahoo", e.symbol, e.interval)  # a bare symbol is fetched from Yahoo
            if k in seen:
                raise PydanticCustomError(
                    "duplicate_entry", "entry {index} ({entry}) repeats entry {first}",
                    {"index": i, "entry": str(e), "first": seen[k]},
                )
            seen[k] = i
        return entries

    def effective(self, entry: WatchEntry) -> Settings:
        """The settings one entry trains with: the defaults, overridden by what the entry sets."""
        return self.sourced(entry)[0]

    def sourced(self, entry: WatchEntry | None = None) -> tuple[Settings, dict[str, str]]:
        """Effective settings of ``entry`` (or the defaults) and, per key, where the value came from."""
        from lstmcast.settings import layered

        set_defaults = self.defaults.model_dump(exclude_unset=True)
        layers: list[tuple[str, dict[str, Any]]] = [("[defaults]", set_defaults)]
        if entry is not None:
            over = entry.overrides.model_dump(exclude_none=True)
            if entry.family is not None:
                over.setdefault("family", entry.family)
            layers.append((f"watchlist {entry} overrides", over))
        return layered(layers)

    def select(self, only: list[str] | None) -> list[WatchEntry]:
        """Entries matching ``--only`` (``AAPL`` or ``yahoo:AAPL``); every one when ``only`` is empty."""
        if not only:
            return list(self.watchlist)
        picked = [e for e in self.watchlist if e.symbol in only or e.spec in only]
        unknown = [s for s in only if not any(s in (e.symbol, e.spec) for e in self.watchlist)]
        if unknown:
            names = ", ".join(e.spec for e in self.watchlist) or "none"
            raise ConfigError(f"--only {unknown[0]} is not in the watchlist (entries: {names})")
        return picked


def load_config(path: Path) -> RunConfig:
    """Read and validate a ``lstmcast.toml``; errors name the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    return parse_config(text, where=str(path))


def parse_config(text: str, *, where: str = CONFIG_NAME) -> RunConfig:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message already says "(at line N, column M)"
        raise ConfigError(f"{where}: invalid TOML: {e}") from e
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_config_problems(e, text=text, where=where)) from e


def _config_problems(e: ValidationError, *, text: str, where: str) -> str:
    """Every validation problem, each with ``file:line``, the key and a "did you mean" for unknown keys."""
    parts = []
    for err in e.errors():
        loc = tuple(err["loc"])
        if err["type"] == "duplicate_entry":
            loc = (*loc, err["ctx"]["index"])
        if loc and loc[0] == "defaults" and "train" in _tables(text) and "defaults" not in _tables(text):
            loc = ("train", *loc[1:])
        line = key_line(text, loc)
        at = f"{where}:{line}" if line else where
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc)
            msg = f"unknown key{suggest(str(loc[-1]), known)}"
        else:
            from lstmcast.settings import _describe

            msg = _describe(err)
        scalar = "input" in err and not isinstance(err["input"], dict | list) and err["type"] != "extra_forbidden"
        scalar = scalar and loc[:1] != ("notify",)  # a value under [notify] may be (part of) a secret URL
        got = f" (got {err['input']!r})" if scalar else ""
        parts.append(f"{at}: {dotted(loc)}: {msg}{got}")
    return parts[0] if len(parts) == 1 else f"{len(parts)} problems: " + "; ".join(parts)


def _tables(text: str) -> set[str]:
    return {m.group(2).strip() for m in (_HEADER_RE.match(line) for line in text.splitlines()) if m}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points (for "did you mean")."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            model = inner[0]
        else:
            return []
    return list(getattr(model, "model_fields", {}))


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


EXAMPLE_CONFIG = """\
# lstmcast.toml: what `lstmcast run` (and the cron entry `lstmcast schedule install` writes) does.
# Found as: --config FILE, else $LSTMCAST_CONFIG, else lstmcast.toml in the data directory.

# Model runs kept per series; older ones are deleted, never the current one.
keep_runs = 5

# Settings every entry trains with unless it overrides them.
[defaults]
# ([train] is the same table: `lstmcast train --config` reads either; see `lstmcast config show`.)
family = "lstm"        # lstm, gru, linear, or a baseline: naive, drift, moving_average, mean_return
lookback = 60          # bars the model sees
horizon = 1            # bars ahead to forecast
target = "return"      # "return" (log returns) or "price" (scaled level)
hidden = 64            # LSTM/GRU units per layer
layers = 2
dropout = 0.1
epochs = 100
batch_size = 64
lr = 0.001
patience = 10          # early stopping: epochs without validation improvement (0: off)
val_fraction = 0.2
device = "auto"        # auto, cpu, cuda, cuda:1, mps
seed = 0
# threads = 2          # torch CPU threads per process (default for `run`: half the cores, at most 4)

# A retrained model (challenger) replaces the current one (champion) only if it is better on the
# most recent `holdout` bars, which neither was trained on.
[promotion]
metric = "mae"         # mae, rmse or mase
min_improvement = 0.0  # required relative improvement: 0.02 = at least 2% lower error
holdout = 60

# How the challengers are trained (`lstmcast run --executor ... --workers N` overrides this).
# Unset: one entry after another in this process. serial, local (a process pool) or ray: each
# challenger is a task seeded from (seed, series, family), so every executor gives the same models.
[run]
# executor = "local"
# workers = 2
# Each run adapts the tail levels of the recorded 80% intervals from how earlier forecasts missed
# (adaptive conformal inference, per series and step); 0 keeps plain split-conformal intervals.
aci_gamma = 0.005

# logs/lstmcast.log in the data directory, rotated at max_bytes, keeping `backups` old files.
[log]
level = "INFO"
max_bytes = 1000000
backups = 5

# Notifications after each `lstmcast run` (one message per run) through apprise: webhooks (json://,
# form://), Slack, Telegram, Discord, ntfy, e-mail... URLs hold secrets: they are never printed or
# logged (shown masked). Events: run_failed, entry_failed, promoted, decay, drift, stale.
# [notify]
# urls = ["json://127.0.0.1:8080/hook"]          # every event goes here
# title = "lstmcast"
# [[notify.targets]]                              # or only some events to a target
# url = "tgram://BOT_TOKEN/CHAT_ID"
# events = ["run_failed", "entry_failed", "stale"]

# The live checks after each run (also shown by `lstmcast status`); these are the defaults.
# [monitor]
# window = 20             # scored forecasts per decay / coverage check
# alpha = 0.05            # coverage binomial test (and the decay DM test without a backtest band)
# band_quantile = 0.95    # decay: live MAE ratio above this quantile of the validation's rolling ratios
# drift_rows = 60         # newest feature rows compared with the training rows (PSI and KS)
# psi_threshold = 0.25
# ks_alpha = 0.01
# max_bars_behind = 1     # data older than this many complete bars is stale (fetched series only)
# max_model_age = "30d"   # unset: models never expire; an older model is flagged "stale"
# max_run_age = "2d"      # no successful run of an entry for this long is stale
# rollback_after = 0      # K > 0: a run-promoted model worse than its predecessor on its first K
#                         # live forecasts (one-sided DM, p < alpha) is rolled back (README)

# One [[watchlist]] block per series. symbol is "AAPL" or "SOURCE:SYMBOL" ("binance:BTC/USDT");
# source is optional; interval is 1m, 5m, 15m, 30m, 1h, 4h, 1d or 1wk.
[[watchlist]]
symbol = "AAPL"
interval = "1d"

[[watchlist]]
symbol = "binance:BTC/USDT"
interval = "1d"
overrides = { lookback = 90, epochs = 40 }   # any [defaults] key, for this entry only
"""


def write_example_config(data_dir: Path, *, force: bool = False) -> Path:
    """Write the commented example ``lstmcast.toml`` into the data directory (atomically)."""
    from lstmcast import atomic

    path = workspace.config_path(data_dir)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    parse_config(EXAMPLE_CONFIG)  # the example must always load
    atomic.write_text(path, EXAMPLE_CONFIG)
    return path
