"""The check result every live check returns, and the checks' settings."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lstmcast.jsonable import to_jsonable

if TYPE_CHECKING:
    import pandas as pd

Status = Literal["ok", "flag", "skip"]


@dataclass(frozen=True)
class Check:
    """One check's outcome. ``event`` is the notification kind it raises when flagged."""

    name: str  # decay | coverage | drift | data_age | model_age | run_age
    event: str  # decay | drift | stale
    status: Status
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.status == "flag"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


# -- settings ---------------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w|wk)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800, "wk": 604800}


def parse_duration(value: Any) -> dt.timedelta:
    """``"90m"``, ``"36h"``, ``"30d"``, ``"2w"`` (or a timedelta, or seconds) -> timedelta."""
    if isinstance(value, dt.timedelta):
        td = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        td = dt.timedelta(seconds=value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration like 90m, 36h, 30d or 2w")
        td = dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    if td <= dt.timedelta(0):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return td


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


class MonitorSettings(BaseModel):
    """The live checks' windows and thresholds (a ``[monitor]`` table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: Annotated[int, Field(ge=5, le=10_000)] = 20  # scored forecasts per decay/coverage check
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # DM (no band) and coverage test level
    band_quantile: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    drift_rows: Annotated[int, Field(ge=10, le=100_000)] = 60  # newest feature rows vs the training rows
    psi_threshold: Annotated[float, Field(gt=0.0)] = 0.25
    ks_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    max_bars_behind: Annotated[int, Field(ge=0)] = 1
    max_model_age: Duration | None = None  # None: models never expire
    max_run_age: Duration | None = dt.timedelta(days=2)
    # automatic rollback (pipelines.live.rollback_check): 0 = off; K = judge a model a run promoted on
    # its first K live forecasts against its predecessor's forecasts at the same origins
    rollback_after: Annotated[int, Field(ge=0, le=10_000)] = 0


def to_utc(value: Any) -> pd.Timestamp | None:
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    t = pd.Timestamp(value)
    if t is pd.NaT:
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def age_text(td: pd.Timedelta | dt.timedelta) -> str:
    import pandas as pd

    s = pd.Timedelta(td).total_seconds()
    if s >= 2 * 86400:
        return f"{s / 86400:.1f} days"
    if s >= 2 * 3600:
        return f"{s / 3600:.1f} hours"
    return f"{s / 60:.0f} minutes"
