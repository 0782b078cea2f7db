"""The run loop with injected steps: isolation, exit codes, promotion rule, lock, SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import pandas as pd
import pytest

from conftest import subprocess_env
from lstmcast import forecasts, runlog, runner
from lstmcast.config import parse_config
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import InterruptedRun, LockedError, TemporaryFetchError

CONFIG = """
keep_runs = 2
[[watchlist]]
symbol = "import:AAA"
[[watchlist]]
symbol = "import:BBB"
[[watchlist]]
symbol = "import:CCC"
"""


def test_should_promote():
    assert runner.should_promote(None, 1.0, min_improvement=0.1)  # no champion
    assert runner.should_promote(1.0, 0.95, min_improvement=0.0)
    assert not runner.should_promote(1.0, 1.0, min_improvement=0.0)  # a tie keeps the champion
    assert not runner.should_promote(1.0, 0.95, min_improvement=0.1)  # better, but not by 10%
    assert runner.should_promote(1.0, 0.89, min_improvement=0.1)
    assert not runner.should_promote(1.0, float("nan"), min_improvement=0.0)
    with pytest.raises(ValueError):
        runner.should_promote(1.0, 0.5, min_improvement=1.5)


class FakeSteps:
    """Records calls; entries named in ``fail`` raise at that stage."""

    def __init__(self, data_dir: Path, *, fail: dict[str, Exception] | None = None, new_bars: bool = True):
        self.data_dir, self.fail, self.new_bars = data_dir, fail or {}, new_bars
        self.calls: list[tuple[str, str]] = []

    def _do(self, stage: str, entry) -> None:
        self.calls.append((stage, entry.symbol))
        err = self.fail.get(f"{stage}:{entry.symbol}")
        if err is not None:
            raise err

    def steps(self) -> runner.Steps:
        def fetch(e):
            self._do("fetch", e)
            return runner.FetchResult(rows_added=1, last="2024-01-10")

        def needs(e):
            self._do("needs", e)
            return self.new_bars

        def train(e, settings):
            self._do("train", e)
            return f"run-{e.symbol}"

        def promote(e, run_id):
            self._do("promote", e)
            return runner.Promotion(
                promoted=runner.should_promote(1.0, 0.5, min_improvement=0.0),
                metric="mae",
                challenger=0.5,
                champion=1.0,
            )

        def forecast(e):
            self._do("forecast", e)
            t = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
            return forecasts.Forecast(
                key=SeriesKey("import", e.symbol, "1d"),
                run_id=f"run-{e.symbol}",
                origin=t[1],
                last_close=101.0,
                target_times=(t[2],),
                predicted=(103.0,),
            )

        def prune(e, keep):
            self._do("prune", e)
            return []

        return runner.Steps(fetch, needs, train, promote, forecast, prune)


def _store_prices(data_dir: Path, symbol: str) -> None:
    t = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    frame = pd.DataFrame(
        {"open": 100.0, "high": 105.0, "low": 95.0, "close": [100.0, 101.0, 102.0], "volume": 1.0},
        index=pd.DatetimeIndex(t, name="time"),
    )
    Store(data_dir).upsert(SeriesKey("import", symbol, "1d"), frame)


def test_one_failure_leaves_the_others_done(tmp_path, caplog):
    fake = FakeSteps(tmp_path, fail={"fetch:BBB": TemporaryFetchError("connection refused by 127.0.0.1:9")})
    _store_prices(tmp_path, "AAA")
    log = logging.getLogger("test.runner")
    with caplog.at_level(logging.INFO, logger="test.runner"):
        s = runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=fake.steps(), log=log)
    assert [e.ok for e in s.entries] == [True, False, True]
    assert s.entries[1].error == "fetch: connection refused by 127.0.0.1:9"
    assert s.exit_code == 3
    assert s.entries[0].promoted is True and s.entries[0].trained == "run-AAA"
    assert not any(sym == "BBB" and stage != "fetch" for stage, sym in fake.calls)
    # AAA's forecast went into its history and was scored against the stored close of 2024-01-03
    h = forecasts.load_history(tmp_path, SeriesKey("import", "AAA", "1d"))
    assert h["actual"].tolist() == [102.0] and s.entries[0].scored == 1
    assert "BBB 1d: failed at fetch" in caplog.text and "ended: 2 ok, 1 failed, exit code 3" in caplog.text


def test_exit_codes_all_ok_all_failed_and_bugs(tmp_path, caplog):
    cfg = parse_config(CONFIG)
    log = logging.getLogger("test.runner")
    assert runner.run_watchlist(tmp_path, cfg, steps=FakeSteps(tmp_path).steps(), log=log).exit_code == 0
    bug = {f"train:{s}": ZeroDivisionError("oops") for s in ("AAA", "BBB", "CCC")}
    with caplog.at_level(logging.INFO, logger="test.runner"):
        s = runner.run_watchlist(tmp_path, cfg, steps=FakeSteps(tmp_path, fail=bug).steps(), log=log)
    assert s.exit_code == 1
    assert s.entries[0].error == "train: ZeroDivisionError: oops"
    assert "Traceback" in caplog.text  # a bug keeps its traceback in the log
    assert (
        runner.run_watchlist(tmp_path, parse_config(""), steps=FakeSteps(tmp_path).steps(), log=log).exit_code
        == 0
    )


def test_no_new_bars_skips_training_unless_forced(tmp_path):
    cfg = parse_config(CONFIG)
    log = logging.getLogger("test.runner")
    fake = FakeSteps(tmp_path, new_bars=False)
    s = runner.run_watchlist(tmp_path, cfg, only=["AAA"], steps=fake.steps(), log=log)
    assert [st for st, _ in fake.calls] == ["fetch", "needs", "forecast", "prune"]
    assert s.entries[0].trained is None and s.entries[0].forecast_line == "2024-01-03: 103"
    # the outcome carries the forecast as recorded: the object latest.json holds
    latest = forecasts.latest(tmp_path, SeriesKey("import", "AAA", "1d"))
    assert s.entries[0].forecast == latest and latest["steps"][0]["predicted"] == 103
    # runs.jsonl keeps the one-line form
    assert runlog.run_record(s.to_dict())["entries"][0]["forecast"] == "2024-01-03: 103"
    fake = FakeSteps(tmp_path, new_bars=False)
    runner.run_watchlist(tmp_path, cfg, only=["AAA"], force=True, steps=fake.steps(), log=log)
    assert [st for st, _ in fake.calls] == ["fetch", "train", "promote", "forecast", "prune"]


def test_interrupt_stops_the_run_and_propagates(tmp_path):
    fake = FakeSteps(tmp_path, fail={"train:BBB": InterruptedRun("stopped by SIGTERM")})
    with pytest.raises(InterruptedRun):
        runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=fake.steps(), log=logging.getLogger("t"))
    assert ("fetch", "CCC") not in fake.calls


def test_sigterm_that_a_step_wraps_as_its_own_error_still_stops_the_run(tmp_path, caplog):
    """Vendor layers wrap whatever their call raises (yahoo's classifier, fetch_series' result): a
    SIGTERM arriving inside one must still end the run as interrupted, even in the last entry."""
    from lstmcast.errors import DataSourceError

    fake = FakeSteps(tmp_path)
    steps = fake.steps()

    def fetch(e):
        if e.symbol == "CCC":
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0)
            except Exception as err:  # what a vendor wrapper does with any exception
                raise DataSourceError(f"Yahoo Finance failed: {err}") from err
        return steps.fetch(e)

    wrapped = runner.Steps(fetch, *(getattr(steps, f) for f in runner.Steps.__dataclass_fields__ if f != "fetch"))
    log = logging.getLogger("test.runner")
    with caplog.at_level(logging.INFO, logger="test.runner"), runlog.sigterm_stops() as stop:
        with pytest.raises(InterruptedRun, match="SIGTERM"):
            runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=wrapped, log=log, stop=stop)
    assert "(interrupted), exit code 130" in caplog.text
    assert "CCC 1d: failed at fetch" not in caplog.text


def test_sigterm_between_history_and_latest_json_finishes_both(tmp_path):
    """history.parquet and latest.json are one update: a stop arriving between the two writes
    (here: while latest.json is being rendered) takes effect after both."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class SignalledForecast(forecasts.Forecast):
        def to_dict(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0)
            return super().to_dict()

    steps = FakeSteps(tmp_path).steps()

    def forecast(e):
        return SignalledForecast(**vars(steps.forecast(e)))

    wrapped = runner.Steps(
        *(forecast if f == "forecast" else getattr(steps, f) for f in runner.Steps.__dataclass_fields__)
    )
    with runlog.sigterm_stops() as stop, pytest.raises(InterruptedRun, match="SIGTERM"):
        runner.run_watchlist(
            tmp_path, parse_config(CONFIG), only=["AAA"], steps=wrapped, log=logging.getLogger("t"), stop=stop
        )
    key = SeriesKey("import", "AAA", "1d")
    assert len(forecasts.load_history(tmp_path, key)) == 1
    assert forecasts.latest(tmp_path, key) is not None  # written too, not left behind the history


def test_sigterm_is_deferred_over_a_critical_block():
    done = False
    with runlog.sigterm_stops() as stop:
        with pytest.raises(InterruptedRun, match="SIGTERM"):
            with stop.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0)  # the handler runs here, but may not raise inside the block
                done = True
    assert done
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_second_run_exits_75_while_the_lock_is_held(run_cli, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "lstmcast.toml").write_text("keep_runs = 3\n")
    with runlog.run_lock(data_dir):
        with pytest.raises(LockedError):
            with runlog.run_lock(data_dir):
                pass
        r = run_cli("run")
    assert r.returncode == 75, r.stderr
    assert "another `lstmcast run` is already running" in r.stderr and f"pid {os.getpid()}" in r.stderr
    assert "already running" in (data_dir / "logs" / "lstmcast.log").read_text()
    r = run_cli("run")  # the lock is free again
    assert r.returncode == 0, r.stderr


SCRIPT = """
import sys, time
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from lstmcast import runner
from lstmcast.cli.main import main
sys.path.insert(0, {tests!r})
from test_runner import FakeSteps

marker = Path({marker!r})

def default_steps(data_dir, config, **options):
    steps = FakeSteps(data_dir).steps()
    def fetch(entry):
        if entry.symbol == "BBB":  # block in the middle of the second entry until SIGTERM arrives
            marker.write_text("in fetch")
            for _ in range(600):
                time.sleep(0.1)
        return steps.fetch(entry)
    rest = ("needs_training", "train_challenger", "evaluate_and_promote", "forecast", "prune")
    return runner.Steps(fetch, *[getattr(steps, f) for f in rest])

runner.default_steps = default_steps
sys.argv = ["lstmcast", "--data-dir", {data_dir!r}, "run"]
main()
"""


def test_sigterm_during_a_step_exits_130_with_consistent_state(tmp_path, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "lstmcast.toml").write_text(CONFIG)
    marker = tmp_path / "marker"
    script = tmp_path / "run.py"
    script.write_text(
        SCRIPT.format(tests=str(Path(__file__).parent), marker=str(marker), data_dir=str(data_dir))
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by SIGTERM" in err
    log = (data_dir / "logs" / "lstmcast.log").read_text()
    assert "interrupted" in log and "ended: 1 ok, 0 failed (interrupted), exit code 130" in log
    # the finished entry's files are whole, nothing half-written is left, and the lock is free again
    h = forecasts.load_history(data_dir, SeriesKey("import", "AAA", "1d"))
    assert h["predicted"].tolist() == [103.0]
    assert not list((data_dir / "forecasts").rglob(".*.tmp"))
    assert not forecasts.history_path(data_dir, SeriesKey("import", "BBB", "1d")).exists()
    with runlog.run_lock(data_dir):
        pass


def test_imported_entry_missing_from_the_store_fails_with_a_hint(run_cli, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "lstmcast.toml").write_text(CONFIG)
    r = run_cli("run", "--only", "AAA,BBB", "--json")
    assert r.returncode == 1, r.stderr
    assert r.stdout.count('"ok": false') == 2
    assert "import:AAA 1d is not in the store and 'import' is not a fetchable source" in r.stdout
    assert "lstmcast import FILE --symbol AAA --source import --interval 1d" in r.stdout


def test_which_sources_are_fetched():
    assert runner.is_fetchable(None) and runner.is_fetchable("yahoo") and runner.is_fetchable("binance")
    assert not runner.is_fetchable("import") and not runner.is_fetchable("my-csv-files")


def _stages(steps: runner.Steps) -> tuple[runner.Steps, dict[str, list[str]]]:
    seen: dict[str, list[str]] = {}

    def on_stage(entry: str, stage: str, out: runner.EntryOutcome) -> None:
        assert out.entry == entry and stage in runner.STAGES
        seen.setdefault(entry, []).append(stage)

    return dataclasses_replace(steps, on_stage=on_stage), seen


def test_the_stage_hook_follows_each_entry_and_a_failure_ends_failed(tmp_path):
    fake = FakeSteps(tmp_path, fail={"promote:BBB": TemporaryFetchError("boom")}, new_bars=True)
    steps, seen = _stages(fake.steps())
    s = runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=steps, log=logging.getLogger("t"))
    full = ["waiting", "fetching", "training", "promoting", "forecasting", "done"]
    assert seen == {"import:AAA 1d": full, "import:BBB 1d": full[:4] + ["failed"], "import:CCC 1d": full}
    assert [e.ok for e in s.entries] == [True, False, True]
    # every entry is announced before the first one starts
    fake = FakeSteps(tmp_path, new_bars=False, fail={"fetch:AAA": TemporaryFetchError("down")})
    order: list[tuple[str, str]] = []
    steps = dataclasses_replace(fake.steps(), on_stage=lambda e, st, out: order.append((e.split()[0], st)))
    runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=steps, log=logging.getLogger("t"))
    assert order[:4] == [("import:AAA", "waiting"), ("import:BBB", "waiting"), ("import:CCC", "waiting"),
                         ("import:AAA", "fetching")]
    assert order[4] == ("import:AAA", "failed")
    assert [st for e, st in order if e == "import:BBB"] == ["waiting", "fetching", "forecasting", "done"]


def test_the_stage_hook_with_challengers_trained_together(tmp_path):
    """With ``train_challengers`` the driver tells the stages: each entry waits after its fetch,
    trains with the others, waits again once its own task is done, then is promoted in turn."""
    fake = FakeSteps(tmp_path)
    done_order: list[str] = []

    def train_challengers(items, *, on_done):
        out = {}
        for e, _ in reversed(items):  # tasks finish in any order
            if e.symbol == "CCC":
                out[str(e)] = TemporaryFetchError("the worker died")
            else:
                out[str(e)] = f"run-{e.symbol}"
            on_done(str(e))
            done_order.append(e.symbol)
        return out

    steps, seen = _stages(dataclasses_replace(fake.steps(), train_challengers=train_challengers))
    s = runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=steps, log=logging.getLogger("t"))
    together = ["waiting", "fetching", "waiting", "training", "waiting"]
    assert seen["import:AAA 1d"] == [*together, "promoting", "forecasting", "done"]
    assert seen["import:CCC 1d"] == [*together, "failed"]
    assert done_order == ["CCC", "BBB", "AAA"] and [e.ok for e in s.entries] == [True, True, False]


def test_a_stage_hook_that_breaks_fails_no_entry(tmp_path, caplog):
    def broken(entry, stage, out):
        raise RuntimeError("display bug")

    steps = dataclasses_replace(FakeSteps(tmp_path).steps(), on_stage=broken)
    with caplog.at_level(logging.INFO, logger="t"):
        s = runner.run_watchlist(tmp_path, parse_config(CONFIG), steps=steps, log=logging.getLogger("t"))
    assert s.exit_code == 0 and all(e.ok for e in s.entries)
    assert "the stage hook failed on import:AAA 1d (waiting)" in caplog.text and "display bug" in caplog.text
