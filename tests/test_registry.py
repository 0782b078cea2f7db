"""The registry: confined `current` pointers (issue 10 #4), orphan temporary run folders removed by
the next writer (issue 10 #7), degenerate runs saved `incomplete`, never current (issue 10 #6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import subprocess_env
from helpers_series import random_walk_frame
from lstmcast import features as F
from lstmcast import registry as R
from lstmcast.data.store import SeriesKey
from lstmcast.errors import CheckpointError
from lstmcast.forecasters import forecaster
from lstmcast.settings import Settings

KEY = SeriesKey("import", "BTC-USD", "1d")
S = Settings(family="linear", lookback=10, horizon=1)
_OPENED: list[str] | None = None


def _hook(event, args):
    if _OPENED is not None and event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_hook)


@pytest.fixture(scope="module")
def fitted():
    prepared = F.prepare(random_walk_frame(200), kind="price", features=F.FeatureConfig.from_settings(S))
    return forecaster(S).fit(prepared)


def save(data_dir: Path, fitted, **kw):
    return R.save_run(data_dir, KEY, fitted, metrics={"model": {"mae": 1.0, "rmse": 1.0}},
                      data_info={"kind": "price"}, **kw)


@pytest.mark.parametrize(
    "hostile", ["../../../../outside/evilrun", "/etc", "/tmp/x/evilrun", "..", "20261121T101500123Z-ab12cd/../../x"]
)
def test_hostile_current_pointer_is_refused_and_nothing_outside_is_opened(tmp_path, fitted, hostile):
    global _OPENED
    data = tmp_path / "data"
    save(data, fitted, promote=True)
    outside = tmp_path / "outside" / "evilrun"
    outside.mkdir(parents=True)
    (outside / "meta.json").write_text("{}")
    (R.series_folder(data, KEY) / "current").write_text(json.dumps({"run_id": hostile}))
    _OPENED = []
    try:
        with pytest.raises(CheckpointError, match="not a run id; refusing to follow it"):
            R.load_run(data, KEY)
    finally:
        opened, _OPENED = _OPENED, None
    root = str(data.resolve())
    # importing code (a lazily imported module's .py/.pyc) is not reading data
    strays = [p for p in opened if not p.startswith(root) and not p.endswith((".py", ".pyc", ".so"))]
    assert strays == []


def test_a_writer_killed_mid_save_leaves_a_tmp_folder_the_next_writer_removes(tmp_path, fitted):
    data = tmp_path / "data"
    code = f"""
import time, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from lstmcast import atomic, registry as R, features as F
from lstmcast.forecasters import forecaster
from lstmcast.settings import Settings
from lstmcast.data.store import SeriesKey
from helpers_series import random_walk_frame
S = Settings(family="linear", lookback=10, horizon=1)
fitted = forecaster(S).fit(F.prepare(random_walk_frame(200), kind="price", features=F.FeatureConfig.from_settings(S)))
def hang(*a, **k):
    print("writing", flush=True)
    time.sleep(600)
atomic.write_json = hang
R.save_run({str(data)!r}, SeriesKey("import", "BTC-USD", "1d"), fitted, metrics={{}}, data_info={{"kind": "price"}})
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert proc.stdout.readline().strip() == "writing"
        folder = R.series_folder(data, KEY)
        assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    time.sleep(0.1)
    run = save(data, fitted)
    names = sorted(p.name for p in folder.iterdir() if p.name != ".lock")
    assert names == [run.run_id]


def test_degenerate_run_is_saved_incomplete_and_never_current(tmp_path, fitted):
    data = tmp_path / "data"
    good = save(data, fitted, promote=True)
    bad = type(fitted)(**{**fitted.__dict__})
    bad.val_pred = np.full_like(fitted.val_pred, -1.0)  # a non-positive price: log residual NaN
    run = R.save_run(data, KEY, bad, metrics={"model": {"mae": 1.0, "rmse": 1.0}}, data_info={"kind": "price"},
                     promote=True)
    assert run.status == "incomplete" and "calibration residual(s) are not finite" in run.incomplete_reason
    assert R.current_run_id(data, KEY) == good.run_id
    empty = type(fitted)(**{**fitted.__dict__})
    empty.val_origins = fitted.val_origins[:0]
    empty.val_pred, empty.val_actual = fitted.val_pred[:0], fitted.val_actual[:0]
    run = R.save_run(data, KEY, empty, metrics={}, data_info={"kind": "price"}, promote=True)
    assert run.status == "incomplete" and "validation part is empty" in run.incomplete_reason
    assert R.current_run_id(data, KEY) == good.run_id
    with pytest.raises(CheckpointError, match="only a complete run can be current"):
        R.set_current(data, KEY, run.run_id)
