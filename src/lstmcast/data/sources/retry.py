"""Retry temporary fetch failures with exponential backoff and jitter, bounded in attempts and time.

Only ``TemporaryFetchError`` is retried; everything else (a bad symbol, a bad interval) fails at
once. A ``retry_after`` hint from the server (``Retry-After``) is honoured when it fits the budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lstmcast.errors import ServiceUnreachableError, TemporaryFetchError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``max_elapsed_s`` bounds the total time spent waiting between attempts."""

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_elapsed_s: float = 60.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    # An unreachable service (DNS failure, connection refused) is not worth minutes of waiting.
    unreachable_attempts: int = 2
    unreachable_elapsed_s: float = 3.0


DEFAULT_POLICY = RetryPolicy()


@dataclass
class RetryBudget:
    """Seconds already spent waiting, shared by every request of one fetch (e.g. all its pages),
    so that ``max_elapsed_s`` bounds the whole fetch, not each page."""

    waited: float = 0.0


def backoff_delay(attempt: int, policy: RetryPolicy, *, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based), with jitter."""
    base = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    r = (rng or random).uniform(1.0 - policy.jitter, 1.0 + policy.jitter)
    return max(0.0, base * r)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, TemporaryFetchError, float], None] | None = None,
    rng: random.Random | None = None,
    budget: RetryBudget | None = None,
) -> T:
    """Call ``fn`` until it succeeds, raises a permanent error, or the policy is spent.

    The last ``TemporaryFetchError`` is re-raised when giving up, its ``attempts`` set to how
    often we tried.
    ``sleep`` is injectable so tests never really wait. ``budget`` carries the time already
    waited across calls; without one, each call has the policy's whole allowance.
    """
    budget = budget if budget is not None else RetryBudget()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except TemporaryFetchError as e:
            unreachable = isinstance(e, ServiceUnreachableError)
            max_attempts = policy.unreachable_attempts if unreachable else policy.attempts
            max_elapsed = policy.unreachable_elapsed_s if unreachable else policy.max_elapsed_s
            delay = backoff_delay(attempt, policy, rng=rng)
            if e.retry_after is not None:
                delay = max(delay, float(e.retry_after))
            if attempt >= max_attempts or budget.waited + delay > max_elapsed:
                e.attempts = attempt
                raise
            if on_retry is not None:
                on_retry(attempt, e, delay)
            sleep(delay)
            budget.waited += delay


def brief(e: BaseException, *, limit: int = 200) -> str:
    """A vendor exception as one short line for our messages (vendors put whole responses in theirs)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_UNREACHABLE = (
    "could not resolve", "name or service not known", "nodename nor servname", "temporary failure in name",
    "failed to resolve", "name resolution", "getaddrinfo", "dnserror", "connection refused",
    "failed to connect", "couldn't connect", "network is unreachable", "no route to host",
    "newconnectionerror", "cannot connect to host",
)


def looks_unreachable(e: BaseException) -> bool:
    """True for DNS failures and refused connections anywhere in the exception's cause chain."""
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 10:
        text = f"{type(cur).__name__} {cur}".lower()
        if isinstance(cur, ConnectionRefusedError) or any(n in text for n in _UNREACHABLE):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False
