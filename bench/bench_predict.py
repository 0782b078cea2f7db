"""Predict-side speed: the numpy forward pass against torch's, and the cold start-up of each path.

1. Forward pass, same weights, float32, look-back 60, hidden 64, 2 layers, 3 features, horizon 1:
   numpy_forward.NumpyRNN against nn.LSTM + nn.Linear (eval, inference_mode), for one window and
   for a batch of 4,096 windows. Medians of interleaved repeats, and numpy/torch time ratios
   (below 1: numpy is faster).
2. Cold processes: ``python -c "import pandas, pyarrow"`` (the reference: predict needs both anyway)
   against ``python -c "import lstmcast.forecasters.rnn.numpy_forward"``, and a whole cold forecast
   from saved weights (import, load the safetensors file, one window); medians and ratios.
   ``--with-torch`` adds ``python -c "import torch"``, the cost the numpy path avoids.
Usage: python bench/bench_predict.py [--threads N] [--cold-runs N] [--with-torch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def cold_median(code: str, *, runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_medians(codes: dict[str, str], *, runs: int, env: dict[str, str]) -> dict[str, float]:
    """Interleaved (one of each per round), so a change in the machine's load hits every path alike."""
    times: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(runs):
        for name, code in codes.items():
            times[name].append(cold_median(code, runs=1, env=env))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads for the forward passes")
    ap.add_argument("--repeats", type=int, default=200, help="one-window forward passes of each")
    ap.add_argument("--batch-repeats", type=int, default=7, help="4,096-window forward passes of each")
    ap.add_argument("--cold-runs", type=int, default=7, help="cold processes of each kind")
    ap.add_argument("--with-torch", action="store_true", help='also time a cold `python -c "import torch"`')
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch load their thread pools
    sys.path.insert(0, str(SRC))

    import numpy as np
    import torch
    from safetensors.numpy import save_file

    from lstmcast.forecasters.rnn.numpy_forward import NumpyRNN

    torch.set_num_threads(args.threads)
    lookback, hidden, layers, n_features, horizon, batch = 60, 64, 2, 3, 1, 4096
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True, dropout=0.1).eval()
    head = torch.nn.Linear(hidden, horizon).eval()
    weights = {f"lstm.{k}": v.numpy() for k, v in lstm.state_dict().items()}
    weights |= {f"head.{k}": v.numpy() for k, v in head.state_dict().items()}
    model = NumpyRNN(weights)
    x = np.random.default_rng(0).normal(size=(batch, lookback, n_features)).astype("float32")

    def run_torch(xb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, _ = lstm(torch.from_numpy(xb))
            return head(out[:, -1, :]).numpy()

    def timed(fn, xb: np.ndarray, repeats: int) -> tuple[float, float]:
        """Medians of interleaved calls of numpy and torch: (numpy s, torch s)."""
        fn_np, fn_t = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.forward(xb)
            t1 = time.perf_counter()
            fn(xb)
            fn_t.append(time.perf_counter() - t1)
            fn_np.append(t1 - t0)
        return statistics.median(fn_np), statistics.median(fn_t)

    one = np.ascontiguousarray(x[:1])
    diff = np.abs(model.forward(x) - run_torch(x)).max() / np.abs(run_torch(x)).max()
    for _ in range(3):  # warm-up: thread pools, allocator
        model.forward(one), run_torch(one), model.forward(x[:256]), run_torch(x[:256])
    t0 = time.perf_counter()
    NumpyRNN(weights)
    build_s = time.perf_counter() - t0
    one_np, one_t = timed(run_torch, one, args.repeats)
    big_np, big_t = timed(run_torch, x, args.batch_repeats)

    print(
        f"forward pass: float32, look-back {lookback}, hidden {hidden}, {layers} layers, {n_features} features, "
        f"horizon {horizon}; {args.threads} thread(s); numpy {np.__version__}, torch {torch.__version__}; "
        f"max relative difference {diff:.1e}"
    )
    print(f"  build NumpyRNN from weights  : {build_s * 1e3:8.3f} ms")
    print(
        f"  1 window      numpy {one_np * 1e3:8.3f} ms   torch {one_t * 1e3:8.3f} ms   "
        f"numpy/torch {one_np / one_t:5.2f}  (median of {args.repeats})"
    )
    print(
        f"  4,096 windows numpy {big_np * 1e3:8.1f} ms   torch {big_t * 1e3:8.1f} ms   "
        f"numpy/torch {big_np / big_t:5.2f}  (median of {args.batch_repeats}; "
        f"{batch / big_np:,.0f} vs {batch / big_t:,.0f} windows/s)"
    )

    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({f"weights.{k}": v for k, v in weights.items()}, str(path))
        np.save(Path(tmp) / "x.npy", one)
        codes = {
            "import pandas, pyarrow": "import pandas, pyarrow",
            "import numpy_forward": "import lstmcast.forecasters.rnn.numpy_forward",
            "load + 1-window forecast": (
                "import numpy as np; from lstmcast.forecasters.rnn import numpy_forward as nf; "
                f"nf.NumpyRNN(nf.load_weights({str(path)!r})).forward(np.load({str(Path(tmp) / 'x.npy')!r}))"
            ),
        }
        if args.with_torch:
            codes["import torch"] = "import torch"
        cold = cold_medians(codes, runs=args.cold_runs, env=env)
    ref = cold["import pandas, pyarrow"]
    print(f"cold `python -c ...` processes: median of {args.cold_runs} interleaved runs each ({sys.executable})")
    for name, s in cold.items():
        print(f"  {name:26} {s:7.3f} s   ratio to pandas+pyarrow {s / ref:5.2f}")
    print(f"load average now: {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
