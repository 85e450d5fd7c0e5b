"""Campaign Monitor (createsend API v3.3): lists, custom fields and segments.

``api.py`` speaks HTTP (typed endpoint calls); ``clauses.py`` and ``mapping.py`` translate
canonical rules to RuleGroups and back; this module joins them into the provider.

- Lists are found by name among the client's lists; fields by name among the list's custom
  fields, whose bracketed ``Key`` is the RuleType a rule uses.
- Fetch reads the segments of each list, then every segment's details concurrently (only
  those a narrowed ``Scope`` wants: the convergence check after apply).
- Changes: create is one POST with every rule group; a rename or any other rule change is
  one PUT with the Title and all groups (atomic); the addition of exactly one group is one
  POST to the rules endpoint; delete is one DELETE: one planned change is one write. Rules
  are never deleted and re-added, so no segment is ever left without its rules.
- ``validate`` refuses what the verb table cannot write for the declared field types
  (``checks.offline_problems``); ``plan`` refuses, before any write, what the live fields
  reveal (``check_change``: each change translated exactly as ``apply`` will translate it,
  against the Keys, DataTypes and options last fetched and the fields the plan creates),
  and a title that another segment of the list already has, ignoring case (275).
- System (engagement) segments cannot be recognised from any documented response (UNKNOWN),
  so they are fetched like any other; a write to one answers 284, and (as the fact file
  advises) it is left alone: the change is skipped, not failed, with a hint to add the name
  to the list's ``ignore:``, and the segment is not read again in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, model_validator

from providers._http import HttpClient
from providers._http.provider import HttpProvider
from providers._http.urls import BaseUrl
from providers._per_plan import Kept
from reconciler.errors import ConflictError, NotFound, PlatformOwned, ProviderError
from reconciler.model import (
    STANDARD_FIELDS,
    LiveField,
    LiveList,
    LiveSegment,
    LiveState,
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
from reconciler.rules import path_text, segment_key

from . import checks, mapping
from . import clauses as cl
from .api import (
    DEFAULT_BASE_URL,
    CampaignMonitorApi,
    CustomField,
    ListSummary,
    RulesRejected,
    SegmentDetails,
    SegmentSummary,
    WireGroup,
    classify,
)
from .planned import NO_FIELDS, NO_TITLES, WRITES_RULES, PlanIndex
from .rejections import SegmentRulesRejected, rejected

__all__ = [
    "CAPABILITIES",
    "CampaignMonitorProvider",
    "CampaignMonitorSettings",
    "SegmentRulesRejected",
]

_T = TypeVar("_T")

DATA_TYPES = cl.DATA_TYPES
FIELD_TYPES: dict[str, str] = {
    **{data_type: field_type for field_type, data_type in DATA_TYPES.items()},
    "Country": "select",
    "USState": "select",
}
"""DataType -> canonical field type; Country and USState are fixed-option fields (with no
evidenced verbs: a canonical rule on one is refused at plan, its live rules read as native)."""

CAPABILITIES = Capabilities(
    shape="cnf",
    operators={
        field_type: cl.operators_of(data_type, field_type)
        for field_type, data_type in DATA_TYPES.items()
    },
    standard_operators={
        name: cl.operators_of(cl.STANDARD_RULE_TYPES.get(name, ""), field_type)
        for name, field_type in STANDARD_FIELDS.items()
    },
    events=frozenset(cl.RULE_TYPE_BY_EVENT),
    within=False,
    membership=frozenset(),
    native=True,
    expands_in=True,  # in/not_in are stored as one rule per value (counted for the CNF limit)
    changes=frozenset(
        {
            Action.CREATE_LIST,
            Action.CREATE_FIELD,
            Action.CREATE_SEGMENT,
            Action.UPDATE_SEGMENT,
            Action.ADD_RULE_GROUP,
            Action.DELETE_SEGMENT,
        }
    ),
    field_types=frozenset(DATA_TYPES),
    field_scope="list",
    names_case_insensitive=True,  # a second title differing only in case is refused (275)
    concurrent_apply=True,  # list infos are loaded once under a lock, fields copied on write
)
"""Derived from the verb table in ``clauses.py``: per standard field (``first_name``,
``last_name`` and ``status`` have no RuleType: no operators) and per custom field type.
A ``multiselect`` field (MultiSelectMany) has no evidenced verbs: it can be declared and
created (for ``native:`` rules), but no canonical rule can test it."""


class CampaignMonitorSettings(BaseModel):
    """Target settings: ``api_key`` or ``access_token`` (exactly one), ``client_id``, and
    ``base_url`` including the API version path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    access_token: SecretStr | None = None
    client_id: StrictStr = Field(min_length=1)
    base_url: BaseUrl = DEFAULT_BASE_URL

    @model_validator(mode="after")
    def _one_credential(self) -> CampaignMonitorSettings:
        given = [s for s in (self.api_key, self.access_token) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of api_key or access_token")
        if not given[0].get_secret_value().strip():
            raise ValueError("the api_key or access_token is empty")
        return self


@dataclass
class _ListInfo:
    """A list as last fetched. ``fields`` and ``titles`` are replaced, never changed in
    place: plan-time answers are kept for as long as they are the same objects."""

    id: str
    fields: list[CustomField]
    titles: dict[str, str] = field(default_factory=dict)
    """Segment id -> title, as last fetched (for the 275 check at plan)."""


class CampaignMonitorProvider(HttpProvider[CampaignMonitorSettings]):
    """Segments of one Campaign Monitor client, as AND-ed RuleGroups of OR-ed rules."""

    platform: ClassVar[str] = "Campaign Monitor"

    key: ClassVar[str] = "campaignmonitor"
    settings_model: ClassVar[type[BaseModel]] = CampaignMonitorSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._lists: dict[str, _ListInfo] = {}
        self._owned: set[str] = set()
        """Ids of system segments met (284) in this run: no longer read, so never planned."""
        self._plan_index: Kept[PlanIndex] = Kept()
        """The last plan checked, its changes grouped by list (``check_change``)."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def current_year(cls) -> int:
        """This year, for the ``DateSubscribed`` ten-year window (error 2723)."""
        return date.today().year

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[Problem]:
        problems = checks.offline_problems(
            segment, field_types, cls.capabilities, cls.current_year()
        )
        return [Problem(p.path, f"{path_text(p.path)}: {p.message}") for p in problems]

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        if change.action not in WRITES_RULES:
            return []
        segment = change.declared_segment
        info = self._lists.get(change.list)
        fields, titles = (info.fields, info.titles) if info is not None else (NO_FIELDS, NO_TITLES)
        index = self._plan_index.get((planned,), lambda: PlanIndex(planned))
        meets = index.meets(change, fields, titles)
        assert meets is not None  # a change that writes rules, with its declared segment
        problems = self._title_problems(change, meets.clash)
        return problems + checks.change_problems(segment, meets.fields)

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        # Custom fields are per list: the list's own fields, as last fetched.
        info = self._lists.get(list_name)
        fields = info.fields if info is not None else []
        return mapping.canonicalise(match, rules, mapping.FieldIndex(fields) if fields else None)

    def fetch(self, scope: Scope) -> LiveState:
        summaries = [s for s in self.api.lists() if scope.includes(s.name)]
        unique_names(((s.name, s.list_id) for s in summaries), "the client")
        http = self.api.http
        metas = http.map_concurrent(self._list_meta, summaries)
        ids = [
            s.segment_id
            for summary, (_, segments) in zip(summaries, metas, strict=True)
            for s in segments
            if scope.wants_segment(summary.name, s.title, s.segment_id)
        ]
        found = {d.segment_id: d for d in http.map_concurrent(self._details, ids) if d}
        lists = []
        for summary, (fields, segments) in zip(summaries, metas, strict=True):
            titles = {s.segment_id: s.title for s in segments}
            self._lists[summary.name] = _ListInfo(summary.list_id, fields, titles)
            details = [found[s.segment_id] for s in segments if s.segment_id in found]
            lists.append(self._live_list(summary, fields, details))
        self.context.progress(
            f"{self.target}: read {len(lists)} lists and {len(found)} segments "
            "from Campaign Monitor"
        )
        return LiveState(lists=tuple(sorted(lists, key=lambda item: item.name)))

    # -- reading ---------------------------------------------------------------------------

    @property
    def api(self) -> CampaignMonitorApi:
        """The API client, built on first use (``validate`` never builds it)."""
        return CampaignMonitorApi(self.http, self.config.client_id)

    def _build_http(self) -> HttpClient:
        auth: httpx.Auth | None = None
        headers: dict[str, str] = {}
        if self.config.api_key is not None:
            secret = self.config.api_key.get_secret_value()
            auth = httpx.BasicAuth(secret, "x")  # any password works; the Python client's "x"
        else:
            assert self.config.access_token is not None
            secret = self.config.access_token.get_secret_value()
            headers["Authorization"] = f"Bearer {secret}"
        return HttpClient(
            base_url=self.config.base_url,
            context=self.context,
            auth=auth,
            headers=headers,
            secrets=(secret,),
            classify=classify,
        )

    def _list_meta(self, summary: ListSummary) -> tuple[list[CustomField], list[SegmentSummary]]:
        return self.api.custom_fields(summary.list_id), self.api.segments(summary.list_id)

    def apply(self, change: Change) -> None:
        try:
            super().apply(change)
        except PlatformOwned:
            if change.before is not None:
                with self._state:
                    self._owned.add(change.before.id)
            raise

    def _details(self, segment_id: str) -> SegmentDetails | None:
        try:
            return self.api.segment(segment_id)
        except NotFound:
            return None  # deleted between the list and this read: it is gone

    def _live_list(
        self, summary: ListSummary, fields: list[CustomField], details: list[SegmentDetails]
    ) -> LiveList:
        index = mapping.FieldIndex(fields)
        segments = []
        for item in details:
            if item.segment_id in self._owned:
                continue
            match, rules = mapping.from_groups(item.rule_groups, index)
            segments.append(
                LiveSegment(
                    id=item.segment_id,
                    name=item.title,
                    match=match,
                    rules=rules,
                    member_count=item.active_subscribers,
                )
            )
        live_fields = tuple(
            LiveField(
                name=f.name,
                type=FIELD_TYPES.get(f.data_type, "text"),
                options=f.options,
                id=f.key,
                native_type=f.data_type,
            )
            for f in fields
        )
        return LiveList(
            target=self.target,
            name=summary.name,
            id=summary.list_id,
            fields=live_fields,
            segments=tuple(segments),
        )

    def _list(self, name: str) -> _ListInfo:
        """A list's id and fields: from the last fetch, else read again (once)."""
        return self._once(self._lists, name, lambda: self._read_list(name))

    def _read_list(self, name: str) -> _ListInfo:
        found = [s for s in self.api.lists() if s.name == name]
        unique_names(((s.name, s.list_id) for s in found), "the client")
        if not found:
            raise NotFound(
                f"list {name!r} does not exist in target {self.target!r}; run plan again"
            )
        return _ListInfo(found[0].list_id, self.api.custom_fields(found[0].list_id))

    # -- one handler per change kind --------------------------------------------------------

    def _create_list(self, change: Change) -> None:
        list_id = self.api.create_list(change.list)
        self._lists[change.list] = _ListInfo(list_id, [])

    def _create_field(self, change: Change) -> None:
        field = change.declared_field
        data_type = DATA_TYPES.get(field.type)
        if data_type is None:
            raise ProviderError(f"Campaign Monitor has no {field.type} field type")
        info = self._list(change.list)
        options = field.options if field.type in ("select", "multiselect") else ()
        key = self.api.create_field(info.id, field.name, data_type, options)
        created = CustomField(name=field.name, key=key, data_type=data_type, options=options)
        with self._state:  # a new list: segments being translated keep the one they read
            info.fields = [*info.fields, created]

    def _create_segment(self, change: Change) -> None:
        after = change.declared_segment
        info = self._list(change.list)
        groups, leaves = self._groups(after, after.match, after.rules, info)
        try:
            _rules_call(after, leaves, lambda: self.api.create_segment(info.id, after.name, groups))
        except ConflictError:
            if not self._already_created(info, after):
                raise

    def _update_segment(self, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        groups, leaves = self._groups(after, after.match, after.rules, self._list(change.list))
        _rules_call(after, leaves, lambda: self.api.update_segment(before.id, after.name, groups))

    def _add_rule_group(self, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        info = self._list(change.list)
        groups, leaves = self._groups(after, after.match, after.rules, info)
        try:
            live, _ = mapping.to_groups(before.match, before.rules, mapping.FieldIndex(info.fields))
        except ProviderError:
            live = None
        added = mapping.new_groups(live, groups) if live is not None else None
        if added is None or len(added) != 1 or before.name != after.name:
            # Not the addition of exactly one group after all: one PUT with every group
            # (one planned change is one write).
            self._update_segment(change)
            return
        self._add_one_group(after, leaves, before.id, added[0])

    def _add_one_group(
        self, after: Segment, leaves: Sequence[Rule], segment_id: str, group: WireGroup
    ) -> None:
        _rules_call(after, leaves, lambda: self.api.add_rule_group(segment_id, group))

    def _delete_segment(self, change: Change) -> None:
        before = change.live_segment
        try:
            self.api.delete_segment(before.id)
        except NotFound:
            return  # already gone (e.g. an earlier attempt whose answer was lost)

    handlers: ClassVar[dict[Action, Callable[[CampaignMonitorProvider, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_FIELD: _create_field,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.ADD_RULE_GROUP: _add_rule_group,
        Action.DELETE_SEGMENT: _delete_segment,
    }

    # -- plan-time checks ------------------------------------------------------------------

    @staticmethod
    def _title_problems(change: Change, clash: str | None) -> list[Problem]:
        """Error 275: a title another segment of the list holds when ``change`` runs
        (compared ignoring case; earlier renames, creates and deletes counted:
        ``planned.py``)."""
        if clash is None:
            return []
        return [
            Problem(
                ("name",),
                f'list "{change.list}" already has a segment titled "{clash}" when this '
                "change runs, and Campaign Monitor refuses two titles in one list that are "
                "equal ignoring case (275): rename one of them",
            )
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _groups(
        self, segment: Segment, match: str, rules: Sequence[Rule], info: _ListInfo
    ) -> tuple[tuple[WireGroup, ...], tuple[Rule, ...]]:
        """The groups to send; a rule that cannot be written fails before any call."""
        try:
            return mapping.to_groups(match, rules, mapping.FieldIndex(info.fields))
        except mapping.Untranslatable as exc:
            raise ProviderError(
                f"segment {segment.name!r} cannot be written to Campaign Monitor: {exc.reason}"
            ) from None

    def _already_created(self, info: _ListInfo, after: Segment) -> bool:
        """After a 275 on create: True when the title already holds exactly these rules
        (an earlier create whose answer was lost), so the create has in fact happened."""
        same = [s for s in self.api.segments(info.id) if s.title == after.name]
        if len(same) != 1:
            return False
        details = self.api.segment(same[0].segment_id)
        index = mapping.FieldIndex(info.fields)
        live = mapping.from_groups(details.rule_groups, index)
        want = mapping.canonicalise(after.match, after.rules, index)
        return segment_key(*mapping.canonicalise(*live, index)) == segment_key(*want)


def _rules_call(segment: Segment, leaves: Sequence[Rule], call: Callable[[], _T]) -> _T:
    """Run a call that sends rules; a 277 names the declared rules that failed."""
    try:
        return call()
    except RulesRejected as exc:
        raise rejected(exc, segment, leaves) from None
