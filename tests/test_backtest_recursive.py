"""`backtest --horizon N` scores what `predict --horizon N` gives: steps up to the trained horizon H
direct, later ones recursive, each fold's intervals calibrated as predict's (no residual after the
refit origin); per-step method, MAE, MASE, skill and coverage in the table, --json and --output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers_series import random_walk_frame
from lstmcast.data.store import SeriesKey, Store
from lstmcast.evaluate import conformal
from lstmcast.evaluate.backtest import BacktestConfig
from lstmcast.executor import make_executor
from lstmcast.features import FeatureConfig, prepare
from lstmcast.forecasters import forecaster
from lstmcast.forecasters.recursive import predict_ahead, step_intervals
from lstmcast.pipelines.backtest import RefitTask, backtest_many, refit_tasks, run_refit
from lstmcast.registry import residuals
from lstmcast.settings import Settings

TINY = Settings(lookback=10, hidden=8, layers=1, epochs=2, patience=5, threads=1, seed=7)  # horizon 1
CFG = BacktestConfig(horizon=1, refit_every=40, intervals="adaptive")
SMALL = ["--lookback", "10", "--hidden", "8", "--layers", "1", "--epochs", "2", "--refit-every", "40",
         "--start", "2020-06-01", "--executor", "serial"]
KEY = SeriesKey("import", "RW", "1d")


@pytest.fixture
def rw(store: Store) -> Store:
    store.upsert(KEY, random_walk_frame(200, seed=2), market="crypto")
    store.upsert(SeriesKey("import", "RW2", "1d"), random_walk_frame(200, seed=3), market="crypto")
    return store


def run(store, specs=("RW",), *, families=("linear",), horizon=None, settings=TINY, executor=None, **kw):
    return backtest_many(store, list(specs), settings_for=lambda _s: settings, families=list(families),
                         config=CFG, start="2020-06-01", horizon=horizon, executor=executor, **kw)


# -- the pipeline -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["lstm", "gru", "linear", "naive", "drift", "moving_average", "mean_return"])
def test_every_family_forecasts_recursive_steps_with_per_step_coverage(rw, family):
    (s,) = run(rw, families=(family,), horizon=4).series
    r = s.first
    assert r.forecast.shape == (len(r.origins), 4) and np.isfinite(r.forecast).all()
    assert r.methods == ["direct", "recursive", "recursive", "recursive"]
    assert r.config.trained_horizon == 1 and r.config.horizon == 4
    steps = r.steps()
    assert [st["method"] for st in steps] == r.methods and [st["step"] for st in steps] == [1, 2, 3, 4]
    for st in steps:
        for cov in (st["predict_coverage"], st["coverage"]):
            assert set(cov) == {"0.8", "0.95"}
        pc = st["predict_coverage"]["0.8"]
        assert pc["n"] > 0 and 0 <= pc["observed"] <= 1  # the recursive steps have intervals, and are scored
        assert np.isfinite(st["mae"]) and np.isfinite(st["mase"]) and st["skill"] == pytest.approx(1 - st["mae_ratio"])
    assert r.predict_coverage[0.95]["n_by_step"][3] == len(r.origins)


def test_a_fold_forecasts_and_bounds_exactly_as_predict_does(rw):
    """Each fold's forecasts are predict_ahead of the model fitted on [start, end), and its intervals
    step_intervals with last_row = the refit origin (end - 1): what predict computes at that origin."""
    (s,) = run(rw, horizon=3).series
    r = s.first
    prepared = prepare(rw.load(KEY), kind="price", features=FeatureConfig.from_settings(TINY))
    settings = TINY.model_copy(update={"family": "linear"})
    at = 0
    for fold in r.plan.folds:
        fitted = forecaster(settings).fit(prepared, start=fold.start, end=fold.end)
        pred = predict_ahead(fitted, prepared, fold.origins, horizon=3)
        rows = slice(at, at + len(fold.origins))
        np.testing.assert_array_equal(r.forecast[rows], pred)
        bands, counts = step_intervals(fitted, prepared, pred, direct_residuals=residuals(fitted, kind="price"),
                                       levels=(0.8, 0.95), mode="log", last_row=fold.end - 1)
        for lv, (lo, hi) in bands.items():
            np.testing.assert_array_equal(r.predict_intervals[lv][0][rows], lo)
            np.testing.assert_array_equal(r.predict_intervals[lv][1][rows], hi)
        assert counts[1] > 0
        at += len(fold.origins)


def test_trained_horizon_above_n_uses_its_first_n_direct_steps(rw):
    three = TINY.model_copy(update={"horizon": 3})
    direct = run(rw, settings=three, horizon=3, end="2020-07-10").series[0].first
    first2 = run(rw, settings=three, horizon=2, end="2020-07-10").series[0].first
    np.testing.assert_array_equal(direct.origins, first2.origins)
    np.testing.assert_array_equal(first2.forecast, direct.forecast[:, :2])
    assert first2.methods == ["direct", "direct"] and first2.config.trained_horizon == 3
    for lv in (0.8, 0.95):
        np.testing.assert_array_equal(first2.predict_intervals[lv][0], direct.predict_intervals[lv][0][:, :2])


def test_trained_horizon_equal_to_n_is_the_direct_backtest(rw):
    five = TINY.model_copy(update={"horizon": 2})
    r = run(rw, settings=five, horizon=None).series[0].first  # N defaults to H
    assert r.methods == ["direct", "direct"] and r.forecast.shape[1] == 2


def _numbers(multi):
    return {(s.key.spec, f): np.stack([r.forecast, r.predict_intervals[0.8][0], r.intervals[0.95][1]])
            for s in multi.series for f, r in s.results.items()}


_MANY = dict(specs=("RW", "RW2"), families=("lstm", "linear"), horizon=3)


@pytest.mark.slow
def test_serial_and_local_pool_give_identical_recursive_numbers(rw):
    serial = _numbers(run(rw, executor=lambda n: make_executor("serial", n_tasks=n, workers=2), **_MANY))
    multi = run(rw, executor=lambda n: make_executor("local", n_tasks=n, workers=2), **_MANY)
    local = _numbers(multi)
    assert list(serial) == list(local) and len(serial) == 4 and multi.tasks == 8
    for k in serial:
        np.testing.assert_array_equal(serial[k], local[k])  # NaN (no interval yet) equals NaN
        assert np.isfinite(serial[k][1]).all()  # every fold's predict intervals, recursive steps too


@pytest.mark.ray
@pytest.mark.slow
def test_ray_gives_the_serial_recursive_numbers(rw):
    pytest.importorskip("ray")
    serial = _numbers(run(rw, executor=lambda n: make_executor("serial", n_tasks=n, workers=2), **_MANY))
    ray = _numbers(run(rw, executor=lambda n: make_executor("ray", n_tasks=n, workers=2), **_MANY))
    assert list(serial) == list(ray)
    for k in serial:
        np.testing.assert_array_equal(serial[k], ray[k])


# -- no leakage: deleting bars after t leaves the fold's forecast and interval at t unchanged --------


@pytest.mark.parametrize("family", ["lstm", "linear", "naive"])
@pytest.mark.parametrize("which", ["refit origin", "later origin"])
def test_truncation_recursive_forecast_and_interval_at_t(rw, family, which):
    frame = rw.load(KEY)
    settings = TINY.model_copy(update={"family": family, "horizon": 2})
    (s,) = run(rw, families=(family,), settings=settings, horizon=5).series
    fold = s.first.plan.folds[1]
    t = int(fold.origins[0] if which == "refit origin" else fold.origins[len(fold.origins) // 2])
    (task,) = [tk.payload for tk in refit_tasks(_plan(rw, settings, horizon=5), [family]) if tk.payload.refit == 1]
    feats = FeatureConfig.from_settings(settings)

    def at_t(bars: pd.DataFrame):
        one = RefitTask(**{**task.__dict__, "origins": fold.origins[fold.origins <= t]})
        out = run_refit(one, {task.series: prepare(bars, kind="price", features=feats)})
        return out.forecast[-1], {lv: (lo[-1], hi[-1]) for lv, (lo, hi) in out.bounds.items()}

    full_pred, full_bounds = at_t(frame)
    cut_pred, cut_bounds = at_t(frame.iloc[: t + 1])
    np.testing.assert_array_equal(full_pred, cut_pred)
    assert set(full_bounds) == {0.8, 0.95}
    for lv in full_bounds:
        np.testing.assert_array_equal(full_bounds[lv][0], cut_bounds[lv][0])
        np.testing.assert_array_equal(full_bounds[lv][1], cut_bounds[lv][1])
        assert np.isfinite(full_bounds[lv][0][2:]).all()  # the recursive steps (3..5) have intervals
    # and the assembled backtest holds the same numbers at t (torch's float32 sums depend on the batch)
    i = int(np.flatnonzero(s.first.origins == t)[0])
    np.testing.assert_allclose(s.first.forecast[i], full_pred, rtol=1e-6)
    np.testing.assert_allclose(s.first.predict_intervals[0.8][0][i], full_bounds[0.8][0], rtol=1e-6)


def _plan(store, settings, *, horizon):
    import dataclasses

    from lstmcast.pipelines.backtest import plan_series

    cfg = dataclasses.replace(CFG, horizon=horizon)
    return plan_series(store, "RW", interval="1d", settings=settings, config=cfg, start="2020-06-01")


def test_recursive_calibration_drops_residuals_after_the_refit_origin(rw):
    """The fold's recursive residuals: no target after fitted.end - 1 (a later bar would be a peek)."""
    from lstmcast.forecasters.recursive import recursive_residuals

    prepared = prepare(rw.load(KEY), kind="price", features=FeatureConfig.from_settings(TINY))
    fitted = forecaster(TINY.model_copy(update={"family": "linear"})).fit(prepared, start=0, end=150)
    res = recursive_residuals(fitted, prepared, horizon=4, mode="log", last_row=fitted.end - 1)
    targets = fitted.val_origins[: len(res)][:, None] + np.arange(1, 5)[None, :]
    assert np.isnan(res[targets > fitted.end - 1]).all() and np.isfinite(res[targets <= fitted.end - 1]).all()
    assert conformal.fit(res[:, 1:], levels=(0.8,)).n[0] > 0


# -- the CLI -----------------------------------------------------------------------------------------


def test_cli_horizon_5_with_a_1_step_setup_prints_each_steps_coverage(cli, rw):
    r = cli("backtest", "RW", "--model-family", "linear", *SMALL, "--horizon", "5")
    assert r.exit_code == 0, r.output
    assert "per step" in r.stdout and "predict 80%" in r.stdout and "predict 95%" in r.stdout
    rows = [ln.split("│")[1:3] for ln in r.stdout.splitlines() if ln.count("│") > 8 and "%" in ln]
    assert [(a.strip(), b.strip()) for a, b in rows] == [("1", "direct")] + [(str(k), "recursive") for k in range(2, 6)]
    assert "1 direct + 4 recursive" in r.stderr


def test_cli_multi_family_shows_each_familys_steps(cli, rw):
    r = cli("backtest", "RW", "--model-family", "linear,naive", *SMALL, "--horizon", "3")
    assert r.exit_code == 0, r.output
    assert "per step (linear)" in r.stdout and "per step (naive)" in r.stdout


def test_cli_json_steps_and_records_carry_the_method(cli, rw, tmp_path):
    from jsonschema import validate

    from json_schemas import BACKTEST

    out = tmp_path / "bt.csv"
    r = cli("backtest", "RW", "--model-family", "linear", *SMALL, "--horizon", "3", "--json", "--output", str(out))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    validate(d, BACKTEST)
    assert d["config"]["horizon"] == 3 and d["config"]["trained_horizon"] == 1
    assert [s["method"] for s in d["steps"]] == ["direct", "recursive", "recursive"]
    assert d["steps"][2]["predict_coverage"]["0.8"]["n"] == d["n_origins"]
    assert {rec["method"] for rec in d["records"] if rec["step"] == 1} == {"direct"}
    assert {rec["method"] for rec in d["records"] if rec["step"] == 3} == {"recursive"}
    table = pd.read_csv(out)
    assert list(table.columns[:6]) == ["series", "family", "origin_time", "target_time", "step", "method"]
    assert (table.loc[table["step"] > 1, "method"] == "recursive").all()
    # --json's records are the --output rows of the first family
    assert len(d["records"]) == len(table) and d["records"][5]["forecast"] == pytest.approx(table["forecast"][5])


def test_cli_plot_adds_one_figure_of_error_and_coverage_by_step(cli, rw, tmp_path):
    png = tmp_path / "bt.png"
    r = cli("backtest", "RW", "--model-family", "linear", *SMALL, "--horizon", "3", "--plot", str(png), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    steps = tmp_path / "bt-steps.png"
    assert d["plot"] == str(png) and d["plot_steps"] == str(steps)
    for p in (png, steps):  # step 1's forecast plot stays; the per-step figure sits beside it
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["bt-steps.png", "bt.png"]
    r = cli("backtest", "RW", "--model-family", "linear", *SMALL, "--horizon", "3", "--plot", str(png))
    assert f"plot: {png}" in r.stdout and "bt-steps.png" in r.stdout


def test_cli_train_horizon_sets_the_trained_model(cli, rw):
    r = cli("backtest", "RW", "--model-family", "linear", *SMALL, "--train-horizon", "3", "--horizon", "3", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [s["method"] for s in d["steps"]] == ["direct"] * 3 and d["setup"]["features"]["horizon"] == 3


@pytest.mark.parametrize(("args", "message"), [
    (["--train-horizon", "0"], "--train-horizon must be at least 1 (got 0)"),
    (["--train-horizon", "1001"], "--train-horizon must be at most 1000"),
    (["--horizon", "0"], "--horizon must be at least 1 (got 0)"),
])
def test_cli_horizon_bounds_are_one_line_usage_errors(cli, rw, args, message):
    r = cli("backtest", "RW", *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
