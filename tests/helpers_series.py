"""Tiny synthetic series shared by the model/training tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_walk_frame(n: int = 300, *, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    high = close * np.exp(np.abs(rng.normal(0, 0.005, n)))
    low = close * np.exp(-np.abs(rng.normal(0, 0.005, n)))
    volume = rng.uniform(1e3, 2e3, n)
    idx = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC", name="time")
    return pd.DataFrame(
        {"open": close, "high": high, "low": low, "close": close, "volume": volume}, index=idx
    )


def ar1_close(n: int, *, phi: float = 0.5, seed: int) -> np.ndarray:
    """Closes whose log returns follow an AR(1) with coefficient ``phi`` (1% noise), from 100."""
    rng = np.random.default_rng(seed)
    e = 0.01 * rng.standard_normal(n)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    return 100 * np.exp(np.cumsum(r))


def sine_frame(n: int = 1000, *, period: float = 50.0) -> pd.DataFrame:
    v = np.sin(2 * np.pi * np.arange(n) / period)
    idx = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC", name="time")
    return pd.DataFrame({"open": v, "high": v, "low": v, "close": v, "volume": np.nan}, index=idx)
