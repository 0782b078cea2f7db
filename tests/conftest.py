"""Shared fixtures: a scratch data directory, the CLI through CliRunner or a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(autouse=True)
def _scratch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's own store (the per-user data folder is the default)."""
    monkeypatch.setenv("LSTMCAST_HOME", str(tmp_path / "home"))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "home"
    monkeypatch.setenv("LSTMCAST_HOME", str(d))
    return d


@pytest.fixture
def store(data_dir: Path):
    from lstmcast.data.store import Store

    return Store(data_dir)


@pytest.fixture
def cli(data_dir: Path):
    """Invoke the CLI in-process: cli("data", "list") -> click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from lstmcast.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input, catch_exceptions=False)

    return invoke


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


@pytest.fixture
def run_cli(data_dir: Path):
    """Run ``python -m lstmcast`` in a real subprocess against this checkout's sources."""

    def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lstmcast", "--data-dir", str(data_dir), *args],
            capture_output=True, text=True, timeout=timeout, env=env or subprocess_env(),
        )

    return run


@pytest.fixture
def btc_csv() -> Path:
    return SAMPLES / "BTC-USD_1d_coinbase.csv"


@pytest.fixture
def aapl_csv() -> Path:
    return SAMPLES / "AAPL_1d.csv"
