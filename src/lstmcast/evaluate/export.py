"""The per-origin, per-step forecast table behind every backtest number (``backtest --output``).

One row per origin and step: ``origin_time`` and ``target_time`` (ISO 8601, UTC), ``step``,
``method`` (``direct`` within the model's trained horizon, ``recursive`` after), ``origin_close``,
``actual``, ``forecast`` (the model's point forecast), ``q<level>`` for every quantile of the
model's predictive distribution (the backtest's ``--intervals`` method; empty while fewer than 20
causal residuals exist), one column per baseline's point forecast, and ``mase_scale`` (the MASE
denominator, the same on every row). The README recipe recomputes MAE, MASE, CRPS and coverage
from this table with pandas alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def quantile_column(level: float) -> str:
    return f"q{level:g}"


def forecast_table(result: Any, index: pd.DatetimeIndex, distribution: Any) -> pd.DataFrame:
    """``result`` a ``BacktestResult``, ``index`` the series' timestamps (row positions -> time),
    ``distribution`` the model's ``adaptive.Distribution`` of the chosen interval method."""
    o = np.asarray(result.origins, dtype="int64")
    n, h = result.actual.shape
    steps = np.arange(1, h + 1)
    org = np.repeat(o, h)
    tgt = (o[:, None] + steps[None, :]).reshape(-1)

    def iso(pos: np.ndarray) -> list[str]:
        return [t.isoformat() for t in index[pos]]

    cols: dict[str, Any] = {
        "origin_time": iso(org), "target_time": iso(tgt), "step": np.tile(steps, n),
        "method": np.tile(np.asarray(result.methods, dtype=object), n),
        "origin_close": np.repeat(np.asarray(result.last, dtype="float64"), h),
        "actual": result.actual.reshape(-1), "forecast": result.forecast.reshape(-1),
    }
    for k, lv in enumerate(distribution.levels):
        cols[quantile_column(lv)] = distribution.quantiles[:, :, k].reshape(-1)
    for name, p in result.baselines.items():
        cols[name] = np.asarray(p, dtype="float64").reshape(-1)
    cols["mase_scale"] = np.full(n * h, float(result.scale))
    return pd.DataFrame(cols)


def records(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-able rows (NaN becomes None)."""
    from lstmcast.jsonable import to_jsonable

    return to_jsonable(table.to_dict(orient="records"))
