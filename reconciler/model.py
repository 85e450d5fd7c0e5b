"""Domain types: the rules, segments, lists and targets users declare, and the live state.

These pydantic models *are* the canonical model of DESIGN.md. Field names and aliases match
the YAML keys exactly, so a validation error's location is a path into the YAML document.
This module is a leaf: it imports nothing else from the package.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "BEHAVIOUR_EVENTS",
    "FIELD_OPERATORS",
    "FIELD_TYPES",
    "MAX_CONCURRENCY",
    "MEMBERSHIP_OPERATORS",
    "MIN_REQUESTS_PER_SECOND",
    "OPERATORS_BY_TYPE",
    "STANDARD_FIELDS",
    "BehaviourRule",
    "Config",
    "Defaults",
    "FieldDef",
    "FieldRule",
    "Group",
    "JSONValue",
    "LiveField",
    "LiveList",
    "LiveSegment",
    "LiveState",
    "MailingList",
    "MembershipRule",
    "NativeRule",
    "Rule",
    "Scalar",
    "Segment",
    "SourceRef",
    "TargetConfig",
    "Value",
    "Within",
]

JSONValue: TypeAlias = Any
"""A value from JSON/YAML: str, int, float, bool, None, list or dict of these."""

Scalar: TypeAlias = StrictStr | StrictBool | StrictInt | StrictFloat
Value: TypeAlias = Scalar | tuple[Scalar, ...]

FieldOp = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "between",
    "empty",
    "not_empty",
    "in",
    "not_in",
]
FIELD_OPERATORS: tuple[str, ...] = FieldOp.__args__  # type: ignore[attr-defined]
NO_VALUE_OPERATORS = frozenset({"empty", "not_empty"})
LIST_VALUE_OPERATORS = frozenset({"in", "not_in"})

Event = Literal["opened", "clicked", "not_opened", "not_clicked"]
BEHAVIOUR_EVENTS: tuple[str, ...] = Event.__args__  # type: ignore[attr-defined]

MembershipOp = Literal["in", "not_in", "active_in", "not_active_in"]
MEMBERSHIP_OPERATORS: tuple[str, ...] = MembershipOp.__args__  # type: ignore[attr-defined]

FieldType = Literal["text", "number", "date", "select", "multiselect", "boolean"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]

_EMPTINESS = ("empty", "not_empty")
OPERATORS_BY_TYPE: dict[str, frozenset[str]] = {
    "text": frozenset(
        (
            "equals",
            "not_equals",
            "contains",
            "not_contains",
            "starts_with",
            "ends_with",
            "in",
            "not_in",
            *_EMPTINESS,
        )
    ),
    "number": frozenset(
        ("equals", "not_equals", "gt", "gte", "lt", "lte", "between", "in", "not_in", *_EMPTINESS)
    ),
    "date": frozenset(
        (
            "equals",
            "not_equals",
            "before",
            "after",
            "gt",
            "gte",
            "lt",
            "lte",
            "between",
            *_EMPTINESS,
        )
    ),
    "select": frozenset(("equals", "not_equals", "in", "not_in", *_EMPTINESS)),
    "multiselect": frozenset(("contains", "not_contains", "in", "not_in", *_EMPTINESS)),
    "boolean": frozenset(("equals", "not_equals", *_EMPTINESS)),
}
"""What each canonical operator means per field type: the most any provider can offer.
A provider's capabilities list the subset its platform can store."""

STANDARD_FIELDS: dict[str, str] = {
    "email": "text",
    "name": "text",
    "first_name": "text",
    "last_name": "text",
    "date_subscribed": "date",
    "status": "select",
}
"""Fields every list has, with their type; any other field name is a custom field."""

Match = Literal["all", "any"]


_M = TypeVar("_M", bound=BaseModel)


def assembled(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``cls`` (a model without private attributes or extra fields) holding
    ``values``: every field, in field order, each already valid. What ``model_construct``
    builds, at a third of its cost, for the hot paths that make one per segment or change;
    ``fields_set`` may be shared between instances (the models are frozen). Tests compare
    each use with validation (``tests/unit/test_model_memory.py``)."""
    built = cls.__new__(cls)
    object.__setattr__(built, "__dict__", values)
    object.__setattr__(built, "__pydantic_fields_set__", fields_set)
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", None)
    return built


class _Model(BaseModel):
    # No NaN or infinity: JSON plans and reports must stay parseable by strict readers.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )
    # Memory and speed: identical rules are validated once and shared (``sharing.py``), and
    # segments read back as declared reuse the declaration's models
    # (``LiveSegment.stored_as``). A ``model_post_init`` that shared each instance's
    # fields-set (216 bytes) saved less than that now does, and cost a Python call for
    # every instance built: 20 % of validating 10,000 segments.


class SourceRef(_Model):
    """Where a declaration came from: the file and the path of keys/indexes inside it."""

    file: str
    path: tuple[str | int, ...] = ()


_NO_OPTIONS: dict[str, JSONValue] = {}
"""The one empty ``options`` every segment without options shares (10,000 segments would
hold 10,000 empty dicts). Never written to: the models are frozen and nothing in the
package changes a segment's options in place (``tests/unit/test_model_memory.py``)."""


def _no_options() -> dict[str, JSONValue]:
    return _NO_OPTIONS


_Where: TypeAlias = tuple[str, tuple[str | int, ...]]
"""A declaration's file and path, as stored on the declaration (see ``Segment.source``)."""


def _source_ref(where: _Where | None) -> SourceRef | None:
    return None if where is None else SourceRef.model_construct(file=where[0], path=where[1])


class FieldRule(_Model):
    """``{field: email, op: contains, value: "@gmail.com"}``"""

    field: StrictStr = Field(min_length=1)
    op: FieldOp
    value: Value | None = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> FieldRule:
        if self.op in NO_VALUE_OPERATORS:
            if self.value is not None:
                raise ValueError(f"operator {self.op!r} takes no value")
        elif self.value is None:
            raise ValueError(f"operator {self.op!r} needs a value")
        elif self.op == "between":
            if not isinstance(self.value, tuple) or len(self.value) != 2:
                raise ValueError("operator 'between' needs a value of two items: [low, high]")
        elif self.op in LIST_VALUE_OPERATORS:
            if not isinstance(self.value, tuple) or not self.value:
                raise ValueError(f"operator {self.op!r} needs a non-empty list value")
        elif isinstance(self.value, tuple):
            raise ValueError(f"operator {self.op!r} needs a single value, not a list")
        return self


class Within(_Model):
    days: StrictInt = Field(gt=0)


class BehaviourRule(_Model):
    """``{campaign: "1234abcd", event: opened, within: {days: 30}}``"""

    campaign: StrictStr = Field(
        min_length=1,
        json_schema_extra={"type": ["string", "integer"]},  # a number is read as text (below)
    )
    event: Event
    within: Within | None = None

    @field_validator("campaign", mode="before")
    @classmethod
    def _campaign_id_as_text(cls, value: object) -> object:
        # Campaign ids are opaque; a bare number in YAML means the same id as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class MembershipRule(_Model):
    """``{list: VIP, op: not_in}``"""

    list_: StrictStr = Field(alias="list", min_length=1)
    op: MembershipOp = "in"


def _finite_json(value: JSONValue, path: str = "") -> None:
    """Raise ValueError naming where ``value`` holds NaN or an infinity: JSON has neither,
    and NaN never equals itself, so an option holding it would show as a change on every
    plan. (``native:`` rules are the provider's to check.)"""
    if isinstance(value, float) and not math.isfinite(value):
        where = f" (at {path})" if path else ""
        raise ValueError(f"NaN and infinity are not allowed{where}")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_json(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _finite_json(item, f"{path}[{index}]")


class NativeRule(_Model):
    """``{native: {...}}``: one rule in the provider's own form, passed through."""

    native: dict[str, JSONValue] = Field(min_length=1)


def _rule_tag(value: object) -> str | None:
    tag = _TAG_BY_TYPE.get(type(value))  # a model (a rule shared when loading) or a dict
    if tag is None and isinstance(value, dict):
        for key, found in _TAG_BY_KEY.items():
            if key in value:
                return found
    return tag


class Group(_Model):
    """A nested group: ``{any: [...]}`` or ``{all: [...]}``."""

    any_: tuple[Rule, ...] | None = Field(default=None, alias="any", min_length=1)
    all_: tuple[Rule, ...] | None = Field(default=None, alias="all", min_length=1)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Group:
        if (self.any_ is None) == (self.all_ is None):
            raise ValueError("a group needs exactly one of 'any' or 'all'")
        return self

    @property
    def match(self) -> Match:
        return "any" if self.any_ is not None else "all"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.any_ if self.any_ is not None else (self.all_ or ())

    @classmethod
    def of(cls, match: Match, rules: tuple[Rule, ...]) -> Group:
        """Build a group without validation (rules are already valid models)."""
        if match == "any":
            return cls.model_construct(any_=tuple(rules), all_=None)
        return cls.model_construct(any_=None, all_=tuple(rules))


Rule = Annotated[
    Annotated[FieldRule, Tag("field")]
    | Annotated[BehaviourRule, Tag("behaviour")]
    | Annotated[MembershipRule, Tag("membership")]
    | Annotated[NativeRule, Tag("native")]
    | Annotated[Group, Tag("group")],
    Discriminator(
        _rule_tag,
        custom_error_type="rule_kind",
        custom_error_message=(
            "a rule needs one of the keys 'field', 'campaign', 'list', 'native', 'any' or 'all'"
        ),
        custom_error_context={},
    ),
]

_TAG_BY_KEY = {
    "field": "field",
    "campaign": "behaviour",
    "list": "membership",
    "native": "native",
    "any": "group",
    "all": "group",
}
_TAG_BY_TYPE: dict[type, str] = {
    FieldRule: "field",
    BehaviourRule: "behaviour",
    MembershipRule: "membership",
    NativeRule: "native",
    Group: "group",
}
Group.model_rebuild()


class _Located(_Model):
    """A declaration that remembers where it was written (file and path), once loaded.

    The place is kept in ``__pydantic_private__`` (which pydantic compares, copies and
    leaves out of dumps as it does a private attribute's) but not declared with
    ``PrivateAttr``: a declared private attribute makes pydantic run a Python hook on every
    instance it validates, which was half the cost of validating 10,000 segments.
    """

    @property
    def source(self) -> SourceRef | None:
        private = self.__pydantic_private__
        return None if private is None else _source_ref(private.get("source"))

    def with_source(self, source: SourceRef) -> Self:
        return self.with_location(source.file, source.path)

    def with_location(self, file: str, path: tuple[str | int, ...]) -> Self:
        """Remember where this was declared (kept as a plain pair: 10,000 segments would
        otherwise hold 10,000 models just for this)."""
        object.__setattr__(self, "__pydantic_private__", {"source": (file, path)})
        return self


class Segment(_Located):
    """A declared segment: its identity is its name within its list."""

    name: StrictStr = Field(min_length=1)
    renamed_from: tuple[StrictStr, ...] = ()
    match: Match = "all"
    rules: tuple[Rule, ...] = Field(min_length=1)
    options: dict[str, JSONValue] = Field(default_factory=_no_options)

    @field_validator("options")
    @classmethod
    def _finite(cls, value: dict[str, JSONValue]) -> dict[str, JSONValue]:
        _finite_json(value)
        return value


class FieldDef(_Model):
    """A custom field the rules use: ``{name: Frequency, type: select, options: [...]}``"""

    name: StrictStr = Field(min_length=1)
    type: FieldType = "text"
    options: tuple[StrictStr, ...] = ()


class MailingList(_Located):
    """A declared list and the segments managed in it."""

    name: StrictStr = Field(min_length=1)
    target: StrictStr | None = Field(default=None, min_length=1)
    prune: StrictBool = False
    ignore: tuple[StrictStr, ...] = ()
    fields: tuple[FieldDef, ...] = ()
    segments: tuple[Segment, ...] = ()


MAX_CONCURRENCY = 100
"""Most concurrent requests a target may allow (each is a thread)."""
MIN_REQUESTS_PER_SECOND = 0.01
"""Least request budget a target may have: one request every 100 seconds."""


class TargetConfig(BaseModel):
    """One account on one platform. Keys other than these belong to the provider."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    provider: StrictStr = Field(min_length=1)
    max_concurrency: StrictInt | None = Field(default=None, gt=0, le=MAX_CONCURRENCY)
    requests_per_second: StrictInt | StrictFloat | None = Field(
        default=None,
        ge=MIN_REQUESTS_PER_SECOND,
        # pydantic writes ``ge`` on a union as an unknown keyword: say it in JSON Schema.
        json_schema_extra={
            "anyOf": [{"type": "number", "minimum": MIN_REQUESTS_PER_SECOND}, {"type": "null"}]
        },
    )

    @property
    def settings(self) -> dict[str, JSONValue]:
        """The provider-specific keys, exactly as written (after ``${VAR}`` expansion)."""
        return dict(self.model_extra or {})


class Defaults(_Model):
    target: StrictStr | None = Field(default=None, min_length=1)


class Config(_Model):
    """The whole desired state: the root file with every included file merged in."""

    version: Literal[1]
    targets: dict[StrictStr, TargetConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    include: tuple[StrictStr, ...] = ()
    tests: tuple[StrictStr, ...] = ()
    """Globs of segment tests files (sample subscribers and expectations), same rules as
    ``include``."""
    lists: tuple[MailingList, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        # ``Literal[1]`` alone takes ``true`` and ``1.0`` (they equal 1 in Python).
        if isinstance(value, bool | float):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f'"version" must be 1, not {shown}')
        return value


class LiveField(_Model):
    """A custom field as the platform holds it, typed in the canonical field types."""

    name: str
    type: FieldType = "text"
    options: tuple[str, ...] = ()
    id: str | None = None
    native_type: str | None = None
    """The platform's own type name (e.g. ``datetime``, ``Country``), for messages."""
    aliases: tuple[str, ...] = ()
    """Other names the platform resolves to this field (e.g. a Mautic field's label)."""

    def answers_to(self, name: str) -> bool:
        """Whether a declaration naming ``name`` means this field (case-insensitive)."""
        folded = name.casefold()
        return folded == self.name.casefold() or any(folded == a.casefold() for a in self.aliases)


MAX_COUNT = 10**15
"""A live member count is below this (a larger answer is not a count)."""


class LiveSegment(_Model):
    """A segment as the provider reports it, already translated to canonical rules."""

    id: str
    name: str
    match: Match = "all"
    rules: tuple[Rule, ...] = ()
    options: dict[str, JSONValue] = Field(default_factory=_no_options)
    managed: bool = True
    """False for a segment the provider can read but must never write (rules it cannot
    translate back, a legacy form): never updated, never deleted by ``prune`` unless named
    with ``--allow-delete``, and reported as unmanaged."""
    reason: str = ""
    """Why it is not managed, for the plan and ``import``."""
    member_count: int | None = None
    """How many members the platform reports the segment has now, where its answer carries
    a count (``None``: not reported). Display only: it moves with subscriber activity and
    lags rule changes, so it is never compared, diffed or part of a plan's fingerprint."""

    @classmethod
    def stored_as(cls, declared: Segment, id: str) -> LiveSegment:
        """The live form of a segment the platform stores exactly as ``declared`` (with id
        ``id``): the declaration's own validated name, match, rules and options, built
        without validating them again. It equals what validating those values gives
        (``tests/unit/test_model_memory.py``), at a third of the cost of
        ``model_construct``, which looks up every field's default one by one; 10,000
        segments read back unchanged are the common no-op plan."""
        values = _STORED_TEMPLATE.copy()  # every field, in order, the defaults filled in
        values["id"], values["name"], values["match"] = id, declared.name, declared.match
        values["rules"], values["options"] = declared.rules, declared.options
        return assembled(cls, values, _STORED_FIELDS)

    @field_validator("member_count", mode="before")
    @classmethod
    def _count_or_unknown(cls, value: object) -> int | None:
        """A count as platforms send it (an int, or digits as text); anything else (a
        negative or absurd number, a float, a boolean, a structure) is not a count."""
        if isinstance(value, str):
            text = value.strip()
            value = int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT:
            return value
        return None


_STORED_FIELDS = {"id", "name", "match", "rules", "options"}
"""The fields ``LiveSegment.stored_as`` is given: one set, shared (the models are frozen,
so it is never added to in place; ``model_copy`` takes a set of its own)."""
_STORED_TEMPLATE = {
    name: None if info.is_required() else info.get_default(call_default_factory=True)
    for name, info in LiveSegment.model_fields.items()
}


class LiveList(_Model):
    target: str
    name: str
    id: str
    fields: tuple[LiveField, ...] = ()
    segments: tuple[LiveSegment, ...] = ()


class LiveState(_Model):
    """What one or more targets hold, for the lists in scope."""

    lists: tuple[LiveList, ...] = ()
    account_fields: dict[str, tuple[LiveField, ...]] = Field(default_factory=dict)
    """Per target whose fields belong to the whole account (``field_scope: account``): all
    of them, also when no list of that target exists yet."""

    def find(self, target: str, name: str) -> LiveList | None:
        for live in self.lists:
            if live.target == target and live.name == name:
                return live
        return None
