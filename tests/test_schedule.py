"""The cron entry: exact line, idempotent install, remove touching only ours, runs under `env -i`."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lstmcast import schedule
from lstmcast.errors import ConfigError

OTHER = (
    "# my own jobs\n"
    "MAILTO=me@example.com\n"
    "*/5  *  *   * *    /usr/bin/backup   --fast   # keep this spacing\n"
    "@daily /bin/true\n"
    "\n"
    '30 2 * * 1-5 echo "50 % off" > /dev/null\n'
)


@pytest.fixture
def config(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "lstmcast.toml"
    path.write_text("keep_runs = 3\n")  # an empty watchlist
    return path


def test_install_twice_then_remove_restores_the_tab_exactly(tmp_path, config, data_dir):
    tab = tmp_path / "crontab"
    tab.write_text(OTHER)
    first = schedule.install("0 6 * * *", config_path=config, data_dir=data_dir, tabfile=tab)
    second = schedule.install("15 7 * * 1-5", config_path=config, data_dir=data_dir, tabfile=tab)
    text = tab.read_text()
    assert text.startswith(OTHER)
    assert text.count(schedule.marker(data_dir)) == 1
    assert first.line not in text and second.line in text
    assert text == OTHER + second.line + "\n"
    assert schedule.remove(data_dir=data_dir, tabfile=tab) == second
    assert tab.read_text() == OTHER
    assert schedule.remove(data_dir=data_dir, tabfile=tab) is None
    assert tab.read_text() == OTHER


def test_other_data_dirs_entries_are_not_touched(tmp_path, config, data_dir):
    tab = tmp_path / "crontab"
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "lstmcast.toml").write_text("")
    theirs = schedule.install(config_path=other_dir / "lstmcast.toml", data_dir=other_dir, tabfile=tab)
    schedule.install(config_path=config, data_dir=data_dir, tabfile=tab)
    schedule.remove(data_dir=data_dir, tabfile=tab)
    assert tab.read_text() == theirs.line + "\n"


def test_entry_uses_absolute_paths_env_and_marker(tmp_path, config, data_dir):
    entry = schedule.install("0 6 * * *", config_path=config, data_dir=data_dir, tabfile=tmp_path / "tab")
    assert entry.cron == "0 6 * * *"
    assert entry.line.endswith(f"# lstmcast:{data_dir}")
    for part in (
        "PATH=/usr/bin:/bin",
        "LC_ALL=C.UTF-8",
        f"LSTMCAST_HOME={data_dir}",
        f"--data-dir {data_dir} run",
        f"--config {config}",
        f">> {data_dir}/logs/cron.log 2>&1",
    ):
        assert part in entry.command
    words = shlex.split(entry.command)
    program = next(w for w in words if not re.match(r"^[A-Z_]+=", w))
    assert Path(program).is_absolute()


def test_cron_line_runs_under_env_i(tmp_path, config, data_dir):
    """The exact command cron would run, with cron's bare environment: no PATH, no HOME."""
    tab = tmp_path / "tab"
    schedule.install("0 6 * * *", config_path=config, data_dir=data_dir, tabfile=tab)
    entry, _ = schedule.show(data_dir=data_dir, tabfile=tab)
    assert "%" not in entry.command  # cron would turn % into a newline; this is the line sh receives
    proc = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", entry.command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr, (data_dir / "logs" / "cron.log").read_text())
    log = (data_dir / "logs" / "lstmcast.log").read_text()
    assert "started: 0 entries" in log and "ended: 0 ok, 0 failed, exit code 0" in log
    assert "watchlist is empty" in (data_dir / "logs" / "cron.log").read_text()
    assert "\x1b[" not in log


def test_cron_line_with_spaces_and_quotes_in_paths_runs_under_env_i(tmp_path):
    data_dir = tmp_path / "my data's dir"
    data_dir.mkdir()
    config = tmp_path / "conf dir" / "my config.toml"
    config.parent.mkdir()
    config.write_text("keep_runs = 3\n")
    tab = tmp_path / "tab"
    schedule.install("0 6 * * *", config_path=config, data_dir=data_dir, tabfile=tab)
    entry, _ = schedule.show(data_dir=data_dir, tabfile=tab)
    assert entry is not None and entry.cron == "0 6 * * *"
    proc = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", entry.command], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert f"config {config}, data directory {data_dir}" in (data_dir / "logs" / "lstmcast.log").read_text()
    assert schedule.remove(data_dir=data_dir, tabfile=tab) == entry and tab.read_text() == ""


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "bogus", "0 6 * * * *", "@reboot"])
def test_invalid_cron_is_a_config_error(cli, config, tmp_path, expr):
    r = cli("schedule", "install", "--cron", expr, "--tabfile", str(tmp_path / "tab"))
    assert r.exit_code == 1
    assert "cron expression" in r.stderr
    assert not (tmp_path / "tab").exists()


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("61 6 * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 6 0 * *", "day of month 0 is out of range 1-31"),
        ("0 6 * 13 *", "month 13 is out of range 1-12"),
        ("0 6 * * 8", "weekday 8 is out of range 0-7"),
        ("0,15,99 6 * * *", "minute 99 is out of range 0-59"),
        ("0 6 * * mon-fry", "weekday field 'mon-fry' is not valid"),
        ("*/0 6 * * *", "minute field '*/0' is not valid"),
        ("0 6 * *", "expected five fields 'minute hour day month weekday', got 4"),
        ("@fortnightly", "unknown shortcut @fortnightly; known: @hourly, @daily"),
    ],
)
def test_invalid_cron_names_the_field_and_value(cli, tmp_path, expr, why):
    """Named even before the config file is looked for (none exists here)."""
    r = cli("schedule", "install", "--cron", expr, "--dry-run")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: invalid cron expression {expr!r}: {why}")
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("expr", ["0 6 * * 7", "0 6 * * mon-fri", "30 22 1,15 jan-jun *", "*/15 * * * *", "@daily"])
def test_valid_cron_passes(expr):
    assert schedule.check_cron(expr) == expr


def test_cli_install_show_remove(cli, config, tmp_path, data_dir):
    tab = tmp_path / "tab"
    tab.write_text(OTHER)
    r = cli("schedule", "install", "--cron", "30 22 * * 1-5", "--tabfile", str(tab), "--json")
    assert r.exit_code == 0, r.output
    r = cli("schedule", "show", "--tabfile", str(tab), "-n", "3", "--json")
    import json

    shown = json.loads(r.stdout)
    assert shown["installed"] and shown["cron"] == "30 22 * * 1-5" and len(shown["next_runs"]) == 3
    assert all(dt.datetime.fromisoformat(t).weekday() < 5 for t in shown["next_runs"])
    r = cli("schedule", "remove", "--tabfile", str(tab))
    assert r.exit_code == 0 and "removed" in r.stdout
    assert tab.read_text() == OTHER
    r = cli("schedule", "show", "--tabfile", str(tab))
    assert "no lstmcast entry" in r.stdout


def test_install_needs_a_config(cli, data_dir, tmp_path):
    r = cli("schedule", "install", "--tabfile", str(tmp_path / "tab"))
    assert r.exit_code == 1 and "lstmcast init" in r.stderr


def test_missing_crontab_binary_is_explained(monkeypatch, config, data_dir, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `crontab` on PATH
    with pytest.raises(ConfigError, match="`crontab` command is not installed.*--dry-run"):
        schedule.install(config_path=config, data_dir=data_dir)


def test_next_runs_follow_cron_rules():
    after = dt.datetime(2024, 1, 1, 5, 0).astimezone()  # a Monday
    fmt = [t.strftime("%a %d %H:%M") for t in schedule.next_runs("0 6 * * *", n=2, after=after)]
    assert fmt == ["Mon 01 06:00", "Tue 02 06:00"]
    assert [t.strftime("%a %d") for t in schedule.next_runs("0 6 * * 6,0", n=3, after=after)] == [
        "Sat 06",
        "Sun 07",
        "Sat 13",
    ]
    # day of month and weekday both restricted: either matches (the 15th, or any Monday)
    assert [t.day for t in schedule.next_runs("0 6 15 * 1", n=4, after=after)] == [1, 8, 15, 22]
    assert [t.year for t in schedule.next_runs("0 0 29 2 *", n=2, after=after)] == [2024, 2028]
    assert [t.minute for t in schedule.next_runs("*/20 * * * *", n=3, after=after)] == [20, 40, 0]
