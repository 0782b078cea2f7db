"""`lstmcast --help` must start fast: no torch, yfinance or ccxt at import time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env

HEAVY = ("torch", "yfinance", "ccxt", "exchange_calendars")


def imported_modules(importtime_log: str) -> set[str]:
    """Module names from `python -X importtime` lines: 'import time: self | cumulative | name'."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


def test_help_imports_no_heavy_modules():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstmcast", "--help"],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Usage" in r.stdout
    modules = imported_modules(r.stderr)
    assert "lstmcast.cli.main" in modules  # the log really is this run's import log
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"--help imported {heavy[:10]}"


def test_subcommand_help_imports_no_heavy_modules():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstmcast", "import", "--help"],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--value-column" in r.stdout
    modules = imported_modules(r.stderr)
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


def test_help_exit_zero_lists_commands(run_cli):
    r = run_cli("--help")
    assert r.returncode == 0
    assert "import" in r.stdout and "data" in r.stdout
    r = run_cli("data", "--help")
    assert r.returncode == 0
    assert "list" in r.stdout and "show" in r.stdout


def test_console_script_help():
    # the script pip installed beside this interpreter (the venv's bin/), else one on PATH
    beside = Path(sys.executable).with_name("lstmcast")
    exe = str(beside) if beside.exists() else shutil.which("lstmcast")
    if exe is None:  # not installed (e.g. running from a bare checkout): python -m is covered above
        pytest.skip("lstmcast console script not on PATH")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_root_help_and_version_load_no_rich_pydantic_or_pandas(argv):
    # issue 14: `lstmcast --help` and `--version` import neither pydantic nor pandas; rich is only
    # loaded to print results, and typer's own help needs none of them
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstmcast", *argv],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )
    assert r.returncode in (0, 2), r.stderr[-2000:]  # no arguments: the help, exit 2 (click)
    modules = imported_modules(r.stderr)
    assert "lstmcast.cli.main" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in ("rich", "pydantic", "pandas", "numpy"))
    assert loaded == [], f"{argv} imported {loaded[:10]}"


def test_root_help_lists_commands_without_building_them():
    import typer.main
    from typer.testing import CliRunner

    from lstmcast.cli import main

    root = typer.main.get_command(main.app)
    r = CliRunner().invoke(main.app, ["--help"], terminal_width=100)
    assert r.exit_code == 0, r.output
    assert not root.commands._built  # listed from the registrations, nothing built
    assert list(root.commands) == ["import", "fetch", "train", "predict", "backtest", "report", "init", "run",
                                   "forecasts", "status", "data", "models", "schedule", "config"]
    for name in root.commands:  # each stand-in lists what the real command would
        stand_in = main._listing(name, root.commands.registration(name))
        real = root.commands[name]
        assert (stand_in.get_short_help_str(60), stand_in.hidden, stand_in.deprecated) == (
            real.get_short_help_str(60), real.hidden, real.deprecated), name
        assert f"  {name} " in r.output and " ".join(stand_in.get_short_help_str(60).split()[:3]) in r.output
