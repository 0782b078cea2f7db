"""Run many independent tasks: in this process, on a local process pool, or on a Ray cluster.

One interface for every backend: ``make_executor(...).map(fn, tasks, shared=...)`` streams
``(key, result)`` pairs back as tasks finish, where ``result`` is what ``fn(payload, shared)``
returned or a ``TaskFailure``. Workers get arrays and settings and return data; they never touch
the data directory, so the driver does every write (and Ray needs no shared disk). A task's seed
comes from ``task_seed(seed, symbol, refit, family)``, never from the order tasks finish in, so
every backend gives the same numbers.

Faults: a task that raises fails alone (its ``TaskFailure`` carries the error line); a local worker
killed mid-task (SIGKILL, out of memory) breaks the pool, which is rebuilt, and the tasks that
were running are retried once (Ray: its own ``max_retries``); Ctrl-C or SIGTERM cancels what is
outstanding, terminates the workers and raises ``InterruptedRun`` (exit 130).

torch is never imported here: workers cap its threads through the environment before the task
imports it (and through ``torch.set_num_threads`` when it is already imported).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lstmcast.errors import ConfigError, InterruptedRun, LstmcastError, UsageError

Backend = Literal["serial", "local", "ray"]
BACKENDS: tuple[str, ...] = ("serial", "local", "ray")
TaskFn = Callable[[Any, Any], Any]
Progress = Callable[[int, int, str], None]  # (tasks done, tasks in all, key of the one that just finished)

# Every thread pool a numeric library may start in a worker; read once, when the library loads.
_log = logging.getLogger("lstmcast.executor")
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
)
RAY_EXTRA = "pip install 'lstmcast[ray]'"
SEED_BITS = 32  # numpy's legacy seeding and torch.manual_seed both accept any value below 2**32


# -- tasks, results, seeds --------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One unit of work: ``key`` names it in results and errors (unique per map); ``payload`` is its input."""

    key: str
    payload: Any = None


@dataclass(frozen=True)
class TaskFailure:
    """A task that did not produce a result. ``kind``: ``raised`` (the task's own exception) or
    ``worker-lost`` (its worker process died, e.g. SIGKILL or out of memory, more often than retried)."""

    key: str
    error: str  # one line: "ValueError: look-back too long"
    kind: Literal["raised", "worker-lost"] = "raised"
    traceback: str = ""  # the worker's traceback, for a log file; never for the one-line summary
    attempts: int = 1


def task_seed(seed: int, *parts: str | int | None) -> int:
    """A stable seed for one task from (seed, symbol, refit index, family, ...).

    A cryptographic hash of the parts' text, so it is the same in every process, on every machine,
    in every run (Python's ``hash()`` of a string is salted per process).
    """
    items = []
    for p in (seed, *parts):
        if p is not None and not isinstance(p, (str, int)):
            raise TypeError(f"task_seed parts must be str, int or None, not {type(p).__name__}")
        items.append(f"{type(p).__name__}:{p}")
    digest = hashlib.sha256("\x1f".join(items).encode()).digest()
    return int.from_bytes(digest[: SEED_BITS // 8], "big")


def describe_error(e: BaseException) -> str:
    """One line for a task's exception: our own errors speak for themselves, others get their type."""
    text = " ".join(str(e).split()) or "(no message)"
    return text if isinstance(e, LstmcastError) else f"{type(e).__name__}: {text}"


@dataclass(frozen=True)
class _Raised:
    error: str
    traceback: str


def _call(fn: TaskFn, payload: Any, shared: Any) -> Any:
    """Run one task; its exception comes back as data, so every backend reports it the same way."""
    try:
        return fn(payload, shared)
    except Exception as e:
        return _Raised(describe_error(e), traceback.format_exc())


def _outcome(key: str, value: Any, attempts: int) -> Any:
    if isinstance(value, _Raised):
        return TaskFailure(key, value.error, "raised", value.traceback, attempts)
    return value


def limit_threads(n: int) -> None:
    """Cap the numeric libraries' threads in this (worker) process at ``n``."""
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")  # never imported here: only capped if a task already did
    if torch is not None:
        torch.set_num_threads(n)


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def task_threads(workers: int) -> int:
    """Threads per task when ``workers`` tasks share this machine's cores: ``cores // workers``, at least 1."""
    return max(1, cpu_count() // max(1, workers))


def _check_keys(tasks: Sequence[Task]) -> None:
    seen: set[str] = set()
    for t in tasks:
        if t.key in seen:
            raise ValueError(f"task key {t.key!r} appears twice")
        seen.add(t.key)


# -- the stream every backend returns ---------------------------------------------------------


class TaskStream:
    """Results as they finish: iterate for ``(key, result_or_TaskFailure)``; ``with`` it (or ``close()``)
    so an exception in the caller's loop cancels what is outstanding and ends the workers."""

    def __init__(self, gen: Iterator[tuple[str, Any]], total: int) -> None:
        self._gen = gen
        self.total = total

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._gen

    def __next__(self) -> tuple[str, Any]:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()  # type: ignore[attr-defined]

    def __enter__(self) -> TaskStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _interruptible(done: Callable[[], int], total: int) -> Iterator[None]:
    """Turn SIGTERM (unless the caller handles it already) and Ctrl-C into ``InterruptedRun``."""

    def stop(name: str) -> InterruptedRun:
        return InterruptedRun(f"stopped by {name}: {done()} of {total} tasks finished, the rest were cancelled")

    def on_sigterm(signum: int, frame: object) -> None:
        raise stop("SIGTERM")

    installed = False
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
        installed = True
    try:
        yield
    except KeyboardInterrupt:
        raise stop("Ctrl-C") from None
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


class Executor(Protocol):
    """What every backend offers. ``fn`` must be a top-level (importable, picklable) function
    ``fn(payload, shared)``; ``shared`` is sent to each worker once (Ray: put in the object store
    once; its arrays arrive read-only there, so tasks must not modify them). ``threads`` is each
    task's thread budget, the same on every backend for the same map: pass it to torch
    (``TrainConfig.threads``), since results differ with the thread count."""

    name: str
    workers: int
    threads: int

    def map(
        self, fn: TaskFn, tasks: Sequence[Task], *, shared: Any = None, on_progress: Progress | None = None
    ) -> TaskStream: ...

    def close(self) -> None: ...


# -- serial -----------------------------------------------------------------------------------


class SerialExecutor:
    """Every task in this process, in order: for debugging, and the reference the others must match.

    ``threads`` is the thread budget the same map would get per task on the other backends; this
    backend does not apply it (it would rewrite the caller's torch settings): tasks pass it on.
    """

    name = "serial"
    workers = 1

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or cpu_count()

    def map(
        self, fn: TaskFn, tasks: Sequence[Task], *, shared: Any = None, on_progress: Progress | None = None
    ) -> TaskStream:
        _check_keys(tasks)
        return TaskStream(self._run(fn, list(tasks), shared, on_progress), len(tasks))

    @staticmethod
    def _run(fn: TaskFn, tasks: list[Task], shared: Any, on_progress: Progress | None) -> Iterator[tuple[str, Any]]:
        done = 0
        with _interruptible(lambda: done, len(tasks)):
            for t in tasks:
                result = _outcome(t.key, _call(fn, t.payload, shared), 1)
                done += 1
                if on_progress:
                    on_progress(done, len(tasks), t.key)
                yield t.key, result

    def close(self) -> None:
        pass

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- local process pool -----------------------------------------------------------------------

# This worker process's copy of the map's shared inputs: set once by the pool's initializer, so
# large arrays are pickled once per worker rather than once per task.
_worker_shared: Any = None
_worker_started: Any = None


def _init_local_worker(threads: int, shared: Any, started: Any) -> None:
    global _worker_shared, _worker_started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it ends the workers
    limit_threads(threads)
    _worker_shared, _worker_started = shared, started


def _call_local(fn: TaskFn, key: str, payload: Any) -> Any:
    _worker_started.put((key, os.getpid()))  # lets the driver tell which task a dying worker was running
    return _call(fn, payload, _worker_shared)


class LocalExecutor:
    """A ``ProcessPoolExecutor`` (spawn) of ``workers`` processes, each capped at ``cores // workers`` threads."""

    name = "local"

    def __init__(self, *, workers: int, retries: int = 1, threads: int | None = None) -> None:
        self.workers = workers
        self.retries = retries
        self.threads = threads or task_threads(workers)

    def map(
        self, fn: TaskFn, tasks: Sequence[Task], *, shared: Any = None, on_progress: Progress | None = None
    ) -> TaskStream:
        _check_keys(tasks)
        return TaskStream(self._run(fn, list(tasks), shared, on_progress), len(tasks))

    def _pool(self, shared: Any, started: Any, n_tasks: int) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks mid-use
        return ProcessPoolExecutor(
            max_workers=max(1, min(self.workers, n_tasks)), mp_context=ctx,
            initializer=_init_local_worker, initargs=(self.threads, shared, started),
        )

    def _run(
        self, fn: TaskFn, tasks: list[Task], shared: Any, on_progress: Progress | None
    ) -> Iterator[tuple[str, Any]]:
        total = len(tasks)
        pending = {t.key: t for t in tasks}
        lost: dict[str, int] = {}
        done = 0
        running: dict[str, int] = {}  # task key -> pid of the worker running it
        procs: dict[int, Any] = {}  # this pool's worker processes, by pid
        pool: ProcessPoolExecutor | None = None
        started: Any = None

        def drain() -> None:
            while not started.empty():
                key, pid = started.get()
                running[key] = pid
            procs.update(getattr(pool, "_processes", None) or {})  # no public handle before Python 3.14

        try:
            with _interruptible(lambda: done, total):
                while pending:
                    # a fresh queue per pool: a worker killed inside put() would leave the old one's lock held
                    started = multiprocessing.get_context("spawn").SimpleQueue()
                    pool = self._pool(shared, started, len(pending))
                    futures = {pool.submit(_call_local, fn, t.key, t.payload): t for t in pending.values()}
                    todo, broken = set(futures), False
                    while todo and not broken:
                        finished, todo = wait(todo, return_when=FIRST_COMPLETED)
                        drain()
                        for fut in finished:
                            key = futures[fut].key
                            try:
                                value = fut.result()
                            except BrokenProcessPool:
                                broken = True
                                continue
                            except Exception as e:  # a result or payload that cannot be pickled
                                value = _Raised(describe_error(e), "")
                            del pending[key]
                            running.pop(key, None)
                            done += 1
                            if on_progress:
                                on_progress(done, total, key)
                            yield key, _outcome(key, value, lost.get(key, 0) + 1)
                    if broken:
                        drain()
                    _shutdown(pool)
                    pool = None
                    if broken:
                        for key in sorted(_lost_with(running, procs, pending.keys())):
                            lost[key] = lost.get(key, 0) + 1
                            # the run log (lstmcast.*) shows what happened, even when the retry succeeds
                            _log.warning("a worker process died while running %s (attempt %d of %d)%s", key,
                                         lost[key], self.retries + 1,
                                         "; giving up on it" if lost[key] > self.retries else
                                         "; the pool is rebuilt and the task retried")
                            if lost[key] > self.retries:
                                del pending[key]
                                done += 1
                                if on_progress:
                                    on_progress(done, total, key)
                                yield key, TaskFailure(
                                    key, f"its worker process died (killed, or out of memory) {lost[key]} times",
                                    "worker-lost", "", lost[key],
                                )
                        running.clear()
                    procs.clear()
                    started.close()
        finally:
            if pool is not None:
                _shutdown(pool, kill=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lost_with(running: dict[str, int], procs: dict[int, Any], pending: Any) -> list[str]:
    """The tasks to charge for a broken pool: those on the worker that died of its own accord.

    When one worker dies the pool SIGTERMs the others, so a worker with another exit (SIGKILL, the
    OOM killer, a crash) is the culprit; the tasks the others were running are sent again free.
    Without a culprit to tell, every task that had started is charged.
    """
    inflight = {k: pid for k, pid in running.items() if k in pending}
    for p in procs.values():
        p.join(timeout=5)
    culprits = {pid for pid, p in procs.items() if p.exitcode not in (None, -signal.SIGTERM)}
    charged = [k for k, pid in inflight.items() if pid in culprits]
    return charged or list(inflight)


def _shutdown(pool: ProcessPoolExecutor, *, kill: bool = False) -> None:
    """Shut a pool down; with ``kill``, cancel queued tasks and terminate the workers (no orphans)."""
    if not kill:
        pool.shutdown(wait=True)
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
    pool.shutdown(wait=True)


# -- choosing a backend -----------------------------------------------------------------------


def make_executor(
    kind: str | None = None,
    *,
    n_tasks: int,
    workers: int | None = None,
    ray_address: str | None = None,
    gpus_per_task: float = 0.0,
    retries: int = 1,
) -> Executor:
    """The executor for ``--executor KIND --workers N [--ray-address ADDR]``.

    ``kind=None`` picks ``local`` when there is more than one task (and more than one worker
    allowed), else ``serial``. ``workers=None``: one per core, at most one per task. A Ray
    executor connects (or starts a local runtime) here, so a bad address fails before any work.
    """
    if kind is not None and kind not in BACKENDS:
        raise UsageError(f"unknown executor {kind!r}: choose one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if retries < 0:
        raise UsageError(f"retries must be at least 0 (got {retries})")
    if ray_address and kind != "ray":
        raise UsageError("--ray-address needs --executor ray")
    if gpus_per_task and kind != "ray":
        # local workers on one machine share its GPUs through the device option instead
        raise ConfigError("GPUs per task are a Ray setting: use --executor ray")
    if kind is None:
        kind = "local" if n_tasks > 1 and workers != 1 else "serial"
    # One thread budget per task for every backend: torch's results depend on its thread count, so
    # serial, local and ray give identical numbers only when each task runs with the same count.
    effective = max(1, min(workers or cpu_count(), max(n_tasks, 1)))
    threads = task_threads(effective)
    if kind == "serial":
        return SerialExecutor(threads=threads)
    if kind == "local":
        return LocalExecutor(workers=effective, retries=retries, threads=threads)
    from lstmcast.executor.ray_backend import RayExecutor  # imports ray itself only when one is made

    return RayExecutor(
        address=ray_address, workers=workers, cpus_per_task=threads, gpus_per_task=gpus_per_task, retries=retries
    )
