"""Plan and Change: ordered, serialisable values with a fingerprint of the live state.

A plan is made by ``planning.plan`` and executed by ``applying.apply``. Saved plans are the
JSON document of docs/commands.md "JSON plan format"; ``Plan.model_validate_json`` reads them
back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import ProviderError
from .model import FieldDef, JSONValue, LiveList, LiveSegment, LiveState, Segment, SourceRef

__all__ = [
    "ACTION_ORDER",
    "FORMAT_VERSION",
    "Action",
    "Change",
    "Impact",
    "Plan",
    "SafetyLimit",
    "SafetyReport",
    "ShrinkLimit",
    "Unmanaged",
    "fingerprint",
    "segment_digests",
]

FORMAT_VERSION: Literal[1] = 1


class Action(StrEnum):
    CREATE_LIST = "create_list"
    CREATE_FIELD = "create_field"
    UPDATE_SEGMENT = "update_segment"
    ADD_RULE_GROUP = "add_rule_group"
    CREATE_SEGMENT = "create_segment"
    DELETE_SEGMENT = "delete_segment"


ACTION_ORDER: dict[Action, int] = {action: index for index, action in enumerate(Action)}
"""Parents before children, deletes last: lists, fields, segment writes, then deletes.
Updates run before creates so that a rename frees its old name before a new segment
takes it."""

SYMBOLS: dict[Action, str] = {
    Action.CREATE_LIST: "+",
    Action.CREATE_FIELD: "+",
    Action.CREATE_SEGMENT: "+",
    Action.UPDATE_SEGMENT: "~",
    Action.ADD_RULE_GROUP: "~",
    Action.DELETE_SEGMENT: "-",
}


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Impact(_Value):
    """Who a segment change moves among the sample subscribers of its list (``plan
    --sample``): members before and after it, as the one rule evaluator decides.

    Display only: made afresh by every plan, and never read back from a saved plan for a
    decision (``apply PLAN_FILE`` plans again, with its own ``--sample``)."""

    sample: int
    """Sample subscribers of the list."""
    before: int
    """Members before the change (0 for a segment created)."""
    after: int
    """Members after it (0 for a segment deleted)."""
    left: int = 0
    """Members before who are not members after."""
    joined: int = 0
    """Members after who were not members before."""
    undecided: int = 0
    """Subscribers a ``native:`` rule decides, before or after (counted in neither)."""

    @property
    def lost_fraction(self) -> float:
        """The share of the members before who leave (0 when there were none)."""
        return self.left / self.before if self.before else 0.0


class Change(_Value):
    """One write: the unit the applier executes and a provider's ``apply`` receives.

    ``before`` is the live segment (with its ``id``) for updates and deletes; ``after`` is
    the declared segment for creates and updates. For ``create_field``, ``field`` is set.
    ``diff`` holds readable rule-level lines (``+ rule``, ``- rule``, ``~ name: a -> b``).
    ``impact`` (``plan --sample``) is display only, never part of what a change does.
    """

    action: Action
    target: str
    list: str
    segment: str | None = None
    before: LiveSegment | None = None
    after: Segment | None = None
    field: FieldDef | None = None
    diff: tuple[str, ...] = ()
    source: SourceRef | None = None
    impact: Impact | None = None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    @property
    def live_segment(self) -> LiveSegment:
        """``before``, for providers executing an update or delete."""
        if self.before is None:
            raise ProviderError(self._lacks("the live segment"))
        return self.before

    @property
    def declared_segment(self) -> Segment:
        """``after``, for providers executing a create or update."""
        if self.after is None:
            raise ProviderError(self._lacks("the declared segment"))
        return self.after

    @property
    def declared_field(self) -> FieldDef:
        """``field``, for providers executing a create_field."""
        if self.field is None:
            raise ProviderError(self._lacks("a field"))
        return self.field

    def _lacks(self, what: str) -> str:
        return f"a {self.action.value} change for list {self.list!r} lacks {what}"

    @property
    def is_delete(self) -> bool:
        return self.action is Action.DELETE_SEGMENT

    def sort_key(self) -> tuple[int, str, str, str]:
        name = self.segment or (self.field.name if self.field else "")
        return (ACTION_ORDER[self.action], self.target, self.list, name)


class Unmanaged(_Value):
    """A live segment no declaration names, left alone because its list does not prune."""

    target: str
    list: str
    segment: str
    segment_id: str
    reason: str = ""
    """Why it is left alone when its list prunes (the provider cannot manage it)."""


class SafetyLimit(_Value):
    """One list whose deletions trip a limit, and the segments that would be deleted."""

    target: str
    list: str
    reason: str
    deletes: tuple[str, ...]
    acknowledged: bool = False


class ShrinkLimit(_Value):
    """One segment that would lose more of its sample members than ``--max-shrink``."""

    target: str
    list: str
    segment: str
    before: int
    """Its sample members before the change."""
    lost: int
    """How many of them it would lose."""
    reason: str
    acknowledged: bool = False


class SafetyReport(_Value):
    max_delete_fraction: float = 0.3
    min_segments_for_fraction: int = 10
    limits: tuple[SafetyLimit, ...] = ()
    max_shrink_fraction: float | None = None
    """``--max-shrink`` as a fraction; None (left out of the document) when not given."""
    shrink_limits: tuple[ShrinkLimit, ...] | None = None
    """The segments past ``--max-shrink``; None (left out) when it was not given."""

    @property
    def tripped(self) -> tuple[SafetyLimit | ShrinkLimit, ...]:
        found: list[SafetyLimit | ShrinkLimit] = [*self.limits, *(self.shrink_limits or ())]
        return tuple(limit for limit in found if not limit.acknowledged)


class Plan(_Value):
    """An ordered list of changes, what was left alone, and what the live state was."""

    format_version: Literal[1] = FORMAT_VERSION
    changes: tuple[Change, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    safety: SafetyReport = Field(default_factory=SafetyReport)
    fingerprint: str = ""
    live_digests: dict[str, str] = Field(default_factory=dict)
    scope: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """The lists each target was planned for: ``apply PLAN`` re-fetches exactly these."""

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[_SUMMARY_BUCKET[change.action]] += 1
        return counts

    @classmethod
    def from_document(cls, text: str | bytes) -> Plan:
        """Read a saved plan back (``summary`` is derived, so it is dropped)."""
        data = json.loads(text)
        if isinstance(data, dict):
            data.pop("summary", None)
        return cls.model_validate(data)

    def to_document(self) -> dict[str, JSONValue]:
        """The JSON document of docs/commands.md "JSON plan format" (also the saved-plan file)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["summary"] = self.summary()
        return data


_SUMMARY_BUCKET: dict[Action, str] = {
    Action.CREATE_LIST: "create",
    Action.CREATE_FIELD: "create",
    Action.CREATE_SEGMENT: "create",
    Action.UPDATE_SEGMENT: "update",
    Action.ADD_RULE_GROUP: "update",
    Action.DELETE_SEGMENT: "delete",
}


def _digest(data: JSONValue) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_NOT_DIGESTED = {"member_count"}
"""What moves on its own in a live segment (its member count): never part of a digest, so
subscriber activity never makes a saved plan stale."""


def segment_digests(
    live: LiveState, hidden: Callable[[LiveList, LiveSegment], bool] | None = None
) -> dict[str, str]:
    """One short digest per live list and segment, keyed ``target/list[/segment#id]``.

    Stored in a saved plan so that ``apply`` can say exactly what changed since. Segments
    for which ``hidden`` is true (those a list ignores) are left out: their changes never
    make a plan stale.
    """
    digests: dict[str, str] = {}
    for live_list in live.lists:
        prefix = f"{live_list.target}/{live_list.name}"
        fields = b"".join(f.model_dump_json().encode() for f in live_list.fields)
        digests[prefix] = hashlib.sha256(live_list.id.encode() + fields).hexdigest()[:16]
        for segment in live_list.segments:
            if hidden is not None and hidden(live_list, segment):
                continue
            data = segment.model_dump_json(by_alias=True, exclude=_NOT_DIGESTED).encode()
            digests[f"{prefix}/{segment.name}#{segment.id}"] = hashlib.sha256(data).hexdigest()[:16]
    return digests


def fingerprint(digests: dict[str, str]) -> str:
    """A digest of the whole live state in scope, from its per-object digests."""
    return _digest(digests)


DriftStatus = Literal["in_sync", "changed", "missing", "unmanaged", "extra"]
"""``changed``: live rules differ; ``missing``: declared but not live; ``unmanaged``: live and
undeclared in a list that does not prune; ``extra``: live, undeclared, would be pruned."""


class DriftItem(_Value):
    target: str
    list: str
    segment: str
    status: DriftStatus
    diff: tuple[str, ...] = ()


class DriftReport(_Value):
    """One item per segment in scope, declared or live; drift is any item not in sync.

    ``plan`` holds the changes that would bring the live state back (the same ``changes``
    and ``safety`` a plan reports), when the report was made with it.
    """

    format_version: Literal[1] = FORMAT_VERSION
    items: tuple[DriftItem, ...] = ()
    plan: Plan | None = None

    @property
    def drifted(self) -> tuple[DriftItem, ...]:
        return tuple(item for item in self.items if item.status != "in_sync")

    def summary(self) -> dict[str, int]:
        counts = {"in_sync": 0, "changed": 0, "missing": 0, "unmanaged": 0, "extra": 0}
        for item in self.items:
            counts[item.status] += 1
        return counts


class Outcome(_Value):
    """What happened to one change during apply."""

    change: Change
    status: Literal["applied", "failed", "skipped"]
    message: str = ""
    """For ``failed`` the provider's error (with the YAML position when known); for
    ``skipped`` why (e.g. the list it needed failed to be created)."""


class ApplyResult(_Value):
    outcomes: tuple[Outcome, ...] = ()
    interrupted: bool = False
    """Ctrl-C stopped the run: changes in flight finished, the rest were not started."""

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def ok(self) -> bool:
        """Nothing failed (a change skipped because its parent failed implies a failure;
        one skipped because the platform owns the object does not)."""
        return not any(outcome.status == "failed" for outcome in self.outcomes)
