"""Data-quality flags shared by ``fetch`` and ``import``: one-bar jumps and likely unadjusted splits.

They are reported, never "fixed": a jump may be real (a crash, a squeeze), and a split ratio close
to 2-for-1 may be a coincidence. ``context`` supplies the stored bar before ``frame`` so that the
first new bar's return is checked too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

JUMP_LOG_RETURN = float(np.log(1.5))  # |log return| above ~50% in one bar is flagged
SPLIT_RATIOS = (2, 3, 4, 5, 8, 10, 20, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 10, 3 / 2)
MAX_LISTED = 20


def jumps(frame: pd.DataFrame, *, context: pd.DataFrame | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{"jumps": [...], "likely_splits": [...]}``: bars whose close moved by more than 50% (in log
    terms) from the bar before, and those of them whose price ratio is within ~12% of a usual split
    ratio (a 2-for-1 split halves an unadjusted close). At most 20 of each, oldest first."""
    if len(frame) == 0:
        return {"jumps": [], "likely_splits": []}
    close = frame["close"]
    if context is not None and len(context):
        before = context[context.index < frame.index[0]]["close"].tail(1)
        close = pd.concat([before, close])
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(close / close.shift(1)).dropna()
    big = lr[np.abs(lr) > JUMP_LOG_RETURN]
    found, splits = [], []
    for t, v in big.items():
        found.append({"time": t.isoformat(), "log_return": round(float(v), 4)})
        ratio = float(np.exp(-v))  # old price / new price: 2.0 for a 2-for-1 split
        near = min(SPLIT_RATIOS, key=lambda r: abs(np.log(ratio / r)))
        if abs(np.log(ratio / near)) < 0.12:
            a, b = (near, 1) if near >= 1 else (1, 1 / near)
            splits.append({"time": t.isoformat(), "log_return": round(float(v), 4),
                           "split": f"{a:g}-for-{b:g}" if near != 1.5 else "3-for-2"})
    return {"jumps": found[:MAX_LISTED], "likely_splits": splits[:MAX_LISTED]}
