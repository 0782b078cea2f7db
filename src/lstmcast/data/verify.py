"""Does a vendor's answer match the request? The market calendar says which bars are due.

``fetch_series`` (update.py) asks these before storing anything: an answer that starts before the
request, ends before the last stored bar, or stops short of the bars the calendar says exist by
now is a ``WrongAnswer`` (retried like a network fault, then reported, never "ok").
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lstmcast.data import calendar
from lstmcast.errors import InconsistentAnswerError


def settled_end(iv: calendar.Interval, *, now: pd.Timestamp, end: pd.Timestamp | None) -> pd.Timestamp:
    """The open time of the newest bar a source must have by ``now`` (and before ``end``, exclusive).

    One bar for it to close, plus slack: a day for daily and weekly bars (an exchange's local date
    runs up to a day behind UTC, and vendors publish the close late), a bar or 15 minutes for
    intraday ones.
    """
    slack = pd.Timedelta(days=1) if iv.daily_or_longer else max(iv.delta, pd.Timedelta(minutes=15))
    limit = now - iv.delta - slack
    if end is not None:
        limit = min(limit, end - iv.delta)
    return limit


class WrongAnswer(InconsistentAnswerError):
    """An answer that does not match the request, with what it held (retried like a network fault)."""

    def __init__(self, message: str, *, bars: Any = None, expected: int = 0, received: int = 0) -> None:
        super().__init__(message)
        self.bars, self.expected, self.received = bars, expected, received


def check_answer(frame: pd.DataFrame, iv: calendar.Interval, market: str, *, what: str,
                  ask_from: pd.Timestamp | None, last_stored: pd.Timestamp | None,
                  newest: pd.Timestamp) -> None:
    """Raise ``WrongAnswer`` unless ``frame`` answers a request for bars from ``ask_from``:
    it may not start before it, may not end before ``last_stored`` (a stale or cached answer),
    and must reach ``newest``, the newest bar the market calendar (and the vendor's own market
    time) says must exist by now."""
    fmt = (lambda t: str(t.date())) if iv.daily_or_longer else (lambda t: t.isoformat())
    if len(frame) and last_stored is not None and frame.index[-1] < last_stored:
        raise WrongAnswer(f"{what}: the answer ends {fmt(frame.index[-1])}, before the last stored bar "
                           f"{fmt(last_stored)} (a stale or cached answer)")
    if len(frame) and ask_from is not None:
        slack = pd.Timedelta(days=1) if iv.daily_or_longer else iv.delta
        floor = (ask_from.normalize() if iv.daily_or_longer else ask_from) - slack
        if frame.index[0] < floor:
            raise WrongAnswer(f"{what}: the answer starts {fmt(frame.index[0])}, before the requested "
                               f"{fmt(ask_from)} (a stale or cached answer)")
    have = max([t for t in (last_stored, frame.index[-1] if len(frame) else None) if t is not None],
               default=None)
    if have is None:
        return
    after = have + (pd.Timedelta(days=1) if iv.daily_or_longer else pd.Timedelta(seconds=1))
    due = calendar.expected_bars(after, newest, iv, market) if newest >= after else []
    if len(due):
        first = last_stored if last_stored is not None else frame.index[0]
        expected, received = coverage(frame, iv, market, first=first, newest=newest)
        if not len(frame[frame.index > (last_stored if last_stored is not None else frame.index[0])]):
            raise WrongAnswer(f"{what}: no {iv.name} bars after {fmt(have)} although the market was open "
                               f"({len(due)} bar(s) due up to {fmt(newest)})", expected=expected)
        raise WrongAnswer(f"{what}: the answer ends {fmt(have)}, but {len(due)} more bar(s) are due up to "
                           f"{fmt(newest)}", bars=frame, expected=expected, received=received)


def coverage(frame: pd.DataFrame, iv: calendar.Interval, market: str, *, first: pd.Timestamp | None,
              newest: pd.Timestamp | None) -> tuple[int, int]:
    """(bars expected, bars received) between ``first`` (the first requested bar; default the first
    received) and ``newest`` (the newest bar the source should have), by the market's calendar."""
    if first is None:
        if not len(frame):
            return 0, 0
        first = frame.index[0]
    if iv.daily_or_longer:
        first = first.normalize()
    if newest is None or newest < first:
        return 0, 0
    expected = calendar.expected_bars(first, newest, iv, market)
    received = frame.index[(frame.index >= first) & (frame.index <= newest)]
    return len(expected), len(received)
