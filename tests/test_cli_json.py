"""Stable JSON: each command's --json against its schema (tests/json_schemas.py, README "JSON output"),
the error object under --json for every command family, and --output files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from jsonschema import validate

import json_schemas as S
from lstmcast import forecasts
from test_forecasts import PRICES, fc

TINY_RUN = """
[defaults]
lookback = 10
hidden = 4
layers = 1
epochs = 2
[promotion]
holdout = 30
[[watchlist]]
symbol = "import:BTC-USD"
"""


@pytest.fixture
def history(data_dir):
    forecasts.record(data_dir, fc(3, (104.5,)), frame=PRICES)
    # step 2's bar is not stored yet: pending, so actual and scored_at are missing
    forecasts.record(data_dir, fc(9, (110.5, 111.5), run_id="r2"), frame=PRICES.iloc[:11])
    return data_dir


def test_forecasts_json_matches_schema_null_never_nat(cli, history):
    r = cli("forecasts", "BTC/USD", "--json")
    assert r.exit_code == 0, r.output
    assert "NaT" not in r.stdout and "NaN" not in r.stdout
    doc = json.loads(r.stdout)
    validate(doc, S.FORECASTS)
    pending = [row for row in doc["rows"] if row["actual"] is None]
    assert pending and all(row["scored_at"] is None for row in pending)
    assert doc["rows"][0]["origin"] == "2024-01-04T00:00:00+00:00"


def test_run_json_has_structured_forecasts(cli, data_dir, btc_csv):
    assert cli("import", str(btc_csv), "--symbol", "BTC-USD").exit_code == 0
    (data_dir / "lstmcast.toml").write_text(TINY_RUN)
    r = cli("run", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    validate(doc, S.RUN)
    f = doc["entries"][0]["forecast"]
    assert f["series"] == "import:BTC-USD" and f["origin"].startswith("2019-10-17")
    assert f["steps"][0]["target_time"].startswith("2019-10-18") and isinstance(f["steps"][0]["predicted"], float)
    # the object the run recorded, as latest.json holds it (NaN there is null here)
    from lstmcast.data.store import SeriesKey
    from lstmcast.jsonable import to_jsonable

    assert f == to_jsonable(forecasts.latest(data_dir, SeriesKey("import", "BTC-USD", "1d")))


# one failing invocation per command family: (args, exit code)
FAILURES = [
    (("data", "show", "NOPE"), 1),
    (("data", "list", "--bogus"), 2),  # click's usage error
    (("import", "missing.csv", "--symbol", "X"), 1),
    (("fetch", "AAPL", "--interval", "7q"), 2),
    (("train", "NOPE", "--epochs", "1"), 1),
    (("predict", "NOPE"), 1),
    (("backtest", "NOPE"), 1),
    (("models", "show", "nope"), 1),
    (("forecasts", "NOPE"), 1),
    (("run", "--config", "missing.toml"), 1),
    (("schedule", "install", "--cron", "61 6 * * *", "--dry-run"), 1),
]


@pytest.mark.parametrize("where", ["after", "before"])
@pytest.mark.parametrize(("args", "code"), FAILURES, ids=[a[0] + "-" + a[1] for a, _ in FAILURES])
def test_error_under_json_prints_the_error_object(cli, args, code, where):
    argv = (*args, "--json") if where == "after" else ("--json", *args)
    r = cli(*argv)
    assert r.exit_code == code, r.output
    doc = json.loads(r.stdout)
    validate(doc, S.ERROR)
    assert doc["error"]["code"] == code
    assert doc["error"]["message"].splitlines()[0] in r.stderr or "Error" in r.stderr


def test_error_without_json_prints_nothing_on_stdout(cli):
    r = cli("data", "show", "NOPE")
    assert r.exit_code == 1 and r.stdout == "" and "error: no stored data for NOPE" in r.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_forecasts_output_file(cli, history, tmp_path, suffix):
    out = tmp_path / f"f{suffix}"
    r = cli("forecasts", "BTC/USD", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote 3 row(s) to {out}" in r.stderr
    if suffix == ".csv":
        frame = pd.read_csv(out)
        assert frame["origin"][0] == "2024-01-04T00:00:00+00:00" and pd.isna(frame["scored_at"]).sum() == 1
        assert "NaT" not in out.read_text()
    elif suffix == ".parquet":
        frame = pd.read_parquet(out)
        assert str(frame["origin"].dtype).startswith("datetime64") and len(frame) == 3
    else:
        rows = json.loads(out.read_text())
        assert rows[2]["actual"] is None and rows[2]["scored_at"] is None and rows[0]["step"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("f")] == [out.name]  # no temp file left


def test_output_unknown_suffix_is_a_usage_error_before_any_work(cli, tmp_path):
    r = cli("forecasts", "NOPE", "--output", str(tmp_path / "f.xlsx"))
    assert r.exit_code == 2
    assert "--output" in r.stderr and "unknown file type .xlsx" in r.stderr and ".csv, .parquet, .json" in r.stderr
    assert not (tmp_path / "f.xlsx").exists()


def test_write_output_from_row_dicts(tmp_path):
    from lstmcast.cli.common import write_output

    rows = [{"time": pd.Timestamp("2024-01-01", tz="UTC"), "value": 1.5}, {"time": pd.NaT, "value": float("nan")}]
    write_output(tmp_path / "r.json", rows)
    assert json.loads((tmp_path / "r.json").read_text()) == [
        {"time": "2024-01-01T00:00:00+00:00", "value": 1.5},
        {"time": None, "value": None},
    ]
    write_output(tmp_path / "r.csv", rows)
    assert (tmp_path / "r.csv").read_text() == "time,value\n2024-01-01T00:00:00+00:00,1.5\n,\n"
