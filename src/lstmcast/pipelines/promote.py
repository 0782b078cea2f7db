"""Champion / challenger: score both on the same recent held-out bars; promote only a better model.

``evaluate_and_promote`` reads the store and the registry and moves ``current`` (under the
registry's lock) when the challenger wins by the configured margin.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstmcast.errors import CheckpointError, ConfigError, DataNotFoundError, ModelError


def should_promote(
    champion_metric: float | None, challenger_metric: float, *, min_improvement: float
) -> bool:
    """The champion/challenger rule: promote when there is no champion, or when the challenger's
    error is lower than the champion's by at least ``min_improvement`` (a fraction: 0.02 = 2%).
    Errors are lower-is-better (MAE, RMSE, MASE); a NaN challenger never wins."""
    if not 0 <= min_improvement < 1:
        raise ValueError(f"min_improvement must be in [0, 1), got {min_improvement}")
    if challenger_metric is None or not math.isfinite(challenger_metric):
        return False
    if champion_metric is None or not math.isfinite(champion_metric):
        return True
    return challenger_metric < champion_metric * (1 - min_improvement)


@dataclass(frozen=True)
class Promotion:
    """The outcome of scoring challenger and champion on the same recent held-out bars."""

    promoted: bool
    metric: str
    challenger: float  # NaN when there was nothing to score on (only possible without a champion)
    champion: float | None  # None: there was no champion
    origins: int = 0  # forecast origins both were scored on
    span: str | None = None  # "first origin .. last origin" (ISO)


def holdout_origins(index: Any, models: list[Any], *, holdout: int) -> np.ndarray:
    """The most recent ``holdout`` forecast origins whose target bars no model was trained on.

    An origin ``t`` qualifies when its first target bar comes after every model's last training row
    (``meta["data"]["train_end"]``), every model can see a full look-back at ``t``, and all target
    bars (up to the shortest horizon) are stored. For a challenger trained on the whole series
    these are the last origins of its validation part, so it never saw their targets either.
    """
    import pandas as pd

    n = len(index)
    h = min(m.features.horizon for m in models)
    first = max(m.features.lookback for m in models) - 1
    last = n - 1 - h
    if last < first:
        return np.arange(0)
    origins = np.arange(first, last + 1)
    for m in models:
        train_end = (m.meta.get("data") or {}).get("train_end")
        if train_end is None:
            raise ModelError(f"run {m.run_id} records no training end; it cannot be compared fairly")
        origins = origins[np.asarray(index[origins + 1] > pd.Timestamp(train_end))]
    return origins[-holdout:]


def score_on(model: Any, prepared: Any, origins: Any, *, horizon: int, metric: str, scale: float) -> float:
    """``metric`` (mae, rmse, mase) of ``model``'s first ``horizon`` steps at ``origins``."""
    from lstmcast.evaluate import metrics
    from lstmcast.forecasters.base import actual_close

    pred = model.predict_close(prepared, origins)[:, :horizon]
    actual = actual_close(prepared, origins, horizon)
    if metric == "mae":
        return metrics.mae(actual, pred)
    if metric == "rmse":
        return metrics.rmse(actual, pred)
    if metric == "mase":
        return metrics.mase(actual, pred, scale=scale)
    raise ConfigError(f"unknown promotion metric {metric!r}; use mae, rmse or mase")


def current_model(data_dir: Path, key: Any, *, log: logging.Logger | None = None) -> Any | None:
    """The loaded current model, or None when there is none or it cannot be loaded (logged)."""
    from lstmcast import registry

    try:
        if registry.current_run_id(data_dir, key) is None:
            return None
        return registry.load_run(data_dir, key)
    except (CheckpointError, DataNotFoundError) as e:
        if log is not None:
            log.warning("%s: the current model cannot be used (%s); treating it as absent", key, e)
        return None


def evaluate_and_promote(
    store: Any, key: Any, run_id: str, *, promotion: Any, log: logging.Logger | None = None, label: str | None = None
) -> Promotion:
    """Score challenger ``run_id`` and the current model (the champion) on the same held-out origins;
    make the challenger current when there is no champion or it wins by ``promotion.min_improvement``.

    ``promotion`` is a ``config.PromotionSettings`` (metric, holdout, min_improvement); ``label``
    names the entry in log records.
    """
    from lstmcast import registry
    from lstmcast.evaluate.metrics import naive_scale
    from lstmcast.features import prepare

    data_dir = store.root
    frame = store.load(key)
    kind = store.manifest(key).get("kind", "price")
    challenger = registry.load_run(data_dir, key, run_id)
    champion_id = None
    try:
        champion_id = registry.current_run_id(data_dir, key)
    except CheckpointError as e:
        if log is not None:
            log.warning("%s: %s; the challenger replaces it", label or key, e)
    champion = current_model(data_dir, key, log=log) if champion_id not in (None, run_id) else None
    models = [challenger] + ([champion] if champion is not None else [])
    origins = holdout_origins(frame.index, models, holdout=promotion.holdout)
    if len(origins) == 0 and champion is not None:
        raise ModelError(
            f"no held-out bars to compare challenger {run_id} and champion {champion.run_id} on "
            f"(none after both models' training data); the champion stays current"
        )
    scores: list[float] = []
    if len(origins):
        h = min(m.features.horizon for m in models)
        prepared: dict[str, Any] = {}
        for m in models:
            fkey = repr(sorted(m.features.to_dict().items()))
            if fkey not in prepared:
                prepared[fkey] = prepare(frame, kind=kind, features=m.features)
            p = prepared[fkey]
            scale = naive_scale(p.close[: int(origins[0]) + 1])  # data before the span only
            scores.append(score_on(m, p, origins, horizon=h, metric=promotion.metric, scale=scale))
    challenger_score = scores[0] if scores else float("nan")
    champion_score = scores[1] if champion is not None else None
    promoted = champion is None or should_promote(
        champion_score, challenger_score, min_improvement=promotion.min_improvement
    )
    if promoted:
        if champion is not None and registry.current_run_id(data_dir, key) != champion.run_id:
            raise ModelError(f"the current model of {key} changed while run {run_id} was evaluated")
        registry.set_current(data_dir, key, run_id)
    span = (
        f"{frame.index[origins[0]].isoformat()} .. {frame.index[origins[-1]].isoformat()}" if len(origins) else None
    )
    return Promotion(
        promoted=promoted,
        metric=promotion.metric,
        challenger=challenger_score,
        champion=champion_score,
        origins=len(origins),
        span=span,
    )
