"""Vendor adapters: the only modules that import yfinance or ccxt; vendor errors are wrapped here."""
