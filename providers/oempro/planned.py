"""The custom fields a list has when each planned change runs, for ``check_change``: as
fetched, plus those the plan's earlier changes create. Derived once per plan
(``providers._per_plan``): the plan is walked once, not once per change, and the field
index a change is translated against is built once per list and number of fields created
before it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence

from providers._per_plan import Kept, positions
from reconciler.model import FieldDef
from reconciler.plan import Action, Change, Plan

from .api import FieldRecord
from .mapping import FieldIndex

__all__ = ["NO_FIELDS", "PlanIndex"]

NO_FIELDS: tuple[FieldRecord, ...] = ()
"""A list whose fields are not known (one object, so what is derived from it is kept)."""

Created = tuple[int, FieldRecord]
"""A field a change creates, and the change's index in the plan."""


class PlanIndex:
    """The fields one target's plan creates, by list, in plan order."""

    def __init__(
        self, planned: Plan, target: str, record: Callable[[int, FieldDef], FieldRecord]
    ) -> None:
        """``record(n, field)``: the field the plan's ``n``-th change creates, as read back."""
        self._positions = positions(planned)
        self._created: dict[str, list[Created]] = {}
        for n, c in enumerate(planned.changes):
            if c.target == target and c.action is Action.CREATE_FIELD and c.field is not None:
                self._created.setdefault(c.list, []).append((n, record(n, c.field)))
        self._indexes: dict[tuple[str, int], Kept[FieldIndex]] = {}

    def fields(
        self,
        change: Change,
        fetched: Sequence[FieldRecord],
        index: Callable[[Sequence[FieldRecord]], FieldIndex],
    ) -> FieldIndex:
        """``index`` of the list's fields when ``change`` runs: ``fetched`` (one object, for
        as long as the answer is kept) and those the plan creates before ``change`` (all
        of them if ``change`` is not one of the plan's own objects)."""
        created = self._created.get(change.list, [])
        position = self._positions.get(id(change))
        count = len(created) if position is None else bisect_left(created, position, key=_first)
        kept = self._indexes.setdefault((change.list, count), Kept())
        return kept.get((fetched,), lambda: index([*fetched, *(r for _, r in created[:count])]))


def _first(created: Created) -> int:
    return created[0]
