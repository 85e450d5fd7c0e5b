"""GreenArrow Studio API v2 (self-hosted): mailing lists and their segments.

``api.py`` speaks HTTP (typed endpoint calls, the ``{success, data, error_code,
error_message}`` envelope and its error codes), ``mapping.py`` translates canonical rules to
Segment Definitions and back with the normalisation that keeps plans empty after apply,
``checks.py`` says offline what cannot be stored; this module joins them into the provider.

- A declared list is a mailing list, found by exact name; a missing one is created. A
  remote list is refused: the Segments API is not available on remote lists.
- Fetch reads every page of the mailing lists and of the organization's segments, then
  ``GET /segments/:id`` for each segment of the lists in scope (the collection has no
  clause, G11), concurrently under the target's limits; a narrowed ``Scope`` (the
  convergence check) reads only the segments it wants.
- Rules: nested any/all groups, list membership (``in_mailing_list``, the other list by
  id) and ``status`` (``subscriber_status``); every other clause is ``native:``. Custom
  fields cannot be tested: the clause types for them are UNKNOWN.
- Changes: create is one POST with the whole clause, update one PUT with the name and the
  whole clause (a full replacement, never an empty clause in between), delete one DELETE;
  a delete refused because a campaign uses the segment is a failed change with
  GreenArrow's reason, never retried.
- Segments holding clauses the adapter reads only as ``native:`` (possibly built in the UI
  with types the API refuses, G10) are read-only: ``plan`` refuses to update or delete them.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from providers._http import HttpClient
from providers._http.provider import HttpProvider
from providers._http.urls import BaseUrl
from providers._per_plan import Kept
from reconciler.errors import NotFound, ProviderError
from reconciler.model import (
    STANDARD_FIELDS,
    JSONValue,
    LiveList,
    LiveSegment,
    LiveState,
    MembershipRule,
    Rule,
    Segment,
)
from reconciler.plan import Action, Change, Plan
from reconciler.provider import (
    Capabilities,
    Problem,
    ProviderContext,
    Scope,
    unique_names,
)
from reconciler.rules import walk

from . import checks, mapping
from .api import API_PATH, GreenArrowApi, MailingList, SegmentDetails, classify
from .mapping import ListIndex, Untranslatable

__all__ = ["CAPABILITIES", "GreenArrowProvider", "GreenArrowSettings"]

CAPABILITIES = Capabilities(
    shape="tree",
    operators={},
    events=frozenset(),
    within=False,
    membership=frozenset({"in", "not_in", "active_in", "not_active_in"}),
    native=True,
    changes=frozenset(
        {
            Action.CREATE_LIST,
            Action.CREATE_SEGMENT,
            Action.UPDATE_SEGMENT,
            Action.DELETE_SEGMENT,
        }
    ),
    field_types=frozenset(),
    standard_operators={
        **{name: frozenset[str]() for name in STANDARD_FIELDS},
        "status": frozenset({"equals", "not_equals"}),
    },
    concurrent_apply=True,  # the list index is replaced whole, under a lock
)
"""Any tree of any/all groups; ``status`` equals / not_equals and the four membership
operators; no custom field can be tested (its clause types are UNKNOWN), so none can be
declared; no behaviour clause is documented."""


_BLANKS = " \t\r\n"
"""What may surround the digits of ``organization_id`` given as text (a trailing newline)."""
_ORGANIZATION_TEXT_MAX = 64
"""The longest ``organization_id`` text read as a number (bounded: it is parsed)."""


class GreenArrowSettings(BaseModel):
    """Target settings: ``base_url`` (the Studio root; ``/ga/api/v2`` is added) and
    ``api_key`` as Studio shows it, or ``organization_id`` with the raw key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: BaseUrl
    api_key: SecretStr
    organization_id: int | None = Field(
        default=None,
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {
                    "type": "string",
                    "maxLength": _ORGANIZATION_TEXT_MAX,
                    "pattern": r"^[ \t\r\n]*0*[1-9][0-9]*[ \t\r\n]*$",  # _BLANKS around
                },
                {"type": "null"},
            ]
        },
    )
    """The organization's number, or its digits as text (``${ORG}`` expands to text); the
    schema says exactly this: > 0, ASCII digits with blanks around them, not all zeros."""

    @field_validator("organization_id", mode="before")
    @classmethod
    def _organization(cls, value: object) -> object:
        # ${VAR} expands to text: "12" is the organization 12; its zero is refused as 0 is.
        if isinstance(value, str) and len(value) <= _ORGANIZATION_TEXT_MAX:
            digits = value.strip(_BLANKS)
            if digits.isascii() and digits.isdigit():
                return int(digits)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError("organization_id is the organization's number")
        return value

    @model_validator(mode="after")
    def _check(self) -> GreenArrowSettings:
        key = self.api_key.get_secret_value().strip()
        if not key:
            raise ValueError("api_key is empty")
        if self.organization_id is not None and self.organization_id <= 0:
            raise ValueError("organization_id is a positive number")
        if self.organization_id is not None and ":" in key:
            raise ValueError(
                "with organization_id, api_key is the raw key (without the organization id)"
            )
        path = self.base_url.lower().rstrip("/")
        if path.endswith(("/ga", "/ga/api", API_PATH)):
            raise ValueError("base_url is the Studio root; the adapter adds /ga/api/v2 itself")
        return self

    @property
    def credentials(self) -> str:
        """The ``Authorization: Basic`` value: the key as Studio shows it, sent verbatim, or
        base64 of ``<organization_id>:<raw key>`` (fact file 1: the 2015 docs' encoding,
        which the key Studio shows already is)."""
        key = self.api_key.get_secret_value().strip()
        if self.organization_id is None:
            return key
        return base64.b64encode(f"{self.organization_id}:{key}".encode()).decode()


class GreenArrowProvider(HttpProvider[GreenArrowSettings]):
    """Segments of one GreenArrow Studio organization, grouped by mailing list."""

    platform: ClassVar[str] = "GreenArrow"

    key: ClassVar[str] = "greenarrow"
    settings_model: ClassVar[type[BaseModel]] = GreenArrowSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._index = ListIndex()
        """Every mailing list the key can see, as last read (membership rules name them)."""
        self._remote: set[int] = set()
        self._plan_lists: Kept[dict[str, ListIndex]] = Kept()
        """By target: the lists read and those the last plan checked creates."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[str | Problem]:
        return checks.offline_problems(segment)

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return mapping.canonicalise(match, rules, self._index)

    def import_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {}  # GreenArrow segments have no options

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        """Translate the change as ``apply`` would, against the lists last fetched and
        those the plan creates before it."""
        # A segment holding clauses read only as native: is not managed (LiveSegment.managed):
        # the core never plans an update of it, nor a delete unless --allow-delete names it.
        if change.action not in (Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT):
            return []
        if change.after is None:
            return []
        # Once per plan and lists read, not once per change (``providers._per_plan``).
        indexes = self._plan_lists.get((planned, self._index), dict)
        index = indexes.get(change.target)
        if index is None:
            index = indexes[change.target] = _planned_lists(self._index, planned, change.target)
        return _rule_problems(change.after, index)

    def fetch(self, scope: Scope) -> LiveState:
        lists = self._read_lists()
        chosen = [item for item in lists if scope.includes(item.name)]
        unique_names(((item.name, str(item.id)) for item in chosen), "GreenArrow", "mailing lists")
        remote = [item.name for item in chosen if item.is_remote_list]
        if remote and scope.lists is not None:
            raise ProviderError(
                f"mailing list {', '.join(repr(n) for n in remote)} is a GreenArrow remote "
                "list: the Segments API is not available on remote lists; remove it from "
                "lists:, or manage its segments in Studio"
            )
        chosen = [item for item in chosen if not item.is_remote_list]
        names = {item.id: item.name for item in chosen}
        wanted = [
            s.id
            for s in self.api.segments()
            if s.mailing_list_id in names
            and scope.wants_segment(names[s.mailing_list_id], s.name, str(s.id))
        ]
        details = [d for d in self.http.map_concurrent(self._details, wanted) if d is not None]
        found = [self._live_list(item, details) for item in chosen]
        unmanaged = [
            f"{s.name!r} (id {s.id})"
            for item in found
            for s in item.segments
            if mapping.unmanaged_reason(s.rules)
        ]
        message = f"{self.target}: read {len(found)} mailing lists and {len(details)} segments"
        if unmanaged:
            message += (
                f"; {len(unmanaged)} hold clauses read only as native: and are never "
                f"updated nor deleted: {', '.join(unmanaged)}"
            )
        self.context.progress(message + " from GreenArrow")
        return LiveState(lists=tuple(sorted(found, key=lambda item: item.name)))

    # -- reading ---------------------------------------------------------------------------

    @property
    def api(self) -> GreenArrowApi:
        """The API client, built on first use (``validate`` never builds it)."""
        return GreenArrowApi(self.http)

    def _build_http(self) -> HttpClient:
        credentials = self.config.credentials
        return HttpClient(
            base_url=self.config.base_url + API_PATH,
            context=self.context,
            headers={"Authorization": f"Basic {credentials}"},
            secrets=(self.config.api_key.get_secret_value().strip(), credentials),
            classify=classify,
        )

    def _read_lists(self) -> list[MailingList]:
        """Every mailing list the key can see, remembered for membership rules (read under
        the lock, so a list created meanwhile is added after this read is kept)."""
        with self._state:
            lists = self.api.mailing_lists()
            self._index = ListIndex.of((item.id, item.name) for item in lists)
            self._remote = {item.id for item in lists if item.is_remote_list}
        return lists

    def _details(self, segment_id: int) -> SegmentDetails | None:
        try:
            return self.api.segment(segment_id)
        except NotFound:
            return None  # deleted between the list and this read: it is gone

    def _live_list(self, item: MailingList, details: list[SegmentDetails]) -> LiveList:
        segments = []
        for found in details:
            if found.mailing_list_id != item.id:
                continue
            match, rules = mapping.read_definition(found.clause, self._index)
            reason = mapping.unmanaged_reason(rules)
            segments.append(
                LiveSegment(
                    id=str(found.id),
                    name=found.name,
                    match=match,
                    rules=rules,
                    managed=reason is None,
                    reason=reason or "",
                )
            )
        return LiveList(
            target=self.target, name=item.name, id=str(item.id), segments=tuple(segments)
        )

    def _list_id(self, name: str) -> int:
        """A list's id: from the last read, else read again (a remote list is refused)."""
        found = self._index.ids_named(name)
        if not found:
            self._read_lists()
            found = self._index.ids_named(name)
        if len(found) != 1:
            raise NotFound(
                f"mailing list {name!r} does not exist in GreenArrow; run plan again"
                if not found
                else f"several GreenArrow mailing lists are named {name!r}; rename all but one"
            )
        if found[0] in self._remote:
            raise ProviderError(f"mailing list {name!r} is a GreenArrow remote list")
        return found[0]

    def _clause(self, segment: Segment) -> list[JSONValue]:
        """The whole clause to send; a rule that cannot be written fails before any call."""
        try:
            return mapping.write_definition(segment.match, segment.rules, self._index)
        except Untranslatable as exc:
            if _has_membership(segment.rules):  # a list created since the last read?
                self._read_lists()
                with contextlib.suppress(Untranslatable):
                    return mapping.write_definition(segment.match, segment.rules, self._index)
            raise ProviderError(
                f"segment {segment.name!r} cannot be written to GreenArrow: {exc.reason}"
            ) from None

    # -- one handler per change kind --------------------------------------------------------

    def _create_list(self, change: Change) -> None:
        created = self.api.create_list(change.list)
        with self._state:
            self._index = self._index.with_lists([(created.id, created.name)])

    def _create_segment(self, change: Change) -> None:
        after = change.declared_segment
        list_id = self._list_id(change.list)
        self.api.create_segment(list_id, after.name, self._clause(after))

    def _update_segment(self, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        clause = self._clause(after)
        try:
            self.api.update_segment(_segment_id(before), after.name, clause)
        except NotFound:
            raise NotFound(
                f"segment {before.name!r} (id {before.id}) no longer exists in GreenArrow; "
                "run plan again"
            ) from None

    def _delete_segment(self, change: Change) -> None:
        before = change.live_segment
        with contextlib.suppress(NotFound):  # already gone (e.g. an answer that was lost)
            self.api.delete_segment(_segment_id(before))

    handlers: ClassVar[dict[Action, Callable[[GreenArrowProvider, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.DELETE_SEGMENT: _delete_segment,
    }


def _segment_id(segment: LiveSegment) -> int:
    try:
        return int(segment.id)
    except ValueError:
        raise ProviderError(f"{segment.id!r} is not a GreenArrow segment id") from None


def _has_membership(rules: tuple[Rule, ...]) -> bool:
    return any(isinstance(rule, MembershipRule) for _, rule in walk(rules))


def _planned_lists(read: ListIndex, planned: Plan, target: str) -> ListIndex:
    """The lists ``read``, and those ``planned`` creates in ``target`` (made-up ids)."""
    created = [
        c.list for c in planned.changes if c.action is Action.CREATE_LIST and c.target == target
    ]
    return read.with_lists((-1 - n, name) for n, name in enumerate(created))


def _rule_problems(segment: Segment, index: ListIndex) -> list[Problem]:
    """Each rule of ``segment`` that could not be written against ``index``."""
    problems: list[Problem] = []
    for path, rule in walk(segment.rules):
        try:
            mapping.write_rule(rule, index)
        except Untranslatable as exc:
            where = (*path, "list") if isinstance(rule, MembershipRule) else path
            problems.append(Problem(where, exc.reason))
    if not problems:
        try:
            mapping.write_definition(segment.match, segment.rules, index)
        except Untranslatable as exc:
            problems.append(Problem(("rules",), exc.reason))
    return problems
