"""Adaptive conformal inference in `lstmcast run`: the per-series state, its update from the scored
live forecasts (once per row, causal), the interval read at the adapted tail levels."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

from lstmcast import forecasts, liveaci, runner
from lstmcast.config import parse_config
from lstmcast.data.store import SeriesKey, Store
from lstmcast.evaluate import adaptive, conformal

KEY = SeriesKey("import", "AAA", "1d")
T = pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC")
GAMMA = 0.05


def _row(t: int, *, actual: float, lower: float = 99.0, upper: float = 101.0, step: int = 1, level: float = 0.8):
    return {
        "origin": T[t - step], "run_id": "r1", "step": step, "target_time": T[t], "predicted": 100.0,
        "naive": 100.0, "lower": lower, "upper": upper, "level": level, "made_at": T[t - step],
        "actual": actual, "scored_at": T[t],
    }


def _history(rows: list[dict]) -> pd.DataFrame:
    return forecasts._typed(pd.DataFrame(rows)) if rows else forecasts.empty_history()


# (a) the update rule ------------------------------------------------------------------------------
def test_misses_push_the_tail_level_out_and_hits_pull_it_in():
    start = liveaci.LiveAci.start(0.8, gamma=GAMMA)
    assert start.read_tails(1) == (0.1, 0.9) and start.method(1) == "split"
    below = _history([_row(1, actual=98.0), _row(2, actual=97.0)])  # two misses under the lower bound
    s, used = liveaci.update(start, below, origin=T[2])
    assert used == 2 and s.method(1) == "aci"
    lo, hi = s.step(1).levels.effective
    assert lo == pytest.approx(0.1 - 2 * GAMMA * 0.9)  # the lower tail moved out (wider)
    assert hi == pytest.approx(0.9 - 2 * GAMMA * 0.1)  # under the upper bound: that tail moved in a bit
    above = liveaci.update(start, _history([_row(1, actual=102.0)]), origin=T[1])[0]
    assert above.step(1).levels.effective[1] == pytest.approx(0.9 + GAMMA * 0.9)  # upper tail out
    inside = liveaci.update(start, _history([_row(1, actual=100.0)] * 1), origin=T[1])[0]
    lo_in, hi_in = inside.step(1).levels.effective
    assert lo_in > 0.1 and hi_in < 0.9  # a hit narrows both tails
    # the same rule as the backtest's AdaptiveLevels, per tail
    ref = adaptive.AdaptiveLevels.start((0.1, 0.9), gamma=GAMMA)
    ref = ref.update(np.array([1.0, 1.0])).update(np.array([1.0, 1.0]))
    assert s.step(1).levels.effective == pytest.approx(ref.effective)


def test_rows_without_an_interval_or_at_another_level_do_not_move_the_levels():
    start = liveaci.LiveAci.start(0.8, gamma=GAMMA)
    h = _history([_row(1, actual=90.0, lower=math.nan, upper=math.nan), _row(2, actual=90.0, level=0.95)])
    s, used = liveaci.update(start, h, origin=T[5])
    assert used == 0 and s.step(1).levels.effective == (0.1, 0.9) and s.step(1).through == T[2]


def test_the_interval_is_read_at_the_tail_levels_from_signed_residuals():
    rng = np.random.default_rng(0)
    res = np.column_stack([rng.normal(0, 0.01, 200), rng.normal(0.002, 0.02, 200)])  # a direct and a recursive step
    lo, hi = conformal.tail_interval(res, np.array([100.0, 100.0]), lower=[0.1, 0.1], upper=[0.9, 0.9], mode="log")
    assert lo == pytest.approx(100 * np.exp(np.quantile(res, 0.1, axis=0)))
    assert hi == pytest.approx(100 * np.exp(np.quantile(res, 0.9, axis=0)))
    wide_lo, wide_hi = conformal.tail_interval(res, np.array([100.0, 100.0]), lower=[-0.3, 0.0], upper=[1.2, 1.0],
                                               mode="log")
    assert wide_lo == pytest.approx(100 * np.exp(res.min(axis=0)))  # clipped to [0, 1]: the extreme residual
    assert wide_hi == pytest.approx(100 * np.exp(res.max(axis=0)))
    few = conformal.tail_interval(res[:3], np.array([1.0, 1.0]), lower=[0.1, 0.1], upper=[0.9, 0.9],
                                  mode="additive", min_count=4)
    assert np.isnan(few[0]).all()


# the run, with fake steps -------------------------------------------------------------------------
CONFIG = """
[run]
aci_gamma = {gamma}
[[watchlist]]
symbol = "import:AAA"
"""
RES = np.random.default_rng(1).normal(0.0, 0.01, (100, 1))  # the model's signed validation residuals


def _prices(n: int, *, seed: int = 0, vol: float = 0.03) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, vol, n)))
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
                        index=pd.DatetimeIndex(T[:n], name="time"))


class Steps:
    """Forecasts ``tomorrow = today`` from bar ``origin`` with fixed calibration residuals."""

    def __init__(self, origin: int):
        self.origin = origin

    def steps(self) -> runner.Steps:
        def forecast(e):
            close = float(Store_.load(KEY)["close"].iloc[self.origin])
            lo, hi = conformal.fit(RES, levels=(0.8,)).interval(np.array([close]))[0.8]
            return forecasts.Forecast(
                key=KEY, run_id="r1", origin=T[self.origin], last_close=close, target_times=(T[self.origin + 1],),
                predicted=(close,), lower=(float(lo[0]),), upper=(float(hi[0]),), level=0.8, calibration=RES,
            )

        return runner.Steps(
            fetch=lambda e: runner.FetchResult(rows_added=0, last=None),
            needs_training=lambda e: False,
            train_challenger=lambda e, s: None,
            evaluate_and_promote=lambda e, r: None,
            forecast=forecast,
            prune=lambda e, k: [],
        )


Store_: Store


def _run(data_dir, origin: int, *, gamma: float = GAMMA, caplog=None):
    global Store_
    Store_ = Store(data_dir)
    s = runner.run_watchlist(data_dir, parse_config(CONFIG.format(gamma=gamma)), steps=Steps(origin).steps(),
                             log=logging.getLogger("test.liveaci"))
    assert s.exit_code == 0, s.entries[0].error
    return s.entries[0].forecast


def _state(data_dir) -> dict:
    return json.loads(liveaci.path(data_dir, KEY).read_text())


def test_run_records_split_then_aci_and_running_twice_updates_once(tmp_path):
    Store(tmp_path).upsert(KEY, _prices(30))
    first = _run(tmp_path, 10)
    assert first["interval_method"] == "split" and first["level"] == 0.8
    assert (first["steps"][0]["level_lower"], first["steps"][0]["level_upper"]) == (0.1, 0.9)
    for t in range(11, 20):  # one run a day: each scores yesterday's forecast, then forecasts
        latest = _run(tmp_path, t)
    state = _state(tmp_path)
    assert state["steps"][0]["n"] == 9 and latest["interval_method"] == "aci"
    tails = (latest["steps"][0]["level_lower"], latest["steps"][0]["level_upper"])
    assert tails != (0.1, 0.9)  # the levels read: the state's, clipped to [0, 1]
    assert tails == pytest.approx(tuple(np.clip(state["steps"][0]["levels"]["effective"], 0, 1)))
    # (b) the same data again: nothing new is realised, the state and the history stay as they are
    before = forecasts.load_history(tmp_path, KEY)
    assert _run(tmp_path, 19) == {**latest, "made_at": _run(tmp_path, 19)["made_at"]}
    assert _state(tmp_path) == state
    pd.testing.assert_frame_equal(forecasts.load_history(tmp_path, KEY), before)
    h = forecasts.load_history(tmp_path, KEY)
    assert set(h["interval_method"].dropna()) == {"split", "aci"}
    # the recorded bounds are the signed-residual quantiles at the recorded tail levels
    row = h.iloc[-1]
    lo, hi = conformal.tail_interval(RES, np.array([row.predicted]), lower=[row.level_lower],
                                     upper=[row.level_upper], mode="log")
    assert (row.lower, row.upper) == pytest.approx((lo[0], hi[0]))


def test_gamma_zero_keeps_the_nominal_levels(tmp_path):
    Store(tmp_path).upsert(KEY, _prices(30))
    for t in range(10, 15):
        latest = _run(tmp_path, t, gamma=0.0)
    assert latest["interval_method"] == "split"
    assert (latest["steps"][0]["level_lower"], latest["steps"][0]["level_upper"]) == (0.1, 0.9)


# (c) no leakage -----------------------------------------------------------------------------------
def test_outcomes_after_the_origin_never_move_the_levels_used_there(tmp_path):
    rng = np.random.default_rng(3)
    rows = [_row(t, actual=100 + rng.normal(0, 2)) for t in range(1, 60)]
    full, cut = _history(rows), _history(rows[:29])  # rows[:29]: targets T[1] .. T[29]
    at = T[29]
    a = liveaci.update(liveaci.LiveAci.start(0.8, gamma=GAMMA), full, origin=at)[0]
    b = liveaci.update(liveaci.LiveAci.start(0.8, gamma=GAMMA), cut, origin=at)[0]
    assert a == b and a.step(1).n == 29
    # through the run: the store holds bars after the origin, and forecasts for them (made by other
    # runs) are scored at the same time; the levels the forecast at bar 19 reads ignore them
    out = {}
    for name, planted in (("clean", False), ("planted", True)):
        d = tmp_path / name
        Store(d).upsert(KEY, _prices(40))
        for t in range(10, 19):
            _run(d, t)
        if planted:
            for t in range(24, 30):
                forecasts.record(d, forecasts.Forecast(key=KEY, run_id="other", origin=T[t], last_close=1.0,
                                                      target_times=(T[t + 1],), predicted=(1.0,), lower=(0.5,),
                                                      upper=(0.6,), level=0.8))  # every one a miss
        out[name] = (_run(d, 19), _state(d))
        if planted:
            h = forecasts.load_history(d, KEY)
            assert h.loc[h["run_id"] == "other", "actual"].notna().all()  # scored, yet not read
    (fc_clean, st_clean), (fc_planted, st_planted) = out["clean"], out["planted"]
    assert fc_planted["steps"][0]["level_lower"] == fc_clean["steps"][0]["level_lower"]
    assert fc_planted["steps"][0]["lower"] == fc_clean["steps"][0]["lower"]
    assert st_planted == st_clean and st_clean["steps"][0]["through"] == T[19].isoformat()
    later = _run(tmp_path / "planted", 30)  # at bar 30 those outcomes are in the past: now they count
    assert _state(tmp_path / "planted")["steps"][0]["n"] == st_clean["steps"][0]["n"] + 1 + 6
    assert later["steps"][0]["level_upper"] > fc_clean["steps"][0]["level_upper"]


# (d) a damaged state file -------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["{not json", '{"format": 99}', '{"format": 1, "level": 0.8, "gamma": 0.1}'])
def test_a_damaged_state_restarts_at_the_nominal_levels(tmp_path, caplog, text):
    Store(tmp_path).upsert(KEY, _prices(30))
    for t in range(10, 14):
        _run(tmp_path, t)
    liveaci.path(tmp_path, KEY).write_text(text)
    with caplog.at_level(logging.WARNING, logger="test.liveaci"):
        latest = _run(tmp_path, 14)
    warned = [r.getMessage() for r in caplog.records if "ACI state" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0] and "restarted from the nominal levels" in warned[0]
    assert str(liveaci.path(tmp_path, KEY)) in warned[0]
    assert (latest["steps"][0]["level_lower"], latest["steps"][0]["level_upper"]) == (0.1, 0.9)
    assert latest["interval_method"] == "split"
    state = _state(tmp_path)  # rewritten, readable, at nominal; the outcomes seen before are not replayed
    assert state["steps"][0]["levels"]["effective"] == [0.1, 0.9] and state["steps"][0]["n"] == 0
    after = _run(tmp_path, 15)  # and it adapts again from the next outcome on
    assert after["interval_method"] == "aci" and _state(tmp_path)["steps"][0]["n"] == 1


# (e) a regime switch ------------------------------------------------------------------------------
def test_aci_coverage_ends_closer_to_nominal_than_split_after_volatility_doubles():
    """Live sequence of 1-step forecasts ``tomorrow = today`` calibrated on residuals of the calm
    regime; volatility doubles halfway. Split conformal under-covers after the switch; ACI recovers.
    Each day folds yesterday's outcome in (``LiveAci.fold``, what ``update`` does per realised row)
    and reads the new interval (``apply``); pandas-free to stay fast."""
    rng = np.random.default_rng(7)
    n, half = 1200, 600
    vol = np.where(np.arange(n) < half, 0.01, 0.02)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol)))
    cal = rng.normal(0, 0.01, (250, 1))  # the model's validation residuals, from the calm regime
    cover = {}
    for gamma in (0.0, adaptive.DEFAULT_GAMMA):
        state = liveaci.LiveAci.start(0.8, gamma=gamma)
        hits, prev = [], None
        for t in range(n - 1):
            if prev is not None:  # yesterday's forecast is realised at bar t
                state = state.fold(1, np.array([close[t]]), np.array(prev.lower), np.array(prev.upper), through=None)
                if t >= half:
                    hits.append(prev.lower[0] <= close[t] <= prev.upper[0])
            prev = liveaci.apply(state, forecasts.Forecast(
                key=KEY, run_id="r", origin=T[0], last_close=close[t], target_times=(T[1],),
                predicted=(close[t],), level=0.8, calibration=cal))
        cover[gamma] = float(np.mean(hits))
        assert prev.interval_method == ("aci" if gamma else "split")
    split, aci = cover[0.0], cover[adaptive.DEFAULT_GAMMA]
    assert split < 0.6  # the calm residuals are far too narrow after the switch
    print(f"coverage after the switch: split {split:.3f}, aci {aci:.3f}")
    assert abs(aci - 0.8) < abs(split - 0.8) and aci > 0.7, (split, aci)


def test_forecasts_command_shows_the_coverage_and_the_current_levels(cli, data_dir):
    from jsonschema import validate

    import json_schemas as S

    Store(data_dir).upsert(KEY, _prices(30))
    for t in range(10, 16):
        _run(data_dir, t)
    r = cli("forecasts", "import:AAA", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    validate(doc, S.FORECASTS)
    st = _state(data_dir)["steps"][0]
    assert doc["aci"]["steps"][0]["n"] == st["n"] == 5 and doc["aci"]["steps"][0]["method"] == "aci"
    assert doc["aci"]["steps"][0]["level_lower"] == st["levels"]["effective"][0]
    assert {row["interval_method"] for row in doc["rows"]} == {"split", "aci"}
    text = cli("forecasts", "import:AAA")
    assert "interval coverage" in text.stdout and "step 1 aci at tail levels" in text.stdout
    liveaci.path(data_dir, KEY).write_text("garbage")  # read-only here: a warning, no traceback, no rewrite
    bad = cli("forecasts", "import:AAA", "--json")
    assert bad.exit_code == 0 and json.loads(bad.stdout)["aci"] is None and "ACI state" in bad.stderr
    assert liveaci.path(data_dir, KEY).read_text() == "garbage"


def test_aci_gamma_knob():
    from lstmcast.errors import ConfigError

    assert parse_config("").run.aci_gamma == adaptive.DEFAULT_GAMMA
    assert parse_config("[run]\naci_gamma = 0\n").run.aci_gamma == 0.0
    for bad in ("-0.1", "1.0", "nan"):
        with pytest.raises(ConfigError, match="aci_gamma"):
            parse_config(f"[run]\naci_gamma = {bad}\n")


def test_a_history_written_before_the_interval_columns_still_reads(tmp_path):
    old = _history([_row(1, actual=100.0), _row(2, actual=100.0, lower=math.nan, upper=math.nan, level=math.nan)])
    path = forecasts.history_path(tmp_path, KEY)
    path.parent.mkdir(parents=True)
    old.drop(columns=["level_lower", "level_upper", "interval_method"]).to_parquet(path, index=False)
    h = forecasts.load_history(tmp_path, KEY)
    assert h["interval_method"].tolist()[0] == "split" and h["interval_method"].isna().tolist()[1]
    assert h["level_lower"].isna().all()


def test_direct_and_recursive_steps_read_their_interval_from_predicts_residuals():
    """``recursive.step_residuals``: the direct steps' validation residuals, then the recursive
    steps' (targets up to the origin only); ``tail_interval`` reads every step from them."""
    from helpers_series import random_walk_frame
    from lstmcast.features import FeatureConfig, prepare
    from lstmcast.forecasters import forecaster
    from lstmcast.forecasters.recursive import predict_ahead, recursive_residuals, step_residuals
    from lstmcast.registry import residuals
    from lstmcast.settings import Settings

    s = Settings(family="linear", lookback=10, threads=1, seed=7)
    frame = random_walk_frame(200, seed=2)
    prepared = prepare(frame, kind="price", features=FeatureConfig.from_settings(s))
    fitted = forecaster(s).fit(prepared, start=0, end=150)
    t = 170
    res = step_residuals(fitted, prepared, direct_residuals=residuals(fitted, kind="price"), horizon=4, mode="log",
                         last_row=t)
    direct = residuals(fitted, kind="price")[:, :1]
    np.testing.assert_array_equal(res[: len(direct), :1], direct)
    rec = recursive_residuals(fitted, prepared, horizon=4, mode="log", last_row=t)[:, 1:]
    np.testing.assert_array_equal(res[: len(rec), 1:], rec)
    # truncation: bars after the origin t do not change the residuals read at t
    cut = prepare(frame.iloc[: t + 1], kind="price", features=FeatureConfig.from_settings(s))
    np.testing.assert_array_equal(
        step_residuals(fitted, cut, direct_residuals=direct, horizon=4, mode="log", last_row=t), res)
    pred = predict_ahead(fitted, prepared, np.array([t]), horizon=4)[0]
    lo, hi = conformal.tail_interval(res, pred, lower=[0.1] * 4, upper=[0.9] * 4, mode="log")
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < pred).all() and (pred < hi).all()
