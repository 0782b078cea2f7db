import json

import numpy as np
import pytest

from helpers_series import random_walk_frame
from lstmcast import checkpoint as C
from lstmcast import features as F
from lstmcast import train as T
from lstmcast.data.store import SeriesKey
from lstmcast.errors import CheckpointError, DataNotFoundError
from lstmcast.model import ModelConfig

FC = F.FeatureConfig(lookback=8, horizon=2)
KEY = SeriesKey("import", "BTC/USD", "1d")
INFO = {"kind": "price", "market": "crypto", "sha256": "ab" * 32}


@pytest.fixture(scope="module")
def prepared():
    return F.prepare(random_walk_frame(120), kind="price", features=FC)


@pytest.fixture(scope="module")
def fitted(prepared):
    return T.fit(
        prepared,
        features=FC,
        model=ModelConfig(hidden=4, layers=2),
        train=T.TrainConfig(epochs=2, threads=1, device="cpu"),
    )


def save(data_dir, fitted, **kw):
    metrics = {"model": {"mae": 1.0, "mase": 0.9}, "naive": {"mae": 1.1, "mase": 1.0}}
    return C.save_run(data_dir, KEY, fitted, metrics=metrics, data_info=INFO, **kw)


def test_round_trip_predicts_the_same(tmp_path, fitted, prepared):
    run = save(tmp_path, fitted, promote=True)
    assert run.current and run.status == "complete"
    assert run.path == tmp_path / "models" / "import" / "BTC%2FUSD" / "1d" / run.run_id
    assert sorted(p.name for p in run.path.iterdir()) == ["meta.json", "model.safetensors"]
    loaded = C.load_run(tmp_path, KEY)  # the current one
    assert loaded.run_id == run.run_id
    origins = np.arange(20, 110)
    # loaded on the CPU: the numpy artifact, torch's numbers to float32 rounding
    np.testing.assert_allclose(
        loaded.predict_close(prepared, origins), fitted.predict_close(prepared, origins), rtol=1e-5
    )
    np.testing.assert_array_equal(  # loaded into torch: the same numbers exactly
        C.load_run(tmp_path, KEY, device="torch").predict_close(prepared, origins),
        fitted.predict_close(prepared, origins),
    )
    np.testing.assert_array_equal(loaded.fitted.val_pred, fitted.val_pred)
    np.testing.assert_allclose(loaded.residuals, np.log(fitted.val_actual / fitted.val_pred))
    meta = loaded.meta
    assert meta["symbol"] == "BTC/USD" and meta["data"]["sha256"] == "ab" * 32
    assert meta["versions"]["torch"] and meta["scaler"]["mean"] and meta["seed"] == 0


def test_run_ids_sort_by_time():
    import datetime as dt

    a = C.new_run_id(dt.datetime(2026, 11, 21, 10, 15, tzinfo=dt.timezone.utc))
    b = C.new_run_id(dt.datetime(2026, 11, 21, 10, 15, 0, 1000, tzinfo=dt.timezone.utc))  # 1 ms later
    c = C.new_run_id(dt.datetime(2026, 11, 21, 10, 16, tzinfo=dt.timezone.utc))
    assert a.startswith("20261121T101500000Z-") and len(a) == 26 and a < b < c


def test_tampered_weights_are_detected(tmp_path, fitted):
    run = save(tmp_path, fitted, promote=True)
    w = run.path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the checksum .*tampered or truncated"):
        C.load_run(tmp_path, KEY)


def test_truncated_weights_are_detected(tmp_path, fitted):
    run = save(tmp_path, fitted, promote=True)
    w = run.path / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="tampered or truncated"):
        C.load_run(tmp_path, KEY, run.run_id)


def _edit_meta(run, edit, *, reseal=False):
    path = run.path / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta)
    if reseal:
        meta["integrity"]["meta_sha256"] = C._meta_digest(meta)
    path.write_text(json.dumps(meta))


def test_edited_meta_is_detected(tmp_path, fitted):
    run = save(tmp_path, fitted)
    _edit_meta(run, lambda m: m["scaler"].update(target_std=99.0))
    with pytest.raises(CheckpointError, match="modified after it was written"):
        C.load_run(tmp_path, KEY, run.run_id)


def test_wrong_format_version(tmp_path, fitted):
    run = save(tmp_path, fitted)
    _edit_meta(run, lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match="format version 99; this lstmcast reads versions 1, 2"):
        C.load_run(tmp_path, KEY, run.run_id)


def test_shape_mismatch(tmp_path, fitted):
    run = save(tmp_path, fitted)
    _edit_meta(run, lambda m: m["model"].update(hidden=5), reseal=True)
    with pytest.raises(CheckpointError, match="do not fit the model config"):
        C.load_run(tmp_path, KEY, run.run_id)


def test_wrong_series(tmp_path, fitted):
    run = save(tmp_path, fitted)
    other = SeriesKey("import", "ETH/USD", "1d")
    target = C.series_folder(tmp_path, other) / run.run_id
    target.parent.mkdir(parents=True)
    run.path.rename(target)
    with pytest.raises(CheckpointError, match="belongs to import:BTC/USD 1d, not import:ETH/USD 1d"):
        C.load_run(tmp_path, other, run.run_id)


def test_missing_run_and_no_current(tmp_path):
    with pytest.raises(DataNotFoundError, match="no current model .*lstmcast train import:BTC/USD"):
        C.load_run(tmp_path, KEY)
    with pytest.raises(DataNotFoundError, match="no run nope"):
        C.load_run(tmp_path, KEY, "nope")


def test_interrupted_run_is_saved_but_never_current(tmp_path, fitted):
    import dataclasses

    good = save(tmp_path, fitted, promote=True)
    broken = dataclasses.replace(fitted, interrupted=True)
    run = save(tmp_path, broken, promote=True)
    assert run.status == "interrupted" and not run.current
    assert C.current_run_id(tmp_path, KEY) == good.run_id
    with pytest.raises(CheckpointError, match="is interrupted; only a complete run can be current"):
        C.set_current(tmp_path, KEY, run.run_id)


def test_current_pointer_edited_to_an_interrupted_run_is_refused(tmp_path, fitted):
    import dataclasses
    import json

    save(tmp_path, fitted, promote=True)
    run = save(tmp_path, dataclasses.replace(fitted, interrupted=True), promote=False)
    (C.series_folder(tmp_path, KEY) / "current").write_text(json.dumps({"run_id": run.run_id}))
    with pytest.raises(CheckpointError, match="which is interrupted"):
        C.load_run(tmp_path, KEY)
    assert C.load_run(tmp_path, KEY, run.run_id).run_id == run.run_id  # asked for by id: allowed


def test_failed_save_leaves_no_run_and_keeps_current(tmp_path, fitted, monkeypatch):
    import safetensors.numpy

    good = save(tmp_path, fitted, promote=True)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path, fitted, promote=True)
    folder = C.series_folder(tmp_path, KEY)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == [good.run_id]
    assert C.current_run_id(tmp_path, KEY) == good.run_id


def test_list_set_current_and_prune(tmp_path, fitted):
    ids = [save(tmp_path, fitted, run_id=f"2026010{i}T000000Z-aaaaaa").run_id for i in range(1, 5)]
    C.set_current(tmp_path, KEY, ids[0])
    runs = C.list_runs(tmp_path)
    assert [r.run_id for r in runs] == ids and [r.current for r in runs] == [True, False, False, False]
    assert C.list_runs(tmp_path, KEY)[0].key == KEY
    assert C.find_run(tmp_path, ids[2][:8]).run_id == ids[2]
    deleted = C.prune_runs(tmp_path, KEY, keep=1)
    assert deleted == ids[1:3]
    assert [r.run_id for r in C.list_runs(tmp_path, KEY)] == [ids[0], ids[3]]


def test_no_pickle_in_the_checkpoint(tmp_path, fitted):
    from safetensors import safe_open

    run = save(tmp_path, fitted)
    with safe_open(str(run.path / "model.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())
    assert "calibration.residuals" in keys and any(k.startswith("weights.lstm.") for k in keys)
    json.loads((run.path / "meta.json").read_text())
