"""Campaign Monitor (createsend API v3.3): lists, custom fields and segments.

``api.py`` speaks HTTP (typed endpoint calls); ``clauses.py`` and ``mapping.py`` translate
canonical rules to RuleGroups and back; this module joins them into the provider.

- Lists are found by name among the client's lists; fields by name among the list's custom
  fields, whose bracketed ``Key`` is the RuleType a rule uses.
- Fetch reads the segments of each list, then every segment's details concurrently.
- Changes: create is one POST with every rule group; a rename or any other rule change is
  one PUT with the Title and all groups (atomic); a pure addition of groups is one POST to
  the rules endpoint per new group; delete is one DELETE. Rules are never deleted and
  re-added, so no segment is ever left without its rules.
- System (engagement) segments cannot be recognised from any documented response (UNKNOWN),
  so they are fetched like any other; a write to one answers 284, and (as the fact file
  advises) it is left alone: the change is skipped, not failed, with a hint to add the name
  to the list's ``ignore:``, and the segment is not read again in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, model_validator

from providers._http import HttpClient
from providers._http.provider import HttpProvider
from providers._http.urls import BaseUrl
from reconciler.errors import ConflictError, NotFound, PlatformOwned, ProviderError
from reconciler.model import LiveField, LiveList, LiveSegment, LiveState, Rule, Segment
from reconciler.plan import Action, Change
from reconciler.provider import Capabilities, ProviderContext, Scope, settings_as, unique_names
from reconciler.rules import segment_key

from . import checks, mapping
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
from .rejections import SegmentRulesRejected, rejected

__all__ = [
    "CAPABILITIES",
    "CampaignMonitorProvider",
    "CampaignMonitorSettings",
    "SegmentRulesRejected",
]

_T = TypeVar("_T")

CAPABILITIES = Capabilities(
    shape="cnf",
    operators={
        "text": frozenset({"equals", "contains", "empty", "not_empty", "in"}),
        "number": frozenset({"between"}),
        "date": frozenset({"after", "before", "equals", "between"}),
        "select": frozenset({"equals", "not_equals", "in", "not_in"}),
    },
    events=frozenset({"opened", "not_opened", "clicked"}),
    within=False,
    membership=frozenset(),
    native=True,
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
    field_types=frozenset({"text", "number", "date", "select", "multiselect"}),
)
"""Per field type, the union over the fields of that type; ``check_segment`` narrows it
per field (e.g. ``contains`` only on ``email``; see ``clauses.py`` for the verb table)."""

DATA_TYPES: dict[str, str] = {
    "text": "Text",
    "number": "Number",
    "date": "Date",
    "select": "MultiSelectOne",
    "multiselect": "MultiSelectMany",
}
FIELD_TYPES: dict[str, str] = {
    **{data_type: field_type for field_type, data_type in DATA_TYPES.items()},
    "Country": "select",
    "USState": "select",
}
"""DataType -> canonical field type; Country and USState are fixed-option fields."""


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
    id: str
    fields: list[CustomField]


class CampaignMonitorProvider(HttpProvider):
    """Segments of one Campaign Monitor client, as AND-ed RuleGroups of OR-ed rules."""

    platform: ClassVar[str] = "Campaign Monitor"

    key: ClassVar[str] = "campaignmonitor"
    settings_model: ClassVar[type[BaseModel]] = CampaignMonitorSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        settings = settings_as(settings, CampaignMonitorSettings)
        super().__init__(target, settings, context)
        self.config = settings
        self._lists: dict[str, _ListInfo] = {}
        self._owned: set[str] = set()
        """Ids of system segments met (284) in this run: no longer read, so never planned."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[str]:
        return checks.offline_problems(segment)

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
        ids = [s.segment_id for _, segments in metas for s in segments]
        found = {d.segment_id: d for d in http.map_concurrent(self._details, ids) if d}
        lists = []
        for summary, (fields, segments) in zip(summaries, metas, strict=True):
            self._lists[summary.name] = _ListInfo(summary.list_id, fields)
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
                LiveSegment(id=item.segment_id, name=item.title, match=match, rules=rules)
            )
        live_fields = tuple(
            LiveField(
                name=f.name, type=FIELD_TYPES.get(f.data_type, "text"), options=f.options, id=f.key
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
        """A list's id and fields: from the last fetch, else read again."""
        if name not in self._lists:
            found = [s for s in self.api.lists() if s.name == name]
            unique_names(((s.name, s.list_id) for s in found), "the client")
            if not found:
                raise NotFound(
                    f"list {name!r} does not exist in target {self.target!r}; run plan again"
                )
            self._lists[name] = _ListInfo(
                found[0].list_id, self.api.custom_fields(found[0].list_id)
            )
        return self._lists[name]

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
        info.fields.append(
            CustomField(name=field.name, key=key, data_type=data_type, options=options)
        )

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
        if not added or before.name != after.name:  # not a pure addition after all: replace
            self._update_segment(change)
            return
        for group in added:
            self._add_one_group(after, leaves, before.id, group)

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
