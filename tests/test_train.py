import numpy as np
import pytest
import torch

from helpers_series import random_walk_frame, sine_frame
from lstmcast import features as F
from lstmcast import train as T
from lstmcast.errors import ConfigError, ModelError
from lstmcast.evaluate.metrics import rmse
from lstmcast.model import ModelConfig

FC = F.FeatureConfig(lookback=10, horizon=2)
MC = ModelConfig(hidden=4, layers=1, dropout=0.0)
TC = T.TrainConfig(epochs=3, batch_size=32, threads=1, device="cpu", seed=3)


@pytest.fixture(scope="module")
def frame():
    return random_walk_frame(240)


@pytest.fixture(scope="module")
def prepared(frame):
    return F.prepare(frame, kind="price", features=FC)


def weights(fitted):
    return {k: v.clone() for k, v in fitted.module.state_dict().items()}


def test_fit_shapes_and_val_arrays(prepared):
    f = T.fit(prepared, features=FC, model=MC, train=TC)
    n = len(f.val_origins)
    assert f.val_pred.shape == f.val_actual.shape == (n, 2)
    np.testing.assert_array_equal(f.val_actual[:, 0], prepared.close[f.val_origins + 1])
    assert len(f.history) <= 3 and not f.interrupted and not f.module.training
    assert f.train_end <= f.val_origins[0] + 1


def test_same_seed_same_weights_bit_for_bit(prepared):
    a, b = (
        weights(T.fit(prepared, features=FC, model=ModelConfig(hidden=4, layers=2, dropout=0.2), train=TC))
        for _ in range(2)
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = weights(
        T.fit(
            prepared,
            features=FC,
            model=ModelConfig(hidden=4, layers=2, dropout=0.2),
            train=T.TrainConfig(**{**TC.to_dict(), "seed": 4}),
        )
    )
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_fit_leaves_global_torch_state_alone(prepared):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    T.fit(prepared, features=FC, model=MC, train=T.TrainConfig(**{**TC.to_dict(), "deterministic": True}))
    torch.testing.assert_close(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_truncation_deleting_bars_after_t_does_not_change_forecast_at_t(frame, prepared):
    t = 180
    full = T.fit(prepared, features=FC, model=MC, train=TC, end=t + 1)
    short_prep = F.prepare(frame.iloc[: t + 1], kind="price", features=FC)
    short = T.fit(short_prep, features=FC, model=MC, train=TC)
    origins = np.array([t - 5, t])
    np.testing.assert_array_equal(
        full.predict_close(prepared, origins), short.predict_close(short_prep, origins)
    )
    # and rewriting the future wildly changes nothing either
    wild = frame.copy()
    wild.iloc[t + 1 :, :4] *= 50.0
    wild_prep = F.prepare(wild, kind="price", features=FC)
    again = T.fit(wild_prep, features=FC, model=MC, train=TC, end=t + 1)
    np.testing.assert_array_equal(
        again.predict_close(wild_prep, origins), full.predict_close(prepared, origins)
    )
    assert max(full.val_origins) + FC.horizon <= t  # no validation target at or after end


def test_scaler_is_fitted_on_training_rows_only(frame, prepared):
    f = T.fit(prepared, features=FC, model=MC, train=T.TrainConfig(**{**TC.to_dict(), "epochs": 1}))
    expected = F.Scaler.fit(prepared.raw[: f.train_end], prepared.target[FC.lookback : f.train_end])
    np.testing.assert_allclose(f.scaler.mean, expected.mean)
    np.testing.assert_allclose(f.scaler.std, expected.std)
    assert f.scaler.target_std == pytest.approx(expected.target_std)
    # changing the validation part (after train_end) leaves the scaler unchanged
    other = frame.copy()
    other.iloc[f.train_end :, :4] *= 3.0
    other.iloc[f.train_end :, 4] *= 100.0
    g = T.fit(
        F.prepare(other, kind="price", features=FC),
        features=FC,
        model=MC,
        train=T.TrainConfig(**{**TC.to_dict(), "epochs": 1}),
    )
    assert g.scaler.to_dict() == f.scaler.to_dict()


def test_epochs_zero_is_refused():
    """A run of 0 epochs is no model (issue 10 #6): the one bound of settings.py refuses it."""
    with pytest.raises(ConfigError, match=r"^epochs must be at least 1 \(got 0\)$"):
        T.TrainConfig(**{**TC.to_dict(), "epochs": 0})


def test_ctrl_c_keeps_best_weights_and_marks_interrupted(prepared):
    seen = []

    def progress(s):
        seen.append(s)
        if s.epoch == 2:
            raise KeyboardInterrupt

    f = T.fit(
        prepared,
        features=FC,
        model=MC,
        train=T.TrainConfig(**{**TC.to_dict(), "epochs": 50}),
        progress=progress,
    )
    assert f.interrupted and len(seen) == 2 and f.best_epoch in (1, 2)


def test_sine_wave_price_target_rmse_below_002():
    torch.set_num_threads(1)
    fc = F.FeatureConfig(lookback=10, target="price")
    p = F.prepare(sine_frame(1000), kind="value", features=fc)
    f = T.fit(
        p,
        features=fc,
        model=ModelConfig(hidden=4, layers=1, dropout=0.0),
        train=T.TrainConfig(epochs=40, batch_size=32, lr=1e-2, threads=1, device="cpu"),
    )
    assert rmse(f.val_actual, f.val_pred) < 0.02


def test_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="--device cuda requested but CUDA is not available"):
        T.resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_cuda_matches_cpu_loss_scale(prepared):
    cpu = T.fit(prepared, features=FC, model=MC, train=TC)
    gpu = T.fit(prepared, features=FC, model=MC, train=T.TrainConfig(**{**TC.to_dict(), "device": "cuda"}))
    assert gpu.device.startswith("cuda")
    assert gpu.history[-1].val_loss == pytest.approx(cpu.history[-1].val_loss, rel=0.5)


def test_config_file_and_options(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[train]\nlookback = 20\nbatch-size = 16\nlr = 1\ntarget = "price"\n')
    opts = T.read_config_file(path)
    setup = T.setup_from_options({**opts, "hidden": 8})
    assert setup.features.lookback == 20 and setup.features.target == "price"
    assert setup.train.batch_size == 16 and setup.train.lr == 1.0 and setup.model.hidden == 8
    path.write_text("[train]\nlookbak = 20\n")
    with pytest.raises(ConfigError, match="unknown key 'lookbak'"):
        T.read_config_file(path)
    path.write_text('[train]\nepochs = "many"\n')
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        T.read_config_file(path)
    path.write_text("[backtest]\nfolds = 3\n")
    with pytest.raises(ConfigError, match=r"no \[train\] \(or \[defaults\]\) table"):
        T.read_config_file(path)


def test_validation_dm_is_on_per_origin_losses_like_the_backtest(prepared):
    """For horizon > 1 the DM test takes one loss per origin (the mean over steps), as the backtest does;
    fed the [n, h] error matrix it mixed element variance with per-origin autocovariances."""
    from lstmcast.evaluate.metrics import diebold_mariano

    f = T.fit(prepared, features=FC, model=MC, train=T.TrainConfig(**{**TC.to_dict(), "epochs": 1}))
    naive = np.repeat(prepared.close[f.val_origins][:, None], FC.horizon, axis=1)
    stat, p = diebold_mariano(
        np.abs(f.val_actual - f.val_pred).mean(axis=1), np.abs(f.val_actual - naive).mean(axis=1),
        horizon=FC.horizon, power=1,
    )
    dm = T.validation_metrics(f, prepared)["dm"]
    assert (dm["stat"], dm["p"]) == pytest.approx((stat, p))
