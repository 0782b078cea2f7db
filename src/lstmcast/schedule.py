"""The cron entry that runs ``lstmcast run`` every day.

The entry is one line in the user's crontab (or in ``tabfile``, for tests)::

    0 6 * * * LANG=C.UTF-8 LC_ALL=C.UTF-8 PATH=/usr/bin:/bin LSTMCAST_HOME=/abs/data \\
        /abs/bin/lstmcast --data-dir /abs/data run --config /abs/data/lstmcast.toml \\
        >> /abs/data/logs/cron.log 2>&1 # lstmcast:/abs/data

Everything is absolute because cron gives a bare environment (no PATH beyond /usr/bin:/bin, often
no HOME). The trailing marker comment names the data directory: install replaces the line with
that marker, remove deletes only it, and every other line of the crontab is left byte for byte
as it was. (python-crontab re-renders other entries' spacing when it writes, so it is used here to
validate expressions and enumerate their times; the lines themselves are edited as text.)
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lstmcast import atomic, workspace
from lstmcast.errors import ConfigError, StoreError

DEFAULT_CRON = "0 6 * * *"
MARKER_PREFIX = "lstmcast:"
CRON_PATH = "/usr/bin:/bin"


def marker(data_dir: Path) -> str:
    return f"{MARKER_PREFIX}{Path(data_dir)}"


def cron_log_path(data_dir: Path) -> Path:
    """Where cron's view of the run goes (stdout, stderr, tracebacks); the run log is logs/lstmcast.log."""
    return workspace.logs_root(data_dir) / workspace.CRON_LOG_FILE


# -- cron expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Fields:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_star: bool
    weekday_star: bool


_FIELD_NAMES = ("minute", "hour", "day of month", "month", "weekday")
_EXAMPLES = 'e.g. "0 6 * * *" (06:00 every day) or "30 22 * * 1-5" (22:30 on weekdays)'


def check_cron(expr: str) -> str:
    """Validate a five-field cron expression (or @daily, @hourly, ...); return it normalised.

    Each field is checked on its own, so the message names the field and the value at fault:
    ``61 6 * * *`` -> "minute 61 is out of range 0-59".
    """
    from crontab import S_INFO, SPECIALS, CronSlice, CronSlices

    text = " ".join(str(expr).split())
    if text.lower() == "@reboot":
        raise ConfigError('cron expression @reboot has no schedule; use e.g. "0 6 * * *" (06:00 every day)')
    if text.startswith("@"):
        if text[1:].lower() not in SPECIALS:
            names = ", ".join(f"@{k}" for k in SPECIALS if k != "reboot")
            raise ConfigError(f"invalid cron expression {expr!r}: unknown shortcut {text}; known: {names}")
        return text
    parts = text.split()
    if len(parts) != 5:
        raise ConfigError(
            f"invalid cron expression {expr!r}: expected five fields 'minute hour day month weekday', "
            f"got {len(parts)}; {_EXAMPLES}"
        )
    for name, info, part in zip(_FIELD_NAMES, S_INFO, parts, strict=True):
        try:
            CronSlice(info, part)
        except (ValueError, KeyError) as e:
            detail = str(e.args[0] if e.args else e)
            hit = re.match(r"'([^']*)', not in (\d+-\d+)", detail)
            if hit:
                allowed = "0-7 (0 and 7 are Sunday) or sun-sat" if name == "weekday" else hit.group(2)
                why = f"{name} {hit.group(1)} is out of range {allowed}"
            else:
                why = f"{name} field {part!r} is not valid ({detail})"
            raise ConfigError(f"invalid cron expression {expr!r}: {why}; {_EXAMPLES}") from e
    if not CronSlices.is_valid(text):  # belt and braces: the whole line as python-crontab reads it
        raise ConfigError(f"invalid cron expression {expr!r}: expected five fields, {_EXAMPLES}")
    return text


def _fields(expr: str) -> _Fields:
    from crontab import SPECIALS, CronSlices

    text = check_cron(expr)
    raw = SPECIALS[text[1:].lower()] if text.startswith("@") else text
    slices = CronSlices(raw)
    parts = raw.split()
    return _Fields(
        *(frozenset(int(v) % 7 if i == 4 else int(v) for v in slices[i]) for i in range(5)),
        day_star=parts[2].startswith("*"),
        weekday_star=parts[4].startswith("*"),
    )


def next_runs(expr: str, *, n: int = 5, after: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``n`` times (local time, as cron reads the crontab) the expression fires after ``after``.

    Day-of-month and weekday follow cron's rule: when both are restricted, either may match.
    """
    f = _fields(expr)
    start = (after or dt.datetime.now().astimezone()).replace(second=0, microsecond=0) + dt.timedelta(
        minutes=1
    )
    out: list[dt.datetime] = []
    day = start.date()
    hours, minutes = sorted(f.hours), sorted(f.minutes)
    for _ in range(366 * 8):  # 8 years covers any valid expression (Feb 29 on a given weekday)
        cron_wd = (day.weekday() + 1) % 7
        dom_ok, dow_ok = day.day in f.days, cron_wd in f.weekdays
        if f.day_star or f.weekday_star:
            day_ok = dom_ok and dow_ok
        else:
            day_ok = dom_ok or dow_ok
        if day.month in f.months and day_ok:
            for h in hours:
                for m in minutes:
                    t = dt.datetime.combine(day, dt.time(h, m)).astimezone()
                    if t >= start:
                        out.append(t)
                        if len(out) == n:
                            return out
        day += dt.timedelta(days=1)
    return out


# -- the command line ---------------------------------------------------------------------------
def _program() -> tuple[list[str], dict[str, str]]:
    """How cron starts this installation's lstmcast, and any environment that needs.

    The console script next to this interpreter when there is one, else ``python -m lstmcast``. If
    that interpreter, started bare, would import a different lstmcast (or none: a source checkout
    on PYTHONPATH), PYTHONPATH points it at the package that is running now.
    """
    import lstmcast

    python = Path(sys.executable).absolute()
    script = python.parent / "lstmcast"
    argv = (
        [str(script)] if script.is_file() and os.access(script, os.X_OK) else [str(python), "-m", "lstmcast"]
    )
    ours = Path(lstmcast.__file__).resolve()
    env: dict[str, str] = {}
    try:
        probe = subprocess.run(
            [str(python), "-c", "import lstmcast; print(lstmcast.__file__)"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": CRON_PATH},
            cwd="/",
        )
        theirs = (
            Path(probe.stdout.strip()).resolve() if probe.returncode == 0 and probe.stdout.strip() else None
        )
    except (OSError, subprocess.SubprocessError):
        theirs = None
    if theirs != ours:
        env["PYTHONPATH"] = str(ours.parent.parent)
    return argv, env


def command_line(*, config_path: Path, data_dir: Path) -> str:
    """The shell command the cron entry runs (without schedule and marker)."""
    data_dir = Path(data_dir).absolute()
    config_path = Path(config_path).absolute()
    argv, extra_env = _program()
    env = {
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PATH": CRON_PATH,
        "LSTMCAST_HOME": str(data_dir),
        **extra_env,
    }
    words = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    words += [shlex.quote(a) for a in argv]
    words += ["--data-dir", shlex.quote(str(data_dir)), "run", "--config", shlex.quote(str(config_path))]
    words += [">>", shlex.quote(str(cron_log_path(data_dir))), "2>&1"]
    line = " ".join(words)
    if "%" in line or "\n" in line:
        # cron turns an unescaped % into a newline; refuse rather than write a line that runs something else
        raise ConfigError(f"paths for the cron entry may not contain '%' or newlines: {line}")
    return line


# -- reading and writing the crontab ------------------------------------------------------------
def _crontab_binary() -> str:
    path = shutil.which("crontab")
    if path is None:
        raise ConfigError(
            "the `crontab` command is not installed, so the user's crontab cannot be edited; install cron "
            "(e.g. `apt-get install cron`) or add the line that `lstmcast schedule install --dry-run` "
            "prints yourself"
        )
    return path


def _read(tabfile: Path | None) -> str:
    if tabfile is not None:
        try:
            return Path(tabfile).read_text(encoding="utf-8") if Path(tabfile).exists() else ""
        except OSError as e:
            raise StoreError(f"cannot read crontab file {tabfile}: {e}") from e
    proc = subprocess.run([_crontab_binary(), "-l"], capture_output=True, text=True)
    if proc.returncode != 0:
        if "no crontab" in proc.stderr.lower():
            return ""
        raise StoreError(f"`crontab -l` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _write(text: str, tabfile: Path | None) -> None:
    if tabfile is not None:
        atomic.write_text(Path(tabfile), text)
        return
    proc = subprocess.run([_crontab_binary(), "-"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StoreError(f"`crontab -` refused the new crontab: {proc.stderr.strip() or proc.returncode}")


def _is_ours(line: str, data_dir: Path) -> bool:
    return line.rstrip("\r\n").endswith(f"# {marker(data_dir)}")


def _without_ours(text: str, data_dir: Path) -> tuple[str, list[str]]:
    lines = text.splitlines(keepends=True)
    ours = [ln.rstrip("\r\n") for ln in lines if _is_ours(ln, data_dir)]
    return "".join(ln for ln in lines if not _is_ours(ln, data_dir)), ours


@dataclass(frozen=True)
class Entry:
    line: str  # the whole crontab line
    cron: str
    command: str

    @classmethod
    def parse(cls, line: str, data_dir: Path) -> Entry:
        body = line.rstrip("\r\n").removesuffix(f" # {marker(data_dir)}")
        if body.startswith("@"):
            cron, _, command = body.partition(" ")
        else:
            fields = body.split(None, 5)
            cron, command = " ".join(fields[:5]), fields[5] if len(fields) > 5 else ""
        return cls(line=line.rstrip("\r\n"), cron=cron, command=command)


def entry_line(cron_expr: str = DEFAULT_CRON, *, config_path: Path, data_dir: Path) -> Entry:
    """The entry ``install`` would write (nothing is written)."""
    data_dir = Path(data_dir).absolute()
    expr = check_cron(cron_expr)
    if not Path(config_path).is_file():
        raise ConfigError(f"config file {config_path} does not exist; create one with `lstmcast init`")
    line = f"{expr} {command_line(config_path=config_path, data_dir=data_dir)} # {marker(data_dir)}"
    return Entry.parse(line, data_dir)


def install(
    cron_expr: str = DEFAULT_CRON, *, config_path: Path, data_dir: Path, tabfile: Path | None = None
) -> Entry:
    """Add (or replace) this data directory's entry; other lines stay exactly as they were."""
    data_dir = Path(data_dir).absolute()
    entry = entry_line(cron_expr, config_path=config_path, data_dir=data_dir)
    line = entry.line
    text, _ = _without_ours(_read(tabfile), data_dir)
    if text and not text.endswith("\n"):
        text += "\n"
    cron_log_path(data_dir).parent.mkdir(parents=True, exist_ok=True)  # the redirect needs the folder
    _write(text + line + "\n", tabfile)
    return entry


def show(
    *, data_dir: Path, tabfile: Path | None = None, n: int = 5
) -> tuple[Entry | None, list[dt.datetime]]:
    """This data directory's entry (None if not installed) and its next ``n`` run times."""
    _, ours = _without_ours(_read(tabfile), Path(data_dir).absolute())
    if not ours:
        return None, []
    entry = Entry.parse(ours[-1], Path(data_dir).absolute())
    return entry, next_runs(entry.cron, n=n)


def remove(*, data_dir: Path, tabfile: Path | None = None) -> Entry | None:
    """Delete this data directory's entry; returns it, or None if there was none (nothing written)."""
    data_dir = Path(data_dir).absolute()
    original = _read(tabfile)
    text, ours = _without_ours(original, data_dir)
    if not ours:
        return None
    _write(text, tabfile)
    return Entry.parse(ours[-1], data_dir)
