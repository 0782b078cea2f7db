"""Input drift: the newest feature rows against the training rows (PSI and KS per feature)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.monitor.base import Check

# -- drift ------------------------------------------------------------------------------------------
PSI_EPS = 1e-4  # floor for an empty bin's share: keeps the log finite


def psi(reference: np.ndarray, recent: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference``, on the reference's quantile bins."""
    ref = np.asarray(reference, dtype="float64")
    new = np.asarray(recent, dtype="float64")
    ref, new = ref[np.isfinite(ref)], new[np.isfinite(new)]
    if ref.size == 0 or new.size == 0:
        return float("nan")
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # right-closed bins (a value equal to an edge goes left), the same for both samples
    a = np.bincount(np.searchsorted(inner, ref, side="left"), minlength=inner.size + 1) / ref.size
    b = np.bincount(np.searchsorted(inner, new, side="left"), minlength=inner.size + 1) / new.size
    a, b = np.maximum(a, PSI_EPS), np.maximum(b, PSI_EPS)
    return float(np.sum((b - a) * np.log(b / a)))


def check_drift(
    reference: np.ndarray | pd.DataFrame,
    recent: np.ndarray | pd.DataFrame,
    *,
    names: Sequence[str] | None = None,
    psi_threshold: float = 0.25,
    ks_alpha: float = 0.01,
    min_reference: int = 50,
    min_recent: int = 10,
) -> Check:
    """Input drift of ``recent`` feature rows ``[m, f]`` against the training rows ``reference`` ``[n, f]``
    (a model's ``raw[start:train_end]`` and the newest ``drift_rows`` of ``raw``)."""
    from scipy import stats

    if isinstance(reference, pd.DataFrame):
        names = list(reference.columns) if names is None else names
        reference = reference.to_numpy("float64")
    if isinstance(recent, pd.DataFrame):
        recent = recent.to_numpy("float64")
    ref, new = np.asarray(reference, dtype="float64"), np.asarray(recent, dtype="float64")
    ref = ref[:, None] if ref.ndim == 1 else ref
    new = new[:, None] if new.ndim == 1 else new
    if ref.shape[1] != new.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} feature(s), recent has {new.shape[1]}")
    names = list(names) if names is not None else [f"feature_{i}" for i in range(ref.shape[1])]
    if len(names) != ref.shape[1]:
        raise ValueError(f"{len(names)} name(s) for {ref.shape[1]} feature(s)")
    values: dict[str, Any] = {
        "n_reference": int(ref.shape[0]), "n_recent": int(new.shape[0]), "psi_threshold": psi_threshold,
        "ks_alpha": ks_alpha, "features": {}, "drifted": [],
    }
    if ref.shape[0] < min_reference or new.shape[0] < min_recent:
        return Check("drift", "drift", "skip",
                     f"{new.shape[0]} recent and {ref.shape[0]} training row(s); drift needs {min_recent} and "
                     f"{min_reference}", values)
    level = ks_alpha / len(names)
    for i, name in enumerate(names):
        r, c = ref[:, i][np.isfinite(ref[:, i])], new[:, i][np.isfinite(new[:, i])]
        p_index = psi(r, c)
        ks = stats.ks_2samp(r, c)
        drifted = bool(p_index >= psi_threshold and ks.pvalue < level)
        values["features"][name] = {"psi": p_index, "ks": float(ks.statistic), "p": float(ks.pvalue),
                                    "drifted": drifted}
        if drifted:
            values["drifted"].append(name)
    feats = values["features"]
    if values["drifted"]:
        parts = ", ".join(f"{n} (PSI {feats[n]['psi']:.2f}, KS p {feats[n]['p']:.1g})" for n in values["drifted"])
        return Check("drift", "drift", "flag",
                     f"the newest {new.shape[0]} rows differ from the training rows: {parts}", values)
    worst = max(names, key=lambda n: feats[n]["psi"] if math.isfinite(feats[n]["psi"]) else -1.0)
    return Check("drift", "drift", "ok",
                 f"no feature drifted (largest PSI {feats[worst]['psi']:.2f}: {worst}) over the newest "
                 f"{new.shape[0]} rows", values)
