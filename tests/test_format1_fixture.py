"""A run saved by lstmcast before the Forecaster seam (checkpoint format 1, LSTM) still loads and
predicts the same closes. The fixture was made by the old code (see expected.json "made_with")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "format1_run"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture
def format1_home(cli, data_dir: Path) -> Path:
    r = cli("import", str(ROOT / EXPECTED["import"]["file"]), "--symbol", EXPECTED["import"]["symbol"])
    assert r.exit_code == 0, r.output
    folder = data_dir / "models" / "import" / "BTC-USD" / "1d"
    folder.mkdir(parents=True)
    shutil.copytree(FIXTURE / EXPECTED["run_id"], folder / EXPECTED["run_id"])
    (folder / "current").write_text(json.dumps({"run_id": EXPECTED["run_id"]}))
    return data_dir


def test_format1_run_predicts_the_same_closes(format1_home: Path):
    from lstmcast.data.store import Store
    from lstmcast.features import prepare

    store = Store(format1_home)
    key = store.resolve("BTC-USD", "1d")
    loaded = _load(format1_home, key)
    frame = store.load(key)
    prepared = prepare(frame, kind="price", features=loaded.features)
    pred = loaded.predict_close(prepared, np.array(EXPECTED["origins"]))
    # the default load is the numpy artifact (no torch): float32 parity with the torch path
    assert type(loaded.fitted).__name__ == "NumpyFitted"
    np.testing.assert_allclose(pred, np.array(EXPECTED["predicted_close"]), rtol=1e-5)
    # torch on the CPU (what --device gives on an accelerator) still reproduces the old numbers exactly
    torch_loaded = _load(format1_home, key, device="torch")
    pred = torch_loaded.predict_close(prepared, np.array(EXPECTED["origins"]))
    np.testing.assert_allclose(pred, np.array(EXPECTED["predicted_close"]), rtol=1e-9, atol=1e-9)


def test_format1_run_through_predict_json(cli, format1_home: Path):
    r = cli("predict", "BTC-USD", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)[0]["forecast"]
    for g, e in zip(got, EXPECTED["predict_json_forecast"], strict=True):
        assert g["method"] == "direct"
        assert g["predicted_close"] == pytest.approx(e["predicted_close"], rel=1e-5)
        for lv, band in e["intervals"].items():
            assert g["intervals"][lv]["lo"] == pytest.approx(band["lo"], rel=1e-5)
            assert g["intervals"][lv]["hi"] == pytest.approx(band["hi"], rel=1e-5)


def _load(data_dir: Path, key, device: str = "cpu"):
    from lstmcast import checkpoint

    return checkpoint.load_run(data_dir, key, device=device)
