"""Metrics, baselines, walk-forward backtests and strategy P&L. numpy/scipy only; no I/O."""
