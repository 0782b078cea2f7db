"""Verdicts across many series: per series and family, MASE, MAE ratio and the Diebold-Mariano
p-value against naive, adjusted for testing many series at once.

"Beats naive on 5 of 100 series at p < 0.05" is what chance alone gives, so the count of series
where a family beats naive uses Benjamini-Hochberg adjusted p-values (false discovery rate
``alpha``), computed per family over the series it ran on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CORRECTION = "Benjamini-Hochberg"


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1); NaN stays NaN and
    does not count as a test."""
    p = np.asarray(p, dtype="float64")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def cross_series(rows: list[dict[str, Any]], *, families: Sequence[str], alpha: float = 0.05) -> dict[str, Any]:
    """The cross-series table and its summary.

    ``rows``: one dict per (series, family) with ``mase``, ``naive_mase``, ``mae_ratio`` and ``dm_p``
    (two-sided). Adds ``mase_ratio`` (model MASE / naive MASE), ``dm_p_adjusted`` and ``beats_naive``
    (lower MAE than naive and adjusted p below ``alpha``). The summary per family: the median MASE
    ratio and on how many series it beats naive before and after the correction.
    """
    table = [dict(r) for r in rows]
    for r in table:
        r["mase_ratio"] = r["mase"] / r["naive_mase"] if r["naive_mase"] else math.nan
    summary = []
    for family in families:
        mine = [r for r in table if r["family"] == family]
        adjusted = benjamini_hochberg([r["dm_p"] for r in mine])
        for r, q in zip(mine, adjusted, strict=False):
            r["dm_p_adjusted"] = float(q)
            lower = math.isfinite(r["mae_ratio"]) and r["mae_ratio"] < 1
            r["beats_naive"] = bool(lower and math.isfinite(q) and q < alpha)
            r["beats_naive_unadjusted"] = bool(lower and math.isfinite(r["dm_p"]) and r["dm_p"] < alpha)
        ratios = [r["mase_ratio"] for r in mine if math.isfinite(r["mase_ratio"])]
        summary.append({
            "family": family, "series": len(mine),
            "median_mase_ratio": float(np.median(ratios)) if ratios else math.nan,
            "beats_naive": sum(r["beats_naive"] for r in mine),
            "beats_naive_unadjusted": sum(r["beats_naive_unadjusted"] for r in mine),
            "worse_than_naive": sum(1 for r in mine if math.isfinite(r["mae_ratio"]) and r["mae_ratio"] > 1),
        })
    return {"correction": CORRECTION, "alpha": alpha, "rows": table, "summary": summary}
