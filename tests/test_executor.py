"""The executor: same answers on every backend, faults confined to their task, clean cancellation.

Ray tests (marked ``ray``) run against a real local runtime, one per module (start-up is slow),
and a real ``ray start --head`` on 127.0.0.1 for the join-a-cluster path.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lstmcast.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    ClusterUnreachableError,
    InterruptedRun,
    MissingExtraError,
    UsageError,
)
from lstmcast.executor import (
    LocalExecutor,
    SerialExecutor,
    Task,
    TaskFailure,
    cpu_count,
    make_executor,
    task_seed,
)

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)])}


# -- task functions (top level, so every backend can import them) -----------------------------


def seeded_task(payload: dict, shared: dict) -> dict:
    seed = task_seed(shared["seed"], payload["symbol"], payload["refit"], payload["family"])
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shared["x"].shape[1])
    return {"seed": seed, "fit": shared["x"] @ w + rng.standard_normal(shared["x"].shape[0])}


def fail_on_b(payload: str, shared: object) -> str:
    if payload == "b":
        raise ValueError("boom\non two lines")
    return payload.upper()


def kill_first_attempt(payload: str, shared: str) -> str:
    """SIGKILL this worker the first time task ``b`` runs (a marker file says it already did)."""
    marker = Path(shared) / f"{payload}.tried"
    if payload == "b" and not marker.exists():
        marker.write_text("1")
        os.kill(os.getpid(), signal.SIGKILL)
    return payload.upper()


def kill_always_b(payload: str, shared: object) -> str:
    if payload == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1)  # so the other worker is mid-task whenever b takes the pool down
    return payload.upper()


def thread_caps(payload: object, shared: object) -> tuple[str, int]:
    import torch

    return os.environ["OMP_NUM_THREADS"], torch.get_num_threads()


def empty_task(payload: object, shared: object) -> None:
    return None


def seeded_tasks() -> list[Task]:
    return [
        Task(f"{s}/{r}/lstm", {"symbol": s, "refit": r, "family": "lstm"})
        for s in ("AAPL", "BTC-USD")
        for r in range(3)
    ]


SEEDED_SHARED = {"seed": 7, "x": np.arange(24, dtype=np.float64).reshape(8, 3) / 10}


def collect(executor, fn, tasks, shared=None) -> dict:
    with executor.map(fn, tasks, shared=shared) as stream:
        return dict(stream)


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["seed"] == b[k]["seed"], k
        np.testing.assert_array_equal(a[k]["fit"], b[k]["fit"], err_msg=k)


# -- seeds and choosing a backend -------------------------------------------------------------


def test_task_seed_is_stable_across_processes_and_differs_by_part():
    assert task_seed(0, "AAPL", 3, "lstm") == 3605412624  # pinned: must not change between releases
    cmd = [sys.executable, "-c", "from lstmcast.executor import task_seed; print(task_seed(0, 'AAPL', 3, 'lstm'))"]
    out = subprocess.run(cmd, env={**ENV, "PYTHONHASHSEED": "123"}, capture_output=True, text=True, check=True)
    assert int(out.stdout) == task_seed(0, "AAPL", 3, "lstm")
    seeds = {task_seed(0, "AAPL", 3, "lstm"), task_seed(1, "AAPL", 3, "lstm"), task_seed(0, "MSFT", 3, "lstm"),
             task_seed(0, "AAPL", 4, "lstm"), task_seed(0, "AAPL", 3, "gru"), task_seed(0, "AAPL", "3", "lstm")}
    assert len(seeds) == 6
    assert all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(TypeError):
        task_seed(0, 1.5)


def test_make_executor_picks_and_validates():
    assert make_executor(n_tasks=1).name == "serial"
    assert make_executor(n_tasks=5).name == "local"
    assert make_executor(n_tasks=5, workers=1).name == "serial"
    local = make_executor("local", n_tasks=3, workers=8)
    assert local.workers == 3 and local.threads == max(1, cpu_count() // 3)
    # the same thread budget on every backend, so torch gives the same numbers
    assert make_executor("serial", n_tasks=3, workers=8).threads == local.threads
    assert make_executor("serial", n_tasks=1).threads == cpu_count()
    with pytest.raises(UsageError, match="--workers must be at least 1"):
        make_executor("local", n_tasks=2, workers=0)
    with pytest.raises(UsageError, match="--ray-address needs --executor ray"):
        make_executor("local", n_tasks=2, ray_address="auto")
    with pytest.raises(UsageError, match="unknown executor 'dask'"):
        make_executor("dask", n_tasks=2)


def test_ray_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does when it is not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'lstmcast\[ray\]'") as e:
        make_executor("ray", n_tasks=2)
    assert "\n" not in str(e.value) and e.value.exit_code == EXIT_ERROR


def test_duplicate_keys_are_refused():
    with pytest.raises(ValueError, match="'a' appears twice"):
        SerialExecutor().map(fail_on_b, [Task("a", "a"), Task("a", "a")])


# -- same answers -----------------------------------------------------------------------------


def test_local_matches_serial_and_reports_progress():
    serial = collect(SerialExecutor(), seeded_task, seeded_tasks(), SEEDED_SHARED)
    progress: list[tuple[int, int, str]] = []
    with LocalExecutor(workers=2).map(
        seeded_task, seeded_tasks(), shared=SEEDED_SHARED, on_progress=lambda *a: progress.append(a)
    ) as stream:
        local = dict(stream)
    assert_same(serial, local)
    assert [p[:2] for p in progress] == [(i, 6) for i in range(1, 7)]
    assert sorted(p[2] for p in progress) == sorted(serial)


@pytest.mark.slow  # importing torch in two spawned workers
def test_local_workers_cap_threads():
    caps = collect(LocalExecutor(workers=2), thread_caps, [Task("a"), Task("b")])
    expected = max(1, cpu_count() // 2)
    assert caps == {"a": (str(expected), expected), "b": (str(expected), expected)}


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [SerialExecutor, lambda: LocalExecutor(workers=2)], ids=["serial", "local"])
def test_a_failing_task_fails_alone(executor):
    results = collect(executor(), fail_on_b, [Task(k, k) for k in "abc"])
    assert results["a"] == "A" and results["c"] == "C"
    failure = results["b"]
    assert isinstance(failure, TaskFailure) and failure.kind == "raised"
    assert failure.error == "ValueError: boom on two lines"
    assert "Traceback" in failure.traceback and "fail_on_b" in failure.traceback


def test_a_killed_local_worker_is_replaced_and_its_task_retried(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="lstmcast.executor"):
        results = collect(LocalExecutor(workers=2), kill_first_attempt, [Task(k, k) for k in "abcdef"],
                          str(tmp_path))
    assert results == {k: k.upper() for k in "abcdef"}
    assert (tmp_path / "b.tried").exists()
    # the run log says so, even though the retry succeeded
    assert "a worker process died while running b (attempt 1 of 2); the pool is rebuilt" in caplog.text


def test_a_task_that_kills_every_worker_fails_after_one_retry():
    # a, in flight on the other worker both times b kills its own, is not blamed: it is sent again free
    results = collect(LocalExecutor(workers=2), kill_always_b, [Task(k, k) for k in "abcd"])
    assert {k: v for k, v in results.items() if k != "b"} == {"a": "A", "c": "C", "d": "D"}
    assert isinstance(results["b"], TaskFailure)
    assert results["b"].kind == "worker-lost" and results["b"].attempts == 2
    assert "died" in results["b"].error


DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from lstmcast.errors import LstmcastError
    from lstmcast.executor import Task, make_executor

    def main():
        out = sys.argv[1]
        ex = make_executor("local", n_tasks=4, workers=2)
        try:
            with ex.map(sleeper, [Task(str(i), i) for i in range(4)], shared=out) as stream:
                for _ in stream:
                    pass
        except LstmcastError as e:
            print(e, file=sys.stderr)
            sys.exit(e.exit_code)

    if __name__ == "__main__":
        from driver_tasks import sleeper
        main()
    """
)
SLEEPER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def sleeper(i, out):
        Path(out, f"{os.getpid()}.pid").write_text(str(i))
        time.sleep(120)
    """
)


def _session_members(sid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_cancellation_exits_130_and_leaves_no_processes(tmp_path, how):
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "driver_tasks.py").write_text(SLEEPER)
    out = tmp_path / "out"
    out.mkdir()
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(tmp_path)])}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(out)], env=env, start_new_session=True,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("*.pid"))) < 2:  # both workers are inside a task
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.1)
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C reaches the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines() == [err.strip()] and "tasks finished, the rest were cancelled" in err
    time.sleep(0.2)
    assert _session_members(proc.pid) == []  # no worker, no resource tracker left behind


# -- Ray ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ray
@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "auto"])
def test_a_ray_address_that_does_not_answer_fails_in_one_line(monkeypatch, address):
    port = _free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # what `auto` finds
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError, match=f"no Ray cluster answers at .*127.0.0.1:{port}") as e:
        make_executor("ray", n_tasks=2, ray_address=address.format(port=port))
    assert time.monotonic() - started < 10
    assert "\n" not in str(e.value) and e.value.exit_code == EXIT_ERROR


JOIN_DRIVER = textwrap.dedent(
    """
    import json, sys
    from test_executor import SEEDED_SHARED, collect, seeded_task, seeded_tasks

    from lstmcast.executor.ray_backend import RayExecutor

    # the cluster's workers import this checkout's lstmcast and the tests' task functions
    with RayExecutor(address=sys.argv[1], runtime_env={"env_vars": {"PYTHONPATH": sys.argv[2]}}) as ex:
        res = collect(ex, seeded_task, seeded_tasks(), SEEDED_SHARED)
    failed = [f"{k}: {v.error}" for k, v in res.items() if not isinstance(v, dict)]
    if failed:
        sys.exit("; ".join(failed))
    print(json.dumps({k: {"seed": v["seed"], "fit": v["fit"].tolist()} for k, v in res.items()}))
    """
)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_joins_a_running_cluster_and_matches_serial():
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live under it
    # Ray's token auth, with a token of our own (not ~/.ray/auth_token): an explicit address needs both set
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
         "--temp-dir", temp, "--block"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **auth},
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", JOIN_DRIVER, f"127.0.0.1:{port}", ENV["PYTHONPATH"]], env={**ENV, **auth},
            capture_output=True, text=True, timeout=120,
        ) if _wait_for_port(port, 60) else None
        assert out is not None, "ray start --head did not come up within 60 s"
        assert out.returncode == 0, out.stderr[-2000:]
        joined = {k: {"seed": v["seed"], "fit": np.array(v["fit"])} for k, v in json.loads(out.stdout).items()}
        assert_same(collect(SerialExecutor(), seeded_task, seeded_tasks(), SEEDED_SHARED), joined)
    finally:
        # `ray stop` would stop every Ray on the machine; this cluster is exactly head's session
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # its graceful stop can take half a minute
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def ray_executor():
    """One local Ray runtime for the module (start-up takes seconds): started and shut down by the executor."""
    from lstmcast.executor.ray_backend import RayExecutor

    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    before = signal.getsignal(signal.SIGTERM)
    ex = RayExecutor(workers=2)  # ray.init(num_cpus=2, include_dashboard=False)
    # Ray's own SIGTERM handler (sys.exit(15)) would bypass cancellation and outlive the executor
    assert signal.getsignal(signal.SIGTERM) is before
    try:
        yield ex
    finally:
        ex.close()
        assert not ray.is_initialized()


@pytest.mark.ray
def test_ray_matches_serial_and_local(ray_executor):
    serial = collect(SerialExecutor(), seeded_task, seeded_tasks(), SEEDED_SHARED)
    progress: list[int] = []
    with ray_executor.map(
        seeded_task, seeded_tasks(), shared=SEEDED_SHARED, on_progress=lambda done, total, key: progress.append(done)
    ) as stream:
        ray_results = dict(stream)
    assert_same(serial, ray_results)
    assert progress == list(range(1, 7))
    assert ray_executor.workers == 2


@pytest.mark.ray
def test_ray_a_failing_task_fails_alone(ray_executor):
    results = collect(ray_executor, fail_on_b, [Task(k, k) for k in "abc"])
    assert results["a"] == "A" and results["c"] == "C"
    assert isinstance(results["b"], TaskFailure) and results["b"].error == "ValueError: boom on two lines"


@pytest.mark.ray
def test_ray_retries_a_killed_worker(ray_executor, tmp_path):
    results = collect(ray_executor, kill_first_attempt, [Task(k, k) for k in "abcd"], str(tmp_path))
    assert results == {k: k.upper() for k in "abcd"}
    assert (tmp_path / "b.tried").exists()


@pytest.mark.ray
@pytest.mark.slow  # Ray restarts a worker per attempt
def test_ray_reports_a_task_that_kills_every_worker(ray_executor):
    results = collect(ray_executor, kill_always_b, [Task(k, k) for k in "abc"])
    assert results["a"] == "A" and results["c"] == "C"
    assert isinstance(results["b"], TaskFailure) and results["b"].kind == "worker-lost"


def test_interrupted_run_is_the_error_raised():
    # the type the cancellation test's driver maps to exit 130
    assert InterruptedRun("x").exit_code == EXIT_INTERRUPTED


def test_importing_the_executor_imports_neither_torch_nor_ray():
    code = (
        "import sys; from lstmcast.executor import make_executor; make_executor('local', n_tasks=2); "
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
