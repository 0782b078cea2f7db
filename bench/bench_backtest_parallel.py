"""Parallel backtest: 4 series x 5 refits (20 LSTM refit tasks) through `pipelines.backtest.backtest_many`,
`local` (2 workers) against `serial`, and `ray` (2 CPUs) against `local`, in one run on this machine.

Every executor gets the same per-task torch thread budget (cores // 2), so the numbers must be
identical; the bench checks that. Targets (issue 15): local >= 1.6x faster than serial on 2 cores;
ray's wall time <= 1.25x local's. The local pool is spawned inside the timed call (as in a CLI run);
Ray's runtime is started once before timing (a cluster outlives one backtest) and its start-up is
printed on its own. The machine may be shared: the figures are best of --repeat runs.
Usage: python bench/bench_backtest_parallel.py [--epochs 4] [--repeat 1] [--no-ray]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench_train import synthetic  # noqa: E402

from lstmcast.data.store import SeriesKey, Store  # noqa: E402
from lstmcast.evaluate.backtest import BacktestConfig  # noqa: E402
from lstmcast.executor import cpu_count, make_executor  # noqa: E402
from lstmcast.pipelines.backtest import backtest_many  # noqa: E402
from lstmcast.settings import Settings  # noqa: E402

SERIES = 4
REFITS = 5
REFIT_EVERY = 10


def numbers(multi) -> list:
    return [(s.key.spec, f, r.forecast.tolist()) for s in multi.series for f, r in s.results.items()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)  # 4 made a refit ~0.4 s: pool start-up then dominates
    ap.add_argument("--bars", type=int, default=900)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    store = Store(Path(tmp.name))
    specs = []
    for i in range(SERIES):
        frame = synthetic(args.bars)
        frame = frame * (1 + 0.01 * i)  # four different series
        store.upsert(SeriesKey("import", f"S{i}", "1d"), frame, market="crypto")
        specs.append(f"S{i}")
    settings = Settings(lookback=30, hidden=32, layers=1, epochs=args.epochs, patience=100, batch_size=64, seed=0)
    cfg = BacktestConfig(horizon=1, refit_every=REFIT_EVERY, intervals="model")
    n_origins = REFITS * REFIT_EVERY

    first_origin = synthetic(args.bars).index[args.bars - 2 - (n_origins - 1)]  # the last n_origins origins

    def run(executor):
        t0 = time.perf_counter()
        multi = backtest_many(store, specs, settings_for=lambda _s: settings, families=["lstm"], config=cfg,
                              start=first_origin.isoformat(), end=None, executor=executor)
        wall = time.perf_counter() - t0
        if multi.failures:
            raise SystemExit(f"failed: {[f.line() for f in multi.failures]}")
        assert multi.tasks == SERIES * REFITS, multi.tasks
        return wall, multi

    print(f"machine: {cpu_count()} cores available; {SERIES} series x {REFITS} refits = {SERIES * REFITS} "
          f"LSTM refit tasks ({args.bars} bars, look-back 30, hidden 32, {args.epochs} epochs each)")
    serial = min((run(lambda n: make_executor("serial", n_tasks=n, workers=2)) for _ in range(args.repeat)),
                 key=lambda x: x[0])
    local = min((run(lambda n: make_executor("local", n_tasks=n, workers=2)) for _ in range(args.repeat)),
                key=lambda x: x[0])
    same = numbers(serial[1]) == numbers(local[1])
    print(f"serial: {serial[0]:.2f}s   local (2 workers, pool start-up included): {local[0]:.2f}s")
    print(f"speed-up local/serial: {serial[0] / local[0]:.2f}x  (target >= 1.6x)   identical numbers: {same}")
    per_task = serial[0] / (SERIES * REFITS)
    print(f"per refit task (serial): {per_task:.2f}s")
    if args.no_ray:
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        print("ray: not installed (pip install 'lstmcast[ray]'); skipped")
        return
    t0 = time.perf_counter()
    ex = make_executor("ray", n_tasks=SERIES * REFITS, workers=2)
    startup = time.perf_counter() - t0
    try:
        warm = run(ex)  # the first map ships the arrays and starts the workers
        ray_runs = [run(ex) for _ in range(args.repeat)]
        best = min(ray_runs, key=lambda x: x[0])
    finally:
        ex.close()
    same_ray = numbers(best[1]) == numbers(serial[1])
    print(f"ray: start-up {startup:.2f}s (once per driver), first map {warm[0]:.2f}s, warm map {best[0]:.2f}s")
    print(f"ray/local wall time, first map: {warm[0] / local[0]:.2f}x, warm: {best[0] / local[0]:.2f}x "
          f"(target <= 1.25x)   identical numbers: {same_ray}")


if __name__ == "__main__":
    main()
