"""One settings model: a test per former disagreement between the four old definitions, the
bounds of issue 10 #5, every problem listed at once, and `lstmcast config show`."""

from __future__ import annotations

import json

import pytest

from lstmcast import settings as S
from lstmcast.config import parse_config
from lstmcast.errors import ConfigError

CFG = '[[watchlist]]\nsymbol = "import:BTC-USD"\n'


def test_cuda_index_device_passes_everywhere():
    """`device = "cuda:1"` passed the config check and failed in TrainConfig at training time."""
    cfg = parse_config('[defaults]\ndevice = "cuda:1"\n' + CFG)
    assert cfg.effective(cfg.watchlist[0]).training().device == "cuda:1"
    assert S.TrainConfig(device="cuda:1").device == "cuda:1"
    assert S.build({"device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(ConfigError, match="device 'gpu' is not one of"):
        S.TrainConfig(device="gpu")


def test_patience_zero_means_no_early_stopping_everywhere():
    """patience 0 was allowed by the config and refused by TrainConfig."""
    cfg = parse_config("[defaults]\npatience = 0\n" + CFG)
    assert cfg.effective(cfg.watchlist[0]).training().patience == 0
    assert S.TrainConfig(patience=0).patience == 0


def test_lookback_minimum_is_two_everywhere():
    """The minimum look-back was 2 in the config and 1 in FeatureConfig."""
    from lstmcast.features import FeatureConfig

    for make in (lambda: FeatureConfig(lookback=1), lambda: S.build({"lookback": 1}),
                 lambda: parse_config("[defaults]\nlookback = 1\n")):
        with pytest.raises(ConfigError, match="lookback:? must be at least 2 \\(got 1\\)"):
            make()
    assert FeatureConfig(lookback=2).lookback == 2


def test_one_set_of_defaults():
    """The defaults differed: 30 vs 100 epochs, patience 5 vs 10."""
    from lstmcast.features import FeatureConfig
    from lstmcast.train import setup_from_options

    run = parse_config("").defaults
    cli = setup_from_options({})
    assert run == S.Settings() == cli.settings
    assert (run.epochs, run.patience) == (100, 10)
    assert cli.train == S.TrainConfig() and cli.model == S.ModelConfig() and cli.features == FeatureConfig()


def test_threads_is_a_setting_in_the_config_and_run_has_a_default():
    """`threads` was accepted by `train` and refused by the config."""
    from lstmcast import runner

    cfg = parse_config("[defaults]\nthreads = 2\n" + CFG)
    assert cfg.effective(cfg.watchlist[0]).threads == 2
    assert runner.train_setup(cfg.effective(cfg.watchlist[0]))[2].threads == 2
    unset = parse_config(CFG)
    assert runner.train_setup(unset.effective(unset.watchlist[0]))[2].threads == S.default_run_threads()


def test_train_and_defaults_tables_are_one_schema(tmp_path):
    """`train --config` read [train] and `run` read [defaults]: both now read either."""
    from lstmcast.train import read_config_file

    for table in ("train", "defaults"):
        p = tmp_path / f"{table}.toml"
        p.write_text(f"[{table}]\nhidden = 8\nfamily = \"gru\"\n")
        assert read_config_file(p) == {"hidden": 8, "family": "gru"}
        assert parse_config(p.read_text()).defaults.hidden == 8
    both = tmp_path / "both.toml"
    both.write_text("[train]\nhidden = 8\n[defaults]\nhidden = 9\n")
    with pytest.raises(ConfigError, match="both \\[train\\] and \\[defaults\\]"):
        read_config_file(both)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"hidden": 10_000_000}, "hidden must be at most 4096 (got 10000000)"),
        ({"layers": 10_000}, "layers must be at most 16 (got 10000)"),
        ({"lr": float("inf")}, "lr must be a finite number (got inf)"),
        ({"lr": 0.0}, "lr must be greater than 0 (got 0.0)"),
        ({"epochs": 0}, "epochs must be at least 1 (got 0)"),
        ({"val_fraction": 0.0}, "val_fraction must be greater than 0 (got 0.0)"),
        ({"batch_size": 0}, "batch_size must be at least 1 (got 0)"),
        ({"dropout": 1.0}, "dropout must be less than 1 (got 1.0)"),
        ({"patience": -1}, "patience must be at least 0 (got -1)"),
        ({"lookback": 20_000}, "lookback must be at most 10000 (got 20000)"),
        ({"family": "transformer"}, "family 'transformer' is not one of: lstm, gru, linear"),
        ({"hiden": 4}, "unknown key 'hiden' (did you mean 'hidden'?)"),
    ],
)
def test_bounds_one_message_per_bad_value(values, message):
    with pytest.raises(ConfigError) as e:
        S.build(values)
    assert message in str(e.value)


def test_config_lists_every_problem_with_line_key_and_suggestion():
    text = "[defaults]\nhiden = 4\nepochs = 0\n" + CFG + "overrides = { layers = 99, lrr = 1 }\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, where="x.toml")
    msg = str(e.value)
    assert msg.startswith("4 problems: ")
    assert "x.toml:2: defaults.hiden: unknown key (did you mean 'hidden'?)" in msg
    assert "x.toml:3: defaults.epochs: must be at least 1 (got 0)" in msg
    assert "x.toml:6: watchlist[0].overrides.layers: must be at most 16 (got 99)" in msg
    assert "x.toml:6: watchlist[0].overrides.lrr: unknown key (did you mean 'lr'?)" in msg


@pytest.mark.parametrize("flag", [("--hidden", "10000000"), ("--layers", "10000"), ("--lr", "inf"),
                                  ("--epochs", "0"), ("--val-fraction", "0")])
def test_unbounded_flags_are_usage_errors(cli, flag):
    r = cli("train", "ANY", *flag)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "must be" in r.stderr


def test_backtest_flags_use_the_same_bounds(cli):
    r = cli("backtest", "ANY", "--hidden", "10000000")
    assert r.exit_code == 2 and "hidden must be at most 4096 (got 10000000)" in r.stderr


def test_config_show_names_where_each_value_came_from(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[defaults]\nhidden = 8\n" + CFG + "family = \"gru\"\noverrides = { epochs = 3 }\n")
    r = cli("config", "show", "--config", str(cfg), "--entry", "import:BTC-USD", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["settings"]["hidden"] == 8 and d["settings"]["family"] == "gru" and d["settings"]["epochs"] == 3
    assert d["sources"]["hidden"] == f"{cfg}:2 [defaults]"
    assert d["sources"]["epochs"] == f"{cfg}:6 watchlist import:BTC-USD overrides"
    assert d["sources"]["family"] == f"{cfg}:5 watchlist import:BTC-USD overrides"
    assert d["sources"]["lr"] == "default"
    r = cli("config", "show", "--config", str(cfg))
    assert r.exit_code == 0 and f"{cfg}:2 [defaults]" in r.stdout
