"""Forecasters: the model families behind one fit/predict seam."""
