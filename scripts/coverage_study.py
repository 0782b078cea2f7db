"""Coverage table: plain split-conformal against adaptive (EWMA-normalised residuals + ACI) intervals.

Every bundled sample (data/samples/*.csv, close column), a synthetic regime-switch random walk
(volatility triples halfway) and a calm random walk; two causal point forecasters (naive, and an
AR(1) on log returns refitted every 50 bars on rows up to the origin); horizon 1; one origin per
bar from bar 250 to the end. Intervals at each origin use only residuals already observed.

    PYTHONPATH=src python scripts/coverage_study.py [--last N] [--scale ewma|garch] [--json]

``--last N`` scores only the last N origins (calibration still uses everything before them);
``regime_switch_rw@switch`` always scores the 250 origins right after the switch. ``--scale garch``
normalises by GARCH(1,1) refitted every 250 origins on rows up to the refit origin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcast.evaluate import adaptive, conformal, volatility
from lstmcast.evaluate.reference import fit_ar1

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (0.8, 0.95)
FIRST_ORIGIN = 250
REFIT_EVERY = 50


def read_sample(path: Path) -> np.ndarray:
    skip = 1 if path.read_text().splitlines()[0].lower().startswith("created") else 0
    df = pd.read_csv(path, skiprows=skip)
    cols = {c.lower(): c for c in df.columns}
    date = cols.get("date")
    df = df.sort_values(date) if date else df
    return df[cols["close"]].to_numpy(dtype="float64")


def synthetic(n: int = 2000, *, regime: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sig = np.full(n, 0.01)
    if regime:
        sig[n // 2 :] = 0.03
    return 100 * np.exp(np.cumsum(sig * rng.standard_normal(n)))


def forecasts(close: np.ndarray, origins: np.ndarray, name: str) -> np.ndarray:
    if name == "naive":
        return close[origins][:, None]
    out = np.empty((len(origins), 1))
    for i in range(0, len(origins), REFIT_EVERY):
        block = origins[i : i + REFIT_EVERY]
        model = fit_ar1(close, end=int(block[0]) + 1)  # rows up to the refit origin only
        out[i : i + len(block)] = model.predict_close(close, block, 1)
    return out


def garch_scale(close: np.ndarray, origins: np.ndarray, *, every: int = 250) -> np.ndarray:
    """GARCH(1,1) volatility, refitted every ``every`` origins on the rows up to the refit origin."""
    out = np.empty(len(origins))
    for i in range(0, len(origins), every):
        block = origins[i : i + every]
        g = volatility.fit_garch(close, end=int(block[0]) + 1)
        out[i : i + len(block)] = g.volatility(close)[block]
    return out


def study(close: np.ndarray, forecaster: str, *, keep: slice, scale: str = "ewma") -> list[dict]:
    origins = np.arange(FIRST_ORIGIN, len(close) - 1)
    pred = forecasts(close, origins, forecaster)
    actual = close[origins + 1][:, None]
    split, _ = conformal.causal_intervals(pred, actual, origins, levels=LEVELS, mode="log")
    vol = volatility.ewma_volatility(close)[origins] if scale == "ewma" else garch_scale(close, origins)
    dist = adaptive.causal_distribution(pred, actual, origins, scale=vol, method="aci")
    rows = []
    for lv in LEVELS:
        row = {"level": lv}
        for name, (lo, hi) in (("split", split[lv]), ("adaptive", dist.interval(lv))):
            lo, hi, a = lo[keep, 0], hi[keep, 0], actual[keep, 0]
            ok = ~np.isnan(lo)
            row[f"{name}_coverage"] = conformal.coverage(a, lo, hi)
            row[f"{name}_width"] = float(np.mean(np.log(hi[ok] / lo[ok])))  # log width = relative width
            row["n"] = int(ok.sum())
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--last", type=int, default=None)
    ap.add_argument("--scale", choices=("ewma", "garch"), default="ewma")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    keep = slice(None) if args.last is None else slice(-args.last, None)
    series = {p.stem: read_sample(p) for p in sorted((ROOT / "data/samples").glob("*.csv"))}
    series["regime_switch_rw"] = synthetic(regime=True, seed=7)
    series["calm_rw"] = synthetic(regime=False, seed=8)
    jobs = [(name, close, keep) for name, close in series.items()]
    # the 250 origins right after the regime switch (bar 1000), where split-conformal is most wrong
    switch = len(series["regime_switch_rw"]) // 2 - FIRST_ORIGIN
    jobs.append(("regime_switch_rw@switch", series["regime_switch_rw"], slice(switch, switch + 250)))
    out = []
    for name, close, sl in jobs:
        for fc in ("naive", "ar1"):
            for row in study(close, fc, keep=sl, scale=args.scale):
                out.append({"series": name, "forecaster": fc, **row})
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    head = (f"{'series':<25}{'fc':<6}{'level':>6}{'n':>6}  {'split cov':>9} {'adapt cov':>9}  "
            f"{'split w%':>8} {'adapt w%':>8}  ok")
    print(head)
    print("-" * len(head))
    worst = 0.0
    for r in out:
        gap = abs(r["adaptive_coverage"] - r["level"])
        worst = max(worst, gap)
        print(
            f"{r['series']:<25}{r['forecaster']:<6}{r['level']:>6.2f}{r['n']:>6}  "
            f"{100 * r['split_coverage']:>9.1f} {100 * r['adaptive_coverage']:>9.1f}  "
            f"{100 * r['split_width']:>8.2f} {100 * r['adaptive_width']:>8.2f}  {'yes' if gap <= 0.03 else 'NO'}"
        )
    print(f"worst adaptive gap to nominal: {100 * worst:.1f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
