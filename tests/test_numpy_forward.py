"""The torch-free forward pass (forecasters/rnn/numpy_forward.py) against torch itself.

Parity: a hypothesis property over families, layers, sizes and random weights, and a real run
trained and saved by today's code. Plus the windows (sliding_window_view vs torch's unfold), the
loader, the refusals, truncation, and that none of it imports torch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import subprocess_env
from helpers_series import random_walk_frame
from lstmcast import features as F
from lstmcast.data.store import SeriesKey
from lstmcast.errors import CheckpointError, ModelError
from lstmcast.forecasters.rnn import numpy_forward as nf

RTOL = {np.float32: 1e-5, np.float64: 1e-9}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def torch_model(cell: str, *, n_features: int, hidden: int, layers: int, horizon: int, dtype, scale: float, seed: int):
    """A real nn.LSTM/nn.GRU (with dropout, which eval mode must switch off) + nn.Linear, random weights."""
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    rnn = cls(n_features, hidden, num_layers=layers, batch_first=True, dropout=0.5 if layers > 1 else 0.0)
    head = torch.nn.Linear(hidden, horizon)
    rng = np.random.default_rng(seed)
    bound = scale / np.sqrt(hidden)
    with torch.no_grad():
        for p in [*rnn.parameters(), *head.parameters()]:
            p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape))))
    rnn, head = rnn.to(TORCH_DTYPE[dtype]).eval(), head.to(TORCH_DTYPE[dtype]).eval()
    weights = {f"{cell}.{k}": v.numpy() for k, v in rnn.state_dict().items()}
    weights |= {f"head.{k}": v.numpy() for k, v in head.state_dict().items()}

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, _ = rnn(torch.from_numpy(x))
            return head(out[:, -1, :]).numpy()

    return weights, run


def assert_close(got: np.ndarray, want: np.ndarray, *, rtol: float, scale: float | None = None) -> None:
    """Relative to the output's scale: an output near 0 is a sum of cancelling terms, not a 1e-5 quantity.

    ``scale`` (default: the largest output) is the magnitude the head's sum works at; see ``head_scale``."""
    assert got.dtype == want.dtype and got.shape == want.shape
    scale = max(float(np.abs(want).max()), scale or 0.0, 1e-30)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def head_scale(weights: dict) -> float:
    """The largest output the head can give: y = W h + b with |h| <= 1 (tanh- and gate-bounded), so
    float rounding in the recurrence shows up relative to sum|W| + |b|, not to a y that cancels to ~0."""
    w, b = np.abs(weights["head.weight"]), np.abs(weights["head.bias"])
    return float((w.sum(axis=1) + b).max())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(nf.CELLS),
    dtype=st.sampled_from([np.float32, np.float64]),
    layers=st.integers(1, 3),
    hidden=st.integers(1, 128),
    lookback=st.integers(2, 300),
    horizon=st.integers(1, 10),
    n_features=st.integers(1, 5),
    batch=st.integers(1, 4),
    scale=st.sampled_from([0.5, 1.0, 3.0]),  # 1.0 is torch's own init bound; 3.0 saturates gates
    seed=st.integers(0, 2**32 - 1),
)
def test_numpy_matches_torch(cell, dtype, layers, hidden, lookback, horizon, n_features, batch, scale, seed):
    weights, run_torch = torch_model(
        cell, n_features=n_features, hidden=hidden, layers=layers, horizon=horizon, dtype=dtype, scale=scale,
        seed=seed,
    )
    x = np.random.default_rng(seed + 1).normal(0, 1.5, (batch, lookback, n_features)).astype(dtype)
    model = nf.NumpyRNN(weights)
    assert model.arch == nf.Architecture(cell, layers, hidden, n_features, horizon)
    assert_close(model.forward(x), run_torch(x), rtol=RTOL[dtype], scale=head_scale(weights))


def test_requested_dtype_overrides_the_weights():
    weights, run_torch = torch_model("gru", n_features=2, hidden=8, layers=2, horizon=3, dtype=np.float64,
                                     scale=1.0, seed=5)
    x = np.random.default_rng(0).normal(size=(5, 20, 2))
    got = nf.forward({k: v.astype("float32") for k, v in weights.items()}, x, dtype="float64")
    assert got.dtype == np.float64
    assert_close(got, run_torch(x), rtol=1e-6)  # the float32-rounded weights bound the agreement


def test_batches_larger_than_a_chunk_give_the_same_rows(monkeypatch):
    weights, run_torch = torch_model("lstm", n_features=3, hidden=16, layers=2, horizon=2, dtype=np.float64,
                                     scale=1.0, seed=9)
    x = np.random.default_rng(1).normal(size=(50, 30, 3))
    monkeypatch.setattr(nf, "CHUNK_BYTES", 1)  # one row per chunk
    assert_close(nf.forward(weights, x), run_torch(x), rtol=1e-9)


# -- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lookback", [1, 2, 7, 20])
def test_windows_equal_torch_unfold(lookback):
    x = np.random.default_rng(2).normal(size=(20, 3)).astype("float32")
    assert np.array_equal(nf.windows(x, lookback), F.windows(torch.from_numpy(x), lookback).numpy())


def test_window_of_origin_t_holds_rows_t_minus_lookback_plus_1_to_t():
    x = np.arange(30, dtype="float64").reshape(15, 2)
    origins = np.array([3, 14, 9, 3])
    w = nf.windows(x, 4, origins)
    assert w.shape == (4, 4, 2)
    for row, t in zip(w, origins, strict=True):
        assert np.array_equal(row, x[t - 3 : t + 1])


def test_windows_refuse_origins_outside_the_series():
    x = np.zeros((10, 2))
    with pytest.raises(ModelError, match=r"origins must lie in \[3, 9\] \(look-back 4\); got 2\.\.2"):
        nf.windows(x, 4, [2])
    with pytest.raises(ModelError, match=r"got 5\.\.10"):
        nf.windows(x, 4, [5, 10])
    with pytest.raises(ModelError, match="10 feature rows are fewer than the look-back of 11"):
        nf.windows(x, 11)


def test_truncation_rows_after_the_origin_do_not_change_its_forecast():
    weights, _ = torch_model("lstm", n_features=2, hidden=6, layers=2, horizon=2, dtype=np.float32, scale=1.0,
                             seed=3)
    x = np.random.default_rng(4).normal(size=(100, 2)).astype("float32")
    t = 60
    full = nf.forward(weights, nf.windows(x, 12, [t]))
    garbage = x.copy()
    garbage[t + 1 :] = 1e6
    assert np.array_equal(nf.forward(weights, nf.windows(garbage, 12, [t])), full)
    assert np.array_equal(nf.forward(weights, nf.windows(x[: t + 1], 12, [t])), full)


# -- refusals --------------------------------------------------------------------------------------


def _lstm_weights():
    weights, _ = torch_model("lstm", n_features=2, hidden=4, layers=2, horizon=1, dtype=np.float32, scale=1.0,
                             seed=0)
    return dict(weights)


def test_missing_parameter_is_named():
    w = _lstm_weights()
    del w["lstm.bias_hh_l1"]
    with pytest.raises(CheckpointError, match=r"no 'lstm.bias_hh_l1'"):
        nf.NumpyRNN(w)


def test_wrong_shape_is_named():
    w = _lstm_weights()
    w["lstm.weight_hh_l1"] = np.zeros((16, 5), dtype="float32")
    with pytest.raises(CheckpointError, match=r"lstm.weight_hh_l1 has shape \(16, 5\), expected \(16, 4\)"):
        nf.NumpyRNN(w)


def test_bidirectional_or_mixed_cells_are_refused():
    w = _lstm_weights()
    w["lstm.weight_ih_l0_reverse"] = w["lstm.weight_ih_l0"]
    with pytest.raises(CheckpointError, match="unexpected parameter 'lstm.weight_ih_l0_reverse'"):
        nf.NumpyRNN(w)
    w = _lstm_weights()
    w["gru.weight_ih_l0"] = w["lstm.weight_ih_l0"]
    with pytest.raises(CheckpointError, match="no single recurrent cell.*found: gru, lstm"):
        nf.NumpyRNN(w)


def test_input_of_the_wrong_width_is_refused():
    with pytest.raises(ModelError, match=r"must be \[batch, lookback, 2\] \(got shape \(1, 5, 3\)\)"):
        nf.forward(_lstm_weights(), np.zeros((1, 5, 3), dtype="float32"))


def test_unreadable_weights_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read the weights in"):
        nf.load_weights(bad)
    with pytest.raises(CheckpointError, match="cannot read the weights in"):
        nf.load_weights(tmp_path / "missing.safetensors")


# -- a real run, trained and saved by today's code ------------------------------------------------


@pytest.mark.parametrize("target", ["return", "price"])
def test_saved_run_numpy_matches_torch(store, data_dir, target):
    from lstmcast import checkpoint
    from lstmcast.model import ModelConfig
    from lstmcast.train import TrainConfig, train_series

    key = SeriesKey("import", "RW", "1d")
    frame = random_walk_frame(200, seed=11)
    store.upsert(key, frame, market="crypto", replace=True)
    feats = F.FeatureConfig(lookback=12, horizon=3, target=target)
    report = train_series(
        store, "RW", features=feats, model=ModelConfig(hidden=8, layers=2),
        train=TrainConfig(epochs=2, batch_size=32, seed=0, threads=1, device="cpu"),
    )
    weights = nf.load_weights(report.run.path / checkpoint.WEIGHTS)
    model = nf.NumpyRNN(weights)
    assert model.arch == nf.Architecture("lstm", 2, 8, len(report.fitted.feature_names), 3)
    assert model.dtype == np.float32  # as saved

    loaded = checkpoint.load_run(data_dir, key, device="torch")  # the torch artifact, to compare against
    prepared = F.prepare(frame, kind="price", features=feats)
    origins = np.arange(feats.lookback - 1, len(prepared))
    x = nf.windows(loaded.fitted.scaler.transform(prepared.raw), feats.lookback, origins)
    # the network's own output, same windows
    with torch.inference_mode():
        want = loaded.fitted.module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert_close(model.forward(x), want, rtol=1e-5)
    # and the predicted close, as predict computes it today with torch
    y = loaded.fitted.scaler.inverse_target(model.forward(x))
    close = prepared.close[origins][:, None] * np.exp(np.cumsum(y, axis=1)) if target == "return" else y
    np.testing.assert_allclose(close, loaded.predict_close(prepared, origins), rtol=1e-5)


# -- no torch --------------------------------------------------------------------------------------


def test_loading_and_forecasting_never_imports_torch(tmp_path):
    """A subprocess loads saved weights, builds windows and forecasts; torch must stay out of sys.modules."""
    from safetensors.numpy import save_file

    weights, run_torch = torch_model("gru", n_features=3, hidden=5, layers=2, horizon=2, dtype=np.float32,
                                     scale=1.0, seed=8)
    path = tmp_path / "model.safetensors"
    save_file({f"weights.{k}": v for k, v in weights.items()} | {"calibration.residuals": np.zeros((4, 2))},
              str(path))
    x = np.random.default_rng(5).normal(size=(40, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    want = run_torch(np.ascontiguousarray(nf.windows(x, 10, [9, 39])))
    code = (
        "import sys, numpy as np\n"
        "from lstmcast.forecasters.rnn import numpy_forward as nf\n"
        f"w = nf.load_weights({str(path)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, nf.NumpyRNN(w).forward(nf.windows(x, 10, [9, 39])))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not heavy, heavy[:5]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert_close(np.load(tmp_path / "y.npy"), want, rtol=1e-5)
