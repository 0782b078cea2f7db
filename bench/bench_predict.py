"""Predict-side speed: the numpy forward pass against torch's, and the cold start-up of each path.

1. Forward pass, same weights, float32, look-back 60, hidden 64, 2 layers, 3 features, horizon 1:
   numpy_forward.NumpyRNN against nn.LSTM + nn.Linear (eval, inference_mode), for one window and
   for a batch of 4,096 windows. Medians of interleaved repeats, and numpy/torch time ratios
   (below 1: numpy is faster).
2. Cold processes: ``python -c "import pandas, pyarrow"`` (the reference: predict needs both anyway)
   against ``python -c "import lstmcast.forecasters.rnn.numpy_forward"``, and a whole cold forecast
   from saved weights (import, load the safetensors file, one window); medians and ratios.
   ``--with-torch`` adds ``python -c "import torch"``, the cost the numpy path avoids.
3. The command, whole cold processes against the same ``import pandas, pyarrow`` reference:
   ``lstmcast predict BTC-USD`` (a small LSTM trained once here on the bundled sample),
   ``lstmcast --help``, and ``lstmcast predict --all`` over 50 stored series (the sample imported
   under 50 symbols, a tiny model trained once per series in this set-up), plus that 50-series
   call in-process (no start-up), and the floor: a process importing only the libraries predict
   cannot do without (typer, pydantic, rich, pandas, pyarrow, safetensors). Targets (issue 14,
   quiet 2-core machine): predict <= 0.5 s and <= 2.5x the reference, --help <= 0.15 s, 50 series
   <= 2 s.
Usage: python bench/bench_predict.py [--threads N] [--cold-runs N] [--with-torch] [--no-cli] [--series 50]
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
    ap.add_argument("--no-cli", action="store_true", help="skip part 3 (the lstmcast command processes)")
    ap.add_argument("--series", type=int, default=50, help="stored series for the many-series predict")
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
    # an installed lstmcast has its bytecode cached; without the cache every cold process compiles
    # every module it imports again (~0.1 s here), which measures the shell, not the program
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    if not args.no_cli:
        bench_cli(runs=args.cold_runs, n_series=args.series, env=env)
        print(f"load average now: {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "BTC-USD_1d_coinbase.csv"
# What any `lstmcast predict` imports before a line of lstmcast runs: the CLI (typer, which builds
# pydantic TypeAdapters for the options it parses), the store (pandas, pyarrow's Parquet reader),
# the weights (safetensors) and the output (rich). The distance from this floor is ours to cut.
FLOOR = ("import typer._adapters, pydantic.plugin._loader, rich.console, rich.table, pandas, pyarrow.parquet, "
         "safetensors.numpy")
TINY = {"lookback": 20, "hidden": 8, "layers": 1, "epochs": 1, "threads": 1, "seed": 0}


def cold_argv_medians(argvs: dict[str, list[str]], *, runs: int, env: dict[str, str]) -> dict[str, float]:
    """Whole processes, interleaved; output discarded. A non-zero exit fails the benchmark."""
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for argv in argvs.values():  # warm-up, untimed: bytecode written, files in the page cache
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(runs):
        for name, argv in argvs.items():
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_cli(*, runs: int, n_series: int, env: dict[str, str]) -> None:
    from lstmcast.data.importer import import_file
    from lstmcast.data.store import SeriesKey, Store
    from lstmcast.pipelines.predict import predict_many, series_with_models
    from lstmcast.train import setup_from_options, train_series

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        store = Store(home)
        t0 = time.perf_counter()
        import_file(store, SAMPLE, symbol="BTC-USD")
        frame = store.load(store.resolve("BTC-USD", "1d")).iloc[-300:]  # 300 bars: quick tiny models
        setup = setup_from_options(TINY)
        kw = {"features": setup.features, "model": setup.model, "train": setup.train, "family": setup.family}
        train_series(store, "BTC-USD", **kw)
        for i in range(n_series - 1):
            store.upsert(SeriesKey("import", f"S{i:02d}", "1d"), frame, market="crypto")
            train_series(store, f"S{i:02d}", **kw)
        print(f"lstmcast commands: {n_series} series with a tiny LSTM each (look-back 20, hidden 8), "
              f"set up in {time.perf_counter() - t0:.0f} s; median of {runs} interleaved cold processes")
        cli = [sys.executable, "-m", "lstmcast", "--data-dir", str(home)]
        cold = cold_argv_medians({
            "import pandas, pyarrow": [sys.executable, "-c", "import pandas, pyarrow"],
            "floor (libraries predict needs)": [sys.executable, "-c", FLOOR],
            "lstmcast --help": [*cli, "--help"],
            "lstmcast predict BTC-USD": [*cli, "predict", "BTC-USD"],
            f"lstmcast predict --all ({n_series})": [*cli, "predict", "--all"],
        }, runs=runs, env=env)
        keys = series_with_models(store)
        assert len(keys) == n_series, len(keys)
        t0 = time.perf_counter()
        batch = predict_many(store, keys)
        warm = time.perf_counter() - t0
        assert not batch.failures, batch.failures[0]
    ref = cold["import pandas, pyarrow"]
    targets = {"lstmcast --help": "target <= 0.15 s", "lstmcast predict BTC-USD": "target <= 0.5 s and <= 2.5x",
               f"lstmcast predict --all ({n_series})": "target <= 2 s",
               "floor (libraries predict needs)": "(typer+pydantic, rich, pandas, pyarrow, safetensors)"}
    for name, s in cold.items():
        print(f"  {name:30} {s:7.3f} s   ratio to pandas+pyarrow {s / ref:5.2f}   {targets.get(name, '')}")
    print(f"  {'predict ' + str(n_series) + ' series in-process':30} {warm:7.3f} s   "
          f"({warm / n_series * 1e3:.1f} ms per series, no start-up)")


if __name__ == "__main__":
    main()
