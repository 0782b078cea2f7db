"""The retry helper: exponential backoff, bounded attempts, and a wait budget shared by a whole fetch."""

from __future__ import annotations

import pytest

from lstmcast.data.sources.retry import RetryBudget, RetryPolicy, call_with_retry
from lstmcast.errors import DataSourceError, TemporaryFetchError

POLICY = RetryPolicy(attempts=10, base_delay_s=1.0, max_delay_s=30.0, max_elapsed_s=60.0, jitter=0.0)


def flaky(failures: int, *, retry_after: float | None = None):
    state = {"calls": 0}

    def fn():
        state["calls"] += 1
        if state["calls"] <= failures:
            raise TemporaryFetchError("HTTP 429", retry_after=retry_after)
        return "ok"

    return fn, state


def test_backoff_doubles_and_retry_after_wins():
    waits: list[float] = []
    fn, state = flaky(3)
    assert call_with_retry(fn, policy=POLICY, sleep=waits.append) == "ok"
    assert waits == [1.0, 2.0, 4.0] and state["calls"] == 4
    waits.clear()
    fn, _ = flaky(1, retry_after=7.0)
    call_with_retry(fn, policy=POLICY, sleep=waits.append)
    assert waits == [7.0]


def test_permanent_errors_are_not_retried():
    calls = []

    def fn():
        calls.append(1)
        raise DataSourceError("no such symbol")

    with pytest.raises(DataSourceError):
        call_with_retry(fn, policy=POLICY, sleep=lambda s: None)
    assert len(calls) == 1


def test_attempts_are_bounded():
    patient = RetryPolicy(attempts=4, base_delay_s=1.0, max_elapsed_s=1000.0, jitter=0.0)
    fn, state = flaky(100)
    with pytest.raises(TemporaryFetchError) as e:
        call_with_retry(fn, policy=patient, sleep=lambda s: None)
    assert state["calls"] == 4 and e.value.attempts == 4


def test_total_wait_is_bounded_within_one_call():
    waits: list[float] = []
    fn, state = flaky(100)
    with pytest.raises(TemporaryFetchError):
        call_with_retry(fn, policy=POLICY, sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0] and sum(waits) <= POLICY.max_elapsed_s  # the next (30 s) would pass 60


def test_budget_bounds_the_total_wait_across_pages():
    """A paginated fetch rate-limited on every page must not wait max_elapsed_s per page."""
    budget = RetryBudget()
    waits: list[float] = []
    for _ in range(2):  # two pages, each answered 429 with Retry-After 25 s once
        fn, _ = flaky(1, retry_after=25.0)
        call_with_retry(fn, policy=POLICY, sleep=waits.append, budget=budget)
    fn, _ = flaky(1, retry_after=25.0)  # the third page would bring the total to 75 s > 60 s
    with pytest.raises(TemporaryFetchError):
        call_with_retry(fn, policy=POLICY, sleep=waits.append, budget=budget)
    assert waits == [25.0, 25.0] and budget.waited == 50.0


def test_brief_keeps_vendor_messages_to_one_short_line():
    from lstmcast.data.sources.retry import brief

    assert brief(ValueError("first line\nsecond")) == "first line"
    long = brief(ValueError("x" * 1000))
    assert len(long) == 200 and long.endswith("...")
    assert brief(ValueError()) == "ValueError"
