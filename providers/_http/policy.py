"""When to retry and how fast to go: the retry policy, verdicts, Retry-After, rate limit."""

from __future__ import annotations

import email.utils
import math
import random
import threading
from dataclasses import dataclass
from datetime import datetime

import httpx

from reconciler.errors import ReconcilerError
from reconciler.provider import Clock

__all__ = ["RateLimiter", "RetryPolicy", "Verdict", "retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one call may be retried."""

    max_attempts: int = 6
    base_delay: float = 0.5
    """Seconds; the backoff ceiling doubles each attempt and the wait is drawn below it."""
    min_delay: float = 0.25
    """Floor on every wait between attempts, whatever the server asks: a ``Retry-After`` of
    0, negative or unreadable, or a jittered backoff drawn near zero, still waits this long,
    so no server can make the client hammer it."""
    max_delay: float = 30.0
    """Cap on any single wait, ``Retry-After`` included."""
    max_total_wait: float = 120.0
    """Cap on the time slept across all retries of one call."""
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.min_delay, self.max_delay, self.max_total_wait) < 0:
            raise ValueError("delays must not be negative")
        if self.min_delay > self.max_delay:
            raise ValueError("min_delay must not exceed max_delay")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based), at least
        ``min_delay``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(self.min_delay, rng.uniform(0.0, ceiling))

    def delay(self, asked: float | None, attempt: int, rng: random.Random) -> float:
        """The wait before the next attempt: what ``Retry-After`` asked (else the backoff),
        between ``min_delay`` and ``max_delay``."""
        wait = self.backoff(attempt, rng) if asked is None else asked
        return min(max(wait, self.min_delay), self.max_delay)


@dataclass(frozen=True)
class Verdict:
    """A provider's reading of a response, returned by ``classify``.

    ``Verdict(retry=True)`` retries like a 503 (``error``, if given, is raised when the
    retries run out); ``Verdict(error=exc)`` raises ``exc`` at once; ``Verdict()`` accepts
    the response as a success whatever its status.
    """

    retry: bool = False
    error: ReconcilerError | None = None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta-seconds or HTTP-date), if readable; the
    policy's ``min_delay`` still applies to what this returns.

    An HTTP-date is measured against the response's own ``Date`` header when it has one,
    so the server's clock is compared with itself; otherwise against this machine's.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
        sent = response.headers.get("Date")
        now = email.utils.parsedate_to_datetime(sent) if sent else None
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None or (now is not None and now.tzinfo is None):
        return None
    now = now or datetime.now(when.tzinfo)
    return max(0.0, (when - now).total_seconds())


class RateLimiter:
    """Spaces request starts ``1/rate`` seconds apart on ``clock``; thread-safe."""

    def __init__(self, rate: float | None, clock: Clock) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None

    def acquire(self, deadline: float | None = None) -> bool:
        """Wait for this request's turn; False (without waiting or taking a turn) when the
        turn would come after ``deadline`` (absolute on the clock)."""
        if not self._interval:
            return True
        with self._lock:
            now = self._clock.now()
            start = now if self._next is None else max(now, self._next)
            if deadline is not None and start >= deadline:
                return False
            self._next = start + self._interval
        if start > now:
            self._clock.sleep(start - now)
        return True
