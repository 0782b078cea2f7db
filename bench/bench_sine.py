"""The README's sine example against the Keras tutorial it comes from.

The tutorial fits an LSTM to sin(2*pi*t/50) (1,000 points, look-back 10) and reports a one-step
RMSE of 0.00148 on the last 10 points. This trains lstmcast's own ``fit`` with the README's
settings (target price, look-back 10, hidden 4, 1 layer, batch 8, 300 epochs, the CLI's other
defaults) for 3 seeds and prints the one-step RMSE on the last 10 points of each, their median,
and the ratio to the tutorial's figure (target: median <= 0.0015, ratio <= 1).
Usage: python bench/bench_sine.py [--seeds 0,1,2] [--epochs 300] [--batch-size 8] [--layers 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lstmcast import features as F  # noqa: E402
from lstmcast import train as T  # noqa: E402
from lstmcast.model import ModelConfig  # noqa: E402

KERAS_RMSE = 0.00148  # the tutorial's one-step RMSE on the last 10 points


def sine(n: int = 1000, period: float = 50.0) -> pd.DataFrame:
    v = np.sin(2 * np.pi * np.arange(n) / period)
    idx = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC", name="time")
    return pd.DataFrame({"open": v, "high": v, "low": v, "close": v, "volume": np.nan}, index=idx)


def last10_rmse(
    *, seed: int, epochs: int, batch_size: int, layers: int, hidden: int = 4, n: int = 1000, threads: int = 1
) -> tuple[float, int]:
    """One-step RMSE of the last 10 validation origins (targets: the last 10 points), and the epochs run."""
    fc = F.FeatureConfig(lookback=10, target="price")
    prepared = F.prepare(sine(n), kind="value", features=fc)
    fitted = T.fit(
        prepared,
        features=fc,
        model=ModelConfig(hidden=hidden, layers=layers),
        train=T.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, device="cpu", threads=threads),
    )
    err = fitted.val_pred[-10:, 0] - fitted.val_actual[-10:, 0]
    return float(np.sqrt(np.mean(err**2))), len(fitted.history)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"sine (1,000 points, period 50): target price, look-back 10, hidden 4, {args.layers} layer(s), "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.threads} thread(s)"
    )
    scores = []
    for seed in seeds:
        t0 = time.perf_counter()
        rmse, ran = last10_rmse(seed=seed, epochs=args.epochs, batch_size=args.batch_size, layers=args.layers,
                           threads=args.threads)
        scores.append(rmse)
        print(
            f"  seed {seed}: last-10 one-step RMSE {rmse:.5f}  ({ran} epochs, {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    med = statistics.median(scores)
    verdict = "ok" if med <= 0.0015 else "MISSED"
    print(
        f"median {med:.5f} vs Keras tutorial {KERAS_RMSE:.5f}: ratio {med / KERAS_RMSE:.2f} "
        f"(target <= 0.0015: {verdict})"
    )


if __name__ == "__main__":
    main()
