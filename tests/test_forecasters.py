"""Every family behind the one Forecaster protocol: no leakage (truncation), state round trip,
the GRU's tensor names, the LSTM's numbers unchanged, the linear fit's closed form."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_series import random_walk_frame
from lstmcast import features as F
from lstmcast.forecasters import FAMILIES, forecaster, load_artifact
from lstmcast.settings import Settings

S = Settings(lookback=10, horizon=2, hidden=4, layers=1, dropout=0.0, epochs=2, batch_size=32, threads=1,
             device="cpu", seed=3)


@pytest.fixture(scope="module")
def frame():
    return random_walk_frame(240)


@pytest.fixture(scope="module")
def prepared(frame):
    return F.prepare(frame, kind="price", features=F.FeatureConfig.from_settings(S))


@pytest.mark.parametrize("family", FAMILIES)
def test_truncation_every_family(family, frame, prepared):
    """Deleting (or wildly rewriting) bars after t leaves the forecast made at t unchanged."""
    s = S.with_values({"family": family})
    t = 180
    full = forecaster(s).fit(prepared, end=t + 1)
    short_prep = F.prepare(frame.iloc[: t + 1], kind="price", features=F.FeatureConfig.from_settings(s))
    short = forecaster(s).fit(short_prep)
    origins = np.array([t - 5, t])
    np.testing.assert_array_equal(full.predict_close(prepared, origins), short.predict_close(short_prep, origins))
    wild = frame.copy()
    wild.iloc[t + 1 :, :4] *= 50.0
    wild_prep = F.prepare(wild, kind="price", features=F.FeatureConfig.from_settings(s))
    again = forecaster(s).fit(wild_prep, end=t + 1)
    np.testing.assert_array_equal(again.predict_close(wild_prep, origins), full.predict_close(prepared, origins))
    assert full.predict_close(prepared, origins).shape == (2, 2)


@pytest.mark.parametrize("family", FAMILIES)
def test_state_round_trip_predicts_the_same(family, prepared):
    fitted = forecaster(S.with_values({"family": family})).fit(prepared)
    tensors, meta = fitted.state()
    assert meta["family"] == family and all(isinstance(v, np.ndarray) for v in tensors.values())
    back = load_artifact(family, tensors, meta)
    origins = np.arange(50, 60)
    if family in ("lstm", "gru"):
        # on the CPU the recurrent families load as the numpy artifact (no torch): float32 rounding apart
        assert type(back).__name__ == "NumpyFitted"
        np.testing.assert_allclose(back.predict_close(prepared, origins), fitted.predict_close(prepared, origins),
                                   rtol=1e-5)
        back = load_artifact(family, tensors, meta, device="torch")
    np.testing.assert_array_equal(back.predict_close(prepared, origins), fitted.predict_close(prepared, origins))


def test_rnn_tensor_names_are_the_contract(prepared):
    gru = forecaster(S.with_values({"family": "gru"})).fit(prepared).state()[0]
    assert set(gru) == {"weights.gru.weight_ih_l0", "weights.gru.weight_hh_l0", "weights.gru.bias_ih_l0",
                        "weights.gru.bias_hh_l0", "weights.head.weight", "weights.head.bias"}
    lstm = forecaster(S).fit(prepared).state()[0]
    assert "weights.lstm.weight_ih_l0" in lstm and "weights.head.weight" in lstm


def test_lstm_family_gives_the_old_loops_numbers(prepared):
    from lstmcast import train as T

    old = T.fit(prepared, features=F.FeatureConfig.from_settings(S), model=S.network(), train=S.training())
    new = forecaster(S).fit(prepared)
    origins = np.arange(100, 120)
    np.testing.assert_array_equal(new.predict_close(prepared, origins), old.predict_close(prepared, origins))


def test_linear_is_the_closed_form_ridge(prepared):
    fitted = forecaster(S.with_values({"family": "linear", "ridge_alpha": 0.0})).fit(prepared)
    # with alpha 0 the centred normal equations hold: X'(y - X b - c) = 0 on the training windows
    sp = F.split(len(prepared), features=fitted.features, val_fraction=S.val_fraction)
    lb = fitted.features.lookback
    scaled = fitted.scaler.transform(prepared.raw)
    x = np.stack([scaled[o - lb + 1 : o + 1].reshape(-1) for o in sp.train_origins]).astype("float64")
    y = fitted.scaler.transform_target(prepared.target[sp.train_origins[:, None] + np.arange(1, 3)]).astype("float64")
    resid = y - x @ fitted.coef - fitted.intercept
    assert np.abs(x.T @ resid).max() < 1e-6 and np.abs(resid.mean(axis=0)).max() < 1e-9


def test_baseline_family_matches_the_baseline_functions(prepared):
    from lstmcast.evaluate.baselines import baseline_forecasts

    origins = np.arange(30, 40)
    for name in ("naive", "drift", "moving_average", "mean_return"):
        fitted = forecaster(S.with_values({"family": name})).fit(prepared)
        np.testing.assert_array_equal(fitted.predict_close(prepared, origins),
                                      baseline_forecasts(prepared.close, origins, 2)[name])
