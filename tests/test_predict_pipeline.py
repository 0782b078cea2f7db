"""The torch-free predict pipeline: numpy artifact parity on saved runs, recursion beyond the trained
horizon (known answers, truncation), many symbols in one call, and no torch on the predict side."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import subprocess_env
from helpers_series import random_walk_frame
from lstmcast.data.store import SeriesKey, Store
from lstmcast.features import FeatureConfig, prepare
from lstmcast.forecasters.recursive import predict_ahead, recursive_residuals
from test_startup import imported_modules

SMALL = ["--lookback", "10", "--hidden", "8", "--layers", "1", "--epochs", "2", "--threads", "1"]


# -- recursion: known answers and truncation -------------------------------------------------------


@dataclass
class RepeatLastReturn:
    """A stub artifact: predicts close[t] * exp(k * r_t) for step k, r_t the log return feature at t."""

    family: str
    features: FeatureConfig
    feature_names: tuple[str, ...] = ("log_return",)
    val_origins: np.ndarray = None  # type: ignore[assignment]

    def predict_close(self, prepared, origins):
        o = np.asarray(origins)
        r = prepared.raw[o, 0].astype("float64")[:, None]
        k = np.arange(1, self.features.horizon + 1)[None, :]
        return prepared.close[o][:, None] * np.exp(k * r)


def _geometric(n: int = 60, r: float = 0.01) -> pd.DataFrame:
    close = 100 * np.exp(r * np.arange(n))
    idx = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx)


@pytest.mark.parametrize("family", ["linear", "custom"])  # stacked (window families) and per-origin paths
@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_recursion_feeds_predictions_back(family, horizon):
    feats = FeatureConfig(lookback=5, horizon=horizon, features=("log_return",))
    prepared = prepare(_geometric(), kind="price", features=feats)
    fitted = RepeatLastReturn(family=family, features=feats)
    origins = np.array([10, 30, 59])
    got = predict_ahead(fitted, prepared, origins, horizon=7)
    want = prepared.close[origins][:, None] * np.exp(0.01 * np.arange(1, 8))[None, :]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # within the trained horizon it is the direct forecast
    np.testing.assert_allclose(predict_ahead(fitted, prepared, origins, horizon=horizon),
                               fitted.predict_close(prepared, origins))


def test_recursive_forecast_and_calibration_read_no_row_after_the_origin(cli, data_dir):
    """Truncation: deleting bars after t leaves the recursive forecast at t and its residuals unchanged."""
    from lstmcast import registry

    store = Store(data_dir)
    store.upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(200, seed=3), market="crypto")
    r = cli("train", "RW", *SMALL, "--horizon", "2", "--json")
    assert r.exit_code == 0, r.output
    key = store.resolve("RW", "1d")
    loaded = registry.load_run(data_dir, key)
    frame = store.load(key)
    full = prepare(frame, kind="price", features=loaded.features)
    t = int(loaded.fitted.val_origins[len(loaded.fitted.val_origins) // 2])
    cut = prepare(frame.iloc[: t + 1], kind="price", features=loaded.features)
    np.testing.assert_array_equal(predict_ahead(loaded.fitted, full, [t], horizon=6),
                                  predict_ahead(loaded.fitted, cut, [t], horizon=6))
    a = recursive_residuals(loaded.fitted, full, horizon=6, mode="log", last_row=t)
    b = recursive_residuals(loaded.fitted, cut, horizon=6, mode="log", last_row=t)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).any() and np.isnan(a[-1, -1])  # the last origins' far targets are after t
    # what a backtest fold calibrates on: direct residuals for steps <= 2, recursive ones after
    from lstmcast.forecasters.recursive import calibration_residuals

    c = calibration_residuals(loaded.fitted, cut, horizon=6, mode="log", last_row=t)
    np.testing.assert_allclose(c[: len(loaded.residuals), :2], loaded.residuals, rtol=1e-12)
    np.testing.assert_array_equal(c[: len(a), 2:], a[:, 2:])


# -- parity of the numpy artifact with torch on saved runs ----------------------------------------


@pytest.mark.parametrize("family,extra", [("lstm", ["--layers", "2"]), ("gru", ["--layers", "1", "--target", "price"])])
def test_numpy_artifact_matches_torch_on_a_saved_run(cli, data_dir, family, extra):
    from lstmcast import registry

    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(200, seed=4), market="crypto")
    args = ["--lookback", "10", "--hidden", "8", "--epochs", "2", "--threads", "1", "--horizon", "3",
            "--model-family", family, *extra]
    r = cli("train", "RW", *args, "--json")
    assert r.exit_code == 0, r.output
    key = Store(data_dir).resolve("RW", "1d")
    fast = registry.load_run(data_dir, key)
    slow = registry.load_run(data_dir, key, device="torch")
    assert type(fast.fitted).__name__ == "NumpyFitted" and type(slow.fitted).__name__ == "Fitted"
    prepared = prepare(Store(data_dir).load(key), kind="price", features=fast.features)
    origins = np.arange(fast.features.lookback - 1, len(prepared))
    np.testing.assert_allclose(fast.predict_close(prepared, origins), slow.predict_close(prepared, origins),
                               rtol=1e-5)
    tensors, meta = fast.fitted.state()  # the numpy artifact round-trips like the torch one
    want_t, want_m = slow.fitted.state()
    assert set(tensors) == set(want_t) and meta["scaler"] == want_m["scaler"]


# -- the command -----------------------------------------------------------------------------------


@pytest.fixture
def two_models(cli, data_dir):
    store = Store(data_dir)
    store.upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(200, seed=2), market="crypto")
    store.upsert(SeriesKey("import", "LIN", "1d"), random_walk_frame(150, seed=5), market="crypto")
    store.upsert(SeriesKey("import", "NOMODEL", "1d"), random_walk_frame(50, seed=6), market="crypto")
    assert cli("train", "RW", *SMALL).exit_code == 0
    assert cli("train", "LIN", "--model-family", "linear", "--lookback", "5", "--horizon", "2").exit_code == 0
    return data_dir


def test_horizon_beyond_the_model_is_recursive_with_intervals(cli, two_models):
    r = cli("predict", "RW", "--horizon", "5", "--json")
    assert r.exit_code == 0, r.output
    [d] = json.loads(r.stdout)
    assert [s["method"] for s in d["forecast"]] == ["direct"] + ["recursive"] * 4
    assert d["model"]["trained_horizon"] == 1
    for s in d["forecast"]:
        lo, hi = s["intervals"]["0.8"]["lo"], s["intervals"]["0.8"]["hi"]
        assert lo < s["predicted_close"] < hi and s["calibration_residuals"] > 0
    r = cli("predict", "RW", "--horizon", "5")
    assert r.stdout.count("recursive") >= 4 and "steps after 1 are recursive" in r.stdout


def test_many_symbols_one_table_and_failures_do_not_hide_the_others(cli, two_models):
    r = cli("predict", "RW", "LIN", "NOMODEL", "--horizon", "3", "--json")
    assert r.exit_code == 3
    d = json.loads(r.stdout)
    assert [x["series"] for x in d] == ["import:RW", "import:LIN", "NOMODEL"]
    assert [x["ok"] for x in d] == [True, True, False]
    assert [s["method"] for s in d[1]["forecast"]] == ["direct", "direct", "recursive"]
    assert "no current model" in d[2]["error"] and d[2]["exit_code"] == 1
    assert "NOMODEL" in r.stderr
    r = cli("predict", "RW", "LIN", "NOMODEL")
    assert r.exit_code == 3
    assert "import:RW 1d" in r.stdout and "import:LIN 1d" in r.stdout


def test_predict_all_takes_every_series_with_a_current_model(cli, two_models):
    r = cli("predict", "--all", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(x["series"] for x in json.loads(r.stdout)) == ["import:LIN", "import:RW"]
    assert cli("predict", "RW", "--all").exit_code == 2
    assert cli("predict").exit_code == 2
    assert cli("predict", "RW", "LIN", "--model", "x").exit_code == 2


# -- no torch on the predict side ------------------------------------------------------------------


def _modules(data_dir: Path, *args: str) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstmcast", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=300, env=subprocess_env(OMP_NUM_THREADS="1"),
    )
    assert r.returncode in (0, 3), r.stderr[-2000:]
    modules = imported_modules(r.stderr)
    assert "lstmcast.cli.main" in modules
    return modules


@pytest.mark.slow
def test_predict_side_commands_import_no_torch(cli, two_models, tmp_path):
    run_id = json.loads(cli("models", "list", "--json").stdout)[0]["run_id"]
    toml = tmp_path / "run.toml"
    toml.write_text('[[watchlist]]\nsymbol = "RW"\nsource = "import"\n')
    commands = [
        ("predict", "RW"), ("predict", "RW", "--horizon", "4"), ("predict", "--all"),
        ("models", "list"), ("models", "show", run_id), ("data", "show", "RW"), ("data", "list"),
        ("run", "--config", str(toml)),  # a current, fresh model: the run only forecasts
        ("forecasts", "RW"),  # what the run wrote
    ]
    for args in commands:
        modules = _modules(two_models, *args)
        assert not [m for m in modules if m.split(".")[0] == "torch"], f"{args} imported torch"


def test_help_and_version_import_neither_pydantic_nor_pandas(tmp_path):
    for args in (("--help",), ("--version",)):
        modules = _modules(tmp_path, *args)
        heavy = sorted(m for m in modules if m.split(".")[0] in ("pydantic", "pandas", "torch", "numpy"))
        assert heavy == [], f"{args} imported {heavy[:5]}"
