"""`lstmcast train SYM SYM ... | --all | --symbols-file`: one task per series on the executor, the
same saved weights on every backend, a failing series fails alone (exit 3), bad flags refused first."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

import json_schemas as S
from helpers_series import random_walk_frame
from lstmcast import registry
from lstmcast.data.store import SeriesKey, Store
from lstmcast.executor import task_seed

TINY = ("--lookback", "10", "--hidden", "4", "--layers", "1", "--epochs", "2", "--seed", "7")
KEYS = (SeriesKey("import", "RW", "1d"), SeriesKey("import", "RW2", "1d"))


def _two_series(home):
    store = Store(home)
    store.upsert(KEYS[0], random_walk_frame(200, seed=2), market="crypto")
    store.upsert(KEYS[1], random_walk_frame(200, seed=3), market="crypto")
    return store


@pytest.fixture
def cli_at():
    from typer.testing import CliRunner

    from lstmcast.cli.main import app

    runner = CliRunner()
    return lambda home, *args: runner.invoke(app, ["--data-dir", str(home), *args], catch_exceptions=False)


def _weights_sha(home) -> dict[str, tuple[str, int]]:
    out = {}
    for key in KEYS:
        run = registry.load_run(home, key)  # the current run
        out[key.symbol] = (hashlib.sha256((run.path / registry.WEIGHTS).read_bytes()).hexdigest(), run.meta["seed"])
    return out


@pytest.mark.slow
def test_serial_and_local_save_identical_weights(tmp_path, cli_at):
    homes = {b: tmp_path / b for b in ("serial", "local")}
    for backend, home in homes.items():
        _two_series(home)
        extra = ("--workers", "2") if backend == "local" else ()
        r = cli_at(home, "train", "RW", "RW2", *TINY, "--executor", backend, *extra, "--json")
        assert r.exit_code == 0, r.output
        rows = json.loads(r.stdout)
        assert [(x["symbol"], x["ok"], x["report"]["promoted"]) for x in rows] == [("RW", True, True),
                                                                                  ("RW2", True, True)]
    a, b = _weights_sha(homes["serial"]), _weights_sha(homes["local"])
    assert a == b
    assert a["RW"][0] != a["RW2"][0]
    for key in KEYS:  # each task's seed comes from (seed, series, interval, family), not from the order
        assert a[key.symbol][1] == task_seed(7, key.spec, "1d", "lstm")


def test_a_bad_symbol_fails_alone_with_exit_3(tmp_path, cli_at):
    home = tmp_path / "h"
    store = _two_series(home)
    store.upsert(SeriesKey("import", "SHORT", "1d"), random_walk_frame(30, seed=4), market="crypto")
    r = cli_at(home, "train", "RW", "NOPE", "SHORT", "RW2", "--model-family", "linear", "--lookback", "40",
               "--executor", "serial")
    assert r.exit_code == 3, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith("error: NOPE: no stored data for NOPE 1d")
    assert errors[1].startswith("error: SHORT: ")
    assert "import:RW " in r.stdout and "import:RW2 " in r.stdout and "trained 2 of 4 series" in r.stdout
    for key in KEYS:  # the good ones are trained, saved and current
        assert registry.load_run(home, key).meta["family"] == "linear"
    r = cli_at(home, "train", "RW", "NOPE", "--model-family", "linear", "--lookback", "40", "--json")
    assert r.exit_code == 3
    rows = json.loads(r.stdout)
    jsonschema.validate(rows, S.TRAIN_MANY)
    assert [(x["symbol"], x["ok"]) for x in rows] == [("RW", True), ("NOPE", False)]
    assert rows[1]["report"] is None and rows[1]["error"].startswith("no stored data for NOPE 1d")
    assert rows[0]["error"] is None and rows[0]["report"]["series"] == "import:RW"


@pytest.mark.parametrize(("flags", "message"), [
    (("--executor", "threads"), "unknown executor 'threads'"),
    (("--workers", "0"), "--workers must be at least 1"),
    (("--ray-address", "auto"), "--ray-address needs --executor ray"),
])
def test_bad_executor_flags_exit_2_before_anything_is_written(tmp_path, cli_at, flags, message):
    home = tmp_path / "h"
    _two_series(home)
    r = cli_at(home, "train", "RW", "RW2", "--model-family", "linear", *flags)
    assert r.exit_code == 2 and message in r.stderr
    assert not (home / "models").exists()


def test_symbol_lists_all_and_symbols_file(tmp_path, cli_at):
    home = tmp_path / "h"
    _two_series(home)
    lin = ("--model-family", "linear", "--lookback", "10")
    r = cli_at(home, "train", "RW", "import:RW", *lin)
    assert r.exit_code == 2 and "are the same series" in r.stderr and not (home / "models").exists()
    r = cli_at(home, "train", "--all", "RW", *lin)
    assert r.exit_code == 2 and "--all means every stored series" in r.stderr
    r = cli_at(home, "train", "--all", *lin, "--json")
    assert r.exit_code == 0, r.output
    assert [x["report"]["series"] for x in json.loads(r.stdout)] == ["import:RW", "import:RW2"]
    f = tmp_path / "list.txt"
    f.write_text("# watchlist\nRW2\n\nRW  # trailing comment\n")
    r = cli_at(home, "train", "--symbols-file", str(f), *lin, "--executor", "serial", "--json")
    assert r.exit_code == 0, r.output
    assert [x["symbol"] for x in json.loads(r.stdout)] == ["RW2", "RW"]


def test_one_symbol_keeps_the_single_report_unless_an_executor_is_asked(tmp_path, cli_at):
    home = tmp_path / "h"
    _two_series(home)
    lin = ("--model-family", "linear", "--lookback", "10", "--json")
    single = json.loads(cli_at(home, "train", "RW", *lin).stdout)
    assert isinstance(single, dict) and single["series"] == "import:RW"
    r = cli_at(home, "train", "RW", *lin, "--executor", "serial")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert isinstance(rows, list) and rows[0]["report"]["series"] == "import:RW"
