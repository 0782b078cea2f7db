"""Old import paths: ``predict_series`` lives in ``pipelines.predict`` and ``backtest_series`` in
``pipelines.backtest``; both are re-exported here, with ``default_setup_options`` (the training options
of a saved run, which ``backtest`` starts from).
"""

from __future__ import annotations

from typing import Any

from lstmcast.data.store import Store
from lstmcast.pipelines.backtest import BacktestReport, backtest_series, choose_origins
from lstmcast.pipelines.predict import (
    MODEL_LAG_WARN_BARS,
    PredictReport,
    PredictStep,
    predict_series,
    staleness,
)

__all__ = ["MODEL_LAG_WARN_BARS", "BacktestReport", "PredictReport", "PredictStep", "backtest_series",
           "choose_origins", "default_setup_options", "predict_series", "staleness"]


def default_setup_options(store: Store, spec: str, *, interval: str, run_id: str | None = None) -> dict[str, Any]:
    """The training options of ``run_id`` (or of the series' current model, if any) as a flat mapping.

    ``lstmcast backtest`` starts from these so it evaluates the setup the user actually runs; an
    explicit ``run_id`` that does not exist is an error, a missing current model is not.
    """
    from lstmcast import registry as checkpoint
    from lstmcast.errors import DataNotFoundError
    from lstmcast.pipelines.train import OPTIONS

    if run_id is not None:
        info = checkpoint.find_run(store.root, run_id)  # run_id may be a unique prefix
        meta = checkpoint.load_run(store.root, info.key, info.run_id).meta
    else:
        try:
            meta = checkpoint.load_run(store.root, store.resolve(spec, interval)).meta
        except DataNotFoundError:
            return {}
    merged = {**meta.get("features", {}), **meta.get("model", {}), **meta.get("train", {}),
              "family": meta.get("family", "lstm")}
    return {k: v for k, v in merged.items() if k in OPTIONS and k != "interval" and v is not None}
