"""Mautic 5.x (self-hosted REST API): segment categories as lists, segments, contact fields.

``api.py`` speaks HTTP (typed endpoint calls; OAuth2 client credentials come from the
shared ``providers._http.oauth``), ``leaves.py`` / ``mapping.py`` translate canonical rules
to filters and back, ``checks.py`` says offline what cannot be stored, ``planned.py`` what a
plan's changes would meet in the live state; this module joins them into the provider.

- A declared list is a segment category (bundle ``segment``), found by title; its segments
  are the segments in that category. ``create_list`` creates the category.
- Fields are the published, listable contact fields of the whole instance
  (``field_scope: account``: ``LiveState.account_fields``, and on every list for import),
  by alias, or by label where no other field claims it.
- Fetch reads every page of categories, contact fields and segments (one scan for all lists;
  a narrowed ``Scope``, the convergence check, leaves out the segments it does not want).
- ``check_change`` translates every planned change as ``apply`` will, in plan order, against
  what the fetch read and what earlier changes create; ``plan`` refuses what it finds.
- Changes: create is one POST with every filter; update (rename, rules, options) is one
  PATCH with the complete filter list, so rules are replaced in one call and never left
  empty; delete is one DELETE. PUT is never used: to an id that no longer exists it would
  create a new segment (G12). A 422 (unpublishing a segment in use) is a ``ConflictError``
  that says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, StrictStr, model_validator

from providers._http import HttpClient
from providers._http.oauth import ClientCredentialsAuth
from providers._http.provider import HttpProvider
from providers._http.urls import BaseUrl
from providers._per_plan import positions as plan_positions
from reconciler.errors import ApiError, ConflictError, NotFound, ProviderError
from reconciler.model import (
    FieldDef,
    JSONValue,
    LiveField,
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

from . import checks, mapping, planned
from . import operators as ops
from .api import (
    Category,
    ContactField,
    MauticApi,
    WireFilter,
    WireSegment,
    classify,
    filters_body,
)
from .leaves import FieldIndex, Segments, Untranslatable

__all__ = ["CAPABILITIES", "MauticProvider", "MauticSettings"]

_T = TypeVar("_T")
TOKEN_PATH = "/oauth/v2/token"
"""Where Mautic's OAuth2 server hands out client-credentials tokens (fact file 1)."""

_EMPTINESS = frozenset({"empty", "not_empty"})
_TEXT = frozenset(
    {"equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with"}
    | {"in", "not_in"}
    | _EMPTINESS
)
_DATE = (
    frozenset({"equals", "not_equals", "before", "after", "gt", "gte", "lt", "lte"})
    | frozenset({"between"})
    | _EMPTINESS
)
CAPABILITIES = Capabilities(
    shape="dnf",
    operators={
        "text": _TEXT,
        "number": frozenset({"equals", "not_equals", "gt", "gte", "lt", "lte", "between"})
        | frozenset({"in", "not_in"})
        | _EMPTINESS,
        "date": _DATE,
        "select": frozenset({"equals", "not_equals", "in", "not_in"}) | _EMPTINESS,
        "multiselect": frozenset({"contains", "not_contains", "in", "not_in"}) | _EMPTINESS,
        "boolean": frozenset({"equals", "not_equals"}),
    },
    events=frozenset(),
    membership=frozenset({"in", "not_in"}),
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
    field_types=frozenset({"text", "number", "date", "select", "multiselect", "boolean"}),
    standard_operators={
        # ``email`` is Mautic type ``email``: the text operators without ``in``/``!in``, so
        # ``in``/``not_in`` are written as OR-ed ``=`` / AND-ed ``!=`` (exact equivalents).
        "email": _TEXT,
        "first_name": _TEXT,  # ``firstname``, type ``text``
        "last_name": _TEXT,  # ``lastname``, type ``text``
        "date_subscribed": _DATE,  # the ``date_added`` filter, type ``date``
        "name": frozenset(),  # no Mautic equivalent
        "status": frozenset(),  # no Mautic equivalent
    },
    field_scope="account",
    concurrent_apply=True,  # categories, the field index and segment names kept under a lock
)
"""Per canonical field type, what the Mautic types behind it allow (operators.py has the
wire table); a live field whose Mautic type allows less is refused before any write.
Contact fields belong to the whole instance (``field_scope: account``)."""


class MauticSettings(BaseModel):
    """Target settings: ``base_url`` (the instance root) and either ``username``/``password``
    (HTTP Basic) or ``client_id``/``client_secret`` (OAuth2 client credentials)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: BaseUrl
    username: StrictStr | None = None
    password: SecretStr | None = None
    client_id: StrictStr | None = None
    client_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> MauticSettings:
        basic = (self.username, self.password)
        oauth = (self.client_id, self.client_secret)
        complete = [pair for pair in (basic, oauth) if all(v is not None for v in pair)]
        partial = [pair for pair in (basic, oauth) if any(v is not None for v in pair)]
        if len(complete) != 1 or len(partial) != 1:
            raise ValueError("give either username and password, or client_id and client_secret")
        if self.base_url.rstrip("/").endswith("/api"):
            raise ValueError("base_url is the instance root; the adapter adds /api itself")
        return self

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")


class MauticProvider(HttpProvider[MauticSettings]):
    """Segments of one Mautic instance, grouped into lists by segment category."""

    platform: ClassVar[str] = "Mautic"

    key: ClassVar[str] = "mautic"
    settings_model: ClassVar[type[BaseModel]] = MauticSettings
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._categories: dict[str, Category] = {}
        self._fields: FieldIndex | None = None
        self._names: dict[str, str] = {}
        """Every segment id the user can see -> its name (for ``leadlist`` filters)."""
        self._read: tuple[list[ContactField], list[WireSegment]] | None = None
        """Every contact field and segment the last fetch read (for ``check_change``)."""
        self._checked: tuple[Plan, dict[int, int], dict[int, list[Problem]]] | None = None
        """The last plan checked: the plan, change id -> index, problems by index."""
        self._generated: dict[tuple[tuple[str, JSONValue], ...], frozenset[str]] = {}
        """Live options (as a key) -> those Mautic generated from the segment's name."""

    # -- the provider contract -----------------------------------------------------------

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[str | Problem]:
        return checks.offline_problems(segment, field_types)

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return mapping.canonicalise(match, rules, self._fields, self._segments())

    def fetch(self, scope: Scope) -> LiveState:
        categories = self.api.categories()
        fields = self.api.contact_fields()
        segments = self.api.segments()
        self._fields = FieldIndex(fields)
        self._names = {str(s.id): s.name for s in segments}
        self._read, self._checked, self._generated = (fields, segments), None, {}
        by_id = {c.id: c for c in categories if c.bundle in ("segment", None)}
        by_id.update({s.category.id: s.category for s in segments if s.category is not None})
        chosen = [c for c in by_id.values() if scope.includes(c.title)]
        unique_names(((c.title, str(c.id)) for c in chosen), "Mautic", "segment categories")
        self._categories = {c.title: c for c in chosen}
        live_fields = _live_fields(fields, self._fields)
        lists = [
            self._live_list(
                c,
                [
                    s
                    for s in segments
                    if s.category
                    and s.category.id == c.id
                    and scope.wants_segment(c.title, s.name, str(s.id))
                ],
                live_fields,
            )
            for c in chosen
        ]
        self.context.progress(
            f"{self.target}: read {len(lists)} categories and {len(segments)} segments from Mautic"
        )
        return LiveState(
            lists=tuple(sorted(lists, key=lambda item: item.name)),
            account_fields={self.target: live_fields},
        )

    def check_change(self, change: Change, planned_: Plan) -> list[Problem]:
        """The change translated as ``apply`` will translate it, in the plan's order, against
        the fields and segments the last fetch read (``planned.py``); nothing is sent."""
        if self._read is None:
            return []
        if self._checked is None or self._checked[0] is not planned_:
            fields, segments = self._read
            scoped = {c.id for c in self._categories.values()}
            world = planned.World(fields, segments, scoped)
            problems = planned.PlanCheck(world, self.target).run(planned_)
            self._checked = (planned_, plan_positions(planned_), problems)
        _, positions, problems = self._checked
        index = positions.get(id(change))
        if index is None:  # an equal change, not the plan's own object
            index = next((i for i, c in enumerate(planned_.changes) if c == change), -1)
        return list(problems.get(index, ()))

    def import_options(self, options: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
        """The options a person would declare: not the server's defaults (G10), not the
        ``publicName`` and ``alias`` Mautic generated from the name (G8; an alias is kept
        when unsure how Mautic derived it), and not a value ``validate`` refuses (markup in a
        description, which Mautic filters): such a value is left out, so the segment is
        still imported, and the option, never declared, is never compared nor sent."""
        generated = self._generated.get(_options_key(options), frozenset())
        kept: dict[str, JSONValue] = {}
        for key, value in options.items():
            if key in mapping.OPTION_DEFAULTS and value == mapping.OPTION_DEFAULTS[key]:
                continue
            if key == "description" and value in ("", None):
                continue
            if key in generated or checks.option_problem(key, value) is not None:
                continue
            kept[key] = value
        return kept

    # -- reading ---------------------------------------------------------------------------

    @property
    def api(self) -> MauticApi:
        """The API client, built on first use (``validate`` never builds it)."""
        return MauticApi(self.http)

    def _build_http(self) -> HttpClient:
        auth: httpx.Auth
        if self.config.client_id is not None and self.config.client_secret is not None:
            secret = self.config.client_secret.get_secret_value()
            token_url = self.config.root + TOKEN_PATH
            auth = ClientCredentialsAuth(
                token_url,
                self.config.client_id,
                secret,
                self.context.clock,
                hint="check client_id and client_secret under Settings > API Credentials",
            )
        else:
            assert self.config.username is not None and self.config.password is not None
            secret = self.config.password.get_secret_value()
            auth = httpx.BasicAuth(self.config.username, secret)
        return HttpClient(
            base_url=self.config.root,
            context=self.context,
            auth=auth,
            secrets=(secret,),
            classify=classify,
        )

    def _segments(self) -> Segments:
        with self._state:
            names = dict(self._names)
        held: dict[str, list[str]] = {}
        for ident, name in names.items():
            held.setdefault(name.casefold(), []).append(ident)
        ids = {name: found[0] for name, found in held.items() if len(found) == 1}
        return Segments(ids=ids, names=names)

    def _live_list(
        self, category: Category, segments: list[WireSegment], fields: tuple[LiveField, ...]
    ) -> LiveList:
        found = []
        names = self._segments()
        for item in segments:
            match, rules = mapping.from_filters(item.filters, self._fields, names)
            options = mapping.live_options(item)
            key = _options_key(options)
            generated = mapping.generated_options(item)
            # Segments with equal options may differ in name: keep what all agree on.
            self._generated[key] = self._generated.get(key, generated) & generated
            reason = self._unwritable(item)
            found.append(
                LiveSegment(
                    id=str(item.id),
                    name=item.name,
                    match=match,
                    rules=rules,
                    options=options,
                    managed=not reason,
                    reason=reason,
                )
            )
        return LiveList(
            target=self.target,
            name=category.title,
            id=str(category.id),
            fields=fields,
            segments=tuple(found),
        )

    def _unwritable(self, item: WireSegment) -> str:
        """Why the segment, saved again with its filters as they are, would be refused by
        Mautic (so it is never written: reported as unmanaged, never pruned unless named
        with ``--allow-delete``), or ""."""
        if not item.filters:
            return (
                "it has no filters (its contacts are added by hand, by a campaign or through "
                "the API), and a declaration needs rules"
            )
        for f in item.filters:
            problem = self._filter_unwritable(f)
            if problem:
                return (
                    f"its filter on {f.field!r} {problem}, which Mautic refuses when the segment "
                    "is saved"
                )
        return ""

    def _filter_unwritable(self, f: WireFilter) -> str:
        if f.operator in ops.HIDDEN_OPS:
            return f"uses the hidden operator {f.operator!r} (G15)"
        if f.object not in ("lead", "behaviors") or self._read is None:
            return ""  # company fields are not read
        fields, segments = self._read
        if f.field == "leadlist":
            published = {str(s.id) for s in segments if s.is_published}
            values = f.value if isinstance(f.value, list) else [f.value]
            missing = [str(v) for v in values if v is not None and str(v) not in published]
            if missing:
                return f"names segment id {', '.join(missing)}, not a published segment (G14)"
            return ""
        field = next((c for c in fields if c.alias == f.field), None)
        if field is None:
            return "" if f.field in ops.SPECIAL_FILTERS else "names no contact field or filter"
        if not field.usable:
            return "is on a contact field that is not published or not available for segments"
        if field.type in ops.CHOICE_TYPES and f.operator in ("=", "!=", "in", "!in"):
            values = f.value if isinstance(f.value, list) else [f.value]
            if any(str(v) not in field.options for v in values if v is not None):
                return "holds a value that is not one of the field's options"
        return ""

    def _category(self, name: str) -> Category:
        """A list's category: from the last fetch, else read again (once)."""
        return self._once(self._categories, name, lambda: self._read_category(name))

    def _read_category(self, name: str) -> Category:
        found = [c for c in self.api.categories() if c.title == name]
        unique_names(((c.title, str(c.id)) for c in found), "Mautic", "segment categories")
        if not found:
            raise NotFound(
                f"list {name!r} (a Mautic segment category) does not exist; run plan again"
            )
        return found[0]

    def _index(self) -> FieldIndex:
        """The contact fields, read again after a field was created (under the lock: a read
        begun before a creation is dropped by it, never kept)."""
        with self._state:
            if self._fields is None:
                self._fields = FieldIndex(self.api.contact_fields())
            return self._fields

    def _filters(self, segment: Segment) -> list[JSONValue]:
        """The complete filter list to send; a rule that cannot be written fails first."""
        try:
            return self._try_filters(segment)
        except Untranslatable:
            if not _has_membership(segment.rules):
                raise
            with self._state:  # maybe new since
                self._names = {str(s.id): s.name for s in self.api.segments()}
            return self._try_filters(segment)

    def _try_filters(self, segment: Segment) -> list[JSONValue]:
        try:
            found = mapping.to_filters(
                segment.match, segment.rules, self._index(), self._segments()
            )
        except Untranslatable as exc:
            raise Untranslatable(
                f"segment {segment.name!r} cannot be written to Mautic: {exc.reason}"
            ) from None
        return filters_body(found)

    # -- one handler per change kind --------------------------------------------------------

    def _create_list(self, change: Change) -> None:
        self._categories[change.list] = self.api.create_category(change.list)

    def _create_field(self, change: Change) -> None:
        """One POST of the declared field under its name as alias. ``plan`` refuses a name
        that is not an alias Mautic keeps and a field that exists (``planned.py``); if one
        appeared since, nothing is written and the change fails."""
        field = change.declared_field
        alias = planned.field_alias(field.name)
        if not planned.FIELD_ALIAS.fullmatch(alias):
            raise ProviderError(
                f"field {field.name!r}: Mautic fields are declared by alias (letters, digits "
                f"and '_', starting with a letter): declare it as "
                f"{planned.suggested_alias(field.name)!r}"
            )
        found = next(
            (f for f in self.api.contact_fields() if f.alias.casefold() == alias.casefold()), None
        )
        if found is not None:
            raise ConflictError(
                f"contact field {found.alias!r} already exists in Mautic (created since the plan "
                "was made?); run plan again"
            )
        stored = self.api.create_field(_field_body(field, alias))
        with self._state:
            self._fields = None  # read again when next needed
        if stored is not None and stored.alias != alias:
            raise ConflictError(
                f"Mautic created field {field.name!r} under the alias {stored.alias!r}, not "
                f"{alias!r}; declare it as {stored.alias!r}"
            )

    def _create_segment(self, change: Change) -> None:
        after = change.declared_segment
        category = self._category(change.list)
        body = {"name": after.name, "category": category.id, **after.options}
        body["filters"] = self._filters(after)
        created = _saving(after, lambda: self.api.create_segment(body))
        with self._state:
            self._names[str(created.id)] = created.name

    def _update_segment(self, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        body = {"name": after.name, **after.options, "filters": self._filters(after)}
        try:
            saved = _saving(after, lambda: self.api.edit_segment(before.id, body))
        except NotFound:
            raise NotFound(
                f"segment {before.name!r} (#{before.id}) no longer exists in Mautic; run plan "
                "again (it is never re-created by id)"
            ) from None
        with self._state:
            self._names[before.id] = saved.name

    def _delete_segment(self, change: Change) -> None:
        before = change.live_segment
        with contextlib.suppress(NotFound):  # already gone (e.g. an answer that was lost)
            self.api.delete_segment(before.id)
        with self._state:
            self._names.pop(before.id, None)

    handlers: ClassVar[dict[Action, Callable[[MauticProvider, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_FIELD: _create_field,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.DELETE_SEGMENT: _delete_segment,
    }


def _saving(segment: Segment, call: Callable[[], _T]) -> _T:
    """Run a segment write; a 422 (a constraint such as unpublishing a segment in use)
    becomes a ``ConflictError`` that says what to do."""
    try:
        return call()
    except ApiError as exc:
        if exc.status != 422:
            raise
        raise ConflictError(
            f"Mautic refused to save segment {segment.name!r} (422: {exc}). A segment used by "
            "a campaign or by another segment's filter cannot be unpublished: remove those "
            "uses first, or keep options.isPublished: true"
        ) from None


def _field_body(field: FieldDef, alias: str) -> dict[str, JSONValue]:
    properties: dict[str, JSONValue] = {}
    if field.type in ("select", "multiselect"):
        properties["list"] = [{"label": o, "value": o} for o in field.options]
    elif field.type == "boolean":
        properties = {"yes": "Yes", "no": "No"}
    return {
        "label": field.name,
        "alias": alias,
        "type": field.type,
        "isPublished": True,
        "isListable": True,
        "properties": properties,
    }


def _live_fields(fields: list[ContactField], index: FieldIndex) -> tuple[LiveField, ...]:
    """Every usable contact field (they belong to the whole instance), by alias, typed in
    the canonical types with the Mautic type kept as ``native_type``; a label no other
    field claims is an alias the field answers to, so a field declared by label matches."""
    found = []
    for f in sorted(fields, key=lambda f: f.alias):
        if not f.usable:
            continue
        label = index.label_of(f)
        found.append(
            LiveField(
                name=f.alias,
                type=ops.CANONICAL_TYPES.get(f.type, "text"),
                options=f.options,
                id=str(f.id),
                native_type=f.type,
                aliases=(label,) if label and label.casefold() != f.alias.casefold() else (),
            )
        )
    return tuple(found)


def _options_key(options: Mapping[str, JSONValue]) -> tuple[tuple[str, JSONValue], ...]:
    return tuple(sorted((k, v) for k, v in options.items() if isinstance(v, str | bool | None)))


def _has_membership(rules: tuple[Rule, ...]) -> bool:
    return any(
        isinstance(r, MembershipRule) or _has_membership(getattr(r, "rules", ())) for r in rules
    )
