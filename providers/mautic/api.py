"""Typed calls to the Mautic 5.x REST API: one method per endpoint, no domain knowledge.

Paths are relative to the instance root (``base_url``) and start with ``/api``. Responses
wrap entities (``{"list": {...}}``, ``{"total": N, "lists": {...}}``); collections come as an
object keyed by id, an array, or ``[]`` when empty (gotcha G1), and every list endpoint is
read page by page (``start``/``limit``, ordered by id) until ``total`` is reached. Filters
are parsed once here: ``properties.filter`` wins and the stale root ``filter``/``display``
keys an edit leaves behind are dropped (G3). There is deliberately no PUT: PUT to an id
that no longer exists creates a new segment (G12).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from providers._http import HttpClient, Verdict
from reconciler.errors import ApiError, AuthError
from reconciler.model import JSONValue

__all__ = [
    "PAGE_SIZE",
    "Category",
    "ContactField",
    "MauticApi",
    "WireFilter",
    "WireSegment",
    "classify",
    "collection_items",
    "filters_body",
]

PAGE_SIZE = 100
"""Rows asked for per page; the server may send fewer (no cap is documented), so paging
advances by what arrived, not by this number."""

_M = TypeVar("_M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def collection_items(data: JSONValue) -> list[JSONValue]:
    """A collection as a list: object keyed by id (in key order as sent), array, or ``[]``."""
    if isinstance(data, dict):
        return list(data.values())
    if isinstance(data, list):
        return data
    if data is None:
        return []
    raise ValueError(f"expected an object or an array, got {type(data).__name__}")


class Category(_Wire):
    id: int
    title: str
    alias: str | None = None
    bundle: str | None = None


class ContactField(_Wire):
    """A contact field; ``alias`` is what ``filters[].field`` names."""

    id: int
    label: str = ""
    alias: str
    type: str = "text"
    is_published: bool = Field(default=True, alias="isPublished")
    is_listable: bool = Field(default=True, alias="isListable")
    properties: Any = None

    @property
    def usable(self) -> bool:
        """Only published, listable fields may be used in segment filters (fact file 3)."""
        return self.is_published and self.is_listable

    @property
    def options(self) -> tuple[str, ...]:
        """The choice values of a select/multiselect field (``properties.list``)."""
        found = self.properties.get("list") if isinstance(self.properties, dict) else None
        if not isinstance(found, list):
            return ()
        values = [item.get("value") if isinstance(item, dict) else item for item in found]
        return tuple(str(v) for v in values if v is not None)


class WireFilter(_Wire):
    """One stored filter, with its value read from ``properties`` (G3, G4)."""

    glue: str = "and"
    field: str
    object: str = "lead"
    type: str = ""
    operator: str
    value: Any = None
    display: Any = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: JSONValue) -> WireFilter:
        if not isinstance(raw, dict):
            raise ValueError("a filter is not an object")
        props = raw.get("properties")
        if isinstance(props, dict):
            value, display = props.get("filter"), props.get("display")
            extra = {k: v for k, v in props.items() if k not in ("filter", "display")}
        else:  # legacy shape: the value at the root (only when properties is missing)
            value, display, extra = raw.get("filter"), raw.get("display"), {}
        return cls(
            glue=str(raw.get("glue") or "and"),
            field=str(raw.get("field") or ""),
            object=str(raw.get("object") or "lead"),
            type=str(raw.get("type") or ""),
            operator=str(raw.get("operator") or ""),
            value=value,
            display=display if display not in (None, "") else None,
            extra=extra,
        )

    def body(self, glue: str) -> dict[str, JSONValue]:
        """The filter as sent: only the keys of fact file 6.1 (extra keys are rejected)."""
        properties: dict[str, JSONValue] = {**self.extra, "filter": self.value}
        if self.display is not None:
            properties["display"] = self.display
        return {
            "glue": glue,
            "field": self.field,
            "object": self.object,
            "type": self.type,
            "operator": self.operator,
            "properties": properties,
        }


class WireSegment(_Wire):
    id: int
    name: str
    alias: str | None = None
    public_name: str | None = Field(default=None, alias="publicName")
    description: str | None = None
    is_published: bool = Field(default=True, alias="isPublished")
    is_global: bool = Field(default=True, alias="isGlobal")
    is_preference_center: bool = Field(default=False, alias="isPreferenceCenter")
    category: Category | None = None
    filters: tuple[WireFilter, ...] = ()

    @field_validator("category", mode="before")
    @classmethod
    def _no_category(cls, value: object) -> object:
        return value if isinstance(value, dict) and value.get("id") is not None else None

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, value: object) -> object:
        if isinstance(value, dict):  # keyed by index after edits: keep the index order
            value = [value[k] for k in sorted(value, key=_index_order)]
        return tuple(WireFilter.parse(raw) for raw in collection_items(value))


def _index_order(key: str) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (1 << 30, str(key))


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return []
    found = data.get("errors") if isinstance(data, dict) else None
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def classify(response: httpx.Response) -> Verdict | None:
    """Mautic's ``{"errors": [...]}`` envelope as the core's errors; None: default handling."""
    status = response.status_code
    if status not in (400, 403, 422):
        return None
    errors = _errors(response)
    if not errors:
        return None
    text = "; ".join(str(e.get("message", "")).strip() for e in errors if e.get("message"))
    kinds = {str(e.get("type")) for e in errors}
    request = response.request
    if status == 403 and "api_disabled" in kinds:
        return Verdict(
            error=AuthError(
                f"the Mautic API is disabled on this instance ({text}); enable it under "
                "Configuration > API Settings"
            )
        )
    if status == 403:
        return Verdict(
            error=AuthError(
                f"Mautic refused the request ({request.method} {request.url.path} -> 403: {text}); "
                "check the target's credentials, that Basic auth is enabled if you use "
                "username/password, and the API user's permissions"
            )
        )
    return Verdict(
        error=ApiError(
            f"Mautic rejected the request: {text}",
            method=request.method,
            url=request.url.path,
            status=status,
        )
    )


class MauticApi:
    """The endpoints the adapter uses, for one Mautic instance."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    # -- reading --------------------------------------------------------------------------

    def _page(self, path: str, key: str, start: int) -> tuple[list[JSONValue], int]:
        params = {"start": start, "limit": PAGE_SIZE, "orderBy": "id", "orderByDir": "ASC"}
        data = self.http.get_json(path, params=params)
        try:
            if not isinstance(data, dict):
                raise ValueError("not an object")
            items = collection_items(data.get(key))
            total = int(data.get("total", len(items)))
        except (TypeError, ValueError) as exc:
            raise ApiError(
                f"Mautic answered GET {path} with an unexpected shape ({exc})",
                body=json.dumps(data, default=str)[:200],
            ) from None
        return items, total

    def _collection(self, path: str, key: str) -> list[JSONValue]:
        """Every page of a collection: the first page, the rest concurrently, then on."""
        items, total = self._page(path, key, 0)
        size = len(items)
        if size and size < total:
            starts = range(size, total, size)
            for page in self.http.map_concurrent(lambda s: self._page(path, key, s)[0], starts):
                items.extend(page)
            while len(items) < total:  # rows added meanwhile, or pages shorter than the first
                more, total = self._page(path, key, len(items))
                if not more:
                    break
                items.extend(more)
        return _unique(items)

    def _parse(self, model: type[_M], data: JSONValue, what: str) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ApiError(
                f"Mautic answered {what} with an unexpected shape ({exc.error_count()} problems)",
                body=json.dumps(data, default=str)[:200],
            ) from None

    def _one(self, model: type[_M], data: JSONValue, key: str, what: str) -> _M:
        inner = data.get(key) if isinstance(data, dict) else None
        return self._parse(model, inner, what)

    def categories(self) -> list[Category]:
        rows = self._collection("/api/categories", "categories")
        return [self._parse(Category, row, "a category") for row in rows]

    def contact_fields(self) -> list[ContactField]:
        rows = self._collection("/api/fields/contact", "fields")
        return [self._parse(ContactField, row, "a contact field") for row in rows]

    def segments(self) -> list[WireSegment]:
        rows = self._collection("/api/segments", "lists")
        return [self._parse(WireSegment, row, "a segment") for row in rows]

    # -- writing --------------------------------------------------------------------------

    def create_category(self, title: str) -> Category:
        data = self.http.send_json(
            "POST", "/api/categories/new", {"title": title, "bundle": "segment"}
        )
        return self._one(Category, data, "category", "create category")

    def create_field(self, body: Mapping[str, JSONValue]) -> ContactField | None:
        """Create a contact field (201, or 202 when Mautic queues the column creation); the
        field as stored when the answer holds it (``{"field": {...}}``), else None."""
        data = self.http.send_json("POST", "/api/fields/contact/new", dict(body))
        inner = data.get("field") if isinstance(data, dict) else None
        if not isinstance(inner, dict) or "alias" not in inner:
            return None  # the 202 answer's body is not documented
        return self._parse(ContactField, inner, "create field")

    def create_segment(self, body: Mapping[str, JSONValue]) -> WireSegment:
        data = self.http.send_json("POST", "/api/segments/new", dict(body))
        return self._one(WireSegment, data, "list", "create segment")

    def edit_segment(self, segment_id: str, body: Mapping[str, JSONValue]) -> WireSegment:
        """PATCH: a merge, 404 when the id does not exist (never PUT: it would upsert)."""
        data = self.http.send_json("PATCH", f"/api/segments/{_id(segment_id)}/edit", dict(body))
        return self._one(WireSegment, data, "list", "edit segment")

    def delete_segment(self, segment_id: str) -> None:
        self.http.send_json("DELETE", f"/api/segments/{_id(segment_id)}/delete")


def filters_body(filters: Sequence[tuple[str, WireFilter]]) -> list[JSONValue]:
    """``(glue, filter)`` pairs as the ``filters`` array of a request."""
    return [f.body(glue) for glue, f in filters]


def _id(segment_id: str) -> int:
    try:
        return int(segment_id)
    except ValueError:
        raise ApiError(f"{segment_id!r} is not a Mautic segment id") from None


def _unique(items: list[JSONValue]) -> list[JSONValue]:
    """Rows de-duplicated by id (pages can overlap when rows move during the scan)."""
    seen: set[object] = set()
    found: list[JSONValue] = []
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        if ident is not None and ident in seen:
            continue
        seen.add(ident)
        found.append(item)
    return found
