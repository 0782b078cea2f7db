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
def page(cli, data_dir, tmp_path) -> Path:
    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(300, seed=4), market="crypto")
    out = tmp_path / "rw.html"
    r = cli("report", "RW", *FAST, "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["report"] == str(out)
    return out


@pytest.mark.slow
def test_page_is_self_contained(page):
    text = page.read_text()
    imgs = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', text)
    assert len(imgs) == 3  # forecasts, calibration (reliability + PIT), equity + drawdowns
    for needle in ("Leaderboard", "reliability", "Kupiec", "never in the market", "DSR", "Settings", "CRPS"):
        assert needle in text, needle
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from anywhere
    assert "<script" not in text


def test_bad_output_suffix_is_refused(cli, data_dir, tmp_path):
    r = cli("report", "RW", "--output", str(tmp_path / "x.png"))
    assert r.exit_code == 2 and "HTML file" in r.stderr


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
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom.stdout)) == 3
    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", url)
    assert r.returncode == 0, r.stderr[-2000:]
    for log in (dom.stderr, r.stderr):
        assert "Uncaught" not in log and "ERROR:CONSOLE" not in log, log[-2000:]
    px = np.asarray(Image.open(shot).convert("L"), dtype="float64")
    assert px.shape == (2400, 1200)
    assert px.std() > 20 and (px < 128).mean() > 0.01  # not blank: text and plotted lines
