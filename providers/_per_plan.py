"""Plan-time checks answered from one pass over the plan, not one pass per change.

The core calls ``Provider.check_change(change, planned)`` once for every change of a plan,
each time with the whole plan. A provider whose answer depends on what the plan does
elsewhere (the lists and fields it creates, the titles earlier changes give) would walk
the plan once per change if it recomputed that: quadratic in the plan's size. Instead it
derives what it needs once, keeps it in a :class:`Kept`, and answers each change from it.

A kept value is reused only while it is asked for with the very same objects it was made
from (compared by identity, and held, so no ``id`` is reused while it is kept): the same
``Plan`` object, and the same provider state objects the value was derived from (a list's
fields as last fetched, say). Another plan (a workspace plans more than once per run: the
saved-plan check, the convergence re-plan) or a new fetch makes it again, never stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from reconciler.plan import Plan

__all__ = ["Kept", "positions"]

T = TypeVar("T")


class Kept(Generic[T]):
    """One value derived from some objects, kept while it is asked for with the same ones."""

    def __init__(self) -> None:
        self._held: tuple[tuple[object, ...], T] | None = None

    def get(self, sources: tuple[object, ...], make: Callable[[], T]) -> T:
        """The value kept for exactly ``sources`` (each the same object), else ``make()``,
        which is then kept in place of the last one."""
        held = self._held
        if held is not None and _same(held[0], sources):
            return held[1]
        value = make()
        self._held = (sources, value)
        return value


def _same(kept: tuple[object, ...], sources: tuple[object, ...]) -> bool:
    return len(kept) == len(sources) and all(a is b for a, b in zip(kept, sources, strict=True))


def positions(planned: Plan) -> dict[int, int]:
    """Each change's index in ``planned``, by the identity of the change object (the plan
    holds its changes, so while it lives no other object has one of these ids)."""
    return {id(change): index for index, change in enumerate(planned.changes)}
