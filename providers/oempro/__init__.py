"""Oempro / Octeth (self-hosted command API ``/api.php``): lists, custom fields, segments.

``api.py`` speaks the command API (one method per Command, sessions, paging),
``answers.py`` reads its envelope and error codes, ``mapping.py`` and ``checks.py``
translate and check canonical rules; this module joins them into the provider. Facts:
providers/oempro.md.

- Lists are found by name (``Lists.Get``, every page, archived ones included so a declared
  list is never created twice); two lists with one name are a conflict. A missing declared
  list is created with ``List.Create``.
- Custom fields are per list (``CustomFields.Get``, with the account's global fields), by
  name, case-insensitively, to the list's own ``CustomFieldID`` (G10). Types come from
  ``FieldType`` and the validation settings: ``Single line`` with ``Numbers`` validation is
  a number, ``Date field`` a date, ``Drop down``/``Multiple choice`` a select,
  ``Checkboxes`` a multiselect, anything else text. A field's options are not in any
  documented answer (UNKNOWN), so they are never read: a select declared with options is
  refused by ``plan`` (the core compares them), and only text and number fields are
  created (``CustomField.Create``; a date field needs an undocumented ``Years`` value, a
  select options that could never be read back).
- Rules are stored in two levels: CNF under ``SegmentOperator`` ``and`` or DNF under
  ``or``, whichever is smaller (mapping.py). A segment whose rules are unchanged keeps its
  operator (a rename sends the same operator and the same rules); the operator is always
  sent with the complete ``RulesJson`` (G3, G4), and ``SegmentName`` always (G8).
- Changes: create is one ``Segment.Create``, any update one ``Segment.Update``, delete one
  ``Segments.Delete``. Segments the adapter cannot read as documented (the old
  ``SegmentRules`` form, undocumented rule types or operators, sub-groups) are unmanaged:
  read, reported with the reason, never written, never pruned unless named with
  ``--allow-delete`` (the core's ``LiveSegment.managed``).
- ``check_change`` translates each planned change exactly as ``apply`` will, against the
  fields fetched and those earlier changes of the plan create, without sending anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel

from providers._http import HttpClient
from providers._http.provider import HttpProvider
from providers._per_plan import Kept
from reconciler.errors import NotFound, ProviderError
from reconciler.model import (
    FieldDef,
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
from reconciler.rules import segment_key, walk

from . import checks, mapping, vocabulary
from .answers import Classifier
from .api import FieldRecord, ListRecord, OemproApi, SegmentRecord, secret_forms
from .mapping import FieldIndex, FieldInfo, Untranslatable
from .planned import NO_FIELDS, PlanIndex
from .settings import OemproSettings

__all__ = ["CAPABILITIES", "OemproProvider", "OemproSettings", "field_type"]

CAPABILITIES = Capabilities(
    shape="two_level",
    operators=vocabulary.OPERATORS,
    standard_operators=vocabulary.STANDARD_OPERATORS,
    field_scope="list",
    stores_as={},
    names_case_insensitive=False,  # names are not even unique (G12): two are a conflict
    events=frozenset(vocabulary.EVENTS),
    within=True,
    membership=frozenset(),  # no list-membership rule ("belongs to" is about segments)
    native=True,
    changes=frozenset(
        {
            Action.CREATE_LIST,
            Action.CREATE_FIELD,
            Action.CREATE_SEGMENT,
            Action.UPDATE_SEGMENT,
            Action.DELETE_SEGMENT,
        }
    ),
    field_types=frozenset({"text", "number", "date", "select", "multiselect"}),
    concurrent_apply=True,  # list ids and fields are loaded under a lock (fields dropped on create)
)
"""No ``max_conditions``: Oempro documents none; conversions stop at the core's limit."""

FIELD_KINDS: dict[str, tuple[str, str]] = {
    "text": ("Single line", "Disabled"),
    "number": ("Single line", "Numbers"),
}
"""Declared type -> ``FieldType`` and ``ValidationMethod`` to create it with."""
NOT_CREATED = {
    "date": "a Date field needs a 'Years' value whose format Oempro does not document",
    "select": "a field's options are in no documented answer, so they could never be checked",
    "multiselect": "a field's options are in no documented answer, so they could never be checked",
}


def field_type(record: FieldRecord) -> str:
    """The canonical type of a custom field, from its type and validation settings."""
    kind = record.field_type.strip().casefold()
    if kind in ("drop down", "multiple choice"):
        return "select"
    if kind == "checkboxes":
        return "multiselect"
    if kind == "date field":
        return "date"
    if kind == "single line" and record.validation.strip().casefold() == "numbers":
        return "number"
    return "text"


def _native_type(record: FieldRecord) -> str | None:
    validation = record.validation.strip()
    if validation and validation.casefold() not in ("disabled", "none"):
        return f"{record.field_type} with {validation} validation"
    return record.field_type or None


def _live_field(record: FieldRecord) -> LiveField:
    native = _native_type(record)
    if record.is_global:
        native = f"{native or 'field'}, global"
    return LiveField(name=record.name, type=field_type(record), id=record.id, native_type=native)


def _index(fields: Sequence[FieldRecord]) -> FieldIndex:
    return FieldIndex([FieldInfo(f.id, f.name, field_type(f)) for f in fields])


def _planned_record(n: int, declared: FieldDef) -> FieldRecord:
    """The field the plan's ``n``-th change creates, as it will read back (its id unknown)."""
    kind, validation = FIELD_KINDS.get(declared.type, ("Single line", ""))
    return FieldRecord(
        id=f"planned-{n}", name=declared.name, field_type=kind, validation=validation
    )


@dataclass
class _ListInfo:
    id: str
    fields: list[FieldRecord] | None = None
    """As last read; None when it must be read again (after a field was created)."""


class OemproProvider(HttpProvider[OemproSettings]):
    """Segments of one Oempro user's subscriber lists, in two levels."""

    platform: ClassVar[str] = "Oempro"

    key: ClassVar[str] = "oempro"
    settings_model: ClassVar[type[BaseModel]] = OemproSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._api: OemproApi | None = None
        self._api_lock = threading.Lock()
        self._lists: dict[str, _ListInfo] = {}
        self._globals: list[FieldRecord] = []
        self._operators: dict[str, str] = {}
        """Each segment's stored ``SegmentOperator``, by id (kept when rules are unchanged)."""
        self._plan_index: Kept[PlanIndex] = Kept()
        """The last plan checked: the fields it creates, by list (``check_change``)."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[str | Problem]:
        return checks.offline_problems(segment, field_types)

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        info = self._lists.get(list_name)
        index = _index(info.fields) if info is not None and info.fields is not None else None
        return mapping.canonicalise(match, rules, index)

    def fetch(self, scope: Scope) -> LiveState:
        every = self.api.lists()
        records = [r for r in every if scope.includes(r.name)]
        unique_names(((r.name, r.id) for r in records), "the Oempro user")
        metas = self.api.http.map_concurrent(self._list_meta, records)
        lists = []
        for record, (fields, segments) in zip(records, metas, strict=True):
            self._lists[record.name] = _ListInfo(record.id, fields)
            self._globals = [f for f in fields if f.is_global] or self._globals
            wanted = [s for s in segments if scope.wants_segment(record.name, s.name, s.id)]
            lists.append(self._live_list(record, fields, wanted))
        if not records and every:  # only lists to create: their fields are the global ones
            self._globals = [f for f in self.api.fields(every[0].id) if f.is_global]
        count = sum(len(item.segments) for item in lists)
        self.context.progress(
            f"{self.target}: read {len(lists)} lists and {count} segments from Oempro"
        )
        return LiveState(
            lists=tuple(sorted(lists, key=lambda item: item.name)),
            # Global fields belong to every list, also to one this plan creates.
            account_fields={self.target: tuple(_live_field(f) for f in self._globals)},
        )

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        """What ``apply`` would refuse, found by translating ``change`` exactly as
        ``apply`` will, against the fields fetched and created earlier in the plan."""
        if change.action is Action.CREATE_FIELD:
            problem = _field_problem(change.declared_field, change.list)
            return [] if problem is None else [Problem(("type",), problem)]
        if change.action not in (Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT):
            return []
        index = self._planned_fields(change, planned)
        problems = [
            Problem(path, reason)
            for path, leaf in walk(change.declared_segment.rules)
            if (reason := _leaf_problem(leaf, index)) is not None
        ]
        if not problems:
            try:
                self._stored(change, index)
            except Untranslatable as exc:
                problems.append(Problem(("rules",), exc.reason))
        return problems

    # -- reading ---------------------------------------------------------------------------

    @property
    def api(self) -> OemproApi:
        """The command API, built on first use (``validate`` never builds it)."""
        with self._api_lock:
            if self._api is None:
                c = self.config
                self._api = OemproApi(
                    self.http,
                    api_key=c.api_key.get_secret_value() if c.api_key else None,
                    username=c.username,
                    password=c.password.get_secret_value() if c.password else None,
                    encoding=c.encoding,
                )
            return self._api

    def _redact(self, text: str) -> str:
        api = self._api
        return api.redact(text) if api is not None else self.http.redact(text)

    def _build_http(self) -> HttpClient:
        secrets = [form for secret in self.config.secrets for form in secret_forms(secret)]
        return HttpClient(
            base_url=self.config.base_url,
            context=self.context,
            secrets=secrets,
            classify=Classifier(self._redact),
        )

    def _list_meta(self, record: ListRecord) -> tuple[list[FieldRecord], list[SegmentRecord]]:
        return self.api.fields(record.id), self.api.segments(record.id)

    def _live_list(
        self, record: ListRecord, fields: list[FieldRecord], segments: list[SegmentRecord]
    ) -> LiveList:
        index = _index(fields)
        found = []
        for item in segments:
            read = mapping.decode_segment(item.operator, item.rules_json, item.legacy_rules, index)
            self._operators[item.id] = read.operator
            found.append(
                LiveSegment(
                    id=item.id,
                    name=item.name,
                    match=read.match,
                    rules=read.rules,
                    managed=read.managed,
                    reason=read.reason,
                    member_count=item.subscriber_count,
                )
            )
        live_fields = tuple(_live_field(f) for f in fields)
        return LiveList(
            target=self.target,
            name=record.name,
            id=record.id,
            fields=live_fields,
            segments=tuple(found),
        )

    def _list(self, name: str) -> _ListInfo:
        """A list's id: from the last fetch, else read again (once)."""
        return self._once(self._lists, name, lambda: self._read_list(name))

    def _read_list(self, name: str) -> _ListInfo:
        found = [r for r in self.api.lists() if r.name == name]
        unique_names(((r.name, r.id) for r in found), "the Oempro user")
        if not found:
            raise NotFound(f"list {name!r} does not exist in target {self.target!r}")
        return _ListInfo(found[0].id)

    def _fields(self, info: _ListInfo) -> list[FieldRecord]:
        """The list's fields, read again after a field was created (under the lock: a read
        begun before a creation is dropped by it, never kept)."""
        with self._state:
            if info.fields is None:
                info.fields = self.api.fields(info.id)
            return info.fields

    def _planned_fields(self, change: Change, planned: Plan) -> FieldIndex:
        """The list's fields when ``change`` runs: as fetched (a list the plan creates has
        the account's global fields), plus those earlier changes of the plan create
        (``planned.py``)."""
        index = self._plan_index.get(
            (planned,), lambda: PlanIndex(planned, self.target, _planned_record)
        )
        info = self._lists.get(change.list)
        fetched = (info.fields or NO_FIELDS) if info is not None else self._globals
        return index.fields(change, fetched, _index)

    # -- translating -----------------------------------------------------------------------

    def _stored(self, change: Change, index: FieldIndex) -> tuple[str, str]:
        """The ``SegmentOperator`` and ``RulesJson`` to send for ``change``: the one
        translation ``check_change`` and ``apply`` share. A segment whose rules are
        unchanged keeps its stored operator (only a rename or a no-op on the rules)."""
        segment = change.declared_segment
        stored = None
        kept = self._kept_operator(change)
        if kept is not None:
            try:
                stored = mapping.convert(segment.match, segment.rules, kept)  # type: ignore[arg-type]
            except Untranslatable:
                stored = None
        if stored is None:
            stored = mapping.convert(segment.match, segment.rules)
        return stored.operator, stored.rules_json(index)

    def _kept_operator(self, change: Change) -> str | None:
        before = change.before
        if before is None:
            return None
        have = self._operators.get(before.id)
        if have not in ("and", "or"):
            return None
        after = change.declared_segment
        want = self.canonical_rules(after.match, after.rules, change.list)
        live = self.canonical_rules(before.match, before.rules, change.list)
        return have if segment_key(*want) == segment_key(*live) else None

    def _translated(self, change: Change, info: _ListInfo) -> tuple[str, str]:
        index = _index(self._fields(info))
        try:
            return self._stored(change, index)
        except Untranslatable as exc:
            raise ProviderError(
                f"segment {change.declared_segment.name!r} cannot be written to Oempro: "
                f"{exc.reason}"
            ) from None

    # -- one handler per change kind --------------------------------------------------------

    def _create_list(self, change: Change) -> None:
        list_id = self.api.create_list(change.list)
        self._lists[change.list] = _ListInfo(list_id)

    def _create_field(self, change: Change) -> None:
        declared = change.declared_field
        problem = _field_problem(declared, change.list)
        if problem is not None:
            raise ProviderError(problem)
        info = self._list(change.list)
        kind, validation = FIELD_KINDS[declared.type]
        self.api.create_field(info.id, declared.name, kind, validation)
        with self._state:
            info.fields = None  # read again when a segment needs it

    def _create_segment(self, change: Change) -> None:
        info = self._list(change.list)
        operator, rules_json = self._translated(change, info)
        name = change.declared_segment.name
        self._operators[self.api.create_segment(info.id, name, operator, rules_json)] = operator

    def _update_segment(self, change: Change) -> None:
        before = change.live_segment
        info = self._list(change.list)
        operator, rules_json = self._translated(change, info)
        name = change.declared_segment.name
        try:
            self.api.update_segment(before.id, name, operator, rules_json)
        except NotFound as exc:
            raise NotFound(
                f"segment {before.name!r} (#{before.id}) no longer exists in Oempro ({exc}); "
                "it is never re-created by an update"
            ) from None
        self._operators[before.id] = operator

    def _delete_segment(self, change: Change) -> None:
        self.api.delete_segments([change.live_segment.id])
        self._operators.pop(change.live_segment.id, None)

    handlers: ClassVar[dict[Action, Callable[[OemproProvider, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_FIELD: _create_field,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.DELETE_SEGMENT: _delete_segment,
    }


def _leaf_problem(leaf: Rule, index: FieldIndex) -> str | None:
    try:
        mapping.encode_leaf(leaf, index)
    except Untranslatable as exc:
        return exc.reason
    return None


def _field_problem(declared: FieldDef, list_name: str) -> str | None:
    reason = NOT_CREATED.get(declared.type)
    if reason is None:
        return None
    return (
        f'field "{declared.name}" ({declared.type}) does not exist in list "{list_name}", and '
        f"this adapter does not create {declared.type} fields in Oempro ({reason}): create it "
        "in Oempro, then plan again"
    )
