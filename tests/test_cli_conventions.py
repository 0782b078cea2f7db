"""Conventions a terminal user expects: global options anywhere, the per-user data directory, shell
completion, warnings kept off the screen, a status line before slow imports, a missing device failing
before any progress bar."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SAMPLES, subprocess_env
from lstmcast.cli.main import app
from lstmcast.workspace import default_data_dir, resolve_data_dir


def invoke(*args: str, env: dict[str, str] | None = None, prog_name: str = "lstmcast"):
    return CliRunner().invoke(app, list(args), env=env, prog_name=prog_name, catch_exceptions=False)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A data directory holding import:BTC-USD, given only through --data-dir (LSTMCAST_HOME points elsewhere)."""
    d = tmp_path / "store"
    monkeypatch.setenv("LSTMCAST_HOME", str(tmp_path / "elsewhere"))
    r = invoke("import", str(SAMPLES / "BTC-USD_1d_coinbase.csv"), "--symbol", "BTC-USD", "--data-dir", str(d))
    assert r.exit_code == 0, r.output
    return d


# -- global options before or after the subcommand ----------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ("--data-dir", "{d}", "data", "list", "--json"),
        ("data", "list", "--data-dir", "{d}", "--json"),
        ("data", "list", "--json", "--data-dir", "{d}"),
        ("--json", "data", "list", "--data-dir", "{d}"),
        ("--data-dir", "/nowhere", "data", "list", "--data-dir", "{d}", "--json"),  # the later one wins
    ],
)
def test_global_options_before_or_after_the_subcommand(home, argv):
    r = invoke(*(a.format(d=home) for a in argv))
    assert r.exit_code == 0, r.output
    assert [m["symbol"] for m in json.loads(r.stdout)] == ["BTC-USD"]


def test_every_command_accepts_the_global_options():
    from typer.main import get_command

    def leaves(cmd, path=()):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from leaves(sub, (*path, name))
        else:
            yield path, cmd

    found = list(leaves(get_command(app)))
    assert len(found) >= 14
    for path, cmd in found:
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--data-dir", "--verbose", "--json"} <= opts, path


def test_verbose_after_the_subcommand_keeps_the_traceback(home):
    from lstmcast.errors import DataNotFoundError

    assert "Traceback" not in invoke("data", "show", "NOPE", "--data-dir", str(home)).output
    with pytest.raises(DataNotFoundError):
        invoke("data", "show", "NOPE", "--data-dir", str(home), "--verbose")


def test_an_option_value_that_looks_like_a_global_option_stays_a_value(home, tmp_path):
    """No argv rewriting: click parses each option where it stands, so a value is never taken for
    a global option and `--` still ends the options."""
    r = invoke("data", "show", "--data-dir", str(home), "--", "--json")
    assert r.exit_code == 1 and r.stdout == ""  # "--json" was the symbol, not the flag
    assert "--json" in r.stderr
    # a file literally named like a global option is imported as the file it is
    odd = tmp_path / "--verbose"
    odd.write_bytes((SAMPLES / "AAPL_1d.csv").read_bytes())
    r = invoke("import", "--data-dir", str(home), "--symbol", "AAPL", "--json", "--", str(odd))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["series"] == "import:AAPL"


def test_bad_data_dir_after_the_subcommand_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = invoke("data", "list", "--data-dir", str(f), "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["message"] == f"data directory {f} exists and is not a directory"
    assert "Traceback" not in r.output


# -- the per-user data directory --------------------------------------------------------------------
def test_default_data_dir_is_per_user_and_env_and_flag_win(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "lstmcast"
    assert resolve_data_dir(None, env={}) == (tmp_path / "xdg" / "lstmcast").resolve()
    assert resolve_data_dir(None, env={"LSTMCAST_HOME": str(tmp_path / "h")}) == (tmp_path / "h").resolve()
    assert resolve_data_dir(tmp_path / "f", env={"LSTMCAST_HOME": str(tmp_path / "h")}) == (tmp_path / "f").resolve()


def test_data_list_from_another_directory_finds_the_per_user_store(tmp_path):
    """No LSTMCAST_HOME: import in one folder, list from another; the empty store says where it is."""
    env = subprocess_env(HOME=str(tmp_path / "user"), XDG_DATA_HOME="")
    env.pop("LSTMCAST_HOME", None)
    store = tmp_path / "user" / ".local" / "share" / "lstmcast"

    def lstmcast(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        cwd.mkdir(parents=True, exist_ok=True)
        return subprocess.run([sys.executable, "-m", "lstmcast", *args], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=120)

    r = lstmcast("data", "list", cwd=tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert f"no series stored yet in {store} (the per-user data folder" in " ".join(r.stdout.split())
    r = lstmcast("import", str(SAMPLES / "AAPL_1d.csv"), "--symbol", "AAPL", cwd=tmp_path / "a")
    assert r.returncode == 0, r.stderr
    r = lstmcast("data", "list", "--json", cwd=tmp_path / "b")
    assert [m["symbol"] for m in json.loads(r.stdout)] == ["AAPL"]
    assert not (tmp_path / "a" / "data").exists() and not (tmp_path / "b" / "data").exists()


# -- shell completion -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shell", "marker"),
    [("zsh", "#compdef lstmcast"), ("fish", "complete --command lstmcast"), ("bash", "complete -o")],
)
def test_show_completion_honours_the_shell_argument(shell, marker):
    r = invoke("--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.exit_code == 0 and marker in r.stdout and "_LSTMCAST_COMPLETE" in r.stdout


def test_show_completion_refuses_an_unknown_shell():
    r = invoke("--show-completion", "tcsh")
    assert r.exit_code == 2 and "'tcsh' is not one of: bash, zsh, fish" in r.stderr


def test_symbol_completion_lists_the_store_without_heavy_imports(home):
    (home / "series" / "yahoo" / "BTC-USD").mkdir(parents=True)  # an empty folder is not a series
    code = (
        "import sys\nfrom lstmcast.cli.main import app\ntry:\n    app(prog_name='lstmcast')\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('pandas', 'torch', 'yfinance', 'ccxt') if m in sys.modules))"
    )
    cases = (
        ("zsh", f"lstmcast predict --data-dir {home} ", r'"import\\:BTC-USD":"import"'),
        ("fish", f"lstmcast data show --data-dir {home} B", "BTC-USD\timport"),
    )
    for shell, words, expected in cases:
        env = subprocess_env(_LSTMCAST_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS=words,
                             _TYPER_COMPLETE_FISH_ACTION="get-args")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60).stdout
        assert expected in out and "yahoo" not in out, (shell, out)
        assert "HEAVY []" in out


def test_complete_symbol_marks_ambiguous_symbols(home, tmp_path):
    from lstmcast.cli.common import complete_symbol

    other = home / "series" / "yahoo" / "BTC-USD"
    other.mkdir(parents=True)
    (other / "1d.parquet").write_bytes(b"")

    class Ctx:
        meta = {"lstmcast.data_dir": str(home)}

        def find_root(self):
            return self

        params: dict = {}

    assert [c.value for c in complete_symbol(Ctx(), None, "")] == ["import:BTC-USD", "yahoo:BTC-USD"]
    assert [c.value for c in complete_symbol(Ctx(), None, "y")] == ["yahoo:BTC-USD"]


# -- what reaches the screen ------------------------------------------------------------------------
def test_third_party_warnings_go_to_the_log_not_the_screen(capsys, caplog):
    import logging

    from lstmcast.cli import common

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        common.route_warnings(verbose=False)
        with caplog.at_level(logging.INFO, logger=common.WARNINGS_LOGGER):
            warnings.warn("Pandas4Warning: something deprecated", FutureWarning, stacklevel=1)
    assert capsys.readouterr().err == ""
    assert "FutureWarning" in caplog.text and "something deprecated" in caplog.text


def test_a_status_line_before_slow_imports(tmp_path):
    """The announcer prints once, before the import, and removes itself."""
    code = (
        "import sys\nfrom lstmcast.cli import common\n"
        "common.announce_slow_imports(('mailbox', 'wave'))\n"
        "import mailbox, mailbox, wave\n"
        "print(any(type(f).__name__ == '_AnnounceSlowImports' for f in sys.meta_path))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert r.stderr == "loading mailbox...\nloading wave...\n" and r.stdout.strip() == "False"


def test_help_does_not_install_the_announcer_when_stderr_is_not_a_terminal():
    r = subprocess.run([sys.executable, "-m", "lstmcast", "train", "--help"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=60)
    assert r.returncode == 0 and "loading" not in r.stderr


def test_missing_device_fails_before_any_progress_bar(home):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = invoke("train", "BTC-USD", "--device", "cuda", "--epochs", "1", "--data-dir", str(home))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: --device cuda requested but CUDA is not available")
    assert "epoch" not in r.stderr
    assert not (home / "models").exists()
