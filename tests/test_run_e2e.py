"""`lstmcast run` end to end with the real steps: cron's bare environment, the run lock between two
real processes, champion/challenger promotion, a failing far end, SIGTERM in the middle of training.

Models are tiny (look-back 10, 8 hidden units, 1 layer, a few epochs) and train on one thread.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLES, subprocess_env
from lstmcast import checkpoint, forecasts, runner, schedule
from lstmcast.config import parse_config
from lstmcast.data.importer import import_file
from lstmcast.data.store import SeriesKey, Store

BTC = SeriesKey("import", "BTC-USD", "1d")
TINY = """
keep_runs = 3
[defaults]
lookback = 10
hidden = 8
layers = 1
epochs = {epochs}
patience = {patience}
[promotion]
holdout = {holdout}
[log]
level = "{level}"
"""
WATCH_BTC = '[[watchlist]]\nsymbol = "import:BTC-USD"\n'


def _config(
    epochs: int = 3, *, patience: int = 5, holdout: int = 30, level: str = "INFO", watch: str = WATCH_BTC
) -> str:
    return TINY.format(epochs=epochs, patience=patience, holdout=holdout, level=level) + watch


@pytest.fixture
def btc_home(data_dir: Path) -> Path:
    """A data directory holding the bundled BTC sample, imported as import:BTC-USD."""
    import_file(Store(data_dir), SAMPLES / "BTC-USD_1d_coinbase.csv", symbol="BTC-USD")
    return data_dir


def _run(data_dir: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lstmcast", "--data-dir", str(data_dir), "run", *args],
        env=subprocess_env(OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _wait_for_log(data_dir: Path, text: str, proc: subprocess.Popen, *, timeout: float = 120) -> None:
    log = data_dir / "logs" / "lstmcast.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{text!r} never appeared in the log: {proc.communicate()}")


def test_cron_line_under_env_i_trains_and_forecasts_the_sample(tmp_path, btc_home):
    config = btc_home / "lstmcast.toml"
    config.write_text(_config())
    tab = tmp_path / "tab"
    schedule.install("0 6 * * *", config_path=config, data_dir=btc_home, tabfile=tab)
    entry, _ = schedule.show(data_dir=btc_home, tabfile=tab)
    proc = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", entry.command], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    cron_log = (btc_home / "logs" / "cron.log").read_text()
    assert proc.returncode == 0, (proc.stdout, proc.stderr, cron_log)
    log = (btc_home / "logs" / "lstmcast.log").read_text()
    assert "not fetched: 'import' is not a fetchable source; using the 1770 stored bars" in log
    assert "no champion" in log and "promoted" in log and "ended: 1 ok, 0 failed, exit code 0" in log
    latest = forecasts.latest(btc_home, BTC)
    assert latest is not None and latest["origin"].startswith("2019-10-17")
    current = checkpoint.current_run_id(btc_home, BTC)
    assert current == latest["run_id"]
    assert checkpoint.load_run(btc_home, BTC).run_id == current


def test_two_concurrent_runs_one_works_the_other_exits_75(btc_home, run_cli):
    (btc_home / "lstmcast.toml").write_text(_config())
    # Hold the model lock so the first run, once it has the run lock and has trained, waits to save:
    # the second run is then certain to meet a run in progress.
    with checkpoint.model_lock(btc_home, BTC):
        first = _run(btc_home)
        _wait_for_log(btc_home, "training a challenger", first)
        second = run_cli("run")
        assert second.returncode == 75, second.stderr
        assert "another `lstmcast run` is already running" in second.stderr
        assert first.poll() is None  # still waiting for the model lock
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    again = run_cli("run", env=subprocess_env(OMP_NUM_THREADS="1"))
    assert again.returncode == 0, again.stderr
    assert "no new complete bars since the current model's data; not retrained" in again.stderr
    history = forecasts.load_history(btc_home, BTC)
    assert len(history) == 1  # one origin, one model, one step: the re-run added no duplicate
    assert len(checkpoint.list_runs(btc_home, BTC)) == 1
    log = (btc_home / "logs" / "lstmcast.log").read_text()
    assert log.count("started: 1 entry") == 2 and "already running" in log


def _sine_series(data_dir: Path, n: int = 300) -> SeriesKey:
    t = np.arange(n)
    close = 100 + 10 * np.sin(2 * np.pi * t / 25)
    idx = pd.date_range("2022-01-01", periods=n, freq="D", tz="UTC", name="time")
    frame = pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1000.0}, index=idx
    )
    key = SeriesKey("import", "SINE", "1d")
    Store(data_dir).upsert(key, frame, market="crypto")
    return key


def test_worse_challenger_is_not_promoted_better_one_is(data_dir):
    key = _sine_series(data_dir)
    cfg = parse_config(_config(40, holdout=40, watch='[[watchlist]]\nsymbol = "import:SINE"\n'))
    (entry,) = cfg.watchlist
    steps = runner.default_steps(data_dir, cfg, train_options={"threads": 1})
    good = cfg.effective(entry).model_copy(update={"lr": 0.01})
    untrained = good.model_copy(update={"epochs": 1, "lr": 1e-7})  # one epoch that barely moves: a poor model

    first = steps.train_challenger(entry, good)
    promo = steps.evaluate_and_promote(entry, first)
    assert promo.promoted and promo.champion is None
    assert checkpoint.current_run_id(data_dir, key) == first

    worse = steps.train_challenger(entry, untrained)
    promo = steps.evaluate_and_promote(entry, worse)
    assert not promo.promoted and promo.challenger > promo.champion
    assert checkpoint.current_run_id(data_dir, key) == first
    # both were scored on the same span: the challenger's validation origins, which neither trained on
    meta = checkpoint.load_run(data_dir, key, worse).meta
    assert promo.origins == 40
    assert promo.span.endswith(meta["data"]["val_last_origin"])
    assert pd.Timestamp(promo.span.split(" .. ")[0]) >= pd.Timestamp(meta["data"]["train_end"])

    checkpoint.set_current(data_dir, key, worse)  # now the champion is the untrained model
    better = steps.train_challenger(entry, good.model_copy(update={"seed": 1}))
    promo = steps.evaluate_and_promote(entry, better)
    assert promo.promoted and promo.challenger < promo.champion
    assert checkpoint.current_run_id(data_dir, key) == better
    assert steps.prune(entry, 1) == [first]  # the newest non-current run stays; the current one is never pruned


def test_network_failure_for_one_entry_leaves_the_others_done(data_dir, caplog):
    from fake_binance import FakeBinance, btc_klines
    from fake_yahoo import FakeYahoo

    watch = '[[watchlist]]\nsymbol = "binance:BTC/USDT"\n[[watchlist]]\nsymbol = "AAPL"\n'
    cfg = parse_config(_config(watch=watch))
    log = logging.getLogger("test.run_e2e")
    with FakeBinance(klines=btc_klines()[-300:]) as fb, caplog.at_level(logging.INFO):
        yahoo = FakeYahoo(script=[500] * 50)
        fetch = {"exchange_overrides": fb.overrides, "session": yahoo, "sleep": lambda s: None}
        steps = runner.default_steps(data_dir, cfg, fetch_options=fetch, train_options={"threads": 1}, log=log)
        summary = runner.run_watchlist(data_dir, cfg, steps=steps, log=log)
    btc, aapl = summary.entries
    assert btc.ok and btc.fetched == 300 and btc.promoted and btc.forecast
    assert not aapl.ok and aapl.error.startswith("fetch: ") and aapl.fetched is None
    assert summary.exit_code == 3
    assert forecasts.latest(data_dir, SeriesKey("binance", "BTC/USDT", "1d")) is not None
    assert not Store(data_dir).exists(SeriesKey("yahoo", "AAPL", "1d"))
    assert "AAPL 1d: failed at fetch" in caplog.text


def test_sigterm_during_training_keeps_the_previous_model_current(btc_home):
    cfg = parse_config(_config())
    steps = runner.default_steps(btc_home, cfg, train_options={"threads": 1})
    (entry,) = cfg.watchlist
    champion = steps.train_challenger(entry, cfg.effective(entry))
    assert steps.evaluate_and_promote(entry, champion).promoted
    # a challenger that would train for a very long time (no early stopping), with every epoch logged
    (btc_home / "lstmcast.toml").write_text(_config(100_000, patience=0, level="DEBUG"))
    proc = _run(btc_home, "--force")
    _wait_for_log(btc_home, "epoch 2/100000", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped by SIGTERM" in err
    assert checkpoint.current_run_id(btc_home, BTC) == champion
    assert checkpoint.load_run(btc_home, BTC).run_id == champion
    assert [r.run_id for r in checkpoint.list_runs(btc_home, BTC)] == [champion]
    assert not [p for p in checkpoint.series_folder(btc_home, BTC).iterdir() if p.name.endswith(".tmp")]
    log = (btc_home / "logs" / "lstmcast.log").read_text()
    assert "ended: 0 ok, 0 failed (interrupted), exit code 130" in log


@pytest.mark.parametrize("accept", [False, True])
def test_partial_fetch_fails_the_entry_unless_the_config_accepts_it(data_dir, caplog, accept):
    """The audit's cron case: a repeated page stored 500 of the bars; the run trained and forecast."""
    from fake_binance import FakeBinance
    from lstmcast.errors import InconsistentAnswerError

    head = "accept_partial_fetch = true\n" if accept else ""
    cfg = parse_config(head + _config(watch='[[watchlist]]\nsymbol = "binance:BTC/USDT"\n'))
    (entry,) = cfg.watchlist
    log = logging.getLogger("test.run_e2e")
    with FakeBinance(script=[None, "repeat", "repeat", "repeat"]) as fb, caplog.at_level(logging.INFO):
        fetch = {"exchange_overrides": fb.overrides, "sleep": lambda s: None}
        steps = runner.default_steps(data_dir, cfg, fetch_options=fetch, log=log)
        if not accept:
            with pytest.raises(InconsistentAnswerError, match="partial fetch.*repeated a page.*500 rows stored"):
                steps.fetch(entry)
            return
        got = steps.fetch(entry)
    assert got.rows_added == 500
    assert "partial fetch accepted" in caplog.text and "500 rows stored" in caplog.text
