def test_import_and_list(cli, btc_csv):
    r = cli("import", str(btc_csv), "--symbol", "BTC-USD")
    assert r.exit_code == 0, r.output
    assert "1770 rows" in r.stdout
    r = cli("data", "list", "--json")
    assert r.exit_code == 0
    assert '"symbol": "BTC-USD"' in r.stdout
