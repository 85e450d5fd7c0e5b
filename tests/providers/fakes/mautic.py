"""A stateful fake of the Mautic 5.x REST API, as providers/mautic.md documents it.

It holds categories, contact fields and segments; answers the documented endpoints with the
documented status codes and ``{"errors": [...]}`` envelopes; and reproduces the quirks an
adapter must normalise: collections keyed by id (``[]`` when empty, or an array in the old
shape), values stored as text (``false`` turned into null, choice values typed), the stale
root ``filter``/``display`` keys an edit leaves behind (G3), the generated alias and
publicName, PATCH as a 404 on an unknown id and PUT as an upsert under a new id, operator
validation per field type, published-only ``leadlist`` choices, and 422 for unpublishing a
segment another segment uses. Auth: Basic (optionally disabled), OAuth2 client credentials
with expiring tokens, the API switch, and a rate limit. Every request is recorded.

Where the facts are silent the fake chooses and says so: the 401 body for a refused or
expired token, the 422 message, and the datetime shift (a fixed instance offset).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from tests.providers.fakes import FakeClock

from . import one_at_a_time

BASE_URL = "https://mautic.example.com"
TEXT = frozenset({"=", "!=", "empty", "!empty", "like", "!like", "regexp", "!regexp"}) | {
    "startsWith",
    "endsWith",
    "contains",
}
ORDER = TEXT | {"gt", "gte", "lt", "lte"}
SELECT = frozenset({"=", "!=", "empty", "!empty", "regexp", "!regexp", "in", "!in"})
MULTI = frozenset({"in", "!in", "empty", "!empty"})
OPERATORS: dict[str, frozenset[str]] = {  # fact file 6.2; anything else -> "default"
    "text": TEXT | {"in", "!in"},
    **dict.fromkeys(("email", "url", "tel", "lookup"), TEXT),
    **dict.fromkeys(("select", "country", "region", "timezone", "locale"), SELECT),
    **dict.fromkeys(("multiselect", "tags", "leadlist"), MULTI),
    "boolean": frozenset({"=", "!="}),
    "lookup_id": frozenset({"=", "!=", "empty", "!empty"}),
    "default": ORDER,
}
SPECIAL = {"date_added": "date", "date_identified": "date", "last_active": "datetime"} | {
    "points": "number",
    "leadlist": "leadlist",
    "owner_id": "lookup_id",
}
CHOICE_TYPES = {"select", "multiselect", "boolean", "leadlist"}
FILTER_KEYS = {"glue", "field", "object", "type", "operator", "properties", "filter", "display"}
TZ_OFFSET = timedelta(hours=2)
"""The instance's local timezone: absolute datetime filter values are shifted to UTC (G7)."""


def _alias(text: str, space: str = "-") -> str:
    """Mautic's alias cleaning (G8): transliterated, lower case, spaces to ``space``, every
    other character but letters and digits stripped. The transliteration table and the
    made-up alias for an empty result are not in the facts: the fake drops accents and
    uses ``segment``."""
    ascii_text = unicodedata.normalize("NFKD", text.strip()).encode("ascii", "ignore").decode()
    cleaned = re.sub(f"[^a-z0-9{re.escape(space)}]+", "", ascii_text.replace(" ", space).lower())
    if space == "_":
        cleaned = cleaned.removesuffix("_")
    return cleaned or "segment"


_RELATIVE = {"today", "tomorrow", "yesterday", "anniversary", "birthday"} | {
    f"{when} {unit}" for when in ("this", "last", "next") for unit in ("week", "month", "year")
}
_PATTERN_OPS = {"regexp", "!regexp", "like", "!like", "startsWith", "endsWith", "contains"}


def _valid_date(value: str) -> bool:
    """The ``SegmentDate`` constraint (6.4, 6.5): a relative value, or a real date as
    ``Y-m-d``, ``Y-m-d H:i`` or ``Y-m-d H:i:s``."""
    text = value.strip().lower()
    if text in _RELATIVE or text[:1] in ("+", "-"):
        return True
    if any(part in text for part in ("first day of ", "last day of ", " ago")):
        return True
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            datetime.strptime(value, fmt)
        except ValueError:
            continue
        return True
    return False


@dataclass
class FakeMautic:
    base_url: str = BASE_URL
    username: str = "api-user"
    password: str = "correct-horse-battery"
    client_id: str = "1_clientid0123"
    client_secret: str = "client-secret-0123456789"
    clock: FakeClock | None = None
    token_lifetime: int = 3600
    api_enabled: bool = True
    basic_enabled: bool = True
    rate_limited: bool = False
    legacy_arrays: bool = False
    page_cap: int = 1000
    field_status: int = 201
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for alias, kind in (("email", "email"), ("firstname", "text"), ("lastname", "text")):
            self.add_field(alias.title(), alias, kind)
        self.add_field("Country", "country", "country", ["France", "Wales"])

    # -- test helpers: state edited directly, as someone in the UI would -----------------------

    def new_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_category(self, title: str, bundle: str = "segment") -> int:
        ident = self.new_id("category")
        self.categories[ident] = {"id": ident, "title": title, "alias": _alias(title)} | {
            "description": None,
            "color": "4e5d9d",
            "bundle": bundle,
        }
        return ident

    def add_field(
        self, label: str, alias: str, kind: str, options: list[str] | None = None, **flags: bool
    ) -> int:
        ident = self.new_id("field")
        props: dict[str, Any] = {"list": [{"label": o, "value": o} for o in options or []]}
        self.fields[ident] = {"id": ident, "label": label, "alias": alias, "type": kind} | {
            "object": "lead",
            "isPublished": flags.get("published", True),
            "isListable": flags.get("listable", True),
            "properties": props if options else {},
        }
        return ident

    def add_segment(self, name: str, category: int | None, filters: list[dict[str, Any]]) -> int:
        """Store a segment as the UI would (no validation)."""
        ident = self.new_id("segment")
        self.segments[ident] = self._entity(ident, {"name": name, "category": category}, {})
        self.segments[ident]["filters"] = copy.deepcopy(filters)
        return ident

    def segment_named(self, name: str) -> dict[str, Any]:
        (found,) = [s for s in self.segments.values() if s["name"] == name]
        return found

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def writes(self) -> list[tuple[str, str]]:
        """Every API write as ``(method, path)`` (token requests are not writes)."""
        return [
            (r.method, r.url.path)
            for r in self.requests
            if r.method != "GET" and r.url.path.startswith("/api/")
        ]

    def mount(self, router: respx.MockRouter) -> None:
        router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    # -- the HTTP side --------------------------------------------------------------------------

    @one_at_a_time
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/oauth/v2/token" and request.method in ("GET", "POST"):
            return self.token(request)
        if not path.startswith("/api/"):
            return _json(404, {"errors": [{"code": 404, "message": "Not found"}]})
        if not self.api_enabled:
            return _error(403, "API disabled. You need to enable the API.", "api_disabled")
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.rate_limited:
            return _error(429, "You exceeded the rate limit of 100 API calls per hour.")
        for method, pattern, handler in self._routes():
            found = re.fullmatch(pattern, path)
            if found and request.method == method:
                response: httpx.Response = handler(request, *found.groups())
                return response
        return _error(404, "Requested URL not found")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/api/categories", self.list_categories),
            ("POST", r"/api/categories/new", self.create_category),
            ("GET", r"/api/fields/contact", self.list_fields),
            ("POST", r"/api/fields/contact/new", self.create_field),
            ("GET", r"/api/segments", self.list_segments),
            ("GET", r"/api/segments/(\d+)", self.get_segment),
            ("POST", r"/api/segments/new", self.create_segment),
            ("PATCH", r"/api/segments/(\d+)/edit", self.patch_segment),
            ("PUT", r"/api/segments/(\d+)/edit", self.put_segment),
            ("DELETE", r"/api/segments/(\d+)/delete", self.delete_segment),
        ]

    def token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "invalid_request", "error_description": "Invalid grant"})
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _json(400, {"error": "invalid_client", "error_description": "Invalid client"})
        token = f"tok-{self.new_id('token')}-d3adb33fcafe"
        now = self.clock.now() if self.clock else 0.0
        self.tokens[token] = now + self.token_lifetime
        body = {"access_token": token, "expires_in": self.token_lifetime}
        return _json(200, body | {"token_type": "bearer", "scope": ""})

    def _refused(self, request: httpx.Request) -> httpx.Response | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            if not self.basic_enabled:
                return _error(
                    403, "Basic Auth disabled. Enable it in Configuration.", "access_denied"
                )
            user, _, password = base64.b64decode(value).decode().partition(":")
            if (user, password) == (self.username, self.password):
                return None
            return _error(401, "Authorization denied, invalid credentials.", "access_denied")
        if scheme == "Bearer":
            now = self.clock.now() if self.clock else 0.0
            if value in self.tokens and now < self.tokens[value]:
                return None
            # The facts give no body for an expired token; OAuth's error name is the type.
            return _error(401, "The access token provided has expired.", "invalid_grant")
        return _error(401, "API authorization denied.", "access_denied")

    # -- collections --------------------------------------------------------------------------

    def _page(self, request: httpx.Request, rows: list[dict[str, Any]], key: str) -> httpx.Response:
        params = request.url.params
        if params.get("orderBy") == "id":
            rows = sorted(rows, key=lambda r: r["id"], reverse=params.get("orderByDir") == "DESC")
        start, limit = int(params.get("start", 0)), int(params.get("limit", 30))
        page = rows if limit == 0 else rows[start : start + min(limit, self.page_cap)]
        items: Any = [copy.deepcopy(r) for r in page]
        if not self.legacy_arrays and items:
            items = {str(r["id"]): r for r in items}  # an empty result stays []
        return _json(200, {"total": len(rows), key: items})

    def list_categories(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, list(self.categories.values()), "categories")

    def create_category(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not body.get("title"):
            return _error(400, "title: A value is required.")
        ident = self.add_category(body["title"], body.get("bundle", "global"))
        return _json(201, {"category": self.categories[ident]})

    def list_fields(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, list(self.fields.values()), "fields")

    def create_field(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        alias = _alias(body.get("alias") or body.get("label", ""), "_")
        if any(f["alias"] == alias for f in self.fields.values()):
            return _error(400, f"alias: The alias {alias} is already used.")
        options = [o["value"] for o in body.get("properties", {}).get("list", [])]
        ident = self.add_field(body["label"], alias, body.get("type", "text"), options or None)
        self.fields[ident]["isPublished"] = body.get("isPublished", True)
        self.fields[ident]["isListable"] = body.get("isListable", True)
        return _json(self.field_status, {"field": self.fields[ident]})

    def list_segments(self, request: httpx.Request) -> httpx.Response:
        rows = sorted(self.segments.values(), key=lambda s: s["name"])
        return self._page(request, rows, "lists")

    # -- one segment ----------------------------------------------------------------------------

    def get_segment(self, request: httpx.Request, ident: str) -> httpx.Response:
        found = self.segments.get(int(ident))
        if found is None:
            return _error(404, "Item was not found.")
        return _json(200, {"list": found})

    def create_segment(self, request: httpx.Request) -> httpx.Response:
        return self._save(None, json.loads(request.content), "POST")

    def patch_segment(self, request: httpx.Request, ident: str) -> httpx.Response:
        if int(ident) not in self.segments:
            return _error(404, "Item was not found.")
        return self._save(int(ident), json.loads(request.content), "PATCH")

    def put_segment(self, request: httpx.Request, ident: str) -> httpx.Response:
        """Replace, or create under a new id when the id does not exist (G12)."""
        known = int(ident) if int(ident) in self.segments else None
        return self._save(known, json.loads(request.content), "PUT")

    def delete_segment(self, request: httpx.Request, ident: str) -> httpx.Response:
        found = self.segments.pop(int(ident), None)
        if found is None:
            return _error(404, "Item was not found.")
        return _json(200, {"list": found | {"id": None}})

    def _save(self, ident: int | None, body: dict[str, Any], method: str) -> httpx.Response:
        old = self.segments.get(ident) if ident is not None else None
        merged = dict(body) if old is None or method == "PUT" else {**old, **body}
        problem = self._validate(merged, old, body.get("filters") or [])
        if problem is not None:
            return problem
        if old is not None and old["isPublished"] and merged.get("isPublished") is False:
            users = [s["name"] for s in self.segments.values() if _uses(s, old["id"])]
            if users:
                # The facts give the status (422), not the message; this one is the fake's.
                return _error(422, f"This segment is used in segment(s): {', '.join(users)}")
        if "filters" in body:
            filters = [self._store_filter(f) for f in body["filters"]]
        else:
            filters = copy.deepcopy(old["filters"]) if old and method == "PATCH" else []
        if old is not None and "filters" in body:
            for index, stored in enumerate(filters[: len(old["filters"])]):  # G3: stale root keys
                previous = old["filters"][index].get("properties", {})
                stored["filter"], stored["display"] = (
                    previous.get("filter"),
                    previous.get("display"),
                )
        if ident is None:
            ident = self.new_id("segment")
        saved = self._entity(ident, merged, old if method == "PATCH" else None)
        saved["filters"] = filters
        self.segments[ident] = saved
        return _json(201 if old is None else 200, {"list": saved})

    def _entity(
        self, ident: int, data: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        category = data.get("category")
        if isinstance(category, dict):
            category = category.get("id")
        if old is not None and not category:
            category = (old.get("category") or {}).get("id")  # PATCH cannot clear it (G9)
        sent = data.get("alias")
        alias = (
            _alias(sent) if sent else (old or {}).get("alias") or self._unique_alias(data["name"])
        )
        return {
            "id": ident,
            "isPublished": data.get("isPublished", True),
            "name": data["name"],
            "publicName": data.get("publicName") or data["name"],
            "alias": alias,
            "description": data.get("description") or None,
            "category": copy.deepcopy(self.categories.get(category)) if category else None,
            "filters": [],
            "isGlobal": data.get("isGlobal", True),
            "isPreferenceCenter": data.get("isPreferenceCenter", False),
        }

    def _unique_alias(self, name: str) -> str:
        base = _alias(name)
        taken = {s["alias"] for s in self.segments.values() if s["isPublished"]}
        alias, n = base, 0
        while alias in taken:
            n += 1
            alias = f"{base}{n}"
        return alias

    # -- validation (the form) ---------------------------------------------------------------

    def _validate(
        self, data: dict[str, Any], old: dict[str, Any] | None, filters: list[dict[str, Any]]
    ) -> httpx.Response | None:
        if not data.get("name"):
            return _error(400, "name: A name is required.")
        alias = data.get("alias")
        if alias and any(
            s["alias"] == alias and s["isPublished"] and s is not old
            for s in self.segments.values()
        ):
            return _error(400, "alias: This alias is already used by another segment.")
        category = data.get("category")
        if isinstance(category, int) and category not in self.categories:
            return _error(500, f"Category {category} does not exist")  # G9: after validation
        for item in filters:
            problem = self._filter_problem(item)
            if problem is not None:
                return _error(400, problem)
        if old is not None and self._circular(old["id"], filters):
            return _error(400, "filters: Circular dependency between segments.")  # 6.5
        return None

    def _circular(self, ident: int, filters: list[dict[str, Any]]) -> bool:
        """Whether the segment's new filters lead back to it through ``leadlist`` filters."""
        todo = [i for item in filters for i in _leadlist_ids(item)]
        seen: set[int] = set()
        while todo:
            current = todo.pop()
            if current == ident:
                return True
            if current in seen or current not in self.segments:
                continue
            seen.add(current)
            todo.extend(
                i for item in self.segments[current]["filters"] for i in _leadlist_ids(item)
            )
        return False

    def _type_of(self, alias: str) -> str | None:
        usable = {f["alias"]: f["type"] for f in self.fields.values() if f["isPublished"]}
        usable = {a: t for a, t in usable.items() if self._listable(a)}
        return usable.get(alias) or SPECIAL.get(alias)

    def _listable(self, alias: str) -> bool:
        return any(f["alias"] == alias and f["isListable"] for f in self.fields.values())

    def _filter_problem(self, item: dict[str, Any]) -> str | None:
        if set(item) - FILTER_KEYS or set(item.get("properties") or {}) - {"filter", "display"}:
            return "This form should not contain extra fields."
        kind = (
            self._type_of(item.get("field", "")) if item.get("object", "lead") == "lead" else None
        )
        allowed = OPERATORS.get(kind, OPERATORS["default"]) if kind else frozenset()
        if item.get("operator") not in allowed:
            return "operator: This value is not valid."
        value = (item.get("properties") or {}).get("filter", item.get("filter"))
        if (
            item.get("type") in ("date", "datetime")
            and item["operator"] not in _PATTERN_OPS
            and isinstance(value, str)
            and "%" not in value
            and not _valid_date(value)
        ):
            return f"filter: {value} is not a valid date."  # SegmentDate (6.5)
        if kind in CHOICE_TYPES and item["operator"] not in ("empty", "!empty"):
            values = value if isinstance(value, list) else [value]
            if not set(map(str, values)) <= self._choices(kind, item["field"]):
                return "filter: This value is not valid."
        return None

    def _choices(self, kind: str, alias: str) -> set[str]:
        if kind == "boolean":
            return {"0", "1"}
        if kind == "leadlist":
            return {str(i) for i, s in self.segments.items() if s["isPublished"]}
        (found,) = [f for f in self.fields.values() if f["alias"] == alias]
        return {o["value"] for o in found["properties"].get("list", [])}

    def _store_filter(self, item: dict[str, Any]) -> dict[str, Any]:
        """As the form stores it: the value in ``properties``, text, typed choice values."""
        props = dict(item.get("properties") or {})
        props.setdefault("filter", item.get("filter"))
        kind = self._type_of(item["field"]) or ""
        value = props["filter"]
        if item["operator"] in ("empty", "!empty"):
            value = None
        elif kind in ("boolean", "leadlist"):
            value = [int(v) for v in value] if isinstance(value, list) else int(value)
        else:
            value = _as_text(value)
        if kind == "datetime" and isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d", value):
            local = datetime.fromisoformat(value)
            value = (local - TZ_OFFSET).strftime("%Y-%m-%d %H:%M")
        props["filter"] = value
        if kind != "lookup_id":
            props.pop("display", None)
        keys = ("glue", "field", "object", "type", "operator")
        stored = {k: item.get(k) for k in keys} | {"properties": props}
        stored["object"] = stored["object"] or "lead"
        return stored


def _as_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if value is False:
        return None  # Symfony's submit turns false into null (G2)
    if value is True:
        return "1"
    return None if value is None else str(value)


def _leadlist_ids(item: dict[str, Any]) -> list[int]:
    if item.get("field") != "leadlist":
        return []
    value = (item.get("properties") or {}).get("filter", item.get("filter"))
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if v is not None and str(v).isdigit()]


def _uses(segment: dict[str, Any], ident: int) -> bool:
    return any(ident in _leadlist_ids(item) for item in segment["filters"])


def _json(status: int, body: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Mautic-Version": "5.1.0"}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def _error(status: int, message: str, kind: str | None = None) -> httpx.Response:
    return _json(
        status, {"errors": [{"code": status, "message": message, "details": {}, "type": kind}]}
    )
