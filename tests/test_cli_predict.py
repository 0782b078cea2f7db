"""`lstmcast predict` and `lstmcast backtest` through the CLI: output, --json, --strict, --plot, errors."""

from __future__ import annotations

import json

import pytest
import torch

from helpers_series import random_walk_frame, sine_frame
from lstmcast.data.store import SeriesKey, Store

SMALL = ["--lookback", "10", "--hidden", "8", "--layers", "1", "--epochs", "2", "--threads", "1"]


@pytest.fixture
def trained(cli, data_dir):
    torch.set_num_threads(1)
    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(200, seed=2), market="crypto")
    r = cli("train", "RW", *SMALL, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["run_id"]


def test_predict_table_and_stale_warning(cli, trained):
    r = cli("predict", "RW")
    assert r.exit_code == 0, r.output
    assert "80% interval" in r.stdout and "95% interval" in r.stdout and trained in r.stdout
    assert "data is stale" in r.stderr  # the synthetic series ends in 2020


def test_predict_strict_exits_4_on_warnings(cli, trained):
    r = cli("predict", "RW", "--strict")
    assert r.exit_code == 4
    assert "warning: data is stale" in r.stderr


def test_predict_json(cli, trained):
    r = cli("predict", "RW", "--json", "--levels", "90")
    assert r.exit_code == 0, r.output
    [d] = json.loads(r.stdout)  # a list: one object per series
    assert d["ok"] is True and d["series"] == "import:RW"
    assert d["model"]["run_id"] == trained
    step = d["forecast"][0]
    assert set(step["intervals"]) == {"0.9"}
    assert step["intervals"]["0.9"]["lo"] < step["predicted_close"] < step["intervals"]["0.9"]["hi"]
    assert d["warnings"] and "stale" in d["warnings"][0]


def test_predict_warns_of_a_model_past_max_model_age(cli, data_dir, trained):
    import time

    r = cli("predict", "RW", "--json")
    assert not any("max_model_age" in w for w in json.loads(r.stdout)[0]["warnings"])  # no config: no limit
    (data_dir / "lstmcast.toml").write_text("[monitor]\nmax_model_age = 1   # seconds\n")
    time.sleep(2.2)  # "now" is floored to the second
    r = cli("predict", "RW", "--json")
    assert r.exit_code == 0, r.output
    ws = json.loads(r.stdout)[0]["warnings"]
    aged = [w for w in ws if "max_model_age" in w]
    assert len(aged) == 1, ws
    assert trained in aged[0] and "retrain" in aged[0]


def test_predict_without_model_says_train_first(cli, data_dir):
    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(100, seed=2), market="crypto")
    r = cli("predict", "RW")
    assert r.exit_code == 1
    assert "no current model" in r.stderr and "lstmcast train" in r.stderr
    assert "Traceback" not in r.output


def test_predict_bad_levels_is_a_usage_error(cli, trained):
    r = cli("predict", "RW", "--levels", "80,150")
    assert r.exit_code == 2
    assert "--levels" in r.stderr


def test_predict_unknown_run(cli, trained):
    r = cli("predict", "RW", "--model", "20200101T000000Z-000000")
    assert r.exit_code == 1
    assert "20200101T000000Z-000000" in r.stderr


def test_backtest_json_and_plot(cli, trained, tmp_path):
    png = tmp_path / "bt.png"
    r = cli("backtest", "RW", "--refit-every", "40", "--start", "2020-06-01", "--plot", str(png), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["plan"]["n_refits"] == 2  # 49 origins from 2020-06-01 to the 198th bar, refit every 40
    assert d["verdict"].startswith("beats naive: ")
    assert {"model", "naive", "drift", "moving_average"} <= set(d["metrics"])
    assert d["setup"]["features"]["lookback"] == 10  # taken from the current model's run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_table(cli, trained):
    r = cli("backtest", "RW", "--refit-every", "100", "--start", "2020-06-20")
    assert r.exit_code == 0, r.output
    assert "forecast accuracy" in r.stdout and "buy_and_hold" in r.stdout and "beats naive:" in r.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--window", "sideways"], 2, "window"),
        (["--start", "not-a-date"], 2, "not a date"),
        (["--start", "2030-01-01"], 1, "no backtest origins"),
    ],
)
def test_backtest_errors(cli, trained, args, code, message):
    r = cli("backtest", "RW", *args)
    assert r.exit_code == code, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output


def test_predict_and_backtest_take_a_unique_run_id_prefix(cli, trained):
    """`--model` takes a unique prefix of a run id, as `models show` does."""
    prefix = trained[:-3]
    r = cli("predict", "RW", "--model", prefix, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["model"]["run_id"] == trained
    r = cli("backtest", "RW", "--model", prefix, "--refit-every", "100", "--start", "2020-07-10", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["setup"]["features"]["lookback"] == 10


def test_backtest_of_a_value_series_has_no_strategy_table(cli, data_dir):
    Store(data_dir).upsert(SeriesKey("import", "SINE", "1d"), sine_frame(200), kind="value", market="continuous")
    r = cli("backtest", "SINE", *SMALL, "--target", "price", "--refit-every", "100", "--start", "2020-06-20")
    assert r.exit_code == 0, r.output
    assert "no trading strategy: a value series" in r.stdout and "buy_and_hold" not in r.stdout
