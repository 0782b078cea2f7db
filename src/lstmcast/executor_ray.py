"""The Ray backend of ``lstmcast.executor`` (the optional extra ``lstmcast[ray]``).

No address starts a local Ray runtime (shut down again by ``close``); ``auto``, ``host:port`` or
``ray://host:port`` joins a running cluster, after a short TCP probe, because ``ray.init`` waits
a minute or more on an address where nothing answers. Shared inputs go to the object store once
(``ray.put``); each task declares ``num_cpus`` (and ``num_gpus`` when asked) and is retried by
Ray itself (``max_retries``) when its worker dies.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lstmcast.errors import ClusterUnreachableError, MissingExtraError
from lstmcast.executor import (
    RAY_EXTRA,
    Progress,
    Task,
    TaskFailure,
    TaskFn,
    TaskStream,
    _call,
    _check_keys,
    _interruptible,
    _outcome,
    limit_threads,
)

PROBE_TIMEOUT_S = 5.0
DEFAULT_CLIENT_PORT = 10001
# Where `ray start` records the address `--address auto` means (Ray's own convention).
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its error text
WAIT_TICK_S = 0.5  # ray.wait returns this often, so Ctrl-C and SIGTERM are acted on promptly


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"--executor ray needs Ray: {RAY_EXTRA}") from None
    return ray


def resolve_address(address: str) -> str:
    """``auto`` -> the address of the cluster ``ray start`` left on this machine (or ``$RAY_ADDRESS``)."""
    if address != "auto":
        return address
    found = os.environ.get("RAY_ADDRESS", "").strip()
    if not found and CURRENT_CLUSTER_FILE.is_file():
        found = CURRENT_CLUSTER_FILE.read_text().strip()
    if not found or found == "auto":
        raise ClusterUnreachableError(
            "--ray-address auto: no running Ray cluster on this machine (start one with `ray start --head`)"
        )
    return found


def probe(address: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail with one line unless something accepts a TCP connection at ``address`` within ``timeout``."""
    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://")
    host, _, port_text = hostport.rpartition(":")
    if not host:
        host, port_text = hostport, str(DEFAULT_CLIENT_PORT if client else 6379)
    try:
        port = int(port_text)
    except ValueError:
        raise ClusterUnreachableError(f"Ray address {address!r} is not host:port or ray://host:port") from None
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ClusterUnreachableError(f"no Ray cluster answers at {address} ({reason})") from None


class RayExecutor:
    """Tasks as Ray tasks, on a local runtime or a cluster this joins.

    Every node of a joined cluster needs lstmcast (same version) and its dependencies installed:
    task functions travel by reference (module and name), not by value.
    """

    name = "ray"

    def __init__(
        self, *, address: str | None = None, workers: int | None = None, cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0, retries: int = 1, probe_timeout: float = PROBE_TIMEOUT_S,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        self.cpus_per_task, self.gpus_per_task, self.retries = cpus_per_task, gpus_per_task, retries
        self.threads = max(1, int(cpus_per_task))
        self.address = address
        self._owned = False
        if ray.is_initialized():
            pass  # the caller (a notebook, a test) already runs one: use it, leave it running
        else:
            if address is not None:
                probe(resolve_address(address), timeout=probe_timeout)
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if address is None:
                options["num_cpus"] = workers  # None: every core
            runtime_env = dict(runtime_env or {})
            if address is None:
                # Ray's workers do not inherit this process's sys.path (spawned pool workers do): give a
                # local runtime's workers the same import path, so they import the same lstmcast and task
                # functions. A joined cluster's nodes import from their own environment (or runtime_env).
                env_vars = dict(runtime_env.get("env_vars", {}))
                path = [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
                env_vars.setdefault("PYTHONPATH", os.pathsep.join(path))
                runtime_env["env_vars"] = env_vars
            if runtime_env:
                options["runtime_env"] = runtime_env
            # ray.init replaces the process's SIGTERM handler with sys.exit(15) and never puts it back:
            # keep ours, so SIGTERM still cancels the tasks and exits 130 (and nothing leaks past close)
            main = threading.current_thread() is threading.main_thread()
            previous = signal.getsignal(signal.SIGTERM) if main else None
            try:
                # "auto" goes to Ray as is: only a cluster it finds itself gets this machine's auth token
                ray.init(address=address, **options)
            except ConnectionError as e:
                raise ClusterUnreachableError(
                    f"cannot join the Ray cluster at {address}: {' '.join(str(e).split())} (a cluster with token "
                    "authentication and an explicit address needs RAY_AUTH_MODE=token and its token)"
                ) from None
            finally:
                if main and previous is not None:
                    signal.signal(signal.SIGTERM, previous)
            self._owned = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_task, 1e-9)))
        self._remote = ray.remote(_ray_call)

    def map(
        self, fn: TaskFn, tasks: Sequence[Task], *, shared: Any = None, on_progress: Progress | None = None
    ) -> TaskStream:
        _check_keys(tasks)
        return TaskStream(self._run(fn, list(tasks), shared, on_progress), len(tasks))

    def _run(
        self, fn: TaskFn, tasks: list[Task], shared: Any, on_progress: Progress | None
    ) -> Iterator[tuple[str, Any]]:
        ray = self._ray
        total, done = len(tasks), 0
        threads = self.threads
        submit = self._remote.options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task or None,
            max_retries=self.retries, retry_exceptions=False,
        )
        pending: dict[Any, Task] = {}
        try:
            with _interruptible(lambda: done, total):
                shared_ref = ray.put(shared)  # once: every task reads the same copy in the object store
                pending = {submit.remote(fn, t.payload, shared_ref, threads): t for t in tasks}
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_TICK_S)
                    if ready:  # collect everything else that is already finished too
                        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                    for ref in ready:
                        t = pending.pop(ref)
                        result = self._result(ref, t.key)
                        done += 1
                        if on_progress:
                            on_progress(done, total, t.key)
                        yield t.key, result
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished, or the runtime is going away: nothing left to stop
                    pass

    def _result(self, ref: Any, key: str) -> Any:
        ray = self._ray
        try:
            return _outcome(key, ray.get(ref), 1)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError, ray.exceptions.NodeDiedError):
            return TaskFailure(
                key, f"its Ray worker died (killed, or out of memory) {self.retries + 1} times", "worker-lost",
                "", self.retries + 1,
            )
        except ray.exceptions.RayError as e:  # e.g. an argument that cannot be unpickled on the worker
            text = _ANSI.sub("", str(e))
            return TaskFailure(key, f"{type(e).__name__}: {' '.join(text.split())[:300]}", "raised", text)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
            self._owned = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ray_call(fn: TaskFn, payload: Any, shared: Any, threads: int) -> Any:
    limit_threads(threads)
    return _call(fn, payload, shared)

