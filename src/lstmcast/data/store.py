"""The local Parquet store: one file per (source, symbol, interval), plus a JSON manifest.

Layout under the data directory::

    series/{source}/{symbol, percent-encoded}/{interval}.parquet   the bars
    series/{source}/{symbol, percent-encoded}/{interval}.json      the manifest
    series/{source}/{symbol, percent-encoded}/{interval}.lock      the per-series lock

Writes are atomic and every read-modify-write holds the series lock, so two processes updating
the same series never lose rows. This module never touches the network.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pandas as pd

from lstmcast import atomic
from lstmcast.data import calendar, schema
from lstmcast.errors import DamagedSeriesError, DataError, DataNotFoundError, LockedError, LstmcastError

MANIFEST_VERSION = 1
LOCK_TIMEOUT_S = 120.0
_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
_SYMBOL_SAFE = "-._=^"  # kept as-is in file names; everything else is percent-encoded


def check_symbol(symbol: str) -> str:
    """Reject symbols that could escape the data directory or break file names."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError("symbol is empty")
    if symbol != symbol.strip():
        raise DataError(f"symbol {symbol!r} has leading or trailing spaces")
    bad = [ch for ch in symbol if ord(ch) < 32 or ch in "\\\x7f"]
    if bad:
        raise DataError(f"symbol {symbol!r} contains a forbidden character {bad[0]!r}")
    if len(symbol) > 64:
        raise DataError(f"symbol {symbol[:20]!r}... is longer than 64 characters")
    if symbol.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", symbol):
        raise DataError(f"symbol {symbol!r} looks like an absolute path")
    parts = symbol.split("/")
    if len(parts) > 2 or any(p in ("", ".", "..") for p in parts) or symbol.startswith("."):
        raise DataError(
            f"symbol {symbol!r} is not allowed: only one '/' (as in BASE/QUOTE) and no '.' or '..' parts"
        )
    return symbol


def check_source(source: str) -> str:
    if not _SOURCE_RE.match(source or ""):
        raise DataError(f"source {source!r} must be lower-case letters, digits, '_', '-' or '.' (e.g. yahoo, binance)")
    return source


def symbol_dirname(symbol: str) -> str:
    """The file-name form of a symbol, shared by every area of the data directory (BTC/USDT -> BTC%2FUSDT)."""
    return quote(check_symbol(symbol), safe=_SYMBOL_SAFE)


def symbol_from_dirname(name: str) -> str:
    return unquote(name)


def key_folder(area: Path, key: SeriesKey) -> Path:
    """``{area}/{source}/{symbol}``: the folder of one series inside an area (series, models, forecasts)."""
    area = Path(area).resolve()
    folder = (area / key.source / symbol_dirname(key.symbol)).resolve()
    if not folder.is_relative_to(area):  # belt and braces after check_symbol
        raise DataError(f"symbol {key.symbol!r} would escape the data directory")
    return folder


def file_lock(path: Path, *, what: str, timeout: float = LOCK_TIMEOUT_S) -> NamedLock:
    """An inter-process lock on ``path`` whose timeout is a ``LockedError`` naming ``what``."""
    from filelock import FileLock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return NamedLock(FileLock(str(path), timeout=timeout), what=what)


@dataclass(frozen=True)
class SeriesKey:
    source: str
    symbol: str
    interval: str

    def __post_init__(self) -> None:
        check_source(self.source)
        check_symbol(self.symbol)
        # "1D", " 1d" and "d" must name the same file as "1d"
        object.__setattr__(self, "interval", calendar.parse_interval(self.interval).name)

    @property
    def spec(self) -> str:
        """How users write it: ``binance:BTC/USDT`` or ``yahoo:AAPL``."""
        return f"{self.source}:{self.symbol}"

    def __str__(self) -> str:
        return f"{self.spec} {self.interval}"


def parse_spec(spec: str, *, default_source: str | None = None) -> tuple[str | None, str]:
    """Split ``SOURCE:SYMBOL`` into (source, symbol); a bare symbol gives (default_source, symbol)."""
    head, sep, tail = spec.partition(":")
    if sep and _SOURCE_RE.match(head.lower()) and tail:
        return head.lower(), tail
    return default_source, spec


@dataclass(frozen=True)
class UpsertResult:
    key: SeriesKey
    rows_before: int
    rows_after: int
    rows_added: int
    rows_replaced: int
    manifest: dict[str, Any]
    set_aside: str | None = None  # where a damaged data file was moved before this write


class Store:
    """The series store rooted at a data directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.series_root = self.root / "series"

    # -- paths --------------------------------------------------------------------------------
    def folder(self, key: SeriesKey) -> Path:
        return key_folder(self.series_root, key)

    def data_path(self, key: SeriesKey) -> Path:
        return self.folder(key) / f"{key.interval}.parquet"

    def manifest_path(self, key: SeriesKey) -> Path:
        return self.folder(key) / f"{key.interval}.json"

    def lock(self, key: SeriesKey, *, timeout: float = LOCK_TIMEOUT_S) -> NamedLock:
        """The per-series lock (a context manager)."""
        return file_lock(self.folder(key) / f"{key.interval}.lock", what=str(key), timeout=timeout)

    # -- reading ------------------------------------------------------------------------------
    def exists(self, key: SeriesKey) -> bool:
        return self.data_path(key).exists()

    def load(self, key: SeriesKey) -> pd.DataFrame:
        """Read a series; raise ``DataNotFoundError`` when absent, ``StoreError`` when unreadable."""
        path = self.data_path(key)
        if not path.exists():
            raise DataNotFoundError(f"no stored data for {key}; run `lstmcast fetch` or `lstmcast import` first")
        try:
            import pyarrow.parquet as pq  # ParquetFile, not read_table: no pyarrow.dataset to import

            frame = pq.ParquetFile(path).read(use_pandas_metadata=True).to_pandas()
        except Exception as e:  # pyarrow raises several unrelated types for a damaged file
            raise DamagedSeriesError(
                f"{path} is damaged ({_brief(e)}); replace the series with `lstmcast import FILE --symbol "
                f"{key.symbol} --source {key.source} --interval {key.interval}` or `lstmcast fetch --full` "
                f"(the damaged file is kept as {path.name}.damaged)",
            ) from e
        return schema.conform(frame)

    def manifest(self, key: SeriesKey) -> dict[str, Any]:
        """The series' manifest, rebuilt from the data file if a killed writer left it stale or missing.

        The data file is replaced before its manifest; a process killed between the two leaves a
        manifest that describes the previous file. Size and mtime recorded in the manifest catch that.
        """
        if not self.data_path(key).exists():
            raise DataNotFoundError(f"no stored data for {key}")
        manifest, problem = self._read_manifest(key)
        if problem is None and not self._describes_file(key, manifest):
            problem = "was stale (it described an earlier data file)"
        if problem is not None:
            with self.lock(key):
                manifest, problem = self._read_manifest(key)
                if problem is None and not self._describes_file(key, manifest):
                    problem = "was stale (it described an earlier data file)"
                if problem is not None:
                    manifest = self._rebuild_manifest(key, manifest, reason=problem)
        return manifest

    def _read_manifest(self, key: SeriesKey) -> tuple[dict[str, Any] | None, str | None]:
        """(manifest, None), or (None, why it cannot be used): missing or unreadable. A damaged
        manifest is only a cache of facts about the data file, so it is rebuilt, not fatal."""
        path = self.manifest_path(key)
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            return None, "was missing"
        except (OSError, ValueError) as e:
            return None, f"was unreadable ({_brief(e)})"
        if not isinstance(manifest, dict) or manifest.get("format_version") != MANIFEST_VERSION:
            return None, "was unreadable (not a version-1 manifest)"
        return manifest, None

    def _describes_file(self, key: SeriesKey, manifest: dict[str, Any]) -> bool:
        st = self.data_path(key).stat()
        return manifest.get("size") == st.st_size and manifest.get("mtime_ns") == st.st_mtime_ns

    def _rebuild_manifest(self, key: SeriesKey, old: dict[str, Any] | None, *, reason: str) -> dict[str, Any]:
        frame = self.load(key)  # a damaged data file raises DamagedSeriesError: nothing to rebuild from
        kind = (old or {}).get("kind")
        market = (old or {}).get("market")
        guessed = []
        if kind is None:  # a value series is any series that is not a valid price series
            try:
                schema.validate(frame, kind=schema.KIND_PRICE)
                kind = schema.KIND_PRICE
            except DataError:
                kind = schema.KIND_VALUE
            guessed.append("kind")
        if market is None:
            market = calendar.infer_market(key.source, key.symbol)
            guessed.append("market")
        note = f"manifest {reason}; rebuilt from {self.data_path(key).name}"
        if guessed:
            note += f" ({' and '.join(guessed)} guessed: {kind}, {market})" if len(guessed) == 2 else \
                f" ({guessed[0]} guessed: {kind if guessed[0] == 'kind' else market})"
        manifest = self._build_manifest(key, frame, kind=kind, market=market, extra=None, old=old)
        manifest["rebuilt"] = {"at": manifest["written_at"], "reason": note}
        atomic.write_json(self.manifest_path(key), manifest)
        return manifest

    def list(self) -> list[dict[str, Any]]:
        """Every stored series, sorted by source, symbol, interval: its manifest plus ``status``
        ("ok"; "rebuilt" when the manifest was rebuilt from the data file since the last write;
        "damaged" when the data file cannot be read, with ``rows`` etc. None) and ``note``."""
        out = []
        for path in sorted(self.series_root.glob("*/*/*.parquet")):
            try:
                key = SeriesKey(path.parent.parent.name, symbol_from_dirname(path.parent.name), path.stem)
            except LstmcastError:  # a stray file that is not a series
                continue
            try:
                m = dict(self.manifest(key))
            except DamagedSeriesError as e:
                m = {"source": key.source, "symbol": key.symbol, "interval": key.interval, "kind": None,
                     "market": None, "rows": None, "first": None, "last": None, "gaps": None,
                     "file": str(path), "status": "damaged", "note": str(e)}
            else:
                rebuilt = m.get("rebuilt") or {}
                m["status"], m["note"] = ("rebuilt", rebuilt.get("reason")) if rebuilt else ("ok", None)
            out.append(m)
        return sorted(out, key=lambda m: (m["source"], m["symbol"], m["interval"]))

    def resolve(self, spec: str, interval: str) -> SeriesKey:
        """Find the stored series a user means by ``SYMBOL`` or ``SOURCE:SYMBOL``."""
        interval = calendar.parse_interval(interval).name
        source, symbol = parse_spec(spec)
        check_symbol(symbol)
        if source is not None:
            key = SeriesKey(source, symbol, interval)
            if not self.exists(key):
                raise DataNotFoundError(f"no stored data for {key}; run `lstmcast fetch {spec} --interval {interval}`")
            return key
        matches = [m for m in self.list() if m["symbol"] == symbol and m["interval"] == interval]
        if not matches:
            others = sorted({m["interval"] for m in self.list() if m["symbol"] == symbol})
            hint = f" (stored intervals: {', '.join(others)})" if others else ""
            raise DataNotFoundError(
                f"no stored data for {symbol} {interval}{hint}; run `lstmcast fetch {symbol}` "
                f"or `lstmcast import FILE --symbol {symbol}`"
            )
        if len(matches) > 1:
            names = ", ".join(f"{m['source']}:{symbol}" for m in matches)
            raise DataError(f"{symbol} {interval} is stored from several sources ({names}); name one")
        return SeriesKey(matches[0]["source"], symbol, interval)

    # -- writing ------------------------------------------------------------------------------
    def upsert(
        self,
        key: SeriesKey,
        frame: pd.DataFrame,
        *,
        kind: str | None = None,
        market: str | None = None,
        replace: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> UpsertResult:
        """Merge ``frame`` into the stored series (new bars win on equal times), atomically, under the lock.

        ``replace=True`` writes ``frame`` as the whole series (``fetch --full``). ``kind`` and
        ``market`` default to what the manifest already says.
        """
        with self.lock(key):
            old_manifest, _ = self._read_manifest(key)  # raw: we hold the lock, and rewrite it below
            kind = kind or (old_manifest or {}).get("kind") or schema.KIND_PRICE
            market = market or (old_manifest or {}).get("market") or calendar.infer_market(key.source, key.symbol)
            calendar.check_market(market)
            if old_manifest and old_manifest.get("kind", schema.KIND_PRICE) != kind:
                raise DataError(
                    f"{key} is stored as a {old_manifest.get('kind')} series; cannot add {kind} data to it"
                )
            self._remove_orphans(key)
            new = schema.validate(frame, kind=kind)
            old, set_aside = schema.empty_frame(), None
            if self.exists(key):
                try:
                    loaded = self.load(key)
                except DamagedSeriesError:
                    # nothing to merge with: the new bars become the series, the evidence is kept
                    set_aside = self._set_aside(key)
                else:
                    old = loaded if not replace else old
            if len(old) and ("adj_close" in old.columns) != ("adj_close" in new.columns):
                has, lacks = ("stored", "new") if "adj_close" in old.columns else ("new", "stored")
                raise DataError(
                    f"{key}: the {has} bars have an adj_close column and the {lacks} bars do not; "
                    "add the same columns, or replace the whole series (fetch --full)"
                )
            merged = schema.validate(schema.combine(old, new), kind=kind)
            added = int((~new.index.isin(old.index)).sum())
            replaced = len(new) - added
            self._write_frame(key, merged)
            manifest = self._build_manifest(key, merged, kind=kind, market=market, extra=extra, old=old_manifest)
            atomic.write_json(self.manifest_path(key), manifest)
        return UpsertResult(key, len(old), len(merged), added, replaced, manifest,
                            str(set_aside) if set_aside else None)

    def _set_aside(self, key: SeriesKey) -> Path:
        """Rename a damaged data file to ``{interval}.parquet.damaged`` (``.damaged.N`` if taken)."""
        path = self.data_path(key)
        target = path.with_name(path.name + ".damaged")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.damaged.{n}")
        path.rename(target)
        return target

    def _remove_orphans(self, key: SeriesKey) -> None:
        """Delete temp files of this series left by a writer that was killed (we hold its lock)."""
        folder = self.folder(key)
        for name in (self.data_path(key).name, self.manifest_path(key).name):
            for tmp in folder.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def _write_frame(self, key: SeriesKey, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=True)
        atomic.write_with(self.data_path(key), lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def _build_manifest(
        self,
        key: SeriesKey,
        frame: pd.DataFrame,
        *,
        kind: str,
        market: str,
        extra: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        interval = calendar.parse_interval(key.interval)
        gaps = calendar.find_gaps(frame.index, interval, market)
        st = self.data_path(key).stat()  # size+mtime let a later read tell a stale manifest
        manifest: dict[str, Any] = {"extra": dict(old["extra"])} if old and old.get("extra") else {}
        manifest.update(
            {
                "format_version": MANIFEST_VERSION,
                "source": key.source,
                "symbol": key.symbol,
                "interval": key.interval,
                "kind": kind,
                "market": market,
                "rows": len(frame),
                "first": frame.index[0].isoformat() if len(frame) else None,
                "last": frame.index[-1].isoformat() if len(frame) else None,
                "columns": list(frame.columns),
                "gaps": {
                    "missing_bars": sum(g[2] for g in gaps),
                    "runs": len(gaps),
                    "largest": [
                        {"from": a.isoformat(), "to": b.isoformat(), "bars": n}
                        for a, b, n in sorted(gaps, key=lambda g: -g[2])[:10]
                    ],
                },
                "file": self.data_path(key).name,
                "sha256": atomic.sha256_file(self.data_path(key)),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
        )
        if extra:
            manifest["extra"] = {**manifest.get("extra", {}), **extra}
        return manifest


def _brief(e: BaseException, limit: int = 160) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    text = re.sub(r"^Could not open Parquet input source '[^']*': ", "", text)  # the path is named already
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NamedLock:
    """A FileLock that reports a timeout as ``LockedError`` naming what was locked."""

    def __init__(self, lock, *, what: str) -> None:
        self._lock = lock
        self._what = what

    def __enter__(self):
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout as e:
            raise LockedError(f"{self._what} is locked by another lstmcast process ({self._lock.lock_file})") from e
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
