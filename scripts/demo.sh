#!/usr/bin/env bash
# The demo: real bundled data, no network. LSTMCAST_HOME points at a fresh data directory (make demo).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LSTMCAST_HOME:?set LSTMCAST_HOME to a scratch data directory}"
export LSTMCAST_HOME
run() { echo; echo "\$ lstmcast $*"; lstmcast "$@"; }

run import data/samples/BTC-USD_1d_coinbase.csv --symbol BTC-USD
for t in AAPL AMZN GOOG NVDA; do
  run import "data/samples/${t}_1d.csv" --symbol "$t"
done
run data list
run data show BTC-USD --tail 3

# Train a small LSTM on the real BTC-USD sample (2 cores: well under a minute) and compare it with naive.
run train BTC-USD --epochs 15 --hidden 32 --lookback 30 --seed 0
run models list BTC-USD

# Forecast the next bar with conformal intervals (the sample ends in 2019, so expect a stale-data warning).
run predict BTC-USD
# Walk-forward: refit every 50 origins over the last 250 bars, against naive, drift, moving average, mean return.
run backtest BTC-USD --refit-every 50 --epochs 10 --plot "$LSTMCAST_HOME/backtest-BTC-USD.png"
# The cron path, offline: the watchlist in scripts/demo.toml holds the imported sample (not fetched);
# --force trains a challenger, scores it against the current model on the same held-out bars, promotes
# it only if it is better, and records the forecast.
run run --config scripts/demo.toml --force
run forecasts BTC-USD
echo
echo "demo done: data, models, forecasts, logs and the plot are under $LSTMCAST_HOME"
