"""The README's sine example at reduced size: the same settings (target price, look-back 10, hidden 4,
1 layer, batch 8) for 20 epochs instead of 300 must already fit the wave to about 1e-2 (the naive
forecast's one-step RMSE is about 0.09); `make bench` (bench/bench_sine.py) reports the full figure."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_sine", ROOT / "bench" / "bench_sine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_readme_sine_settings_reach_the_right_order_of_magnitude():
    bench = _bench()
    rmse, epochs = bench.last10_rmse(seed=0, epochs=20, batch_size=8, layers=1)
    close = bench.sine()["close"].to_numpy()
    naive = float(np.sqrt(np.mean(np.diff(close[-11:]) ** 2)))
    assert epochs == 20
    assert 0.08 < naive < 0.1
    assert rmse < 0.03, f"last-10 one-step RMSE {rmse:.4f} after 20 epochs"
