"""The automatic rollback rule of ``lstmcast run`` (``[monitor] rollback_after = K``, off by default):
a model a run promoted is judged on its first K live forecasts against its predecessor's forecasts at
the same origins, and the predecessor is made current again when the new model is significantly worse.
Called by ``pipelines.live.after_run``; returns data, never prints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.errors import LstmcastError
from lstmcast.monitor import MonitorSettings


@dataclass(frozen=True)
class Rollback:
    """The rollback rule's verdict for one entry's current model."""

    current: str
    predecessor: str
    origins: int
    dm_stat: float
    p_worse: float
    rolled_back: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _promoted_by_run(records: Sequence[Mapping[str, Any]], entry: str, run_id: str) -> bool:
    return any(e.get("entry") == entry and e.get("promoted") and e.get("trained") == run_id
               for rec in records for e in rec.get("entries") or [])


def rollback_check(
    data_dir: Path, entry: str, key: Any, *, settings: MonitorSettings, records: Sequence[Mapping[str, Any]],
) -> Rollback | None:
    """The automatic rollback rule (``[monitor] rollback_after = K``, off by default).

    Applies to a current model C that a ``run`` promoted (not one made current by ``models promote``)
    and that has at least K fully scored live forecasts. Its predecessor P is the model whose forecast
    the history holds just before C's first one; P must still be saved and complete. On C's first K
    scored origins, P's forecasts are computed now (P was trained on data before C was, so before
    those origins), and a one-sided Diebold-Mariano test on the per-origin loss differential
    (C minus P, absolute error averaged over the steps) asks whether C is worse. When p < ``alpha``,
    P is made current again. The verdict on the first K forecasts never changes, so the rule acts at
    most once per promotion. Returns None when the rule does not apply."""
    from lstmcast import forecasts, registry
    from lstmcast.data.store import Store
    from lstmcast.features import prepare
    from lstmcast.monitor.skill import _one_sided_dm, scored_forecasts

    k = settings.rollback_after
    if k <= 0:
        return None
    current = registry.current_run_id(data_dir, key)
    if current is None or not _promoted_by_run(records, entry, current):
        return None
    history = forecasts.load_history(data_dir, key)
    mine = scored_forecasts(history, run_id=current)
    if len(mine) < k:
        return None
    made = history.groupby("run_id", sort=False)["made_at"].min()
    first_made = made[current]
    before = history[history["made_at"] < first_made]
    if before.empty:
        return None
    predecessor = str(before.sort_values(["made_at", "origin"], kind="stable")["run_id"].iloc[-1])
    if predecessor == current:
        return None
    try:
        prev = registry.load_run(data_dir, key, predecessor)
        cur = registry.load_run(data_dir, key, current)
    except LstmcastError:
        return None  # pruned or damaged: nothing to roll back to
    if prev.meta.get("status") != registry.STATUS_COMPLETE:
        return None
    store = Store(data_dir)
    frame = store.load(key)
    kind = store.manifest(key).get("kind", "price")
    first = mine.head(k)
    pos = frame.index.get_indexer(pd.DatetimeIndex(first["origin"]))
    if (pos < 0).any():
        return None
    rows = history[(history["run_id"] == current) & history["origin"].isin(first["origin"])]
    h = int(rows["step"].max())
    prepared = prepare(frame, kind=kind, features=prev.features)
    if prev.features.horizon < h or (pos < prev.features.lookback - 1).any():
        return None
    pred = prev.predict_close(prepared, pos)[:, :h]
    actual = (rows.pivot_table(index="origin", columns="step", values="actual").reindex(first["origin"])
              .to_numpy("float64"))
    loss_prev = np.nanmean(np.abs(actual - pred), axis=1)
    loss_cur = first["model_loss"].to_numpy("float64")
    stat, p = _one_sided_dm(loss_cur, loss_prev)
    worse = bool(np.isfinite(p) and p < settings.alpha)
    what = (f"model {current}'s first {k} live forecasts vs {predecessor}'s at the same origins: "
            f"MAE {loss_cur.mean():.6g} vs {loss_prev.mean():.6g}, one-sided DM p = {p:.3g}")
    if worse:
        if registry.current_run_id(data_dir, key) != cur.run_id:
            return None
        registry.set_current(data_dir, key, predecessor)
        reason = f"rolled back to {predecessor}: {what} < {settings.alpha:g}"
    else:
        reason = f"kept: {what}"
    return Rollback(current, predecessor, k, float(stat), float(p), worse, reason)
