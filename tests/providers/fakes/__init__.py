"""Stateful fakes of the documented provider APIs, and the seams they need (a fake clock)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["FakeClock", "one_at_a_time"]

_Handler = TypeVar("_Handler", bound=Callable[..., object])


def one_at_a_time(handle: _Handler) -> _Handler:
    """A fake's request handler, run for one request at a time: ``apply`` sends independent
    changes from several threads, and a fake's state (its id counters, its lists) is plain
    Python. A real platform serialises its own writes just as invisibly."""
    lock = threading.RLock()

    @functools.wraps(handle)
    def serialised(*args: object, **kwargs: object) -> object:
        with lock:
            return handle(*args, **kwargs)

    return serialised  # type: ignore[return-value]


@dataclass
class FakeClock:
    """A clock that never sleeps: ``sleep`` moves ``now`` and records the wait."""

    time: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        with self._lock:  # retries wait on worker threads
            self.sleeps.append(seconds)
            self.time += seconds
