"""Pipelines: train, predict, backtest, promote and the settings report. Each composes the store,
a forecaster and the registry, and returns data; none prints."""
