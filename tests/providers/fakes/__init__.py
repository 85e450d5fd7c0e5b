"""Stateful fakes of the documented provider APIs, and the seams they need (a fake clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FakeClock"]


@dataclass
class FakeClock:
    """A clock that never sleeps: ``sleep`` moves ``now`` and records the wait."""

    time: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
