"""One conversion to strict JSON, shared by command output, checkpoint metadata and backtest reports."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """A copy that ``json.dumps(allow_nan=False)`` accepts: NaN/inf -> None, numpy -> Python,
    arrays -> lists, dates and timestamps -> ISO 8601 strings, dict keys -> str."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if type(obj).__name__ in ("NaTType", "NAType"):  # pandas' missing markers ("NaT" is no timestamp)
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj
