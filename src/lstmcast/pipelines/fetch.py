"""Which stored series a watchlist entry reads, whether a vendor can update it, and the fetch step.

Sources that ``lstmcast run`` never asks a vendor about: a series put in the store by
``lstmcast import`` is used as stored. Any other source that is neither yahoo nor a ccxt exchange
id (an ``import --source NAME``) is treated the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lstmcast.errors import DataNotFoundError, LstmcastError

IMPORT_SOURCE = "import"


@dataclass(frozen=True)
class FetchResult:
    """What the fetch step did for one entry."""

    rows_added: int  # new bars stored by this fetch
    last: str | None = None  # ISO time of the newest stored bar
    skipped: str | None = None  # why nothing was fetched (e.g. an imported series); None: it was


def is_fetchable(source: str | None) -> bool:
    """True for Yahoo (the default) and ccxt exchange ids; False for imported series."""
    if source in (None, "yahoo"):
        return True
    if source == IMPORT_SOURCE:
        return False
    # TODO(data layer): this list belongs in data/sources/ccxt_source.py (the one ccxt importer);
    # data/* is being edited elsewhere right now, so the lookup stays here until then
    import ccxt

    return source in ccxt.exchanges


def series_key(entry: Any) -> Any:
    """The stored series (``SeriesKey``) a watchlist entry (``config.WatchEntry``) reads and writes."""
    from lstmcast.data.store import SeriesKey
    from lstmcast.data.update import resolve_source

    if not is_fetchable(entry.source):
        return SeriesKey(str(entry.source), entry.symbol, entry.interval)
    _, name, symbol = resolve_source(entry.spec)
    return SeriesKey(name, symbol, entry.interval)


def fetch_entry(store: Any, entry: Any, *, log: logging.Logger, accept_partial: bool = False,
                **fetch_options: Any) -> FetchResult:
    """Fetch new bars of a watchlist entry into the store (an imported series is used as stored).

    ``fetch_options`` go to ``data.update.fetch_series`` (``session``, ``exchange_overrides``,
    ``sleep``, ``policy``: the seams tests use to reach fake far ends). A failed fetch raises the
    error class it reported, after storing what it got. A ``partial`` fetch (some bars stored, the
    rest missing) fails the entry too, unless ``accept_partial`` (the config's ``accept_partial_fetch``).
    """
    from lstmcast import errors
    from lstmcast.data.update import fetch_series

    key = series_key(entry)
    if not is_fetchable(entry.source):
        if not store.exists(key):
            raise DataNotFoundError(
                f"{key} is not in the store and {entry.source!r} is not a fetchable source; "
                f"add it with `lstmcast import FILE --symbol {entry.symbol} --source {entry.source} "
                f"--interval {entry.interval}`"
            )
        m = store.manifest(key)
        return FetchResult(
            rows_added=0,
            last=m.get("last"),
            skipped=f"{entry.source!r} is not a fetchable source; using the {m.get('rows')} stored bars",
        )
    r = fetch_series(store, key.spec, interval=key.interval, **fetch_options)
    for note in r.notes:
        log.info("%s: %s", entry, note)
    for gap in r.new_gaps:
        log.warning("%s: %d bar(s) missing from %s to %s", entry, gap["bars"], gap["from"], gap["to"])
    partial = r.status == "partial"  # update.STATUS_PARTIAL: some bars stored, the rest missing
    counts = f"{r.bars_received} of {r.bars_expected} expected bars received, {r.rows_stored} rows stored"
    if partial and accept_partial:
        log.warning("%s: partial fetch accepted (accept_partial_fetch = true): %s (%s)", entry, r.error, counts)
    elif not r.ok:
        cls = getattr(errors, r.error_type or "", None)
        if not (isinstance(cls, type) and issubclass(cls, LstmcastError)):
            cls = errors.DataSourceError
        if partial:
            raise cls(f"partial fetch: {r.error} ({counts}; set accept_partial_fetch = true to use them)")
        got = f" (stored {r.rows_added} new bar(s) up to {r.last} first)" if r.rows_added else ""
        raise cls(f"{r.error}{got}")
    last = r.last or (store.manifest(key).get("last") if store.exists(key) else None)
    return FetchResult(rows_added=r.rows_added, last=last)
