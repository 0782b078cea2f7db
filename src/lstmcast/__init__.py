"""lstmcast: forecast stock and crypto prices with an LSTM, reporting skill against the naive forecast."""

__version__ = "0.1.0"
