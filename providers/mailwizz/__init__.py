"""MailWizz EMA 2.x (self-hosted): lists, list fields and list segments.

``api.py`` speaks HTTP (typed endpoint calls, PHP bracket forms, pagination);
``answers.py`` reads error answers; ``mapping.py`` and ``checks.py`` translate and check
canonical rules; this module joins them into the provider. Facts: providers/mailwizz.md.

- Lists are found by name (a name held by two lists is a conflict); fields by merge tag,
  case-insensitively, to the list's own ``field_id``; operators by slug from the
  condition-operators endpoint, read once per run (never hard-coded ids).
- Fetch pages through the lists and each list's segments, then reads every segment's
  conditions concurrently (only those a narrowed ``Scope`` wants: the convergence check).
  Segments pending deletion are hidden by the list endpoint. Segments are reported oldest
  first (names are not unique: import keeps the oldest).
- Changes: create is one POST; any update (rename, match, conditions) is one PUT with the
  name, the match and the complete condition set (the server deletes whatever a PUT omits,
  so a partial PUT is never sent); delete is one DELETE. Creating a list needs the
  target's ``from_name``, ``from_email`` and ``reply_to``. Creating a list field has no
  documented endpoint: ``create_field`` is not among the capabilities' changes, so ``plan``
  refuses a declared field that is missing, naming the merge tag to create in MailWizz.
- ``check_change`` translates every planned change exactly as ``apply`` will (rules to
  conditions, the condition limit, the list's field ids, the install's operator ids),
  against the fetched fields and what earlier changes of the plan create, without writing:
  what ``plan`` accepts, ``apply`` sends as one request per change.
- Delete is a soft delete, and MailWizz also marks every campaign that uses the segment
  for deletion: deletes only ever come from ``prune: true`` and the core's safety limits.
- A segment over the target's ``max_segment_conditions`` (after ``in``/``not_in`` expand)
  fails before any write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel

from providers._http import HttpClient
from providers._http.provider import HttpProvider
from providers._per_plan import Kept
from reconciler.errors import NotFound, ProviderError
from reconciler.model import (
    OPERATORS_BY_TYPE,
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

from . import checks, mapping, wire
from .answers import Classifier
from .api import (
    FieldRecord,
    ListBody,
    ListRecord,
    MailWizzApi,
    SegmentBody,
    SegmentRecord,
    SegmentSummary,
)
from .planned import NEW_LIST_FIELDS, NO_FIELDS, PlanIndex
from .settings import DEFAULT_MAX_CONDITIONS, Company, MailWizzSettings

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MAX_CONDITIONS",
    "Company",
    "MailWizzProvider",
    "MailWizzSettings",
]


_EMPTINESS = ("empty", "not_empty")
_TEXT = OPERATORS_BY_TYPE["text"]  # every canonical text operator maps to a slug
CAPABILITIES = Capabilities(
    shape="flat",
    expands_in=True,  # one MailWizz condition per value of an in/not_in
    operators={
        "text": _TEXT,
        "number": frozenset(("equals", "not_equals", "gt", "lt", "in", "not_in", *_EMPTINESS)),
        "date": frozenset(("equals", "not_equals", *_EMPTINESS)),
        "select": frozenset(("equals", "not_equals", "in", "not_in", *_EMPTINESS)),
    },
    # EMAIL, FNAME and LNAME are text list fields created with every list; the other
    # standard fields are not list fields, and conditions reach list fields only.
    standard_operators={
        "email": _TEXT,
        "first_name": _TEXT,
        "last_name": _TEXT,
        **{name: frozenset() for name in mapping.UNSTORABLE_FIELDS},
    },
    field_scope="list",
    # MailWizz documents two field types, text and dropdown: a number or a date lives in a
    # text field. The server compares a condition numerically when its value is numeric
    # (greater/less/is cast both sides), so gt/lt on a declared number field mean what they
    # say (validate refuses a gt/lt whose value is not a whole number, see
    # mapping.literal_problem); a date is compared as text (equals/not_equals only).
    stores_as={"number": "text", "date": "text"},
    names_case_insensitive=False,  # names are not even unique (two live ones: a conflict)
    events=frozenset(mapping.ACTIONS),
    within=True,
    membership=frozenset(),
    native=True,
    max_conditions=DEFAULT_MAX_CONDITIONS,
    changes=frozenset(
        {
            Action.CREATE_LIST,
            Action.CREATE_SEGMENT,
            Action.UPDATE_SEGMENT,
            Action.DELETE_SEGMENT,
        }
    ),
    field_types=frozenset({"text", "number", "date", "select"}),
    concurrent_apply=True,  # list uids and fields are loaded once under a lock
)
"""``max_conditions`` is the platform default; ``capabilities_for`` uses the target's own.
``field_types`` are the types a declared (existing) field may have; no ``create_field``:
the API documents no call that creates list fields."""

FIELD_KINDS = {"select": "Dropdown"}
"""Declared type -> the MailWizz field type to create it as (Text otherwise)."""

FIELD_TYPES: dict[str, Literal["text", "select"]] = {"text": "text", "dropdown": "select"}
"""Field type identifier -> canonical type. Only ``text`` and ``dropdown`` are documented;
any other identifier is read as ``text`` (UNKNOWN: the safe, least-operator choice)."""


@dataclass
class _ListInfo:
    uid: str
    fields: list[FieldRecord] | None = None


class MailWizzProvider(HttpProvider[MailWizzSettings]):
    """Segments of one MailWizz install's lists, as one flat all/any condition list."""

    platform: ClassVar[str] = "MailWizz"

    key: ClassVar[str] = "mailwizz"
    settings_model: ClassVar[type[BaseModel]] = MailWizzSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._lists: dict[str, _ListInfo] = {}
        self._operators: wire.OperatorIndex | None = None
        self._plan_index: Kept[PlanIndex] = Kept()
        """The last plan checked: the lists and fields it creates (``check_change``)."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def capabilities_for(cls, settings: BaseModel) -> Capabilities:
        limit = getattr(settings, "max_segment_conditions", DEFAULT_MAX_CONDITIONS)
        return cls.capabilities.model_copy(update={"max_conditions": limit})

    @classmethod
    def check_segment(
        cls, segment: Segment, field_types: Mapping[str, str] | None = None
    ) -> list[str | Problem]:
        return checks.offline_problems(segment)

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return mapping.canonicalise(match, rules)

    def fetch(self, scope: Scope) -> LiveState:
        records = [r for r in self.api.lists() if scope.includes(r.name)]
        unique_names(((r.name, r.list_uid) for r in records), "the install")
        http = self.api.http
        metas = http.map_concurrent(self._list_meta, records)
        wanted = [
            (r.list_uid, s.segment_uid)
            for r, (_, segments) in zip(records, metas, strict=True)
            for s in segments
            if scope.wants_segment(r.name, s.name, s.segment_uid)
        ]
        operators = self._operator_index() if wanted else wire.OperatorIndex(())
        found = {d.segment_uid: d for d in http.map_concurrent(self._details, wanted) if d}
        lists = []
        for record, (fields, segments) in zip(records, metas, strict=True):
            self._lists[record.name] = _ListInfo(record.list_uid, fields)
            # The collection lists the newest first: live segments are kept oldest first, so
            # where names repeat, the first (the one import keeps) is the oldest.
            details = [found[s.segment_uid] for s in reversed(segments) if s.segment_uid in found]
            lists.append(self._live_list(record, fields, details, operators))
        self.context.progress(
            f"{self.target}: read {len(lists)} lists and {len(found)} segments from MailWizz"
        )
        return LiveState(lists=tuple(sorted(lists, key=lambda item: item.name)))

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        """What ``apply`` would refuse or the server would answer with 422, found by
        translating ``change`` exactly as ``apply`` will, without sending anything."""
        if change.action is Action.CREATE_FIELD:
            return [Problem((), self._no_field_call(change, planned))]
        if change.action is Action.CREATE_LIST:
            problem = self._list_problem(change.list)
            return [] if problem is None else [Problem(("name",), problem)]
        if change.action in (Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT):
            fields = self._planned_fields(change, planned)
            segment = change.declared_segment
            _, problem = self._translate(segment, fields)
            if problem is None:
                return []
            where = f'segment "{segment.name}" cannot be written to list "{change.list}"'
            return [Problem(("rules",), f"{where} in MailWizz: {problem}")]
        return []

    def _no_field_call(self, change: Change, planned: Plan) -> str:
        declared = change.declared_field
        kind = FIELD_KINDS.get(declared.type, "Text") + " field"
        if declared.options:
            kind += f" with the options {', '.join(declared.options)}"
        where = f'list "{change.list}"'
        if self._created(planned, change):
            where += " (apply would create the list, with only EMAIL, FNAME and LNAME)"
        return (
            f'field "{declared.name}" does not exist in {where}, and the MailWizz API has no '
            f"call to create list fields: create it in MailWizz with the merge tag "
            f"{declared.name.strip().upper()}, as a {kind}, then plan again"
        )

    def _planned_fields(self, change: Change, planned: Plan) -> wire.FieldIndex:
        """The list's fields when ``change`` runs: those fetched (or, for a list this plan
        creates, the ones MailWizz creates with it), plus fields the plan creates
        (``planned.py``)."""
        index = self._plan_index.get((planned,), lambda: PlanIndex(planned))
        info = self._lists.get(change.list)
        if info is None and self._created(planned, change):
            fetched: Sequence[FieldRecord] = NEW_LIST_FIELDS
        else:
            fetched = self._list(change.list).fields or NO_FIELDS
        return index.fields((self.target, change.list), fetched)

    def _created(self, planned: Plan, change: Change) -> bool:
        """Whether ``planned`` creates the list ``change`` belongs to."""
        index = self._plan_index.get((planned,), lambda: PlanIndex(planned))
        return (change.target, change.list) in index.created_lists

    # -- reading ---------------------------------------------------------------------------

    @property
    def api(self) -> MailWizzApi:
        """The API client, built on first use (``validate`` never builds it)."""
        return MailWizzApi(self.http)

    def _build_http(self) -> HttpClient:
        secret = self.config.api_key.get_secret_value()
        return HttpClient(
            base_url=self.config.base_url,
            context=self.context,
            headers={"X-API-KEY": secret},
            secrets=(secret,),
            classify=Classifier((secret,)),
        )

    def _list_meta(self, record: ListRecord) -> tuple[list[FieldRecord], list[SegmentSummary]]:
        return self._fields(record.list_uid), self.api.segments(record.list_uid)

    def _fields(self, list_uid: str) -> list[FieldRecord]:
        try:
            return self.api.fields(list_uid)
        except NotFound:
            return []  # documented: a list without fields answers 404

    def _details(self, wanted: tuple[str, str]) -> SegmentRecord | None:
        try:
            return self.api.segment(*wanted)
        except NotFound:
            return None  # deleted between the list and this read: it is gone

    def _operator_index(self) -> wire.OperatorIndex:
        with self._lock:
            cached = self._operators
        if cached is None:
            cached = wire.OperatorIndex(self.api.operators())
            with self._lock:
                self._operators = cached
        return cached

    def _live_list(
        self,
        record: ListRecord,
        fields: list[FieldRecord],
        details: list[SegmentRecord],
        operators: wire.OperatorIndex,
    ) -> LiveList:
        index = wire.FieldIndex(fields)
        segments = []
        for item in details:
            match, rules = wire.from_wire(item, index, operators)
            segments.append(
                LiveSegment(
                    id=item.segment_uid,
                    name=item.name,
                    match=match,
                    rules=rules,
                    member_count=item.subscribers_count,
                )
            )
        live_fields = tuple(
            LiveField(
                name=f.tag,
                type=FIELD_TYPES.get(f.type_identifier, "text"),
                options=f.options if f.type_identifier == "dropdown" else (),
                id=f.field_id,
                native_type=f.type_identifier or None,
            )
            for f in fields
            if f.tag.upper() not in mapping.FIELD_BY_TAG
        )
        return LiveList(
            target=self.target,
            name=record.name,
            id=record.list_uid,
            fields=live_fields,
            segments=tuple(segments),
        )

    def _list(self, name: str) -> _ListInfo:
        """A list's uid and fields: from the last fetch, else read again (once)."""
        info = self._once(self._lists, name, lambda: self._read_list(name))
        if info.fields is None:
            with self._state:
                if info.fields is None:
                    info.fields = self._fields(info.uid)
        return info

    def _read_list(self, name: str) -> _ListInfo:
        found = [r for r in self.api.lists() if r.name == name]
        unique_names(((r.name, r.list_uid) for r in found), "the install")
        if not found:
            raise NotFound(
                f"list {name!r} does not exist in target {self.target!r}; run plan again"
            )
        return _ListInfo(found[0].list_uid)

    # -- one handler per change kind --------------------------------------------------------

    def _list_problem(self, name: str) -> str | None:
        """Why a list named ``name`` cannot be created in this target, if it cannot."""
        if self.config.list_defaults() is None:
            return (
                f"list {name!r} does not exist in target {self.target!r}, and MailWizz needs "
                "from_name, from_email and reply_to to create a list: add them to the "
                "target's settings, or create the list in MailWizz"
            )
        problem = checks.name_problem(name, "list name")
        if problem is None and len(name) < 2:
            problem = "MailWizz list names need at least 2 characters"
        return None if problem is None else f"list {name!r} cannot be created: {problem}"

    def _create_list(self, change: Change) -> None:
        defaults = self.config.list_defaults()
        problem = self._list_problem(change.list)
        if problem is not None or defaults is None:
            raise ProviderError(problem or "no list defaults")  # plan refuses it first
        company = self.config.company.form() if self.config.company else {}
        body = ListBody(change.list, change.list, *defaults, self.config.subject, company)
        self._lists[change.list] = _ListInfo(self.api.create_list(body))

    def _create_segment(self, change: Change) -> None:
        after = change.declared_segment
        info = self._list(change.list)
        self.api.create_segment(info.uid, self._body(after, info))

    def _update_segment(self, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        info = self._list(change.list)
        self.api.update_segment(info.uid, before.id, self._body(after, info))

    def _delete_segment(self, change: Change) -> None:
        before = change.live_segment
        info = self._list(change.list)
        try:
            self.api.delete_segment(info.uid, before.id)
        except NotFound:
            return  # already gone (e.g. an earlier attempt whose answer was lost)

    handlers: ClassVar[dict[Action, Callable[[MailWizzProvider, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.DELETE_SEGMENT: _delete_segment,
    }

    # -- helpers ---------------------------------------------------------------------------

    def _translate(
        self, segment: Segment, index: wire.FieldIndex
    ) -> tuple[SegmentBody | None, str | None]:
        """The complete form to send for ``segment``, or why it cannot be sent: the one
        translation ``check_change`` and ``apply`` share."""
        try:
            compiled = mapping.compile_rules(segment.match, segment.rules)
            conditions, campaigns = wire.to_wire(compiled, index, self._operator_index())
        except mapping.Untranslatable as exc:
            return None, exc.reason
        count = len(conditions) + len(campaigns)  # what is sent is what the server counts
        problem = checks.limit_problem(count, self.config.max_segment_conditions)
        if problem is not None:
            return None, problem
        return SegmentBody(segment.name, compiled.operator_match, conditions, campaigns), None

    def _body(self, segment: Segment, info: _ListInfo) -> SegmentBody:
        """The form to send; anything unstorable fails here, before any write (``plan``
        has refused it already, through ``check_change``)."""
        body, problem = self._translate(segment, wire.FieldIndex(info.fields or ()))
        if body is None:
            raise ProviderError(
                f"segment {segment.name!r} cannot be written to MailWizz: {problem}"
            )
        return body
