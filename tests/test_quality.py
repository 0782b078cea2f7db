"""data.quality: one rule for jumps and likely unadjusted splits, used by fetch and import alike."""

from __future__ import annotations

from helpers_series import random_walk_frame
from lstmcast.data import quality
from lstmcast.data.update import quality_report


def _split(frame, at: int, ratio: float):
    f = frame.copy()
    f.iloc[at:, f.columns.get_indexer(["open", "high", "low", "close"])] /= ratio  # an unadjusted split
    return f


def test_a_two_for_one_split_is_a_jump_and_a_likely_split():
    f = _split(random_walk_frame(100, seed=1), 60, 2.0)
    q = quality.jumps(f)
    assert [j["time"] for j in q["jumps"]] == [f.index[60].isoformat()]
    assert q["likely_splits"][0]["split"] == "2-for-1"


def test_no_jump_in_a_quiet_series():
    assert quality.jumps(random_walk_frame(100, seed=1)) == {"jumps": [], "likely_splits": []}


def test_the_first_new_bar_is_checked_against_the_stored_one():
    f = _split(random_walk_frame(100, seed=1), 60, 3.0)
    q = quality.jumps(f.iloc[60:], context=f.iloc[:60])
    assert q["likely_splits"][0]["split"] == "3-for-1"
    assert quality.jumps(f.iloc[60:])["jumps"] == []  # without the stored bar there is nothing to compare


def test_fetch_reports_likely_splits_as_import_does():
    f = _split(random_walk_frame(100, seed=1), 60, 2.0)
    r = quality_report(f)
    assert r["likely_splits"] and r["likely_splits"] == quality.jumps(f)["likely_splits"]
