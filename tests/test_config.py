"""lstmcast.toml: loading, errors naming key and line, defaults merged with overrides, init."""

from __future__ import annotations

import pytest

from lstmcast.config import (
    EXAMPLE_CONFIG,
    ModelDefaults,
    ModelOverrides,
    load_config,
    parse_config,
)
from lstmcast.errors import ConfigError
from lstmcast.workspace import find_config


def test_example_loads_and_merges_overrides():
    cfg = parse_config(EXAMPLE_CONFIG)
    btc = cfg.watchlist[1]
    assert (btc.source, btc.symbol, btc.interval) == ("binance", "BTC/USDT", "1d")
    eff = cfg.effective(btc)
    assert (eff.lookback, eff.epochs, eff.hidden) == (90, 40, cfg.defaults.hidden)
    assert cfg.effective(cfg.watchlist[0]) == cfg.defaults


def test_overrides_cover_every_default():
    assert set(ModelOverrides.model_fields) == set(ModelDefaults.model_fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "keep_runs = 3\n[defaults]\nlookback = 30\nepochs = -1\n",
            "x.toml:4: defaults.epochs: must be at least 1 (got -1)",
        ),
        (
            '[[watchlist]]\nsymbol = "AAPL"\n\n[[watchlist]]\nsymbol = "MSFT"\noverrides = { hidden = 0 }\n',
            "x.toml:6: watchlist[1].overrides.hidden",
        ),
        (
            '[[watchlist]]\nsymbol = "A"\n[[watchlist]]\nsymbol = "B"\n[watchlist.overrides]\nlr = 0\n',
            "x.toml:6: watchlist[1].overrides.lr",
        ),
        (
            '[[watchlist]]\nsymbol = "AAPL"\nintervl = "1d"\n',
            "x.toml:3: watchlist[0].intervl: unknown key (did you mean 'interval'?)",
        ),
        (
            '[[watchlist]]\nsymbol = "AAPL"\ninterval = "3d"\n',
            "x.toml:3: watchlist[0].interval: unknown interval '3d'",
        ),
        (
            '[[watchlist]]\nsymbol = "../etc"\n',
            "x.toml:2: watchlist[0].symbol: symbol '../etc' is not allowed",
        ),
        (
            '[[watchlist]]\nsymbol = "A"\n\n[[watchlist]]\nsymbol = "A"\n',
            "x.toml:4: watchlist[1]: entry 1 (A 1d) repeats entry 0",
        ),
        (  # a bare symbol is fetched from Yahoo: the same series twice
            '[[watchlist]]\nsymbol = "AAPL"\n[[watchlist]]\nsymbol = "yahoo:AAPL"\ninterval = "1D"\n',
            "x.toml:3: watchlist[1]: entry 1 (yahoo:AAPL 1d) repeats entry 0",
        ),
        (
            '[[watchlist]]\nsymbol = "yahoo:A"\nsource = "binance"\n',
            "symbol says source 'yahoo' but source = 'binance'",
        ),
        (
            '[promotion]\nmetric = "mape"\n',
            "x.toml:2: promotion.metric: must be one of 'mae', 'rmse' or 'mase' (got 'mape')",
        ),
        ("[defaults]\nlookback = \n", "x.toml: invalid TOML: Invalid value (at line 2, column 12)"),
    ],
)
def test_errors_name_key_and_line(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(text, where="x.toml")
    assert expected in str(e.value)


def test_find_config_order(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    with pytest.raises(ConfigError, match="no config file at .*lstmcast init"):
        find_config(None, data_dir=data, env={})
    (data / "lstmcast.toml").write_text("")
    other = tmp_path / "other.toml"
    other.write_text("")
    assert find_config(None, data_dir=data, env={}) == data / "lstmcast.toml"
    assert find_config(None, data_dir=data, env={"LSTMCAST_CONFIG": str(other)}) == other
    flag = tmp_path / "flag.toml"
    with pytest.raises(ConfigError, match="flag.toml \\(from --config\\) does not exist"):
        find_config(flag, data_dir=data, env={"LSTMCAST_CONFIG": str(other)})
    with pytest.raises(ConfigError, match="from \\$LSTMCAST_CONFIG"):
        find_config(None, data_dir=data, env={"LSTMCAST_CONFIG": str(tmp_path / "nope.toml")})


def test_only_names_unknown_symbol():
    cfg = parse_config(EXAMPLE_CONFIG)
    assert [e.symbol for e in cfg.select(["BTC/USDT"])] == ["BTC/USDT"]
    assert [e.symbol for e in cfg.select(["binance:BTC/USDT", "AAPL"])] == ["AAPL", "BTC/USDT"]
    with pytest.raises(ConfigError, match="--only MSFT is not in the watchlist"):
        cfg.select(["MSFT"])


def test_init_writes_loadable_example_and_refuses_overwrite(cli, data_dir):
    r = cli("init")
    assert r.exit_code == 0, r.output
    path = data_dir / "lstmcast.toml"
    assert load_config(path) == parse_config(EXAMPLE_CONFIG)
    path.write_text("# mine\n")
    r = cli("init")
    assert r.exit_code == 1
    assert "already exists; pass --force" in r.stderr
    assert path.read_text() == "# mine\n"
    r = cli("init", "--force", "--json")
    assert r.exit_code == 0 and '"config"' in r.stdout
    assert path.read_text() == EXAMPLE_CONFIG


def test_run_reports_config_error_with_line(cli, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "lstmcast.toml").write_text('[[watchlist]]\nsymbol = "AAPL"\nepochs = 3\n')
    r = cli("run")
    assert r.exit_code == 1
    assert "lstmcast.toml:3: watchlist[0].epochs: unknown key" in r.stderr
