"""Executor cost: per-task overhead of each backend, and the speed-up on a CPU-bound proxy workload.

1. Empty tasks: start-up of each backend (pool spawn / ray.init) and the per-task overhead,
   (T(n tasks) - T(1 task)) / (n - 1), on the same machine in the same run.
2. Proxy workload: 20 tasks, each training a tiny LSTM for a fixed number of steps (torch imported
   inside the task, as a refit would), seeded by task_seed, each on the same number of torch
   threads (cores // 2: torch's numbers depend on it). local (2 workers) against serial, and
   ray (2 CPUs) against local. Targets (issue 15): local >= 1.6x faster than serial on 2 cores;
   ray's wall time <= 1.25x local's. Also checks the three give identical losses.
Usage: python bench/bench_executor.py [--tasks 20] [--steps 60] [--no-ray]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from lstmcast.executor import LocalExecutor, SerialExecutor, Task, cpu_count, task_seed  # noqa: E402


def empty(payload: object, shared: object) -> None:
    return None


def tiny_lstm(payload: dict, shared: dict) -> float:
    """Train a small LSTM on a synthetic sine for ``steps`` steps; return the last loss."""
    import torch

    torch.set_num_threads(shared["threads"])  # the executor's per-task budget: results depend on it
    torch.manual_seed(task_seed(0, payload["symbol"], payload["refit"], "lstm"))
    t = torch.linspace(0, 20, 64 * 31).reshape(64, 31, 1)
    x = torch.sin(t + payload["refit"])
    inputs, target = x[:, :30], x[:, 30]
    lstm, head = torch.nn.LSTM(1, 32, batch_first=True), torch.nn.Linear(32, 1)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-2)
    loss = torch.tensor(0.0)
    for _ in range(shared["steps"]):
        opt.zero_grad()
        out, _ = lstm(inputs)
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), target)
        loss.backward()
        opt.step()
    return float(loss.detach())


def timed_map(executor, fn, tasks, shared) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with executor.map(fn, tasks, shared=shared) as stream:
        results = dict(stream)
    wall = time.perf_counter() - t0
    failed = {k: v for k, v in results.items() if not isinstance(v, (float, type(None)))}
    if failed:
        raise SystemExit(f"tasks failed: {failed}")
    return wall, results


def overhead(name: str, executor, n: int) -> None:
    one, _ = timed_map(executor, empty, [Task("0")], None)
    many, _ = timed_map(executor, empty, [Task(str(i)) for i in range(n)], None)
    per = (many - one) / (n - 1)
    print(f"  {name:7s} 1 task {one * 1e3:8.1f} ms   {n} tasks {many * 1e3:8.1f} ms   per task {per * 1e3:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--empty", type=int, default=200)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    ray_ex = None
    if not args.no_ray:
        try:
            from lstmcast.executor_ray import RayExecutor

            t0 = time.perf_counter()
            ray_ex = RayExecutor(workers=2, cpus_per_task=1)
            print(f"ray start-up (local runtime, ray.init num_cpus=2): {time.perf_counter() - t0:.1f} s")
        except Exception as e:  # the extra is optional: the bench still measures the rest
            print(f"ray: skipped ({e})")

    print(f"cores: {cpu_count()}  (ratios are measured in this run; the machine may be shared)")
    print(f"empty tasks (per-task overhead, {args.empty} tasks):")
    local = LocalExecutor(workers=2)
    serial = SerialExecutor(threads=local.threads)
    overhead("serial", serial, args.empty)
    overhead("local", local, args.empty)  # includes spawning the pool: one pool per map
    if ray_ex:
        overhead("ray", ray_ex, args.empty)

    tasks = [Task(f"S{i % 4}/{i // 4}", {"symbol": f"S{i % 4}", "refit": i // 4}) for i in range(args.tasks)]
    shared = {"steps": args.steps, "threads": local.threads}
    print(f"proxy workload: {args.tasks} tasks x tiny LSTM ({args.steps} steps each, {local.threads} thread(s) each)")
    t_serial, r_serial = timed_map(serial, tiny_lstm, tasks, shared)
    print(f"  serial (this process):          {t_serial:6.2f} s")
    t_local, r_local = timed_map(local, tiny_lstm, tasks, shared)
    print(f"  local  (2 workers):             {t_local:6.2f} s")
    print(f"  local speed-up vs serial: {t_serial / t_local:.2f}x   (target >= 1.6x on 2 cores)")
    same = r_local == r_serial
    if ray_ex:
        t_ray, r_ray = timed_map(ray_ex, tiny_lstm, tasks, shared)
        print(f"  ray    (local runtime, 2 CPUs): {t_ray:6.2f} s")
        print(f"  ray wall / local wall: {t_ray / t_local:.2f}x   (target <= 1.25x)")
        same = same and r_ray == r_serial
        ray_ex.close()
    print(f"  identical losses across backends: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
