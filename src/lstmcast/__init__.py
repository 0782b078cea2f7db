"""lstmcast: forecast stock and crypto prices with an LSTM, reporting skill against the naive forecast.

The Python API, for notebooks (pandas frames in, pandas frames out)::

    import lstmcast

    model = lstmcast.fit(df, family="lstm", lookback=30, horizon=5, epochs=20)   # yfinance-style bars
    model.metrics["model"]["mase"], model.metrics["naive"]["mase"]              # validation skill
    model.predict()                    # future bar times x forecast, naive, lower_80, upper_80, ...
    lstmcast.backtest(df, family="linear", refit_every=50)   # walk-forward metrics vs naive, per forecaster
    lstmcast.load("data", "AAPL").predict()                  # a run saved by `lstmcast train`

``fit``, ``backtest``, ``load``, ``as_bars`` and ``Model`` live in ``lstmcast.api``, imported on first
use: ``import lstmcast`` itself loads neither pandas nor torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Model", "__version__", "as_bars", "backtest", "fit", "load"]

_API = frozenset({"Model", "as_bars", "backtest", "fit", "load"})


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        # imported by name so that the import graph keeps the package root free of the pipelines
        # (the registry imports __version__ from here)
        return getattr(importlib.import_module("lstmcast.api"), name)
    raise AttributeError(f"module 'lstmcast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
