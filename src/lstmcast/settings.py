"""The one typed model of feature, model and training settings.

Every way of choosing a setting maps onto ``Settings``: the flags of ``train`` and ``backtest``,
the ``[train]`` / ``[defaults]`` table of a TOML file (one schema under either name) and the
``overrides`` of a watchlist entry. The defaults and the bounds are declared here once; every
bad value gets one message, built here, naming the setting, the rule and the value.

``ModelConfig`` and ``TrainConfig`` are the plain, frozen parts of a ``Settings`` that a fitted
artifact records (``meta.json`` keeps their dicts); they check their values against the same
bounds. ``FeatureConfig`` lives in ``features.py`` and does the same.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lstmcast.errors import ConfigError

# the per-step features features.py can compute (it checks its table against this list)
FEATURE_NAMES = ("log_return", "log_range", "log_volume_change", "diff", "level")
FAMILIES = ("lstm", "gru", "linear", "naive", "drift", "moving_average", "mean_return")
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?|mps)$"

Family = Literal["lstm", "gru", "linear", "naive", "drift", "moving_average", "mean_return"]
Lookback = Annotated[int, Field(ge=2, le=10_000, description="bars per input window")]
Horizon = Annotated[int, Field(ge=1, le=1_000, description="bars ahead to forecast")]
Target = Literal["return", "price"]
Hidden = Annotated[int, Field(ge=1, le=4_096, description="hidden units per recurrent layer")]
Layers = Annotated[int, Field(ge=1, le=16, description="stacked recurrent layers")]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False, description="dropout between layers")]
Epochs = Annotated[int, Field(ge=1, le=100_000, description="maximum epochs")]
BatchSize = Annotated[int, Field(ge=1, le=1_000_000, description="windows per batch")]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False, description="AdamW learning rate")]
WeightDecay = Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False, description="AdamW weight decay")]
Patience = Annotated[int, Field(ge=0, le=100_000, description="early stopping (0: off)")]
ValFraction = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False, description="validation share")]
Clip = Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False, description="max gradient norm (0: off)")]
Device = Annotated[str, Field(pattern=DEVICE_PATTERN, description="auto, cpu, cuda, cuda:N or mps")]
Seed = Annotated[int, Field(ge=0, le=2**63 - 1, description="random seed")]
Threads = Annotated[int, Field(ge=1, le=1_024, description="torch CPU threads")]
AciGamma = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False, description="ACI step size (0: off)")]
RidgeAlpha = Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False, description="ridge penalty (linear)")]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Settings(BaseModel):
    """Feature, model and training settings of one fit. The defaults are the ones of ``lstmcast train``."""

    model_config = _FROZEN

    family: Family = "lstm"
    # features
    lookback: Lookback = 60
    horizon: Horizon = 1
    target: Target = "return"
    features: tuple[str, ...] = ("log_return", "log_range", "log_volume_change")
    # model
    hidden: Hidden = 64
    layers: Layers = 2
    dropout: Dropout = 0.1
    ridge_alpha: RidgeAlpha = 1.0
    # training
    epochs: Epochs = 100
    batch_size: BatchSize = 64
    lr: LearningRate = 1e-3
    weight_decay: WeightDecay = 1e-4
    patience: Patience = 10
    val_fraction: ValFraction = 0.2
    clip: Clip = 1.0
    device: Device = "auto"
    seed: Seed = 0
    deterministic: bool = False
    bf16: bool = False
    threads: Threads | None = None

    @field_validator("features")
    @classmethod
    def _known_features(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in v if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown feature {unknown[0]!r}; known: {', '.join(FEATURE_NAMES)}")
        if not v:
            raise ValueError("at least one feature is needed")
        return tuple(v)

    # -- the parts a fit uses ------------------------------------------------------------------
    def network(self) -> ModelConfig:
        return ModelConfig(hidden=self.hidden, layers=self.layers, dropout=self.dropout)

    def training(self) -> TrainConfig:
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    def with_values(self, values: Mapping[str, Any], *, where: str = "options") -> Settings:
        """These settings with ``values`` replaced; every bad value is reported at once."""
        return build({**self.model_dump(), **dict(values)}, where=where)


KEYS: tuple[str, ...] = tuple(Settings.model_fields)
DEFAULTS = Settings()


def default_run_threads() -> int:
    """torch threads per process for ``lstmcast run``: half the cores, at most 4.

    torch's default (every core) thrashes on a shared machine: on a loaded 2-core box the same
    run took 71 s with the default and 20 s with one thread.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


# -- checking values ---------------------------------------------------------------------------


def normalize_key(key: Any) -> str:
    """``batch-size`` and ``batch_size`` name the same setting."""
    return str(key).strip().replace("-", "_")


def suggest(key: str, known: Iterable[str] = KEYS) -> str:
    """`` (did you mean 'hidden'?)`` for a near miss, else an empty string."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Problem:
    key: str  # the setting (as written by the user)
    message: str  # one line: "hidden must be at most 4096 (got 10000000)"
    loc: tuple[Any, ...] = ()  # where in the input (for file line numbers)


def _describe(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    t = err["type"]
    rules = {
        "greater_than_equal": "must be at least {ge}",
        "less_than_equal": "must be at most {le}",
        "greater_than": "must be greater than {gt}",
        "less_than": "must be less than {lt}",
        "finite_number": "must be a finite number",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "tuple_type": "must be a list",
        "string_pattern_mismatch": "must be auto, cpu, cuda, cuda:N or mps",
        "literal_error": "must be one of {expected}",
    }
    if t in rules:
        try:
            return rules[t].format(**{k: (f"{v:g}" if isinstance(v, float) else v) for k, v in ctx.items()})
        except (KeyError, IndexError):
            pass
    return str(err["msg"]).removeprefix("Value error, ")


def _message(key: str, err: dict[str, Any], value: Any) -> str:
    """The one message for a bad value of ``key``."""
    if err["type"] == "literal_error":
        choices = get_args(Settings.model_fields[key].annotation)
        return f"{key} {value!r} is not one of: {', '.join(map(str, choices))}"
    if err["type"] == "string_pattern_mismatch" and key == "device":
        return f"device {value!r} is not one of: auto, cpu, cuda, cuda:N, mps"
    return f"{key} {_describe(err)}{_got(value)}"


def _got(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return ""
    return f" (got {value!r})"


def problems(values: Mapping[str, Any], *, allowed: Iterable[str] = KEYS) -> list[Problem]:
    """Every problem with ``values`` (a partial mapping of settings): unknown keys and bad values."""
    allowed = tuple(allowed)
    out: list[Problem] = []
    clean: dict[str, Any] = {}
    for raw, value in values.items():
        key = normalize_key(raw)
        if key not in allowed:
            out.append(Problem(str(raw), f"unknown key {str(raw)!r}{suggest(key, allowed)}", (raw,)))
        else:
            clean[key] = value
    # strict-ish: a bool is not an int, a string is not a number (TOML has real types)
    for key, value in clean.items():
        want = Settings.model_fields[key].annotation
        if isinstance(value, bool) and key not in ("deterministic", "bf16"):
            out.append(Problem(key, f"{key} must be {_kind(want)}, not {value!r}", (key,)))
    bad_types = {p.key for p in out}
    try:
        Settings.model_validate({k: v for k, v in clean.items() if k not in bad_types})
    except ValidationError as e:
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "(settings)"
            value = err.get("input")
            if key == "features" and len(err["loc"]) > 1:
                value = None
            out.append(Problem(key, _message(key, err, value), (key,)))
    return out


def _kind(annotation: Any) -> str:
    s = str(annotation)
    return "an integer" if "int" in s else "a number" if "float" in s else "a value"


def build(values: Mapping[str, Any], *, where: str = "options", base: Settings | None = None) -> Settings:
    """``Settings`` from a partial mapping over ``base`` (default: the defaults); ``None`` values are unset.

    Raises one ``ConfigError`` listing every problem (``where: key: message; ...``).
    """
    given = {normalize_key(k): v for k, v in values.items() if v is not None}
    if "features" in given and isinstance(given["features"], list):
        given["features"] = tuple(given["features"])
    found = problems(given)
    if found:
        raise ConfigError(join_problems(found, where=where))
    merged = {**(base or DEFAULTS).model_dump(), **given}
    return Settings.model_validate(merged)


def join_problems(found: list[Problem], *, where: str) -> str:
    if len(found) == 1:
        return f"{where}: {found[0].message}" if where != "options" else found[0].message
    body = "; ".join(p.message for p in found)
    return f"{where}: {len(found)} problems: {body}" if where != "options" else f"{len(found)} problems: {body}"


def check_value(key: str, value: Any) -> None:
    """Raise ``ConfigError`` with the one message for a bad value of one setting."""
    found = problems({key: value})
    if found:
        raise ConfigError(found[0].message)


# -- the plain parts a fitted artifact records ----------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The recurrent network's shape (``lstm`` and ``gru``)."""

    hidden: int = DEFAULTS.hidden
    layers: int = DEFAULTS.layers
    dropout: float = DEFAULTS.dropout

    def __post_init__(self) -> None:
        for f in fields(self):
            check_value(f.name, getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        return cls(hidden=int(d["hidden"]), layers=int(d["layers"]), dropout=float(d["dropout"]))


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained: the training part of ``Settings``."""

    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    lr: float = DEFAULTS.lr
    weight_decay: float = DEFAULTS.weight_decay
    patience: int = DEFAULTS.patience  # epochs without a better validation loss before stopping; 0: never
    val_fraction: float = DEFAULTS.val_fraction
    clip: float = DEFAULTS.clip  # max gradient norm; 0 turns clipping off
    device: str = DEFAULTS.device
    seed: int = DEFAULTS.seed
    deterministic: bool = DEFAULTS.deterministic
    bf16: bool = DEFAULTS.bf16  # bf16 autocast, CUDA only
    threads: int | None = DEFAULTS.threads  # torch intra-op threads on CPU (None: torch's default)

    def __post_init__(self) -> None:
        found = problems({f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})
        if found:
            raise ConfigError(join_problems(found, where="options"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, lenient: bool = False) -> TrainConfig:
        """``lenient``: a run saved by older code may hold values today's bounds refuse (epochs 0);
        loading it must still work, so they are not checked."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if not lenient:
            return cls(**kw)
        obj = object.__new__(cls)
        for f in fields(cls):
            object.__setattr__(obj, f.name, kw.get(f.name, f.default))
        return obj


# -- TOML files ----------------------------------------------------------------------------------
# `train --config` and `backtest --config` read the same table as `lstmcast run`'s defaults:
# `[train]` or `[defaults]` (one schema, either name; both at once is ambiguous and refused).
TABLES = ("train", "defaults")
FILE_ONLY_KEYS = ("interval",)  # a [train] table may also name the bar interval of `train`


def read_table(path: Any) -> tuple[dict[str, Any], str]:
    """The settings table of a TOML file, checked: ``(values, table name)``.

    Every problem is listed at once, each with ``file:line``, the key and a "did you mean".
    """
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    present = [t for t in TABLES if isinstance(doc.get(t), dict)]
    if not present:
        raise ConfigError(f"config file {path} has no [train] (or [defaults]) table")
    if len(present) > 1:
        raise ConfigError(f"config file {path} has both [train] and [defaults]; keep one (they are the same table)")
    name = present[0]
    table = dict(doc[name])
    extra = {k: table.pop(k) for k in list(table) if normalize_key(k) in FILE_ONLY_KEYS}
    found = problems(table)
    if found:
        raise ConfigError(file_problems(found, text=text, where=str(path), table=(name,)))
    values = {normalize_key(k): (tuple(v) if isinstance(v, list) else v) for k, v in table.items()}
    values.update({normalize_key(k): v for k, v in extra.items()})
    return values, name


def file_problems(found: list[Problem], *, text: str, where: str, table: tuple[Any, ...]) -> str:
    """``FILE:LINE: [table].key: message`` for each problem, joined into one line."""
    parts = []
    for p in found:
        line = key_line(text, (*table, *p.loc))
        at = f"{where}:{line}" if line else where
        parts.append(f"{at}: {dotted((*table, p.key))}: {p.message}")
    if len(parts) == 1:
        return parts[0]
    return f"{len(parts)} problems: " + "; ".join(parts)


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")
_INLINE_RE = re.compile(r"([A-Za-z0-9_\-]+)\s*=")


def key_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line where the key at ``loc`` (a pydantic-style location) is written, if findable.

    tomllib keeps no positions, so walk the text tracking the current table, counting ``[[array]]``
    headers to turn them into indices; keys of an inline table (``overrides = { a = 1 }``) map to
    its line. The best match is the longest prefix of ``loc`` that has a line.
    """
    where: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _HEADER_RE.match(line)
        if m:
            names = tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
            if m.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                table = (*names, counts[names])
            else:
                # [watchlist.overrides] after [[watchlist]] belongs to the latest entry
                table = names
                if names[:1] and (names[0],) in counts:
                    table = (names[0], counts[(names[0],)], *names[1:])
            where.setdefault(table, n)
            continue
        m = _KEY_RE.match(line)
        if m:
            key = tuple(p.strip().strip("\"'") for p in m.group(1).split("."))
            where.setdefault((*table, *key), n)
            rest = line[m.end():]
            if rest.lstrip().startswith("{"):
                for inner in _INLINE_RE.findall(rest):
                    where.setdefault((*table, *key, inner), n)
    for size in range(len(loc), 0, -1):
        if loc[:size] in where:
            return where[loc[:size]]
    return None


# -- effective settings and where each value came from ---------------------------------------------


def layered(layers: list[tuple[str, Mapping[str, Any]]]) -> tuple[Settings, dict[str, str]]:
    """Apply ``(source name, values)`` layers over the defaults, later layers winning.

    Returns the settings and, per key, the source of its value (``default`` when none set it).
    """
    values: dict[str, Any] = {}
    origin = {k: "default" for k in KEYS}
    for name, layer in layers:
        for k, v in layer.items():
            key = normalize_key(k)
            if v is None or key not in KEYS:
                continue
            values[key] = v
            origin[key] = name
    return build(values), origin
