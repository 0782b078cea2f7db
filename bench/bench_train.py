"""Training throughput: lstmcast's fit loop against a minimal bare PyTorch loop, same tensors, same process.

Fixed synthetic random walk (5,000 bars), look-back 60, hidden 64, 2 layers, batch 256, 5 epochs,
2 threads. Prints windows/s of both, their ratio (target >= 0.9) and the peak memory (ru_maxrss).
Usage: python bench/bench_train.py [--device cpu|cuda] [--batch-size N] [--epochs N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from lstmcast import features as F  # noqa: E402
from lstmcast import train as T  # noqa: E402
from lstmcast.model import LSTMForecaster, ModelConfig  # noqa: E402


def synthetic(n: int = 5000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    spread = np.exp(np.abs(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2000-01-01", periods=n, freq="D", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * spread,
            "low": close / spread,
            "close": close,
            "volume": rng.uniform(1e5, 2e5, n),
        },
        index=idx,
    )


def bare_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    model: ModelConfig,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> tuple[float, int]:
    """The minimal loop: pre-materialised windows, randperm, slice, forward, backward, AdamW step."""
    torch.manual_seed(seed)
    net = LSTMForecaster(n_features=x.shape[2], horizon=y.shape[1], config=model).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    seen = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x), device=device)
        for b in range(0, len(x), batch):
            idx = perm[b : b + batch]
            loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved runs of each loop; the best counts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = T.resolve_device(args.device)
    fc = F.FeatureConfig(lookback=60, horizon=1)
    mc = ModelConfig(hidden=64, layers=2, dropout=0.1)
    # patience above epochs: every epoch runs, as in the bare loop
    tc = T.TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.epochs + 1,
        device=args.device,
        threads=args.threads,
        seed=0,
    )
    prepared = F.prepare(synthetic(args.bars), kind="price", features=fc)

    # the same training tensors for the bare loop: scaled windows, materialised once
    sp = F.split(len(prepared), features=fc, val_fraction=tc.val_fraction)
    scaler = F.Scaler.fit(prepared.raw[: sp.train_end], prepared.target[fc.lookback : sp.train_end])
    x = torch.from_numpy(scaler.transform(prepared.raw)).to(device)
    yt = torch.from_numpy(scaler.transform_target(prepared.target)).to(device)
    tr = torch.from_numpy(sp.train_origins - fc.lookback + 1).to(device)
    xw = F.windows(x, fc.lookback)[tr].contiguous()
    yw = yt[fc.lookback :].unfold(0, 1, 1)[tr].contiguous()

    # warm-up both (allocator, kernels, cuDNN autotuning)
    bare_loop(xw[:512], yw[:512], model=mc, epochs=1, batch=args.batch_size, lr=tc.lr, seed=0, device=device)
    T.fit(
        prepared,
        features=fc,
        model=mc,
        train=T.TrainConfig(**{**tc.to_dict(), "epochs": 1}),
        start=len(prepared) - 800,
    )

    # interleaved repeats, best of each: the machine may be shared, and contention only ever slows a run
    bare_s = ours_total = ours_train = float("inf")
    for _ in range(args.repeats):
        s, bare_n = bare_loop(
            xw, yw, model=mc, epochs=args.epochs, batch=args.batch_size, lr=tc.lr, seed=0, device=device
        )
        bare_s = min(bare_s, s)
        t0 = time.perf_counter()
        fitted = T.fit(prepared, features=fc, model=mc, train=tc)
        if device.type == "cuda":
            torch.cuda.synchronize()
        ours_total = min(ours_total, time.perf_counter() - t0)
        ours_n = sum(s.windows for s in fitted.history)
        ours_train = min(ours_train, sum(s.seconds for s in fitted.history))

    bare = bare_n / bare_s
    ours = ours_n / ours_total
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(
        f"device {T.describe_device(device)}, torch {torch.__version__}; {args.bars} bars, "
        f"{len(sp.train_origins)} training windows, look-back 60, hidden 64, 2 layers, "
        f"batch {args.batch_size}, {args.epochs} epochs, best of {args.repeats} interleaved runs"
    )
    print(f"bare PyTorch loop : {bare:9.0f} windows/s  ({bare_s:.2f}s)")
    print(
        f"lstmcast fit      : {ours:9.0f} windows/s  ({ours_total:.2f}s end to end: scaler, upload, "
        f"validation each epoch, clipping, best-weights copy; "
        f"training epochs alone {ours_n / ours_train:.0f}/s)"
    )
    print(f"ratio             : {ours / bare:.2f}  (target >= 0.90)")
    print(f"peak memory       : {peak:.0f} MiB (ru_maxrss)")
    if device.type == "cuda":
        print(
            f"peak GPU memory   : {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB; "
            f"cudnn enabled {torch.backends.cudnn.enabled}, version {torch.backends.cudnn.version()}"
        )
    print(
        f"final losses      : train {fitted.history[-1].train_loss:.4f}, "
        f"val {fitted.history[-1].val_loss:.4f}"
    )


if __name__ == "__main__":
    main()
