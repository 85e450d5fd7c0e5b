"""Typed calls to the MailWizz 2.x API: one method per endpoint, no domain knowledge.

Facts: providers/mailwizz.md. Paths are relative to the target's ``base_url`` (the install's
API URL, e.g. ``https://mail.example.com/api`` or ``.../api/index.php``). Authentication is
the ``X-API-KEY`` header, set by the provider on its ``HttpClient``.

- Requests carry form fields in PHP bracket notation (what ``http_build_query`` makes):
  :func:`php_form` flattens nested data to ``conditions[0][field_id]=96``-style keys, and
  httpx encodes them exactly as PHP does (brackets percent-encoded, spaces as ``+``).
  There is no ``data[...]`` wrapper; an empty array cannot be sent, so it is omitted.
- PUT and DELETE are real PUT and DELETE requests (a POST with an override header is
  routed, then rejected by the action).
- Every collection read follows ``next_page`` until it is null.
- Responses are parsed into the frozen models below at this edge. Database numbers come
  back as strings (or sometimes numbers): every id is read as a string. ``date_added`` is
  never read; ``subscribers_count`` of a segment's own record is kept as its live member
  count, shown by the plan and never compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from providers._http import HttpClient
from reconciler.errors import ApiError
from reconciler.model import JSONValue

__all__ = [
    "PER_PAGE",
    "FieldRecord",
    "FormValue",
    "ListBody",
    "ListRecord",
    "MailWizzApi",
    "OperatorRecord",
    "SegmentBody",
    "SegmentRecord",
    "SegmentSummary",
    "WireCampaignCondition",
    "WireCondition",
    "php_form",
]

PER_PAGE = 50
"""Rows asked for per page: within 2.7.2's clamp [10, 1000] and 2.1.13's segment cap of 50.
Whatever the server does with it, ``next_page`` is followed to the end."""

MAX_PAGES = 100_000
"""A server whose ``next_page`` never ends is refused rather than followed forever."""

FormValue: TypeAlias = "str | Mapping[str, FormValue] | Sequence[FormValue]"

_T = TypeVar("_T")


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)


class ListRecord(_Wire):
    """A list of the collection: only ``general`` is read."""

    list_uid: str
    name: str


class _ListEntry(_Wire):
    general: ListRecord


class FieldRecord(_Wire):
    """A list field; ``field_id`` is what conditions reference, ``tag`` its merge tag."""

    field_id: str
    tag: str
    label: str = ""
    type_identifier: str = ""
    options: tuple[str, ...] = ()
    """The stored values of an option field (the keys of the API's value -> label map)."""

    @classmethod
    def parse(cls, data: JSONValue) -> FieldRecord:
        item = dict(data) if isinstance(data, dict) else {}
        kind = item.get("type")
        item["type_identifier"] = kind.get("identifier", "") if isinstance(kind, dict) else ""
        options = item.get("options")
        item["options"] = tuple(str(k) for k in options) if isinstance(options, dict) else ()
        return cls.model_validate(item)


class OperatorRecord(_Wire):
    operator_id: str
    slug: str
    name: str = ""


class SegmentSummary(_Wire):
    """A segment of the collection (no conditions; its ``subscribers_count`` is read from
    the segment's own record, which every fetch reads anyway)."""

    segment_uid: str
    name: str


class WireCondition(_Wire):
    field_id: str
    operator_id: str
    value: str

    def identity(self) -> tuple[str, ...]:
        """What the server de-duplicates on."""
        return (self.field_id, self.operator_id, self.value)


class WireCampaignCondition(_Wire):
    action: str
    campaign_id: str | None = None
    time_comparison_operator: str
    time_value: str
    time_unit: str

    @field_validator("campaign_id", mode="before")
    @classmethod
    def _blank_is_any_campaign(cls, value: object) -> object:
        return None if value == "" else value

    def identity(self) -> tuple[str | None, ...]:
        return (
            self.action,
            self.campaign_id,
            self.time_comparison_operator,
            self.time_value,
            self.time_unit,
        )


class SegmentRecord(_Wire):
    """One segment with its conditions. ``date_added`` (a localised display string) is
    deliberately not read; ``subscribers_count`` is read as the segment's live member count,
    for display only (it moves with subscriber activity, so it is never compared)."""

    segment_uid: str
    name: str
    operator_match: str = "any"
    subscribers_count: JSONValue = None
    conditions: tuple[WireCondition, ...] = ()
    campaign_conditions: tuple[WireCampaignCondition, ...] = ()

    @field_validator("conditions", "campaign_conditions", mode="before")
    @classmethod
    def _null_is_none(cls, value: object) -> object:
        return () if value is None else value


class _Page(_Wire):
    next_page: int | None = None
    records: tuple[Any, ...] = ()

    @field_validator("records", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return () if value is None else value


def php_form(data: Mapping[str, FormValue]) -> dict[str, str]:
    """Nested data as the flat keys of PHP's ``http_build_query``, in order.

    ``{"conditions": [{"field_id": "96"}]}`` -> ``{"conditions[0][field_id]": "96"}``.
    Empty lists and mappings produce nothing (PHP cannot express an empty array).
    """
    flat: dict[str, str] = {}

    def walk(prefix: str, value: FormValue) -> None:
        if isinstance(value, str):
            flat[prefix] = value
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}[{key}]", inner)
        else:
            for index, inner in enumerate(value):
                walk(f"{prefix}[{index}]", inner)

    for key, value in data.items():
        walk(key, value)
    return flat


@dataclass(frozen=True)
class SegmentBody:
    """The form of a segment create or update: always the complete condition set."""

    name: str
    operator_match: str
    conditions: tuple[WireCondition, ...] = ()
    campaign_conditions: tuple[WireCampaignCondition, ...] = ()

    def form(self) -> dict[str, str]:
        data: dict[str, FormValue] = {"name": self.name, "operator_match": self.operator_match}
        data["conditions"] = [
            {"field_id": c.field_id, "operator_id": c.operator_id, "value": c.value}
            for c in self.conditions
        ]
        data["campaign_conditions"] = [_campaign_form(c) for c in self.campaign_conditions]
        return php_form(data)


def _campaign_form(condition: WireCampaignCondition) -> dict[str, str]:
    form = {"action": condition.action}
    if condition.campaign_id is not None:  # optional: omitted means any campaign of the list
        form["campaign_id"] = condition.campaign_id
    form["time_comparison_operator"] = condition.time_comparison_operator
    form["time_value"] = condition.time_value
    form["time_unit"] = condition.time_unit
    return form


@dataclass(frozen=True)
class ListBody:
    """The form of a list create: ``general``, ``defaults`` and optional ``company``."""

    name: str
    description: str
    from_name: str
    from_email: str
    reply_to: str
    subject: str | None = None
    company: Mapping[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        defaults = {"from_name": self.from_name, "from_email": self.from_email}
        defaults["reply_to"] = self.reply_to
        if self.subject:
            defaults["subject"] = self.subject
        data: dict[str, FormValue] = {
            "general": {"name": self.name, "description": self.description},
            "defaults": defaults,
            "company": dict(self.company),
        }
        return php_form(data)


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(part, safe="") for part in parts)


class MailWizzApi:
    """The endpoints the adapter uses, for one install and one API key."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    # -- reading ------------------------------------------------------------------------------

    def _data(self, body: JSONValue, what: str) -> Mapping[str, JSONValue]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise _shape_error(what, body)
        return data

    def _parse(self, adapter: TypeAdapter[_T], data: JSONValue, what: str) -> _T:
        try:
            return adapter.validate_python(data)
        except ValidationError:
            raise _shape_error(what, data) from None

    def _records(self, path: str, what: str, *, paginated: bool = True) -> Iterator[JSONValue]:
        """Every record of a collection, following ``next_page`` until it is null."""
        page = 1
        while True:
            params: dict[str, int] | None = {"page": page, "per_page": PER_PAGE}
            if not paginated:  # paging is not documented for it: ask plainly, follow if told
                params = {"page": page} if page > 1 else None
            data = self._data(self.http.get_json(path, params=params), what)
            found = self._parse(_PAGE, data, what)
            yield from found.records
            if found.next_page is None:
                return
            if found.next_page <= page or found.next_page > MAX_PAGES:
                raise ApiError(
                    f"MailWizz answered {what} with next_page {found.next_page} after page"
                    f" {page}; stopping instead of reading pages forever",
                    method="GET",
                    url=path,
                )
            page = found.next_page

    def lists(self) -> list[ListRecord]:
        records = self._records("/lists", "the lists")
        return [self._parse(_LIST_ENTRY, r, "a list").general for r in records]

    def fields(self, list_uid: str) -> list[FieldRecord]:
        """The list's fields (documented as not paginated: the whole collection)."""
        data = self._data(self.http.get_json(_path("lists", list_uid, "fields")), "fields")
        records = data.get("records")
        if not isinstance(records, list):
            raise _shape_error("the fields of a list", data)
        try:
            return [FieldRecord.parse(r) for r in records]
        except ValidationError:
            raise _shape_error("the fields of a list", records) from None

    def segments(self, list_uid: str) -> list[SegmentSummary]:
        records = self._records(_path("lists", list_uid, "segments"), "the segments of a list")
        return [self._parse(_SUMMARY, r, "a segment") for r in records]

    def segment(self, list_uid: str, segment_uid: str) -> SegmentRecord:
        body = self.http.get_json(_path("lists", list_uid, "segments", segment_uid))
        return self._record(body, "a segment")

    def operators(self) -> list[OperatorRecord]:
        path = "/lists/segments/condition-operators"
        records = self._records(path, "the condition operators", paginated=False)
        return [self._parse(_OPERATOR, r, "a condition operator") for r in records]

    def _record(self, body: JSONValue, what: str) -> SegmentRecord:
        return self._parse(_SEGMENT, self._data(body, what).get("record"), what)

    # -- writing ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, form: Mapping[str, str] | None) -> JSONValue:
        response = self.http.request(method, path, data=form)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise _shape_error(f"{method} {path}", response.text[:200]) from None

    def create_list(self, body: ListBody) -> str:
        answer = self._send("POST", "/lists", body.form())
        list_uid = answer.get("list_uid") if isinstance(answer, dict) else None
        if not isinstance(list_uid, str) or not list_uid:
            raise _shape_error("create list (no list_uid)", answer)
        return list_uid

    def create_segment(self, list_uid: str, body: SegmentBody) -> SegmentRecord:
        path = _path("lists", list_uid, "segments")
        return self._record(self._send("POST", path, body.form()), "create segment")

    def update_segment(self, list_uid: str, segment_uid: str, body: SegmentBody) -> SegmentRecord:
        """Name, match and *every* condition in one PUT: omitted conditions are deleted."""
        path = _path("lists", list_uid, "segments", segment_uid)
        return self._record(self._send("PUT", path, body.form()), "update segment")

    def delete_segment(self, list_uid: str, segment_uid: str) -> None:
        """A soft delete (see the provider's docstring for what it also does)."""
        self._send("DELETE", _path("lists", list_uid, "segments", segment_uid), None)


def _shape_error(what: str, data: object) -> ApiError:
    excerpt = json.dumps(data, default=str)[:200]
    return ApiError(f"MailWizz answered {what} with an unexpected shape", body=excerpt)


_PAGE = TypeAdapter(_Page)
_LIST_ENTRY = TypeAdapter(_ListEntry)
_SUMMARY = TypeAdapter(SegmentSummary)
_OPERATOR = TypeAdapter(OperatorRecord)
_SEGMENT = TypeAdapter(SegmentRecord)
