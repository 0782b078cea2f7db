"""Issue 17 wired up: `lstmcast run` records the run, checks each entry, notifies once (end to end
through apprise's json:// scheme to a real receiver on 127.0.0.1, and to one that is down);
`lstmcast status` at 80 columns and as JSON; `lstmcast models promote`; `model_age_warning`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES
from fake_receiver import Receiver, closed_port
from lstmcast import checkpoint, forecasts, runlog
from lstmcast.config import parse_config
from lstmcast.data.importer import import_file
from lstmcast.data.store import SeriesKey, Store
from lstmcast.errors import ConfigError
from lstmcast.monitor import MonitorSettings
from lstmcast.pipelines import live, rollback

BTC = SeriesKey("import", "BTC-USD", "1d")
SECRET = "s3cr3tT0ken42"
CONFIG = """
keep_runs = 3
[defaults]
lookback = 10
hidden = 8
layers = 1
epochs = 2
threads = 1
[promotion]
holdout = 30
[notify]
urls = ["{url}"]
[[watchlist]]
symbol = "import:BTC-USD"
"""
FAILING = '[[watchlist]]\nsymbol = "import:NOPE"\n'


@pytest.fixture
def btc_home(data_dir: Path) -> Path:
    import_file(Store(data_dir), SAMPLES / "BTC-USD_1d_coinbase.csv", symbol="BTC-USD")
    return data_dir


def _write(home: Path, url: str, extra: str = "") -> Path:
    path = home / "lstmcast.toml"
    path.write_text(CONFIG.format(url=url) + extra)
    return path


@pytest.mark.slow
def test_run_twice_sends_one_message_per_run_and_status_shows_it(btc_home, cli):
    with Receiver() as rx:
        url = f"json://127.0.0.1:{rx.port}/hook/{SECRET}"
        _write(btc_home, url)
        first = cli("run")
        assert first.exit_code == 0, first.output
        _write(btc_home, url, FAILING)  # the second run has an entry whose series is not in the store
        second = cli("run", "--json")
        assert second.exit_code == 3, second.output
    assert [r["path"] for r in rx.requests] == [f"/hook/{SECRET}"] * 2  # one message per run
    one, two = (r["body"] for r in rx.requests)
    assert one["title"].startswith("lstmcast run ") and "1 promoted" in one["title"]
    assert "[promoted] import:BTC-USD 1d: new model" in one["message"]
    assert "1 entry failed" in two["title"] and one["type"] == "success" and two["type"] == "failure"
    assert "[entry_failed] import:NOPE 1d: fetch: import:NOPE 1d is not in the store" in two["message"]
    assert "promoted" not in two["message"]  # nothing was retrained: no new bars

    out = json.loads(second.stdout)
    assert out["exit_code"] == 3 and [n["delivered"] for n in out["notifications"]] == [True]
    assert out["notifications"][0]["target"] == f"json://127.0.0.1:{rx.port}/hook/***"
    assert set(out["checks"]["import:BTC-USD 1d"]["checks"]) == {
        "data_age", "model_age", "run_age", "decay", "coverage", "drift"
    }
    log = (btc_home / "logs" / "lstmcast.log").read_text()
    assert "import:BTC-USD 1d: drift check" in log and "notification sent to json://127.0.0.1" in log
    assert SECRET not in log + first.output + second.output

    records = runlog.run_records(btc_home)
    assert [len(r["entries"]) for r in records] == [1, 2]
    assert [e["ok"] for e in records[1]["entries"]] == [True, False]
    checks = json.loads(forecasts.checks_path(btc_home, BTC).read_text())
    assert checks["run_id"] == records[1]["run_id"]
    assert checks["model_run_id"] == checkpoint.current_run_id(btc_home, BTC)
    assert checks["band"]["window"] == 20 and checks["status"]["checks"]["data_age"]["status"] == "skip"

    # status: the table at 80 columns, and JSON
    from rich.console import Console

    from lstmcast.cli import status as status_cli
    from lstmcast.config import load_config
    from lstmcast.runner import is_fetchable, series_key

    rows = live.watchlist_status(btc_home, load_config(btc_home / "lstmcast.toml"), key_of=series_key,
                                 is_fetchable=is_fetchable)
    buf = io.StringIO()
    status_cli.render(rows, Console(file=buf, width=80, color_system=None), cron=None)
    text = buf.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80, text
    assert "FAILED" in text and "lstm 0d" in text and "import:NOPE 1d: last run failed: fetch:" in text
    res = cli("status", "--json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)
    btc, nope = st["entries"]
    assert btc["last_run"]["ok"] and btc["model"]["family"] == "lstm" and btc["live"]["band_high"] is not None
    assert btc["checks"]["drift"]["status"] in ("ok", "flag")  # from the run's checks.json
    assert nope["last_run"]["ok"] is False and nope["model"] is None and nope["data_last"] is None
    assert st["schedule"] is None


def test_receiver_down_is_logged_and_the_run_still_succeeds(btc_home, cli):
    # no training needed: the only entry fails, which is an event to send
    (btc_home / "lstmcast.toml").write_text(
        CONFIG.format(url=f"json://127.0.0.1:{closed_port()}/hook/{SECRET}").split("[[watchlist]]")[0] + FAILING
    )
    res = cli("run")
    assert res.exit_code == 1, res.output  # its only entry failed; the notification changes nothing
    log = (btc_home / "logs" / "lstmcast.log").read_text()
    assert "notification to json://127.0.0.1:" in log and "/hook/*** not delivered" in log
    assert SECRET not in log + res.output
    assert runlog.run_records(btc_home)[-1]["exit_code"] == 1


def test_notify_url_never_appears_in_config_errors():
    with pytest.raises(ConfigError) as e:
        parse_config(f'keep_runs = 3\n[notify]\nurls = ["127.0.0.1/hook/{SECRET}"]\n', where="f.toml")
    assert str(e.value).startswith("f.toml:2: notify: url *** is not an apprise URL") and SECRET not in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config(f'[notify]\nenabled = "json://h/{SECRET}"\n', where="f.toml")
    assert str(e.value) == "f.toml:2: notify.enabled: must be true or false"
    with pytest.raises(ConfigError, match=r"f.toml:2: monitor.max_model_age: '3x' is not a duration"):
        parse_config('[monitor]\nmax_model_age = "3x"\n', where="f.toml")
    cfg = parse_config('[monitor]\nmax_model_age = "30d"\nwindow = 10\n')
    assert cfg.monitor.max_model_age == dt.timedelta(days=30) and cfg.monitor.window == 10


def test_init_example_documents_notify_and_monitor(data_dir, cli):
    assert cli("init").exit_code == 0
    text = (data_dir / "lstmcast.toml").read_text()
    assert "# [notify]" in text and "# [monitor]" in text and "# max_model_age" in text
    uncommented = text.replace("# [notify]", "[notify]").replace('# urls = ["json', 'urls = ["json')
    assert parse_config(uncommented).notify.all_targets()[0].masked == "json://127.0.0.1:8080/hook"


def test_model_age_warning():
    now = "2026-12-02T00:00:00Z"
    meta = {"run_id": "r1", "created": "2026-10-01T00:00:00Z"}
    s = MonitorSettings(max_model_age="30d")
    assert live.model_age_warning(meta, s, now) == "model r1 is 62.0 days old, over max_model_age 30.0 days; retrain it"
    assert live.model_age_warning({**meta, "created": "2026-11-20T00:00:00Z"}, s, now) is None
    assert live.model_age_warning(meta, MonitorSettings(), now) is None  # no limit set
    assert live.model_age_warning(None, s, now) is None


def test_last_runs_finds_the_newest_and_the_newest_successful():
    recs = [
        {"run_id": "a", "finished": "t1", "entries": [{"entry": "X 1d", "ok": True}]},
        {"run_id": "b", "finished": "t2", "entries": [{"entry": "X 1d", "ok": False, "error": "fetch: down"}]},
        {"run_id": "c", "finished": "t3", "entries": [{"entry": "Y 1d", "ok": True}]},
    ]
    last, ok = live.last_runs(recs, "X 1d")
    assert last == {"run_id": "b", "finished": "t2", "ok": False, "error": "fetch: down"} and ok == "t1"
    assert live.last_runs(recs, "Z 1d") == (None, None)


def test_run_records_are_appended_and_a_torn_line_is_skipped(tmp_path):
    runlog.append_run_record(tmp_path, {"run_id": "a", "entries": []})
    with open(tmp_path / "logs" / "runs.jsonl", "a") as f:
        f.write('{"run_id": "b", "entr')  # a crash mid-line
    runlog.append_run_record(tmp_path, {"run_id": "c", "entries": []})
    assert [r["run_id"] for r in runlog.run_records(tmp_path)] == ["a"]  # "c" shares the torn line
    runlog.append_run_record(tmp_path, {"run_id": "d", "entries": []})
    assert [r["run_id"] for r in runlog.run_records(tmp_path)] == ["a", "d"]


# -- models promote -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    from helpers_series import random_walk_frame
    from lstmcast import features as F
    from lstmcast import train as T
    from lstmcast.model import ModelConfig

    fc = F.FeatureConfig(lookback=8, horizon=1)
    prepared = F.prepare(random_walk_frame(120), kind="price", features=fc)
    return T.fit(prepared, features=fc, model=ModelConfig(hidden=4, layers=1),
                 train=T.TrainConfig(epochs=1, threads=1, device="cpu"))


def _save(home: Path, fitted, **kw):
    metrics = {"model": {"mae": 1.0, "mase": 0.9}, "naive": {"mae": 1.1, "mase": 1.0}}
    info = {"kind": "price", "market": "crypto", "sha256": "ab" * 32}
    return checkpoint.save_run(home, BTC, fitted, metrics=metrics, data_info=info, **kw)


def test_models_promote_makes_an_earlier_run_current_and_refuses_an_interrupted_one(data_dir, cli, fitted):
    old = _save(data_dir, fitted, promote=True)
    new = _save(data_dir, fitted, promote=True)
    cut = _save(data_dir, dataclasses.replace(fitted, interrupted=True))
    assert checkpoint.current_run_id(data_dir, BTC) == new.run_id

    res = cli("models", "promote", old.run_id)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"run {old.run_id} is now the current model of import:BTC-USD 1d (was {new.run_id})"
    assert checkpoint.current_run_id(data_dir, BTC) == old.run_id
    log = (data_dir / "logs" / "lstmcast.log").read_text()
    assert f"models promote: run {old.run_id} of import:BTC-USD 1d is current (was {new.run_id})" in log

    again = cli("models", "promote", old.run_id[:20], "--json")  # a unique prefix; nothing changes
    assert json.loads(again.stdout) == {"run_id": old.run_id, "series": "import:BTC-USD", "interval": "1d",
                                        "previous": old.run_id, "changed": False}

    bad = cli("models", "promote", cut.run_id)
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        f"error: run {cut.run_id} of import:BTC-USD 1d is interrupted; only a complete run can be made current"
    ]
    assert checkpoint.current_run_id(data_dir, BTC) == old.run_id
    assert cli("models", "promote", "20990101T").exit_code == 1


def test_status_with_an_empty_watchlist_and_a_cron_entry(data_dir, cli, tmp_path):
    from lstmcast import schedule

    data_dir.mkdir(parents=True)
    (data_dir / "lstmcast.toml").write_text("keep_runs = 2\n")
    tab = tmp_path / "tab"
    schedule.install("0 6 * * *", config_path=data_dir / "lstmcast.toml", data_dir=data_dir, tabfile=tab)
    res = cli("status", "--tabfile", str(tab), "--json")
    st = json.loads(res.stdout)
    assert st["entries"] == [] and st["schedule"]["cron"] == "0 6 * * *"
    assert st["schedule"]["next_run"].endswith(":00+00:00")
    assert "watchlist is empty" in cli("status").stdout


def test_checks_flag_a_series_whose_forecasts_went_bad(tmp_path):
    """The decay check from stored history: live errors five times the naive ones over 20 forecasts."""
    import pandas as pd

    key = SeriesKey("import", "SINE", "1d")
    n = 25
    idx = pd.date_range("2026-01-01", periods=n, freq="D", tz="UTC")
    close = 100 + np.arange(n, dtype=float)
    Store(tmp_path).upsert(key, pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                                              "volume": 1.0}, index=idx.rename("time")), market="crypto")
    for i in range(n - 1):
        fc = forecasts.Forecast(key=key, run_id="20260101T000000000Z-aaaaaa", origin=idx[i], last_close=close[i],
                                target_times=(idx[i + 1],), predicted=(close[i] - 5.0,))
        forecasts.record(tmp_path, fc, frame=Store(tmp_path).load(key))
    res = live.entry_checks(tmp_path, "import:SINE 1d", key, settings=MonitorSettings(),
                            now=idx[-1] + pd.Timedelta(days=1), fetchable=False)
    decay = res.status.check("decay")
    assert decay.flagged and "worse than naive (one-sided DM" in decay.reason
    assert res.status.check("data_age").status == "skip"


def test_run_checks_flag_drift_from_the_models_own_training_rows(tmp_path):
    """A ridge model trained on calm bars; then 60 bars ten times as volatile are stored: the checks
    ``run`` makes (current model loaded, its training rows) flag drift in the return-based features."""
    import pandas as pd

    from lstmcast.settings import Settings
    from lstmcast.train import train_series

    rng = np.random.default_rng(3)
    key = SeriesKey("import", "CALM", "1d")
    store = Store(tmp_path)

    def bars(rets: np.ndarray, start: str, p0: float) -> pd.DataFrame:
        close = p0 * np.exp(np.cumsum(rets))
        idx = pd.date_range(start, periods=len(rets), freq="D", tz="UTC", name="time")
        return pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                             "volume": 1000.0}, index=idx)

    calm = bars(rng.normal(0, 0.005, 400), "2025-01-01", 100.0)
    store.upsert(key, calm, market="crypto")
    s = Settings(family="linear", lookback=10, val_fraction=0.2)
    train_series(store, key.spec, interval="1d", settings=s)
    meta = checkpoint.load_run(tmp_path, key).meta
    rows = meta["rows"]
    assert 0 <= rows["start"] < rows["train_end"] <= 400

    now = calm.index[-1] + pd.Timedelta(days=2)
    same = live.entry_checks(tmp_path, "import:CALM 1d", key, settings=MonitorSettings(), now=now)
    assert same.status.check("drift").status == "ok" and same.band is not None  # its validation part gives a band

    wild = bars(rng.normal(0, 0.05, 60), str((calm.index[-1] + pd.Timedelta(days=1)).date()), calm["close"].iloc[-1])
    store.upsert(key, wild, market="crypto")
    res = live.entry_checks(tmp_path, "import:CALM 1d", key, settings=MonitorSettings(),
                            now=wild.index[-1] + pd.Timedelta(days=2))
    drift = res.status.check("drift")
    assert drift.flagged and "log_return" in drift.values["drifted"], drift.reason
    assert res.status.check("data_age").status == "ok"  # fetchable by default: 0 bars behind


@pytest.mark.parametrize(("first", "second", "rolled_back"), [("linear", "naive", True), ("naive", "linear", False)])
def test_rollback_rule_restores_the_predecessor_only_when_the_new_model_is_worse(tmp_path, first, second,
                                                                                 rolled_back):
    import pandas as pd

    from lstmcast.settings import Settings
    from lstmcast.train import train_series

    key = SeriesKey("import", "SINE", "1d")
    store = Store(tmp_path)
    n = 300
    close = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 25)
    idx = pd.date_range("2022-01-01", periods=n, freq="D", tz="UTC", name="time")
    store.upsert(key, pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                                    "volume": 1000.0}, index=idx), market="crypto")
    frame = store.load(key)

    def model(family: str):
        run = train_series(store, key.spec, interval="1d", settings=Settings(family=family, lookback=10)).run
        return checkpoint.load_run(tmp_path, key, run.run_id)

    def forecast(m, origins, made_at):
        from lstmcast.features import prepare

        prepared = prepare(frame, kind="price", features=m.features)
        pred = m.predict_close(prepared, origins)[:, 0]
        for o, p in zip(origins, pred, strict=True):
            fc = forecasts.Forecast(key=key, run_id=m.run_id, origin=idx[o], last_close=close[o],
                                    target_times=(idx[o + 1],), predicted=(float(p),), made_at=made_at)
            forecasts.record(tmp_path, fc, frame=frame)

    prev = model(first)
    forecast(prev, np.arange(n - 20, n - 12), pd.Timestamp("2026-01-01", tz="UTC"))
    cur = model(second)
    forecast(cur, np.arange(n - 12, n - 1), pd.Timestamp("2026-02-01", tz="UTC"))
    promoted = [{"run_id": "r", "entries": [{"entry": "import:SINE 1d", "ok": True, "promoted": True,
                                             "trained": cur.run_id}]}]

    off = rollback.rollback_check(tmp_path, "import:SINE 1d", key, settings=MonitorSettings(), records=promoted)
    assert off is None  # off by default
    by_hand = rollback.rollback_check(tmp_path, "import:SINE 1d", key, settings=MonitorSettings(rollback_after=10),
                                  records=[])  # made current by `models promote`: never rolled back
    assert by_hand is None
    rb = rollback.rollback_check(tmp_path, "import:SINE 1d", key, settings=MonitorSettings(rollback_after=10),
                             records=promoted)
    assert rb is not None and rb.predecessor == prev.run_id and rb.origins == 10
    assert rb.rolled_back is rolled_back, rb.reason
    assert checkpoint.current_run_id(tmp_path, key) == (prev.run_id if rolled_back else cur.run_id)
    assert rb.reason.startswith(f"rolled back to {prev.run_id}: " if rolled_back else "kept: ")
    too_soon = rollback.rollback_check(tmp_path, "import:SINE 1d", key, settings=MonitorSettings(rollback_after=12),
                                   records=promoted)
    assert too_soon is None  # 11 scored forecasts: the rule waits for 12


def test_model_age_warnings_for_predict_read_the_config(data_dir, fitted, monkeypatch):
    import pandas as pd

    monkeypatch.delenv("LSTMCAST_CONFIG", raising=False)
    run = _save(data_dir, fitted, promote=True)
    later = pd.Timestamp(run.created) + pd.Timedelta(days=3)
    assert live.model_age_warnings(data_dir, run.run_id, now=later) == []  # no config file
    (data_dir / "lstmcast.toml").write_text('[monitor]\nmax_model_age = "2d"\n')
    (w,) = live.model_age_warnings(data_dir, run.run_id, now=later)
    assert w == f"model {run.run_id} is 3.0 days old, over max_model_age 2.0 days; retrain it"
    assert live.model_age_warnings(data_dir, run.run_id, now=later - pd.Timedelta(days=2)) == []
