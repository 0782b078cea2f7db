"""Live checks of one watchlist entry: decay, interval coverage, input drift, staleness.

numpy / scipy / pandas only; no torch, no I/O. Every check takes plain inputs (the forecast history
frame as ``lstmcast.forecasts`` stores it, feature arrays, ISO times, the model's meta dict) and
returns a ``Check``: ``status`` ok / flag / skip (not enough data), the numbers, one line of reason,
and the notification event it raises when flagged. ``entry_status`` runs them all for one entry and
gives the row of ``lstmcast status``.

The rules (defaults in ``MonitorSettings``):

* **decay**: per forecast (one origin; its loss is the mean absolute error over its steps), the live
  MAE ratio vs naive over the last ``window`` fully scored forecasts. With a backtest band (the
  rolling-``window`` ratios of the walk-forward, ``decay_band``), flag when the live ratio is above
  the band's ``band_quantile`` (95th percentile): under an unchanged model that happens in about 5%
  of windows. Without a band, flag when a one-sided Diebold-Mariano test on the live loss
  differential (model minus naive) says the model is worse than naive at level ``alpha``.
* **coverage**: of the last ``window`` scored forecasts' rows with interval bounds at the newest
  level, the share inside the interval; flag when a one-sided exact binomial test rejects "coverage
  >= nominal" at ``alpha`` (too-wide intervals are not flagged).
* **drift**: per feature, the newest ``drift_rows`` feature rows against the training rows. A feature
  drifts when its population stability index (deciles of the training rows) is at least
  ``psi_threshold`` (0.25: the usual "major shift") *and* a two-sample Kolmogorov-Smirnov test
  rejects equality at ``ks_alpha`` divided by the number of features (Bonferroni). Both are needed:
  PSI alone is biased upward on a few dozen rows, KS alone flags negligible shifts on long series.
  Feature rows are autocorrelated, so the KS p-value is optimistic; PSI carries the size.
* **staleness**: ``data_age`` flags when more than ``max_bars_behind`` complete bars are missing after
  the last stored bar (pass the calendar-aware count; otherwise it is estimated from wall-clock time);
  ``model_age`` when the current model is older than ``max_model_age``; ``run_age`` when the entry's
  last successful run is older than ``max_run_age`` (or there is none).
"""

import importlib
from typing import Any

# Names load on first use (PEP 562): config imports ``monitor.base`` for its settings model, and
# that must not pull in pandas and scipy (shell completion and ``--help`` go through config).
_WHERE = {
    **dict.fromkeys(("Check", "Duration", "MonitorSettings", "Status", "parse_duration"), "base"),
    **dict.fromkeys(("PSI_EPS", "check_drift", "psi"), "drift"),
    **dict.fromkeys(("DecayBand", "check_coverage", "check_decay", "decay_band", "scored_forecasts"), "skill"),
    **dict.fromkeys(("check_data_age", "check_model_age", "check_run_age", "interval_delta"), "staleness"),
    **dict.fromkeys(("EntryStatus", "entry_record", "entry_status"), "status"),
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'lstmcast.monitor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lstmcast.monitor.{_WHERE[name]}"), name)
