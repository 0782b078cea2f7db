"""Pipelines: each composes the store, a forecaster and the registry, and returns data; none prints.

* ``train``: a stored series -> prepared rows -> fitted artifact -> validation skill -> saved run;
  split into ``load_series`` / ``fit_artifact`` (``fit_task`` for executors) / ``save_trained``.
* ``promote``: champion / challenger scoring on the same held-out origins, and the promotion rule.
* ``fetch``: which stored series a watchlist entry is, whether a vendor can update it, the fetch step.
* ``settings``: the effective settings of a config file and where each value came from.
"""
