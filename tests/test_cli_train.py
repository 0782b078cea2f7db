import json

import numpy as np
import pandas as pd
import pytest
import torch

FAST = ("--lookback", "20", "--hidden", "4", "--layers", "1", "--epochs", "2", "--threads", "1")


@pytest.fixture
def btc(cli, btc_csv):
    assert cli("import", str(btc_csv), "--symbol", "BTC-USD").exit_code == 0
    return "BTC-USD"


@pytest.fixture
def sine(cli, tmp_path):
    t = np.arange(1000)
    csv = tmp_path / "sine.csv"
    pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=1000, freq="D").strftime("%Y-%m-%d"),
            "reading": np.sin(2 * np.pi * t / 50),
        }
    ).to_csv(csv, index=False)
    r = cli("import", str(csv), "--symbol", "SINE", "--value-column", "reading")
    assert r.exit_code == 0, r.output
    return "SINE"


def test_train_prints_metrics_and_saves_current_run(cli, btc):
    r = cli("train", btc, *FAST)
    assert r.exit_code == 0, r.output
    for text in (
        "MAE (close)",
        "RMSE (close)",
        "MASE",
        "directional accuracy",
        "beats naive: ",
        "current model",
    ):
        assert text in r.stdout
    runs = json.loads(cli("models", "list", "--json").stdout)
    assert len(runs) == 1 and runs[0]["current"] and runs[0]["series"] == "import:BTC-USD"
    shown = json.loads(cli("models", "show", runs[0]["run_id"], "--json").stdout)
    assert (
        shown["symbol"] == "BTC-USD" and shown["model"]["hidden"] == 4 and shown["features"]["lookback"] == 20
    )
    assert shown["data"]["close_column"] == "close" and len(shown["data"]["sha256"]) == 64
    r = cli("models", "show", runs[0]["run_id"])
    assert r.exit_code == 0 and "beats naive" in r.stdout
    r = cli("models", "list", "BTC-USD")
    assert r.exit_code == 0 and runs[0]["run_id"][:15] in r.stdout  # a unique prefix: date and time


def test_train_json_report(cli, btc):
    r = cli("train", btc, *FAST, "--horizon", "3", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["promoted"] and not rep["interrupted"] and rep["features"]["horizon"] == 3
    assert set(rep["metrics"]) == {"model", "naive", "dm"} and rep["metrics"]["naive"]["hit_rate"] == 0.0
    dm = rep["metrics"]["dm"]
    assert 0.0 <= dm["p"] <= 1.0
    # the verdict needs a lower MAE *and* a significant Diebold-Mariano test
    lower = rep["metrics"]["model"]["mae"] < rep["metrics"]["naive"]["mae"]
    assert rep["beats_naive"] == (lower and dm["p"] < 0.05) == dm["beats_naive"]


def test_unknown_symbol_suggests_fetch(cli):
    r = cli("train", "NOPE")
    assert r.exit_code == 1
    assert "no stored data for NOPE 1d" in r.stderr and "lstmcast fetch NOPE" in r.stderr


def test_too_little_history_says_bars_needed(cli, btc_csv, tmp_path):
    lines = btc_csv.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[1:52]) + "\n")  # header + 50 bars
    assert cli("import", str(short), "--symbol", "TINY").exit_code == 0
    r = cli("train", "TINY")
    assert r.exit_code == 1
    assert "too little history: 50 bars, but look-back 60 + horizon 1" in r.stderr
    assert "needs at least 70 bars" in r.stderr


def test_nan_in_stored_data_is_named(cli, btc, store):
    key = store.resolve(btc, "1d")
    frame = store.load(key)
    frame.iloc[100, frame.columns.get_loc("close")] = np.nan
    frame.to_parquet(store.data_path(key))  # damage the file behind the store's back
    r = cli("train", btc, *FAST)
    assert r.exit_code == 1
    assert f"NaN or infinite close at {frame.index[100].isoformat()} (row 100" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_device(cli, btc):
    r = cli("train", btc, *FAST, "--device", "cuda")
    assert r.exit_code == 1
    assert "--device cuda requested but CUDA is not available" in r.stderr
    assert not json.loads(cli("models", "list", "--json").stdout)


def test_bad_device_and_target_values(cli, btc):
    r = cli("train", btc, "--device", "tpu")
    assert r.exit_code == 2 and "device 'tpu' is not one of: auto, cpu, cuda, cuda:N, mps" in r.stderr
    r = cli("train", btc, "--target", "level")
    assert r.exit_code == 2 and "target 'level' is not one of: return, price" in r.stderr  # a bad flag value


def test_bad_value_in_config_file_is_a_config_error(cli, btc, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[train]\ntarget = "level"\n')
    r = cli("train", btc, "--config", str(cfg))
    assert r.exit_code == 1 and "target 'level' is not one of: return, price" in r.stderr


def test_negative_values_need_target_price(cli, sine):
    r = cli("train", sine, *FAST)
    assert r.exit_code == 1
    assert "log returns need positive values" in r.stderr and "--target price" in r.stderr


def test_sine_wave_acceptance(cli, sine):
    torch.set_num_threads(1)
    r = cli(
        "train", sine, "--target", "price", "--lookback", "10", "--hidden", "4", "--threads", "1", "--json"
    )
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["metrics"]["model"]["rmse"] < 0.02
    assert rep["beats_naive"]


def test_config_file_and_flags_override(cli, btc, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        "[train]\nlookback = 15\nhidden = 4\nlayers = 1\nepochs = 1\nthreads = 1\nbatch-size = 128\n"
    )
    r = cli("train", btc, "--config", str(cfg), "--lookback", "12", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert (
        rep["features"]["lookback"] == 12
        and rep["model"]["hidden"] == 4
        and rep["train"]["batch_size"] == 128
    )
    cfg.write_text("[train]\nhiden = 4\n")
    r = cli("train", btc, "--config", str(cfg))
    assert r.exit_code == 1 and "unknown key 'hiden'" in r.stderr


def test_models_show_reports_tampering(cli, btc, data_dir):
    assert cli("train", btc, *FAST).exit_code == 0
    run = json.loads(cli("models", "list", "--json").stdout)[0]
    w = data_dir / "models" / "import" / "BTC-USD" / "1d" / run["run_id"] / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    r = cli("models", "show", run["run_id"])
    assert r.exit_code == 1 and "tampered or truncated" in r.stderr
    r = cli("models", "show", "19990101")
    assert r.exit_code == 1 and "no run '19990101'" in r.stderr


def test_interrupted_training_is_saved_but_not_current(store, btc):
    from lstmcast import checkpoint
    from lstmcast import train as T
    from lstmcast.features import FeatureConfig
    from lstmcast.model import ModelConfig

    fc, mc = FeatureConfig(lookback=20), ModelConfig(hidden=4, layers=1)
    first = T.train_series(store, btc, features=fc, model=mc, train=T.TrainConfig(epochs=1, threads=1))

    def stop(stats):
        raise KeyboardInterrupt

    second = T.train_series(
        store, btc, features=fc, model=mc, train=T.TrainConfig(epochs=5, threads=1), progress=stop
    )
    assert second.interrupted and not second.promoted and second.run.status == "interrupted"
    assert checkpoint.current_run_id(store.root, second.key) == first.run.run_id


def test_batch_progress_within_each_epoch(store, btc):
    """A progress callback with ``on_batch`` hears every batch: (epoch, done, total), done reaching
    total in each epoch; the epoch callback still gets one EpochStats per epoch."""
    from lstmcast import train as T
    from lstmcast.features import FeatureConfig
    from lstmcast.model import ModelConfig

    epochs_seen, batches = [], []

    class Progress:
        def __call__(self, s):
            epochs_seen.append(s.epoch)

        def on_batch(self, epoch, done, total):
            batches.append((epoch, done, total))

    T.train_series(store, btc, features=FeatureConfig(lookback=20), model=ModelConfig(hidden=4, layers=1),
                   train=T.TrainConfig(epochs=2, threads=1, batch_size=256, patience=0), progress=Progress())
    assert epochs_seen == [1, 2]
    total = batches[0][2]
    assert total > 1 and batches == [(e, d, total) for e in (1, 2) for d in range(1, total + 1)]


def test_train_bar_shows_batches(cli, btc, monkeypatch):
    import io

    from rich.console import Console

    from lstmcast.cli import common

    buf = io.StringIO()
    monkeypatch.setattr(common, "err", lambda: Console(file=buf, force_terminal=True, width=120, color_system=None))
    r = cli("train", btc, *FAST)
    assert r.exit_code == 0, r.output
    last = buf.getvalue().split("\r")[-1]
    assert "epoch 2/2" in last and "train " in last and "batch " not in last  # an epoch ends the batch count
