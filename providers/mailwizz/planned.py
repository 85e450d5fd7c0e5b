"""What a MailWizz plan creates that ``check_change`` counts on: the lists it creates and
the fields it asks for, derived once per plan (``providers._per_plan``), not once per change.

A segment is translated against its list's fields: those fetched (or, for a list the plan
creates, the ones MailWizz creates with every list), plus the fields the plan asks for
(refused on their own, as the API cannot create them: counted here so that a segment
using one is not refused a second time).
"""

from __future__ import annotations

from collections.abc import Sequence

from providers._per_plan import Kept
from reconciler.plan import Action, Plan

from .api import FieldRecord
from .wire import FieldIndex

__all__ = ["NEW_LIST_FIELDS", "NEW_LIST_TAGS", "NO_FIELDS", "PlanIndex"]

NEW_LIST_TAGS = ("EMAIL", "FNAME", "LNAME")
"""The fields MailWizz creates with every list: what a list created by this plan has."""

NEW_LIST_FIELDS: tuple[FieldRecord, ...] = tuple(
    FieldRecord(field_id=f"new-{tag}", tag=tag) for tag in NEW_LIST_TAGS
)
NO_FIELDS: tuple[FieldRecord, ...] = ()
"""A fetched list without fields (one object, so what is derived from it is kept)."""

ListKey = tuple[str, str]
"""(target, list)."""


class PlanIndex:
    """The lists a plan creates and the fields it asks for, by (target, list)."""

    def __init__(self, planned: Plan) -> None:
        self.created_lists: set[ListKey] = set()
        self._fields: dict[ListKey, list[FieldRecord]] = {}
        for n, c in enumerate(planned.changes):
            if c.action is Action.CREATE_LIST:
                self.created_lists.add((c.target, c.list))
            elif c.action is Action.CREATE_FIELD and c.field is not None:
                tag = c.field.name.strip().upper()
                record = FieldRecord(field_id=f"planned-{n}", tag=tag)
                self._fields.setdefault((c.target, c.list), []).append(record)
        self._indexes: dict[ListKey, Kept[FieldIndex]] = {}

    def fields(self, where: ListKey, fetched: Sequence[FieldRecord]) -> FieldIndex:
        """The fields of list ``where`` when its segments are written: ``fetched`` (one
        object, for as long as the answer is kept) and those the plan asks for."""
        kept = self._indexes.setdefault(where, Kept())
        return kept.get((fetched,), lambda: FieldIndex([*fetched, *self._fields.get(where, ())]))
