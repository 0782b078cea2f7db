"""`lstmcast import`, `data list`, `data show` and the error boundary, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmcast import __version__

GOOD = """Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10,100
2024-01-03,11,12,10,11,100
2024-01-04,12,13,11,12,100
"""


def csv(tmp_path: Path, text: str = GOOD, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.rglob("*.parquet")) if data_dir.exists() else []


def assert_one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- import --------------------------------------------------------------------------------------------


def test_import_prints_rows_range_repairs_and_gaps(cli, btc_csv):
    r = cli("import", str(btc_csv), "--symbol", "BTC-USD")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "imported import:BTC-USD 1d (price, crypto): 1770 rows, 1770 new, 0 changed, 0 unchanged" in out
    assert "- market crypto: BTC-USD is a crypto pair (BASE-USD)" in out
    assert "stored 1770 rows 2014-12-01 .. 2019-10-17" in out
    assert "- skipped 1 line(s) above the header" in out
    assert "- sorted rows into time order" in out
    assert "- gaps: 12 missing bar(s) in 1 run(s)" in out


def test_import_json(cli, aapl_csv):
    r = cli("import", str(aapl_csv), "--symbol", "AAPL", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["series"] == "import:AAPL"
    assert doc["market"] == "equity"
    assert doc["kind"] == "price"
    assert doc["rows_stored"] == doc["rows_added"] == 2699
    assert doc["first"] == "2013-01-02T00:00:00+00:00"
    assert doc["last"] == "2023-09-21T00:00:00+00:00"
    assert doc["missing_bars"] == 0
    assert doc["repairs"] == []


def test_reimport_reports_replaced(cli, tmp_path):
    path = csv(tmp_path)
    cli("import", str(path), "--symbol", "AAPL")
    r = cli("import", str(path), "--symbol", "AAPL", "--json")
    doc = json.loads(r.stdout)
    assert (doc["rows_added"], doc["rows_replaced"], doc["rows_stored"]) == (0, 3, 3)
    assert (doc["status"], doc["rows_changed"], doc["rows_unchanged"]) == ("unchanged", 0, 3)
    r = cli("import", str(path), "--symbol", "AAPL")
    assert "import:AAPL 1d (price, equity) unchanged: the 3 rows in the file are already stored" in r.stdout
    assert " new" not in r.stdout and "replaced" not in r.stdout


def test_import_value_column(cli, tmp_path):
    path = csv(tmp_path, "date,reading\n2024-01-01,-1.5\n2024-01-02,0\n2024-01-03,2.5\n")
    r = cli("import", str(path), "--symbol", "SENSOR", "--value-column", "reading", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["kind"], doc["market"]) == ("value", "continuous")


def test_import_source_and_market_options(cli, tmp_path):
    r = cli("import", str(csv(tmp_path)), "--symbol", "XYZ", "--source", "mybroker", "--market", "crypto", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["series"] == "mybroker:XYZ" and doc["market"] == "crypto"
    assert doc["missing_bars"] == 0


# -- data list / show ----------------------------------------------------------------------------------


def test_data_list_empty(cli):
    r = cli("data", "list")
    assert r.exit_code == 0
    assert "no series stored" in r.stdout
    r = cli("data", "list", "--json")
    assert json.loads(r.stdout) == []


def test_data_list_table_and_json(cli, btc_csv, aapl_csv):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    cli("import", str(aapl_csv), "--symbol", "AAPL")
    r = cli("data", "list")
    assert r.exit_code == 0, r.stderr
    for needle in ("import:BTC-USD", "import:AAPL", "1770", "2699", "2014-12-01", "2023-09-21", "crypto", "equity"):
        assert needle in r.stdout
    r = cli("data", "list", "--json")
    doc = json.loads(r.stdout)
    assert [(m["symbol"], m["rows"]) for m in doc] == [("AAPL", 2699), ("BTC-USD", 1770)]
    assert all(len(m["sha256"]) == 64 for m in doc)


def test_data_show_text(cli, btc_csv):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    r = cli("data", "show", "BTC-USD", "--tail", "2")
    assert r.exit_code == 0, r.stderr
    assert "import:BTC-USD 1d" in r.stdout
    assert "1770 rows  2014-12-01 .. 2019-10-17" in r.stdout
    assert "missing bars: 12 in 1 run(s)" in r.stdout
    assert "gap 2019-03-20 .. 2019-03-31: 12 bar(s)" in r.stdout
    assert "2019-10-17" in r.stdout and "8,034.32" in r.stdout


def test_data_show_json(cli, btc_csv):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    r = cli("data", "show", "import:BTC-USD", "--tail", "3", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["manifest"]["rows"] == 1770
    assert doc["manifest"]["gaps"]["missing_bars"] == 12
    assert [b["time"] for b in doc["last_bars"]] == [
        "2019-10-15T00:00:00+00:00", "2019-10-16T00:00:00+00:00", "2019-10-17T00:00:00+00:00"
    ]
    assert doc["last_bars"][-1]["close"] == 8034.32


def test_data_show_value_series_json_has_null_volume(cli, tmp_path):
    cli("import", str(csv(tmp_path, "date,v\n2024-01-01,-1\n2024-01-02,1\n")), "--symbol", "S", "--value-column", "v")
    r = cli("data", "show", "S", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["last_bars"][0]["volume"] is None  # strict JSON: NaN becomes null


def test_data_show_missing_series(cli):
    r = cli("data", "show", "TSLA")
    assert_one_line_error(r, "no stored data for TSLA 1d", "lstmcast import FILE --symbol TSLA")


def test_data_show_ambiguous(cli, tmp_path):
    cli("import", str(csv(tmp_path)), "--symbol", "AAPL")
    cli("import", str(csv(tmp_path)), "--symbol", "AAPL", "--source", "other")
    r = cli("data", "show", "AAPL")
    assert_one_line_error(r, "several sources", "import:AAPL", "other:AAPL")
    assert cli("data", "show", "other:AAPL").exit_code == 0


# -- rejections: exit code 1, one line naming the problem, nothing written -------------------------------


@pytest.mark.parametrize("symbol", ["../x", "/etc/passwd", "a/b/c", "a\\b", "..", ".hidden", "C:\\x"])
def test_import_rejects_path_escaping_symbols(cli, tmp_path, data_dir, symbol):
    r = cli("import", str(csv(tmp_path)), "--symbol", symbol)
    line = assert_one_line_error(r, "symbol")
    assert repr(symbol) in line
    assert stored_files(data_dir) == []
    assert not (tmp_path / "x.parquet").exists() and not (data_dir.parent / "x").exists()


def test_import_negative_close_is_rejected(cli, tmp_path, data_dir):
    path = csv(tmp_path, GOOD.replace("2024-01-03,11,12,10,11,", "2024-01-03,11,12,10,-11,"))
    r = cli("import", str(path), "--symbol", "AAPL")
    assert_one_line_error(r, "non-positive price at 2024-01-03T00:00:00+00:00", "close=-11.0")
    assert stored_files(data_dir) == []


def test_import_high_below_low_is_rejected(cli, tmp_path, data_dir):
    path = csv(tmp_path, GOOD.replace("2024-01-04,12,13,11,12,", "2024-01-04,12,10.5,11,12,"))
    r = cli("import", str(path), "--symbol", "AAPL")
    assert_one_line_error(r, "high below low at 2024-01-04T00:00:00+00:00")
    assert stored_files(data_dir) == []


def test_import_conflicting_duplicates_rejected(cli, tmp_path, data_dir):
    path = csv(tmp_path, GOOD + "2024-01-04,12,13,11,12.5,100\n")
    r = cli("import", str(path), "--symbol", "AAPL")
    assert_one_line_error(r, "conflicting duplicate bars", "2024-01-04")
    assert stored_files(data_dir) == []


def test_invalid_import_keeps_existing_series(cli, tmp_path, data_dir):
    assert cli("import", str(csv(tmp_path)), "--symbol", "AAPL").exit_code == 0
    before = [p.read_bytes() for p in stored_files(data_dir)]
    bad = csv(tmp_path, GOOD.replace(",10,100", ",-10,100"), name="bad.csv")
    assert_one_line_error(cli("import", str(bad), "--symbol", "AAPL"), "non-positive price")
    assert [p.read_bytes() for p in stored_files(data_dir)] == before


def test_import_missing_file(cli, tmp_path, data_dir):
    r = cli("import", str(tmp_path / "nope.csv"), "--symbol", "AAPL")
    assert_one_line_error(r, "file not found", "nope.csv")
    assert stored_files(data_dir) == []


def test_error_with_brackets_is_printed_verbatim(cli, tmp_path):
    # rich would read "[/x]" as a closing tag and crash with a MarkupError traceback
    r = cli("import", str(tmp_path / "[/x] [red].csv"), "--symbol", "AAPL")
    assert_one_line_error(r, "[/x] [red].csv")


def test_import_bad_interval(cli, tmp_path):
    r = cli("import", str(csv(tmp_path)), "--symbol", "AAPL", "--interval", "3d")
    assert_one_line_error(r, "unknown interval '3d'", "1d")


def test_import_bad_market(cli, tmp_path):
    assert_one_line_error(cli("import", str(csv(tmp_path)), "--symbol", "A", "--market", "moon"), "unknown market")


def test_unknown_option_is_usage_error(cli):
    r = cli("data", "list", "--nope")
    assert r.exit_code == 2
    assert "No such option" in r.stderr and "--nope" in r.stderr


def test_import_without_symbol_is_usage_error(cli, tmp_path):
    r = cli("import", str(csv(tmp_path)))
    assert r.exit_code == 2
    assert "--symbol" in r.stderr


def test_data_dir_that_is_a_file(tmp_path):
    from typer.testing import CliRunner

    from lstmcast.cli.main import app

    f = tmp_path / "afile"
    f.write_text("")
    r = CliRunner().invoke(app, ["--data-dir", str(f), "data", "list"])
    assert r.exit_code == 1
    assert "exists and is not a directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"lstmcast {__version__}"


# -- a real subprocess -------------------------------------------------------------------------------


def test_subprocess_import_show_and_rejections(run_cli, tmp_path, data_dir):
    good = csv(tmp_path)
    r = run_cli("import", str(good), "--symbol", "AAPL")
    assert r.returncode == 0, r.stderr
    assert "3 rows" in r.stdout and "2024-01-02 .. 2024-01-04" in r.stdout

    r = run_cli("data", "show", "AAPL", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["manifest"]["rows"] == 3

    bad = csv(tmp_path, GOOD.replace("2024-01-03,11,12,10,11,", "2024-01-03,11,12,10,-11,"), name="bad.csv")
    r = run_cli("import", str(bad), "--symbol", "MSFT")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "error: non-positive price at 2024-01-03T00:00:00+00:00" in r.stderr
    assert "Traceback" not in r.stderr

    r = run_cli("import", str(good), "--symbol", "../../etc/x")
    assert r.returncode == 1
    assert "error: symbol '../../etc/x'" in r.stderr and "Traceback" not in r.stderr
    assert [p.parent.name for p in stored_files(data_dir)] == ["AAPL"]

    r = run_cli("data", "list", "--bogus")
    assert r.returncode == 2


def test_subprocess_verbose_keeps_traceback(run_cli, tmp_path):
    r = run_cli("--verbose", "import", str(tmp_path / "nope.csv"), "--symbol", "AAPL")
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "DataError" in r.stderr


# -- a store that heals itself (issue 10) ----------------------------------------------------------

def series_files(data_dir: Path, symbol: str = "BTC-USD") -> tuple[Path, Path]:
    folder = data_dir / "series" / "import" / symbol
    return folder / "1d.parquet", folder / "1d.json"


def test_unreadable_manifest_is_rebuilt_by_data_list_with_a_note(cli, btc_csv, data_dir):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    parquet, manifest = series_files(data_dir)
    manifest.write_text("{\n")  # the audit's damage: echo "{" > .../1d.json
    r = cli("data", "list")
    assert r.exit_code == 0, r.stderr
    assert "import:BTC-USD" in r.stdout and "1770" in r.stdout
    assert "manifest" in r.stdout and "rebuilt" in r.stdout and "1d.parquet" in r.stdout
    m = json.loads(manifest.read_text())
    assert m["rows"] == 1770 and m["market"] == "crypto" and "unreadable" in m["rebuilt"]["reason"]
    doc = json.loads(cli("data", "list", "--json").stdout)
    assert doc[0]["status"] == "rebuilt" and "unreadable" in doc[0]["note"]
    assert cli("data", "show", "BTC-USD").exit_code == 0


@pytest.mark.parametrize("damage", ["unreadable", "missing"])
def test_damaged_manifest_does_not_hide_the_series_or_block_a_reimport(cli, btc_csv, data_dir, damage):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    _, manifest = series_files(data_dir)
    if damage == "missing":
        manifest.unlink()
    else:
        manifest.write_text("{")
    r = cli("data", "show", "BTC-USD", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["manifest"]["rows"] == 1770
    manifest.write_text("{")
    r = cli("import", str(btc_csv), "--symbol", "BTC-USD")
    assert r.exit_code == 0, r.stderr
    assert json.loads(manifest.read_text())["rows"] == 1770


def test_damaged_parquet_is_reported_not_skipped(cli, btc_csv, aapl_csv, data_dir):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    cli("import", str(aapl_csv), "--symbol", "AAPL")
    parquet, _ = series_files(data_dir)
    parquet.write_bytes(parquet.read_bytes()[:300])  # a truncated file
    r = cli("data", "list")
    assert r.exit_code == 0, r.stderr
    assert "import:BTC-USD" in r.stdout and "damaged" in r.stdout and "import:AAPL" in r.stdout
    assert "1d.parquet" in r.stdout
    doc = {m["symbol"]: m for m in json.loads(cli("data", "list", "--json").stdout)}
    assert doc["BTC-USD"]["status"] == "damaged" and doc["BTC-USD"]["rows"] is None
    assert doc["BTC-USD"]["file"].endswith("1d.parquet") and doc["AAPL"]["status"] == "ok"
    for args in (["data", "show", "BTC-USD"], ["data", "show", "import:BTC-USD"]):
        line = assert_one_line_error(cli(*args), "damaged", "1d.parquet", "lstmcast import")
        assert "no stored data" not in line


def test_reimport_replaces_a_damaged_series_and_keeps_the_old_file_aside(cli, btc_csv, data_dir):
    cli("import", str(btc_csv), "--symbol", "BTC-USD")
    parquet, manifest = series_files(data_dir)
    bad = parquet.read_bytes()[:300]
    parquet.write_bytes(bad)
    r = cli("import", str(btc_csv), "--symbol", "BTC-USD")
    assert r.exit_code == 0, r.stderr
    assert "1d.parquet.damaged" in r.stdout and "1770 new" in r.stdout
    assert (parquet.parent / "1d.parquet.damaged").read_bytes() == bad
    assert json.loads(manifest.read_text())["rows"] == 1770
    assert json.loads(cli("data", "list", "--json").stdout)[0]["status"] == "ok"
