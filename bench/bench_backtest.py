"""Backtest cost: seconds per walk-forward refit against one plain training run on the same rows.

The walk-forward prepares features once and each refit is one `train.fit` on the rows up to its
origin, so a refit should cost what `lstmcast train` costs on the same data: ratio close to 1.
Early stopping is disabled (patience > epochs) so both run the same number of epochs.
Usage: python bench/bench_backtest.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_train import synthetic  # noqa: E402

from lstmcast.evaluate import backtest  # noqa: E402
from lstmcast.features import FeatureConfig, prepare  # noqa: E402
from lstmcast.model import ModelConfig  # noqa: E402
from lstmcast.train import TrainConfig, fit  # noqa: E402


def main() -> None:
    torch.set_num_threads(2)
    frame = synthetic(1500)
    feats = FeatureConfig(lookback=30, horizon=1)
    model = ModelConfig(hidden=32, layers=2, dropout=0.1)
    train = TrainConfig(epochs=5, batch_size=64, patience=100, seed=0, threads=2)
    prepared = prepare(frame, kind="price", features=feats)
    origins = list(range(1299, 1499))
    cfg = backtest.BacktestConfig(horizon=1, refit_every=50, intervals="none")

    def run_backtest():
        t0 = time.perf_counter()
        res = backtest.walk_forward(
            prepared.close, origins=np.array(origins), config=cfg,
            fit=lambda lo, hi: fit(prepared, features=feats, model=model, train=train, start=lo, end=hi),
            predict=lambda m, at: m.predict_close(prepared, at),
        )
        return time.perf_counter() - t0, res

    def run_reference() -> float:  # one training run on exactly the first refit's rows, as `train` does
        t0 = time.perf_counter()
        fit(prepared, features=feats, model=model, train=train, start=0, end=origins[0] + 1)
        return time.perf_counter() - t0

    run_reference()  # warm-up: first-call allocations and thread-pool start-up
    ref, bts = [], []
    for _ in range(2):  # alternate so that a noisy neighbour hurts both sides alike; keep the best
        ref.append(run_reference())
        bts.append(run_backtest())
    total, res = min(bts, key=lambda x: x[0])
    per_refit = total / res.plan.n_refits
    # Later refits see up to 15% more rows; scale the reference by rows to compare like with like.
    rows = [f.end - f.start for f in res.plan.folds]
    ref_per_row = min(ref) / (origins[0] + 1)
    expected = ref_per_row * sum(rows) / len(rows)
    print(f"reference train (first refit's rows): {min(ref):.2f}s   (best of 2, after a warm-up)")
    print(f"backtest: {res.plan.n_refits} refits, {len(origins)} origins, {total:.2f}s in all, "
          f"{per_refit:.2f}s per refit (fit {sum(res.fit_seconds) / res.plan.n_refits:.2f}s, "
          f"the rest predicting and scoring)")
    print(f"ratio per refit / train on the same rows: {per_refit / expected:.2f}  (target: close to 1)")


if __name__ == "__main__":
    main()
