"""The run's ``meta.json`` for a given training stays what it was: same keys, same order, same values.

``fixtures/meta_golden.json`` holds, for every family, the ``meta.json`` that a fixed training gave
before the Fitted records moved onto one base (``forecasters.base.FitRecord``). Only what differs
between two identical trainings is left out: the run id, the creation time, the timings, the
versions and the checksums (the meta's own covers its creation time). Both the driver's own fit and
the artifact a worker hands back (``Artifact``) must write it.

Regenerate (only for an intended format change): ``PYTHONPATH=src:tests python tests/test_meta_golden.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from helpers_series import random_walk_frame
from lstmcast import features as F
from lstmcast import registry
from lstmcast.data.store import SeriesKey
from lstmcast.forecasters import FAMILIES
from lstmcast.pipelines.train import Artifact, SeriesData, fit_artifact, save_trained
from lstmcast.settings import Settings

GOLDEN = Path(__file__).parent / "fixtures" / "meta_golden.json"
S = Settings(lookback=10, horizon=2, hidden=4, layers=1, dropout=0.0, epochs=2, batch_size=32, threads=1,
             device="cpu", seed=3)
VOLATILE = ("run_id", "created", "training_seconds", "versions", "integrity")


def _meta(family: str, folder: Path, *, via_artifact: bool) -> dict[str, Any]:
    s = S.with_values({"family": family})
    frame = random_walk_frame(200)
    prepared = F.prepare(frame, kind="price", features=F.FeatureConfig.from_settings(s))
    data = SeriesData(key=SeriesKey("import", "RW", "1d"), manifest={"kind": "price", "market": "crypto"},
                      frame=frame, kind="price", prepared=prepared)
    fitted = fit_artifact(prepared, s)
    if via_artifact:
        fitted = Artifact.of(fitted).fitted()
    report = save_trained(folder, data, fitted, s, promote=True)
    meta = json.loads((report.run.path / registry.META).read_text())
    for k in VOLATILE:
        meta.pop(k)
    for epoch in meta["history"]:
        epoch.pop("seconds")
    return meta


def _same(got: Any, want: Any, where: str = "meta") -> None:
    """Equal with the keys in the same order; floats to 1e-9 (the lstm's sums vary with BLAS builds)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert type(got) is float, f"{where}: {got!r} is not a float"
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("via_artifact", [False, True], ids=["fit", "artifact"])
@pytest.mark.parametrize("family", FAMILIES)
def test_meta_json_is_what_it_was(family: str, via_artifact: bool, tmp_path: Path):
    golden = json.loads(GOLDEN.read_text())
    _same(_meta(family, tmp_path, via_artifact=via_artifact), golden[family])


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = {f: _meta(f, Path(d) / f, via_artifact=False) for f in FAMILIES}
    GOLDEN.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
