"""`backtest --output` and `--json` records, and the README recipe that recomputes the headline numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers_series import random_walk_frame
from lstmcast.data.store import SeriesKey, Store

README = Path(__file__).resolve().parents[1] / "README.md"
FAST = ["--model-family", "linear", "--lookback", "10", "--refit-every", "100", "--start", "2020-04-10"]


@pytest.fixture
def rw(data_dir):
    Store(data_dir).upsert(SeriesKey("import", "RW", "1d"), random_walk_frame(300, seed=4), market="crypto")


def _recipe() -> str:
    text = README.read_text()
    m = re.search(r"<!-- recipe -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its recipe block"
    return m.group(1)


def test_readme_recipe_recomputes_the_reported_numbers(cli, rw, tmp_path, capsys):
    out = tmp_path / "btc.csv"
    r = cli("backtest", "RW", *FAST, "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    code = _recipe().replace('"btc.csv"', repr(str(out)))
    ns: dict = {}
    exec(compile(code, "README recipe", "exec"), ns)  # noqa: S102 - our own documentation
    model = d["metrics"]["model"]
    assert ns["mae"] == pytest.approx(model["mae"], abs=1e-9, rel=0)
    assert ns["mase"] == pytest.approx(model["mase"], abs=1e-9, rel=0)
    crps = d["scores"]["distribution"]["adaptive"]["forecasters"]["model"]["crps"]
    assert ns["crps"] == pytest.approx(crps, abs=1e-9, rel=0)
    for lv in ("0.8", "0.95"):
        assert ns["coverage"](float(lv)) == pytest.approx(d["coverage"][lv]["observed"], abs=1e-9, rel=0)
        assert d["coverage"][lv]["observed"] == d["scores"]["coverage"]["adaptive"][lv]["observed"]


def test_output_formats_agree_and_json_records_match(cli, rw, tmp_path):
    paths = {s: tmp_path / f"f{s}" for s in (".csv", ".parquet", ".json")}
    docs = {}
    for s, p in paths.items():
        r = cli("backtest", "RW", *FAST, "--output", str(p), "--json")
        assert r.exit_code == 0, r.output
        docs[s] = json.loads(r.stdout)
    csv = pd.read_csv(paths[".csv"])
    pq = pd.read_parquet(paths[".parquet"])
    js = pd.read_json(paths[".json"], orient="records", dtype=False)
    pd.testing.assert_frame_equal(csv, pq, check_dtype=False)
    np.testing.assert_allclose(js["forecast"], csv["forecast"], rtol=1e-12)
    assert {"origin_time", "target_time", "actual", "forecast", "q0.05", "q0.95", "q0.975", "naive", "drift",
            "moving_average", "mean_return"} <= set(csv.columns)
    rec = docs[".csv"]["records"]
    assert len(rec) == len(csv) and rec[0]["origin_time"] == csv["origin_time"][0]
    assert pd.Timestamp(rec[0]["target_time"]) > pd.Timestamp(rec[0]["origin_time"])
    assert rec[0]["q0.5"] is None and rec[-1]["q0.5"] is not None  # too few residuals at first
    assert isinstance(docs[".csv"]["series"], str)  # the series' name; no row-index arrays


def test_plot_does_not_change_the_json_shape(cli, rw, tmp_path):
    a = json.loads(cli("backtest", "RW", *FAST, "--json").stdout)
    r = cli("backtest", "RW", *FAST, "--json", "--plot", str(tmp_path / "p.png"))
    b = json.loads(r.stdout)

    def shape(x):
        if isinstance(x, dict):
            return {k: shape(v) for k, v in x.items() if k not in ("plot", "plot_steps", "timing", "setup")}
        return type(x).__name__ if not isinstance(x, list) else [len(x)]

    assert shape(a) == shape(b)


def test_text_output_fits_80_columns_and_shows_the_new_scores(cli, rw, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("backtest", "RW", *FAST, "--intervals", "split")
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    for s in ("CRPS", "RPS skill", "Kupiec p", "Christ. p", "split*", "never in market", "always-up", "DSR", "PSR"):
        assert s in r.stdout, s


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--output", "x.xlsx"], "--output x.xlsx: the suffix must be one of .csv, .parquet, .json"),
     (["--intervals", "model"], "--intervals must be one of adaptive, split")],
)
def test_bad_output_and_intervals_are_refused_before_fitting(cli, rw, args, message):
    r = cli("backtest", "RW", *FAST, *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output
