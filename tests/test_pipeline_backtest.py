"""pipelines.backtest: refits x families x series as independent tasks, the same numbers on every
executor, the leaderboard and cross-series table, failures that fail alone; and the CLI on top."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_series import random_walk_frame
from lstmcast.data.store import SeriesKey, Store
from lstmcast.evaluate.backtest import BacktestConfig, walk_forward
from lstmcast.evaluate.crossseries import benjamini_hochberg, cross_series
from lstmcast.executor import make_executor, task_seed
from lstmcast.features import FeatureConfig, prepare
from lstmcast.forecasters import forecaster
from lstmcast.pipelines.backtest import backtest_many, backtest_series
from lstmcast.settings import Settings

TINY = Settings(lookback=10, hidden=8, layers=1, epochs=2, patience=5, threads=1, seed=7)
CFG = BacktestConfig(horizon=1, refit_every=40, intervals="model")
SMALL = ["--lookback", "10", "--hidden", "8", "--layers", "1", "--epochs", "2", "--refit-every", "40",
         "--start", "2020-06-01"]


@pytest.fixture
def two_series(store: Store) -> Store:
    store.upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(200, seed=2), market="crypto")
    store.upsert(SeriesKey("import", "RW2", "1d"), random_walk_frame(200, seed=3), market="crypto")
    return store


def run(store: Store, specs, *, families=("lstm", "linear"), executor=None, settings=TINY):
    return backtest_many(store, specs, settings_for=lambda _s: settings, families=list(families), config=CFG,
                         start="2020-06-01", executor=executor)


def numbers(multi) -> dict:
    return {(s.key.spec, f): (r.forecast.tolist(), r.intervals[0.8][0].tolist(), r.dm["p"])
            for s in multi.series for f, r in s.results.items()}


def test_each_refit_is_the_walk_forward_fold_with_its_task_seed(two_series):
    """Assembling independent tasks gives exactly what the sequential walk-forward gives when each
    fold fits with the seed task_seed(seed, series, refit index, family)."""
    multi = run(two_series, ["RW"], families=("lstm",))
    res = multi.series[0].results["lstm"]
    prepared = prepare(two_series.load(SeriesKey("import", "RW", "1d")), kind="price",
                       features=FeatureConfig.from_settings(TINY))
    calls = iter(range(100))

    def fit(lo, hi):
        i = next(calls)
        s = TINY.model_copy(update={"seed": task_seed(TINY.seed, "import:RW", i, "lstm")})
        return forecaster(s).fit(prepared, start=lo, end=hi)

    ref = walk_forward(prepared.close, origins=res.origins, config=BacktestConfig(horizon=1, refit_every=40,
                       intervals="none"), fit=fit, predict=lambda m, at: m.predict_close(prepared, at))
    np.testing.assert_array_equal(res.forecast, ref.forecast)
    assert res.plan.n_refits == 2 and res.metrics["naive"] == ref.metrics["naive"]


def test_families_share_origins_and_baselines_and_the_leaderboard_has_every_column(two_series):
    multi = run(two_series, ["RW"], families=("lstm", "gru", "linear"))
    s = multi.series[0]
    assert list(s.results) == ["lstm", "gru", "linear"]
    first = s.first
    for r in s.results.values():
        np.testing.assert_array_equal(r.origins, first.origins)
        np.testing.assert_array_equal(r.baselines["naive"], first.baselines["naive"])
    board = s.leaderboard()
    assert [r["forecaster"] for r in board] == ["lstm", "gru", "linear", "naive", "drift", "moving_average",
                                                "mean_return"]
    lstm = board[0]
    assert {"mae", "rmse", "mase", "hit_rate", "coverage", "dm_p_vs_naive", "fit_seconds_per_refit"} <= set(lstm)
    assert set(lstm["coverage"]) == {"0.8", "0.95"} and lstm["fit_seconds_per_refit"] > 0
    assert lstm["dm_p_vs_naive"] == s.results["lstm"].dm["p"]
    assert board[3]["dm_p_vs_naive"] is None and 0 <= board[4]["dm_p_vs_naive"] <= 1


def test_same_seed_same_numbers_and_another_seed_differs(two_series):
    a, b = numbers(run(two_series, ["RW"])), numbers(run(two_series, ["RW"]))
    assert a == b
    c = numbers(run(two_series, ["RW"], settings=TINY.model_copy(update={"seed": 8})))
    assert c[("import:RW", "lstm")] != a[("import:RW", "lstm")]
    assert c[("import:RW", "linear")] == a[("import:RW", "linear")]  # closed form: no seed


@pytest.mark.slow
def test_serial_and_local_pool_give_identical_numbers(two_series):
    serial = run(two_series, ["RW", "RW2"], executor=lambda n: make_executor("serial", n_tasks=n, workers=2))
    local = run(two_series, ["RW", "RW2"], executor=lambda n: make_executor("local", n_tasks=n, workers=2))
    assert numbers(serial) == numbers(local)
    assert serial.tasks == local.tasks == 8  # 2 series x 2 families x 2 refits


@pytest.mark.ray
@pytest.mark.slow
def test_ray_gives_the_serial_numbers(two_series):
    pytest.importorskip("ray")
    serial = run(two_series, ["RW", "RW2"], executor=lambda n: make_executor("serial", n_tasks=n, workers=2))
    ray = run(two_series, ["RW", "RW2"], executor=lambda n: make_executor("ray", n_tasks=n, workers=2))
    assert numbers(serial) == numbers(ray)


def test_a_bad_series_fails_alone(two_series):
    multi = run(two_series, ["RW", "NOPE"], families=("linear",))
    assert [s.key.spec for s in multi.series] == ["import:RW"]
    assert [f.series for f in multi.failures] == ["NOPE"] and "no stored data for NOPE" in multi.failures[0].error


def test_a_failing_task_fails_its_family_only(two_series):
    bad = TINY.model_copy(update={"device": "cuda:7"})  # the lstm fit refuses it; linear has no device
    multi = run(two_series, ["RW"], settings=bad)
    assert list(multi.series[0].results) == ["linear"]
    (f,) = multi.failures
    assert f.task == "import:RW lstm refit 1/2" and "cuda:7" in f.error


def test_backtest_series_is_the_one_family_case(two_series):
    rep = backtest_series(two_series, "RW", settings=TINY.model_copy(update={"family": "linear"}), config=CFG,
                          start="2020-06-01")
    multi = run(two_series, ["RW"], families=("linear",))
    np.testing.assert_array_equal(rep.result.forecast, multi.series[0].first.forecast)
    assert rep.to_dict()["setup"]["family"] == "linear"


def test_benjamini_hochberg_matches_the_textbook():
    adj = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, float("nan")])
    np.testing.assert_allclose(adj[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert np.isnan(adj[4])


def test_cross_series_counts_only_corrected_wins():
    # 20 series, one nominally significant at 0.04: chance, not skill, once corrected.
    rows = [{"series": f"S{i}", "family": "lstm", "mase": 0.9, "naive_mase": 1.0, "mae_ratio": 0.9,
             "dm_p": 0.04 if i == 0 else 0.5} for i in range(20)]
    cs = cross_series(rows, families=["lstm"])
    (sm,) = cs["summary"]
    assert cs["correction"] == "Benjamini-Hochberg"
    assert sm["beats_naive_unadjusted"] == 1 and sm["beats_naive"] == 0
    assert sm["median_mase_ratio"] == pytest.approx(0.9)
    strong = [dict(r, dm_p=1e-6) for r in rows]
    assert cross_series(strong, families=["lstm"])["summary"][0]["beats_naive"] == 20


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_leaderboard_same_seed_same_table(cli, two_series):
    args = ("backtest", "RW", "--model-family", "lstm,gru,linear", *SMALL, "--executor", "serial")
    a, b = cli(*args), cli(*args)
    assert a.exit_code == 0, a.output
    assert "forecast accuracy" in a.stdout and "DM p vs naive" in a.stdout and "fit s/refit" in a.stdout
    for name in ("lstm", "gru", "linear", "naive (baseline)", "mean_return (baseline)"):
        assert name in a.stdout
    table = lambda out: out[out.index("forecast accuracy"):out.index("strategy")].replace(" ", "")  # noqa: E731
    strip_fit = lambda t: [line.rsplit("│", 2)[0] for line in t.splitlines()]  # noqa: E731 (fit times vary)
    assert strip_fit(table(a.stdout)) == strip_fit(table(b.stdout))


def test_cli_json_single_series_keeps_the_old_schema_and_adds_the_leaderboard(cli, two_series, tmp_path):
    png = tmp_path / "bt.png"
    r = cli("backtest", "RW", "--model-family", "lstm,linear", *SMALL, "--executor", "serial", "--json",
            "--plot", str(png))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["plan"]["n_refits"] == 2 and d["verdict"].startswith("beats naive: ")
    assert [row["forecaster"] for row in d["leaderboard"]][:2] == ["lstm", "linear"]
    assert set(d["families"]) == {"lstm", "linear"}
    assert d["families"]["linear"]["scores"]["intervals"] == "adaptive"  # every family scored
    assert len(d["records"]) == d["n_origins"] and "series" not in d["families"]["linear"]  # --plot: same shape
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and d["plot"] == str(png)


def test_cli_many_series_cross_table_and_a_bad_one_exits_3(cli, two_series, tmp_path):
    listing = tmp_path / "symbols.txt"
    listing.write_text("# watch\nRW2\n\nNOPE  # not stored\n")
    r = cli("backtest", "RW", "--symbols-file", str(listing), "--model-family", "linear", *SMALL,
            "--executor", "serial")
    assert r.exit_code == 3, r.output
    assert "across 2 series" in r.stdout and "Benjamini-Hochberg" in r.stdout
    assert "beats naive on" in r.stdout and "median MASE ratio" in r.stdout
    assert "NOPE: no stored data for NOPE" in r.stderr and "Traceback" not in r.output


def test_cli_all_and_json(cli, two_series):
    r = cli("backtest", "--all", "--model-family", "naive,linear", *SMALL, "--executor", "serial", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [s["series"] for s in d["series"]] == ["import:RW", "import:RW2"]
    assert d["cross_series"]["correction"] == "Benjamini-Hochberg" and len(d["cross_series"]["rows"]) == 4
    assert d["tasks"] == 8 and d["failures"] == []


def test_cli_failing_task_exits_3_naming_it(cli, two_series, monkeypatch):
    from lstmcast.forecasters.linear import LinearForecaster

    def boom(self, *a, **k):
        raise RuntimeError("boom in the linear fit")

    monkeypatch.setattr(LinearForecaster, "fit", boom)  # a fault inside one family's tasks only
    r = cli("backtest", "RW", "--model-family", "lstm,linear", *SMALL, "--executor", "serial")
    assert r.exit_code == 3, r.output
    assert "import:RW linear refit 1/2:" in r.stderr and "boom in the linear fit" in r.stderr
    assert "beats naive" in r.stdout  # the other family is still reported


def test_cli_missing_device_fails_before_any_task(cli, two_series):
    r = cli("backtest", "RW", "--model-family", "lstm,linear", *SMALL, "--device", "cuda:7", "--executor", "serial")
    assert r.exit_code == 1 and "cuda:7" in r.stderr and "CUDA is not available" in r.stderr
    assert r.stdout == ""  # refused before any series was read


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["RW", "--all"], "--all backtests every stored series"),
        (["RW", "RW"], "named twice"),
        (["RW", "--model-family", "lstm,lstm"], "names a family twice"),
        (["RW", "--model-family", "lsmt"], "is not one of"),
        (["RW", "--executor", "mpi"], "unknown executor"),
        (["RW", "--ray-address", "auto"], "--ray-address needs --executor ray"),
        ([], "name a series"),
    ],
)
def test_cli_bad_selection_is_a_usage_error(cli, two_series, args, message):
    r = cli("backtest", *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr
