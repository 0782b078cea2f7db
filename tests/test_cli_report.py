"""`lstmcast report`: one self-contained HTML page, rendered by headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers_series import random_walk_frame
from lstmcast.data.store import SeriesKey, Store

FAST = ["--model-family", "linear", "--lookback", "10", "--refit-every", "100", "--start", "2020-04-10"]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture
def rw(data_dir) -> None:
    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(300, seed=4), market="crypto")


@pytest.fixture
def page(cli, rw, tmp_path) -> Path:
    out = tmp_path / "rw.html"
    r = cli("report", "RW", *FAST, "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["report"] == str(out)
    return out


@pytest.mark.slow
def test_page_is_self_contained(page):
    text = page.read_text()
    imgs = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', text)
    assert len(imgs) == 4  # forecasts, per-step error and coverage, calibration (reliability + PIT), equity
    for needle in ("Leaderboard", "reliability", "Kupiec", "never in the market", "DSR", "Settings", "CRPS"):
        assert needle in text, needle
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from anywhere
    assert "<script" not in text


def test_bad_output_suffix_is_refused(cli, data_dir, tmp_path):
    r = cli("report", "RW", "--output", str(tmp_path / "x.png"))
    assert r.exit_code == 2 and "HTML file" in r.stderr


def _step_rows(text: str) -> list[tuple[str, str]]:
    """(step, method) of each row of the page's per-step table."""
    table = re.search(r'<table class="steps">(.*?)</table>', text, re.S)
    assert table, "no per-step table"
    return re.findall(r"<tr[^>]*><td>(\d+)</td><td>(direct|recursive)</td>", table.group(1))


def test_horizon_3_on_a_1_step_setup_lists_3_steps_with_their_methods(cli, rw, tmp_path):
    from jsonschema import validate

    from json_schemas import REPORT

    out = tmp_path / "h3.html"
    r = cli("report", "RW", *FAST, "--horizon", "3", "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    validate(d, REPORT)
    assert d["report"] == str(out) and d["series"] == "import:RW" and d["verdict"].startswith("beats naive")
    assert d["horizon"] == 3 and d["trained_horizon"] == 1
    assert [s["method"] for s in d["steps"]] == ["direct", "recursive", "recursive"]
    assert d["steps"][2]["predict_coverage"]["0.8"]["n"] > 0  # recursive steps get predict's intervals
    text = out.read_text()
    assert _step_rows(text) == [("1", "direct"), ("2", "recursive"), ("3", "recursive")]
    head = re.search(r'<table class="steps"><thead>(.*?)</thead>', text, re.S).group(1)
    for col in ("MAE", "MASE", "skill vs naive", "predict 80%", "predict 95%", "adaptive 80%", "adaptive 95%"):
        assert f"<th>{col}</th>" in head, col
    assert "steps 2-3 are recursive" in text and "held-out validation residuals" in text
    assert "horizon 3 (model trained for 1 step)" in text


def test_train_horizon_makes_every_step_direct(cli, rw, tmp_path):
    out = tmp_path / "h2.html"
    r = cli("report", "RW", *FAST, "--train-horizon", "2", "--horizon", "2", "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["trained_horizon"] == 2 and [s["method"] for s in d["steps"]] == ["direct", "direct"]
    assert _step_rows(out.read_text()) == [("1", "direct"), ("2", "direct")]
    assert "all 2 steps are direct" in out.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--train-horizon", "0"], "--train-horizon must be at least 1 (got 0)"),
    (["--train-horizon", "1001"], "--train-horizon must be at most 1000"),
    (["--horizon", "0"], "--horizon must be at least 1 (got 0)"),
])
def test_horizon_bounds_are_one_line_usage_errors(cli, rw, tmp_path, args, message):
    out = tmp_path / "x.html"
    r = cli("report", "RW", *args, "--output", str(out))
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    assert not out.exists()


def test_horizon_options_match_backtest():
    """Same flags, metavars and help text as `backtest` (one definition, not a copy)."""
    import typer
    import typer.main

    from lstmcast.cli import backtest, report

    app = typer.Typer()
    backtest.register(app)
    report.register(app)
    group = typer.main.get_command(app)

    def opts(name):
        return {p.name: (p.opts, p.metavar, p.help) for p in group.commands[name].params
                if p.name in ("horizon", "train_horizon")}

    assert opts("report") == opts("backtest") and len(opts("report")) == 2


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_headless_chromium_shows_the_figures_without_console_errors(page, tmp_path):
    import numpy as np
    from PIL import Image

    url = page.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom.stdout)) == 4
    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", url)
    assert r.returncode == 0, r.stderr[-2000:]
    for log in (dom.stderr, r.stderr):
        assert "Uncaught" not in log and "ERROR:CONSOLE" not in log, log[-2000:]
    px = np.asarray(Image.open(shot).convert("L"), dtype="float64")
    assert px.shape == (2400, 1200)
    assert px.std() > 20 and (px < 128).mean() > 0.01  # not blank: text and plotted lines


def test_report_runs_its_refits_on_the_executor_backtest_uses(cli, rw, tmp_path):
    # the same executor flags as backtest; serial and the local pool give the same numbers
    steps = {}
    for kind in ("serial", "local"):
        out = tmp_path / f"{kind}.html"
        r = cli("report", "RW", *FAST, "--horizon", "2", "--executor", kind, "--workers", "2",
                "--output", str(out), "--json")
        assert r.exit_code == 0, r.output
        steps[kind] = json.loads(r.stdout)["steps"]
    assert steps["serial"] == steps["local"] and len(steps["serial"]) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--executor", "gpu"], "unknown executor 'gpu'"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--ray-address", "auto"], "--ray-address needs --executor ray"),
])
def test_report_executor_flags_are_checked_before_any_work(cli, rw, tmp_path, args, message):
    out = tmp_path / "x.html"
    r = cli("report", "RW", *FAST, *args, "--output", str(out))
    assert r.exit_code == 2 and message in r.stderr and not out.exists()


def test_executor_options_are_one_definition_everywhere():
    import typer
    import typer.main

    from lstmcast.cli import backtest, report, run, train

    app = typer.Typer()
    for mod in (backtest, report, run, train):
        mod.register(app)
    group = typer.main.get_command(app)

    def opts(name):
        return {p.name: (p.opts, p.metavar) for p in group.commands[name].params
                if p.name in ("executor", "workers", "ray_address")}

    assert opts("report") == opts("backtest") == opts("train") == opts("run") and len(opts("run")) == 3
