"""`lstmcast run`'s live per-entry display: on a terminal only; cron, pipes and --json keep the
plain log lines (the log file keeps every line either way)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from conftest import subprocess_env
from lstmcast.cli.run_display import RunDisplay, result
from lstmcast.runner import EntryOutcome

RUN = """
[defaults]
lookback = 10
hidden = 4
layers = 1
epochs = 1
[promotion]
holdout = 30
[[watchlist]]
symbol = "import:BTC-USD"
[[watchlist]]
symbol = "import:NOPE"
"""
FORECAST = {"steps": [{"target_time": "2019-10-18T00:00:00+00:00", "predicted": 8003.3338}]}


def _render(display: RunDisplay, width: int = 100) -> list[str]:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(display)
    return [line.rstrip() for line in buf.getvalue().splitlines()]


def test_one_line_per_entry_with_its_stage_and_result():
    d = RunDisplay(Console(file=io.StringIO()))
    d.on_stage("import:BTC-USD 1d", "waiting", EntryOutcome("import:BTC-USD 1d"))
    d.on_stage("import:NOPE 1d", "waiting", EntryOutcome("import:NOPE 1d"))
    d.on_stage("import:BTC-USD 1d", "training", EntryOutcome("import:BTC-USD 1d", fetched=3))
    lines = _render(d)
    assert len(lines) == 2
    assert re.match(r"import:BTC-USD 1d\s+training challenger\s+\d+s\s+3 new bars$", lines[0]), lines[0]
    assert re.match(r"import:NOPE 1d\s+waiting$", lines[1]), lines[1]
    done = EntryOutcome("import:BTC-USD 1d", fetched=1, trained="r1", promoted=False, forecast=FORECAST, seconds=2.5)
    d.on_stage("import:BTC-USD 1d", "done", done)
    d.on_stage("import:NOPE 1d", "failed", EntryOutcome("import:NOPE 1d", error="fetch: " + "x" * 300, seconds=0.1))
    lines = _render(d, width=110)
    assert re.match(r"import:BTC-USD 1d\s+done\s+2\.5s\s+1 new bar, champion kept, forecast 2019-10-18: 8003.33$",
                    lines[0]), lines[0]
    # a long error is cut at the terminal's edge, on its own line
    assert len(lines) == 2 and lines[1].startswith("import:NOPE 1d") and "failed" in lines[1]
    assert lines[1].endswith("…") and len(lines[1]) <= 110


def test_result_texts():
    assert result("done", EntryOutcome("e", forecast=FORECAST)) == "not retrained, forecast 2019-10-18: 8003.33"
    assert result("done", EntryOutcome("e", trained="r", promoted=True, forecast=FORECAST)).startswith(
        "challenger promoted, forecast")
    assert result("failed", EntryOutcome("e", error="train: boom")) == "train: boom"
    assert result("fetching", EntryOutcome("e")) == ""


@pytest.fixture
def btc_run(cli, data_dir: Path, btc_csv: Path) -> Path:
    assert cli("import", str(btc_csv), "--symbol", "BTC-USD").exit_code == 0
    (data_dir / "lstmcast.toml").write_text(RUN)
    return data_dir


def test_not_on_a_terminal_the_plain_log_lines_as_before(cli, btc_run: Path):
    r = cli("run")
    assert r.exit_code == 3, r.output
    log = (btc_run / "logs" / "lstmcast.log").read_text()
    # stderr is the log, line for line (no display, no colours), and the table goes to stdout
    assert r.stderr == log
    assert "INFO    import:BTC-USD 1d: forecast 2019-10-18: " in r.stderr
    assert "ERROR   import:NOPE 1d: failed at fetch:" in r.stderr
    assert "training challenger" not in r.stderr + r.stdout and "\x1b[" not in r.stderr + r.stdout
    assert r.stdout.startswith("lstmcast run ") and "│ import:BTC-USD 1d │" in r.stdout


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_on_a_terminal_the_live_lines_and_only_warnings_above_them(btc_run: Path):
    import pty

    master, slave = pty.openpty()
    env = subprocess_env(COLUMNS="120", TERM="xterm", OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "lstmcast", "--data-dir", str(btc_run), "run"],
                         stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # the other end closed
                return
            if not b:
                return
            chunks.append(b)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    out, _ = p.communicate(timeout=120)
    t.join(timeout=10)
    os.close(master)
    err = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert p.returncode == 3
    assert re.search(r"import:BTC-USD 1d\s+done\s+[\d.]+s\s+challenger promoted, forecast 2019-10-18: ", err), err
    assert re.search(r"import:NOPE 1d\s+failed\s+[\d.]+s\s+fetch: import:NOPE 1d is not in the store", err), err
    # above the lines: warnings and errors only; every line is still in the log file
    assert "ERROR   import:NOPE 1d: failed at fetch" in err and " INFO " not in err
    assert "INFO    import:BTC-USD 1d: forecast 2019-10-18" in (btc_run / "logs" / "lstmcast.log").read_text()
    assert out.decode().startswith("lstmcast run ")  # the summary table, as before
