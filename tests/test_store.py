"""The Parquet store: upsert semantics, crash-safe writes, locking, manifests, safe file names."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import subprocess_env
from lstmcast import atomic
from lstmcast.data import schema
from lstmcast.data.store import SeriesKey, Store, check_symbol, parse_spec
from lstmcast.errors import DataError, DataNotFoundError, StoreError

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def frame_from(rows: dict[int, float], *, start: pd.Timestamp = BASE, freq: str = "D") -> pd.DataFrame:
    """A valid OHLCV frame from {bar number: close}."""
    days = sorted(rows)
    step = pd.Timedelta(1, unit=freq.lower()) if freq != "D" else pd.Timedelta(days=1)
    idx = pd.DatetimeIndex([start + d * step for d in days], name="time")
    close = np.array([rows[d] for d in days], dtype="float64")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": close * 10},
        index=idx,
    )


# -- upsert ------------------------------------------------------------------------------------------

day_prices = st.dictionaries(
    st.integers(min_value=0, max_value=60),
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=day_prices, second=day_prices)
def test_upsert_is_union_with_newer_bar_winning(first, second):
    expected = {**first, **second}  # the dict model: later writes win on equal keys
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d))
        key = SeriesKey("binance", "BTC/USDT", "1d")
        store.upsert(key, frame_from(first))
        res = store.upsert(key, frame_from(second))
        got = store.load(key)
    assert list(got.index) == [BASE + pd.Timedelta(days=k) for k in sorted(expected)]
    assert got["close"].tolist() == [expected[k] for k in sorted(expected)]
    assert got["volume"].tolist() == [expected[k] * 10 for k in sorted(expected)]
    assert res.rows_after == len(expected)
    assert res.rows_replaced == len(first.keys() & second.keys())
    assert res.rows_added == len(second.keys() - first.keys())


def test_upsert_replace_writes_whole_series(store):
    key = SeriesKey("import", "AAPL", "1d")
    store.upsert(key, frame_from({0: 1.0, 1: 2.0}))
    store.upsert(key, frame_from({5: 3.0}), replace=True)
    assert store.load(key)["close"].tolist() == [3.0]


def test_upsert_rejects_invalid_frame_and_keeps_old(store):
    key = SeriesKey("import", "AAPL", "1d")
    store.upsert(key, frame_from({0: 1.0, 1: 2.0}))
    before = atomic.sha256_file(store.data_path(key))
    with pytest.raises(DataError, match="non-positive price"):
        store.upsert(key, frame_from({2: -1.0}))
    assert atomic.sha256_file(store.data_path(key)) == before


def test_upsert_refuses_to_mix_kinds(store):
    key = SeriesKey("import", "SINE", "1d")
    store.upsert(key, frame_from({0: 1.0}), kind=schema.KIND_VALUE, market="continuous")
    with pytest.raises(DataError, match="value series"):
        store.upsert(key, frame_from({1: 1.0}), kind=schema.KIND_PRICE)


@pytest.mark.parametrize("old_has_adj", [True, False])
def test_upsert_refuses_to_mix_frames_with_and_without_adj_close(store, old_has_adj):
    key = SeriesKey("import", "AAPL", "1d")
    with_adj = frame_from({0: 1.0, 1: 2.0}).assign(adj_close=[0.9, 1.8])
    without = frame_from({2: 3.0})
    store.upsert(key, with_adj if old_has_adj else frame_from({0: 1.0, 1: 2.0}))
    before = atomic.sha256_file(store.data_path(key))
    new = without if old_has_adj else frame_from({2: 3.0}).assign(adj_close=[2.7])
    with pytest.raises(DataError, match="adj_close") as e:
        store.upsert(key, new)
    assert "NaN" not in str(e.value)
    assert atomic.sha256_file(store.data_path(key)) == before
    # replacing the whole series is fine either way
    store.upsert(key, new, replace=True)


def test_upsert_removes_temp_files_orphaned_by_a_killed_writer(store):
    key = SeriesKey("import", "AAPL", "1d")
    store.upsert(key, frame_from({0: 1.0}))
    orphan = store.data_path(key).parent / f".{store.data_path(key).name}.x1y2z3.tmp"
    orphan.write_bytes(b"half a parquet file")
    other = store.data_path(key).parent / ".1h.parquet.x1y2z3.tmp"  # another interval's: not ours to touch
    other.write_bytes(b"x")
    store.upsert(key, frame_from({1: 2.0}))
    assert not orphan.exists() and other.exists()
    assert len(store.load(key)) == 2


def test_manifest_left_stale_by_a_killed_writer_is_rebuilt(store):
    """The data file is replaced before its manifest: a kill in between must not leave a lying manifest."""
    key = SeriesKey("import", "AAPL", "1d")
    store.upsert(key, frame_from({0: 1.0, 1: 2.0}))
    store._write_frame(key, frame_from({0: 1.0, 1: 2.0, 2: 3.0}))  # the write a SIGTERM cut short
    m = store.manifest(key)
    assert m["rows"] == 3 and m["last"] == (BASE + pd.Timedelta(days=2)).isoformat()
    assert m["sha256"] == atomic.sha256_file(store.data_path(key))
    assert [x["rows"] for x in store.list()] == [3]
    # a manifest lost altogether (killed before the first manifest was written) is rebuilt too
    store.manifest_path(key).unlink()
    assert store.manifest(key)["rows"] == 3 and store.manifest_path(key).exists()


def test_load_missing_series_suggests_fetch_or_import(store):
    with pytest.raises(DataNotFoundError, match="lstmcast fetch.*lstmcast import"):
        store.load(SeriesKey("import", "NOPE", "1d"))


def test_interval_spelling_is_normalised_to_one_file(store):
    store.upsert(SeriesKey("import", "AAPL", "1D"), frame_from({0: 1.0}))
    key = SeriesKey("import", "AAPL", "1d")
    assert key.interval == "1d"
    assert store.load(key)["close"].tolist() == [1.0]
    assert store.resolve("AAPL", " 1d").interval == "1d"
    assert [p.name for p in store.folder(key).glob("*.parquet")] == ["1d.parquet"]


# -- crash safety: SIGKILL in the middle of a large write ------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from pathlib import Path
    from lstmcast.data.store import SeriesKey, Store

    root, n = Path(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(1)
    idx = pd.date_range("2001-01-01", periods=n, freq="min", tz="UTC", name="time")
    c = rng.uniform(10, 20, n)  # random so it does not compress: the write takes a while
    f = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c, "volume": rng.uniform(0, 5, n)}, index=idx)
    print("ready", flush=True)
    Store(root).upsert(SeriesKey("binance", "BTC/USDT", "1m"), f)
    """
)


def _kill_mid_write(root: Path, n: int, *, min_size: int = 1 << 20) -> bool:
    """Start a writer of ``n`` rows and SIGKILL it once its temp file holds ``min_size`` bytes.
    True if killed mid-write."""
    key = SeriesKey("binance", "BTC/USDT", "1m")
    folder = Store(root).folder(key)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(n)], env=subprocess_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            tmps = list(folder.glob(".1m.parquet.*.tmp"))
            if tmps:
                try:
                    size = tmps[0].stat().st_size
                except FileNotFoundError:  # renamed into place between glob and stat
                    continue
                if size >= min_size:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return True
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.slow
def test_sigkill_mid_write_leaves_previous_file_intact(tmp_path):
    key = SeriesKey("binance", "BTC/USDT", "1m")
    n = 2_000_000
    for attempt in range(3):
        root = tmp_path / f"try{attempt}"
        store = Store(root)
        small = frame_from({i: 100.0 + i for i in range(50)}, start=pd.Timestamp("2000-01-01", tz="UTC"), freq="min")
        store.upsert(key, small)
        before = store.load(key)
        manifest_before = store.manifest(key)

        killed = _kill_mid_write(root, n)

        after = store.load(key)  # never a torn file: either the old series or the complete new one
        manifest = store.manifest(key)
        assert manifest["sha256"] == atomic.sha256_file(store.data_path(key))
        if killed:
            pd.testing.assert_frame_equal(after, before)
            assert manifest == manifest_before
            # the lock died with the writer: the series is still writable
            store.upsert(key, frame_from({60: 7.0}, start=pd.Timestamp("2000-01-01", tz="UTC"), freq="min"))
            assert len(store.load(key)) == 51
            assert [m["symbol"] for m in store.list()] == ["BTC/USDT"]
            return
        assert len(after) == n + len(small)  # the writer finished first: the new file is whole
        n *= 2
    pytest.fail("the writer always finished before it could be killed mid-write")


def test_interrupted_atomic_write_removes_temp_and_keeps_old(tmp_path):
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# -- two processes upserting the same series -------------------------------------------------------

UPSERTER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from pathlib import Path
    from lstmcast.data.store import SeriesKey, Store

    root, worker, rounds, chunk = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    (root / f"ready{worker}").touch()
    while not (root / "go").exists():
        time.sleep(0.005)
    store = Store(root)
    key = SeriesKey("binance", "ETH/USDT", "1h")
    base = pd.Timestamp("2024-01-01", tz="UTC")
    for r in range(rounds):
        # interleave: worker 0 writes even chunks, worker 1 odd ones
        first = (2 * r + worker) * chunk
        idx = pd.DatetimeIndex([base + pd.Timedelta(hours=h) for h in range(first, first + chunk)], name="time")
        v = [float(h + 1) for h in range(first, first + chunk)]
        f = pd.DataFrame({"open": v, "high": v, "low": v, "close": v, "volume": v}, index=idx)
        store.upsert(key, f)
    """
)


@pytest.mark.slow
def test_concurrent_upserts_lose_no_rows(tmp_path):
    root = tmp_path / "home"
    root.mkdir()
    rounds, chunk = 20, 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPSERTER, str(root), str(w), str(rounds), str(chunk)],
            env=subprocess_env(), stderr=subprocess.PIPE, text=True,
        )
        for w in (0, 1)
    ]
    deadline = time.monotonic() + 120
    while not all((root / f"ready{w}").exists() for w in (0, 1)) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
        time.sleep(0.01)
    (root / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err

    store = Store(root)
    key = SeriesKey("binance", "ETH/USDT", "1h")
    got = store.load(key)
    total = 2 * rounds * chunk
    assert len(got) == total
    assert got["close"].tolist() == [float(h + 1) for h in range(total)]
    m = store.manifest(key)
    assert m["rows"] == total
    assert m["gaps"]["missing_bars"] == 0
    assert m["sha256"] == atomic.sha256_file(store.data_path(key))


# -- manifest and resolve ----------------------------------------------------------------------------


def test_manifest_fields(store):
    key = SeriesKey("binance", "BTC/USDT", "1d")
    rows = {i: 100.0 + i for i in range(10) if i not in (3, 4, 7)}
    t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    res = store.upsert(key, frame_from(rows), extra={"note": "x"})
    m = store.manifest(key)
    assert m == res.manifest
    assert m["source"] == "binance"
    assert m["symbol"] == "BTC/USDT"
    assert m["interval"] == "1d"
    assert m["kind"] == "price"
    assert m["market"] == "crypto"
    assert m["rows"] == 7
    assert m["first"] == "2024-01-01T00:00:00+00:00"
    assert m["last"] == "2024-01-10T00:00:00+00:00"
    assert m["columns"] == list(schema.COLUMNS)
    assert m["gaps"]["missing_bars"] == 3
    assert m["gaps"]["runs"] == 2
    assert m["gaps"]["largest"][0] == {
        "from": "2024-01-04T00:00:00+00:00", "to": "2024-01-05T00:00:00+00:00", "bars": 2
    }
    assert m["sha256"] == atomic.sha256_file(store.data_path(key))
    written = dt.datetime.fromisoformat(m["written_at"])
    assert written.tzinfo is not None and written >= t0
    assert m["extra"] == {"note": "x"}
    assert store.manifest_path(key).parent == store.data_path(key).parent


def test_equity_manifest_has_no_weekend_gaps(store):
    key = SeriesKey("import", "AAPL", "1d")
    days = pd.bdate_range("2024-07-01", "2024-07-31", tz="UTC").drop(pd.Timestamp("2024-07-04", tz="UTC"))
    v = np.linspace(10, 20, len(days))
    f = pd.DataFrame({"open": v, "high": v, "low": v, "close": v, "volume": v}, index=days.rename("time"))
    m = store.upsert(key, f).manifest
    assert m["market"] == "equity"
    assert m["gaps"]["missing_bars"] == 0


def test_list_is_sorted_and_empty_when_nothing_stored(store):
    assert store.list() == []
    store.upsert(SeriesKey("yahoo", "MSFT", "1d"), frame_from({0: 1.0}))
    store.upsert(SeriesKey("binance", "BTC/USDT", "1d"), frame_from({0: 1.0}))
    store.upsert(SeriesKey("import", "AAPL", "1d"), frame_from({0: 1.0}))
    assert [(m["source"], m["symbol"]) for m in store.list()] == [
        ("binance", "BTC/USDT"), ("import", "AAPL"), ("yahoo", "MSFT")
    ]


def test_resolve_bare_and_qualified(store):
    store.upsert(SeriesKey("binance", "BTC/USDT:USDT", "1d"), frame_from({0: 1.0}))
    store.upsert(SeriesKey("yahoo", "AAPL", "1d"), frame_from({0: 1.0}))
    assert store.resolve("AAPL", "1d") == SeriesKey("yahoo", "AAPL", "1d")
    assert store.resolve("yahoo:AAPL", "1d") == SeriesKey("yahoo", "AAPL", "1d")
    assert store.resolve("BTC/USDT:USDT", "1d") == SeriesKey("binance", "BTC/USDT:USDT", "1d")
    assert store.resolve("binance:BTC/USDT:USDT", "1d") == SeriesKey("binance", "BTC/USDT:USDT", "1d")


def test_parse_spec():
    assert parse_spec("AAPL") == (None, "AAPL")
    assert parse_spec("Yahoo:AAPL") == ("yahoo", "AAPL")
    assert parse_spec("BTC/USDT:USDT") == (None, "BTC/USDT:USDT")
    assert parse_spec("kraken:BTC/USD", default_source="yahoo") == ("kraken", "BTC/USD")
    assert parse_spec("^GSPC", default_source="yahoo") == ("yahoo", "^GSPC")


def test_resolve_ambiguous_names_sources(store):
    store.upsert(SeriesKey("yahoo", "BTC-USD", "1d"), frame_from({0: 1.0}))
    store.upsert(SeriesKey("import", "BTC-USD", "1d"), frame_from({0: 1.0}))
    with pytest.raises(DataError, match="several sources") as exc:
        store.resolve("BTC-USD", "1d")
    assert "import:BTC-USD" in str(exc.value) and "yahoo:BTC-USD" in str(exc.value)


def test_resolve_missing_suggests_fetch_or_import(store):
    with pytest.raises(DataNotFoundError) as exc:
        store.resolve("TSLA", "1d")
    assert "lstmcast fetch TSLA" in str(exc.value)
    assert "lstmcast import FILE --symbol TSLA" in str(exc.value)
    with pytest.raises(DataNotFoundError, match="lstmcast fetch yahoo:TSLA"):
        store.resolve("yahoo:TSLA", "1d")


def test_resolve_missing_interval_lists_stored_ones(store):
    store.upsert(SeriesKey("yahoo", "AAPL", "1d"), frame_from({0: 1.0}))
    with pytest.raises(DataNotFoundError, match=r"stored intervals: 1d"):
        store.resolve("AAPL", "1h")


# -- symbols that could escape the data directory ------------------------------------------------

ESCAPING = ["../x", "/etc/passwd", "a/b/c", "a\\b", "x\x00y", "..", ".hidden", "C:\\x", "C:/x", "~root",
            "x/..", "BTC/", "/", "", " AAPL", "a\nb"]
ALLOWED = ["BTC/USDT", "^GSPC", "EURUSD=X", "BTC-USD", "BTC/USDT:USDT", "BRK.B", "a%2F..%2Fb"]


@pytest.mark.parametrize("symbol", ESCAPING)
def test_escaping_symbols_are_rejected(symbol, store):
    with pytest.raises(DataError, match="symbol"):
        check_symbol(symbol)
    with pytest.raises(DataError):
        store.upsert(SeriesKey("import", symbol, "1d"), frame_from({0: 1.0}))
    assert not store.root.exists() or not any(store.root.rglob("*.parquet"))


@pytest.mark.parametrize("source", ["../x", "a/b", "", "Yahoo", "x\x00"])
def test_bad_sources_are_rejected(source):
    with pytest.raises(DataError, match="source"):
        SeriesKey(source, "AAPL", "1d")


@pytest.mark.parametrize("symbol", ALLOWED)
def test_allowed_symbols_stay_inside_the_data_dir(symbol, store):
    key = SeriesKey("binance", symbol, "1d")
    store.upsert(key, frame_from({0: 1.0}))
    path = store.data_path(key).resolve()
    series_root = (store.root / "series" / "binance").resolve()
    assert path.parent.parent == series_root  # exactly one folder per symbol
    assert path.exists()
    assert store.manifest(key)["symbol"] == symbol
    assert store.resolve(f"binance:{symbol}", "1d") == key


def test_full_refetch_replaces_a_damaged_series(store):
    """``fetch --full`` goes through upsert(replace=True): the damaged file is set aside, not lost."""
    key = SeriesKey("yahoo", "AAPL", "1d")
    store.upsert(key, frame_from({0: 1.0, 1: 2.0}))
    store.data_path(key).write_bytes(b"PAR1 not really")
    with pytest.raises(StoreError, match=r"1d.parquet is damaged.*fetch --full"):
        store.load(key)
    up = store.upsert(key, frame_from({0: 1.0, 1: 2.0, 2: 3.0}), replace=True)
    assert up.set_aside is not None and up.set_aside.endswith("1d.parquet.damaged")
    assert (store.folder(key) / "1d.parquet.damaged").read_bytes() == b"PAR1 not really"
    assert len(store.load(key)) == 3 and store.manifest(key)["rows"] == 3
    # a second damage keeps the first one's evidence too
    store.data_path(key).write_bytes(b"again")
    up = store.upsert(key, frame_from({5: 1.0}))
    assert up.set_aside != str(store.folder(key) / "1d.parquet.damaged")
    assert len(list(store.folder(key).glob("1d.parquet.damaged*"))) == 2


def test_orphan_temp_file_of_a_sigkilled_writer_is_removed_by_the_next_writer(tmp_path):
    key = SeriesKey("binance", "BTC/USDT", "1m")
    for attempt in range(3):
        root = tmp_path / f"try{attempt}"
        store = Store(root)
        store.upsert(key, frame_from({0: 1.0}, freq="min"))
        if not _kill_mid_write(root, 400_000 * 2 ** attempt, min_size=1):
            continue
        orphans = list(store.folder(key).glob(".1m.parquet.*.tmp"))
        assert orphans, "the killed writer left no temp file"
        assert [m["rows"] for m in store.list()] == [1]  # readers never see it
        store.upsert(key, frame_from({1: 2.0}, freq="min"))
        assert not any(p.exists() for p in orphans)
        assert not list(store.folder(key).glob(".*.tmp"))
        assert len(store.load(key)) == 2
        return
    pytest.fail("the writer always finished before it could be killed mid-write")
