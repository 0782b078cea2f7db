"""pipelines.train: the artifact a worker hands back rebuilds the same fitted model, for every family,
and saving it gives the same run as saving the fit itself."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from safetensors.numpy import load_file

from helpers_series import random_walk_frame
from lstmcast import features as F
from lstmcast import registry
from lstmcast.data.store import SeriesKey, Store
from lstmcast.forecasters import FAMILIES
from lstmcast.forecasters.base import FitRecord, record_fields
from lstmcast.pipelines.train import Artifact, SeriesData, fit_artifact, fit_task, save_trained
from lstmcast.settings import Settings

S = Settings(lookback=10, horizon=2, hidden=4, layers=1, dropout=0.0, epochs=2, batch_size=32, threads=1,
             device="cpu", seed=3)


@pytest.fixture(scope="module")
def frame():
    return random_walk_frame(200)


@pytest.mark.parametrize("family", FAMILIES)
def test_artifact_rebuilds_the_fit_across_a_process_boundary(family, frame):
    s = S.with_values({"family": family})
    prepared = F.prepare(frame, kind="price", features=F.FeatureConfig.from_settings(s))
    fitted = fit_artifact(prepared, s)
    art = pickle.loads(pickle.dumps(fit_task((prepared, s))))  # what a worker sends back
    assert isinstance(art, Artifact) and art.family == family
    assert tuple(art.record) == record_fields()  # every family's artifact carries the whole record
    again = art.fitted()
    assert isinstance(fitted, FitRecord) and isinstance(again, FitRecord)
    origins = np.arange(150, 197)
    # the driver rebuilds torch families as the numpy forward pass (no torch import there): equal to float error
    np.testing.assert_allclose(again.predict_close(prepared, origins), fitted.predict_close(prepared, origins),
                               rtol=1e-6)
    for k in ("start", "end", "train_end", "best_epoch", "interrupted"):
        assert getattr(again, k) == getattr(fitted, k)
    np.testing.assert_array_equal(again.val_pred, fitted.val_pred)
    def losses(f):  # a second fit's timings differ; its losses do not
        return [{k: v for k, v in h.to_dict().items() if k != "seconds"} for h in f.history]

    assert losses(again) == losses(fitted)


def test_saving_the_artifact_saves_the_same_run(tmp_path, frame):
    s = S.with_values({"family": "lstm"})
    prepared = F.prepare(frame, kind="price", features=F.FeatureConfig.from_settings(s))
    data = SeriesData(key=SeriesKey("import", "RW", "1d"), manifest={"kind": "price"}, frame=frame, kind="price",
                      prepared=prepared)
    fitted = fit_artifact(prepared, s)
    a = save_trained(tmp_path / "a", data, fitted, s, promote=True)
    b = save_trained(tmp_path / "b", data, Artifact.of(fitted).fitted(), s, promote=True)
    wa, wb = load_file(str(a.run.path / registry.WEIGHTS)), load_file(str(b.run.path / registry.WEIGHTS))
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    ma, mb = (json.loads((r.run.path / registry.META).read_text()) for r in (a, b))
    for k in ("run_id", "created", "integrity"):
        ma.pop(k), mb.pop(k)
    assert ma == mb and a.metrics == b.metrics
    assert Store(tmp_path / "a").root == tmp_path / "a"
