#!/usr/bin/env bash
# Non-editable install check, as pipx / uv tool users install: build a wheel, install it into a
# throw-away venv, then use it from a directory outside the repo (import a bundled sample, train).
# The throw-away venv borrows the dependencies already installed in $PYTHON's environment through a
# .pth line (so nothing is downloaded twice); lstmcast itself comes only from the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
REPO=$PWD
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

"$PYTHON" -m pip wheel --no-deps --no-build-isolation -q -w "$SCRATCH/dist" . >/dev/null
WHEEL=$(ls "$SCRATCH"/dist/lstmcast-*.whl)
"$PYTHON" -m venv "$SCRATCH/venv"
DEPS=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE=$("$SCRATCH/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$DEPS" > "$SITE/_lstmcast_deps.pth"
"$SCRATCH/venv/bin/python" -m pip install --no-deps --disable-pip-version-check -q "$WHEEL"

cd "$SCRATCH"
export LSTMCAST_HOME="$SCRATCH/home"
unset PYTHONPATH
LC="$SCRATCH/venv/bin/lstmcast"
where=$("$SCRATCH/venv/bin/python" -c 'import lstmcast, os; print(os.path.dirname(lstmcast.__file__))')
case "$where" in
  "$SITE"/*) ;;
  *) echo "wheel-check: lstmcast was imported from $where, not from the wheel" >&2; exit 1 ;;
esac
"$LC" --help >/dev/null
"$LC" import "$REPO/data/samples/BTC-USD_1d_coinbase.csv" --symbol BTC-USD >/dev/null
"$LC" train BTC-USD --epochs 1 --hidden 4 --layers 1 --lookback 10 --seed 0 >/dev/null
"$LC" predict BTC-USD --json >/dev/null
echo "wheel-check: ok ($(basename "$WHEEL") installed non-editable, used from $SCRATCH)"
