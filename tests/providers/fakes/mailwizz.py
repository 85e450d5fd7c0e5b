"""A stateful fake of the MailWizz 2.x API, as providers/mailwizz.md documents it.

It holds lists, list fields, segments and campaigns; decodes PHP bracket forms the way PHP
fills ``$_POST`` (a JSON POST body fills nothing); pages collections (``per_page`` clamped
to [10, 1000], newest first, nulls when empty); enforces ``max_segment_conditions``;
silently de-duplicates conditions; sanitises values (trim, tags stripped, entities
decoded); wipes omitted conditions on PUT; soft-deletes (hidden from the collection, still
readable by uid, a second DELETE purges); answers auth problems with 400; refuses a POST
with ``X-HTTP-Method-Override``; and, for an install older than 2.3.8, answers the segment
write and condition-operator routes with 404 "Page not found.". Every request and every
state of the segments' conditions is recorded for assertions.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx

from . import one_at_a_time

BASE_URL = "https://mail.example.com/api"
OPERATORS = [
    ("1", "is", "is"),
    ("2", "is not", "is-not"),
    ("3", "contains", "contains"),
    ("4", "not contains", "not-contains"),
    ("5", "starts with", "starts"),
    ("6", "ends with", "ends"),
    ("7", "is greater than", "greater"),
    ("8", "is less than", "less"),
    ("9", "not starts with", "not-starts"),
    ("10", "not ends with", "not-ends"),
]
NO_PAGE = "Page not found."
NO_LIST = "The subscribers list does not exist."
NO_SEGMENT = "The segment list does not exist."
UID = r"([a-z0-9]+)"
TAG = re.compile(r"<[^>]*>")


def php_decode(body: bytes) -> dict[str, Any]:
    """An urlencoded body as PHP's nested ``$_POST`` (indexed arrays as dicts of "0", "1")."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        path = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = result
        for part in path[:-1]:
            inner = node.get(part)
            if not isinstance(inner, dict):
                inner = node[part] = {}
            node = inner
        node[path[-1]] = value
    return result


def sanitise(value: str) -> str:
    """MailWizz's input filter, as far as the facts go: tags stripped, entities decoded,
    trimmed (numeric strings untouched)."""
    return html.unescape(TAG.sub("", value)).strip()


@dataclass
class FakeMailWizz:
    api_key: str = "mw-test-api-key-0123456789"
    base_url: str = BASE_URL
    version: tuple[int, int, int] = (2, 7, 2)
    max_segment_conditions: int = 3
    max_per_page: int = 1000
    """2.7.2 clamps per_page to [10, 1000] (both filter hooks); 2.1.13 capped segments at 50."""
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaigns: set[str] = field(default_factory=lambda: {"42", "100"})
    requests: list[httpx.Request] = field(default_factory=list)
    history: list[dict[str, int]] = field(default_factory=list)
    rate_limited: bool = False
    reads: int = 0
    _next: int = 0

    # -- test helpers: state edited directly, as someone in the web UI would ---------------

    def _id(self) -> int:
        self._next += 1
        return self._next

    def add_list(self, name: str) -> str:
        number = self._id()
        uid = f"mw{number:011d}"
        self.lists[uid] = {"list_id": number, "name": name, "status": "active"}
        self.fields[uid] = []
        for tag, label in (("EMAIL", "Email"), ("FNAME", "First name"), ("LNAME", "Last name")):
            self.add_field(uid, tag, label)
        return uid

    def add_field(
        self, list_uid: str, tag: str, label: str = "", kind: str = "text", options: Any = ()
    ) -> str:
        field_id = str(90 + self._id())
        record: dict[str, Any] = {"field_id": field_id, "label": label or tag.title(), "tag": tag}
        record["type"] = {"name": kind.title(), "identifier": kind, "description": kind}
        if kind == "dropdown":
            record["options"] = {value: value for value in options}
        self.fields[list_uid].append(record)
        return field_id

    def add_segment(
        self,
        list_uid: str,
        name: str,
        conditions: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
        match: str = "all",
        campaign_conditions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> str:
        rows = [{"field_id": f, "operator_id": o, "value": v} for f, o, v in conditions]
        data = {"name": name, "operator_match": match, "conditions": rows}
        return self._insert(list_uid, data | {"campaign_conditions": list(campaign_conditions)})

    def _insert(self, list_uid: str, data: dict[str, Any]) -> str:
        number = self._id()
        uid = f"sg{number:011d}"
        self.segments[uid] = {"segment_id": number, "list_uid": list_uid, "status": "active"}
        self.segments[uid].update(data)
        self._snapshot()
        return uid

    def list_uid(self, name: str) -> str:
        (found,) = [uid for uid, item in self.lists.items() if item["name"] == name]
        return found

    def field_id(self, list_uid: str, tag: str) -> str:
        (found,) = [f["field_id"] for f in self.fields[list_uid] if f["tag"] == tag]
        return str(found)

    def segment_by_name(self, list_name: str, name: str) -> dict[str, Any]:
        uid = self.list_uid(list_name)
        (found,) = [s for s in self.segments.values() if s["list_uid"] == uid and s["name"] == name]
        return found

    def writes(self) -> list[tuple[str, str]]:
        prefix = httpx.URL(self.base_url).path
        return [
            (r.method, r.url.path.removeprefix(prefix)) for r in self.requests if r.method != "GET"
        ]

    def ever_without_conditions(self) -> list[str]:
        return sorted({uid for state in self.history for uid, n in state.items() if n == 0})

    def mount(self, router: respx.MockRouter) -> None:
        router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    # -- the HTTP side ------------------------------------------------------------------------

    @one_at_a_time
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request.headers.get("X-API-KEY") or request.headers.get("X-MW-PUBLIC-KEY")
        if not key:
            return _error(400, "Invalid API request params. Please refer to the documentation.")
        if key != self.api_key:
            return _error(400, "Invalid API key. Please refer to the documentation.")
        if self.rate_limited:  # MailWizz has none; a proxy in front of an install might
            return httpx.Response(429, headers={"Retry-After": "3"})
        path = request.url.path.removeprefix(httpx.URL(self.base_url).path)
        method = request.method
        override = request.headers.get("X-HTTP-Method-Override", "").upper()
        for route_method, pattern, handler, since in self._routes():
            found = re.fullmatch(pattern, path)
            if found and route_method in (method, override):
                if since > self.version:
                    return _error(404, NO_PAGE)
                if route_method != method:
                    return _error(400, f"Only {route_method} requests allowed for this endpoint.")
                return handler(request, *found.groups())
        return _error(404, NO_PAGE)

    def _routes(self) -> list[tuple[str, str, Callable[..., httpx.Response], tuple[int, ...]]]:
        old, new = (0, 0, 0), (2, 3, 8)
        segment = rf"/lists/{UID}/segments/{UID}"
        return [
            ("GET", r"/lists/segments/condition-operators", self.get_operators, new),
            ("GET", r"/lists", self.get_lists, old),
            ("POST", r"/lists", self.create_list, old),
            ("GET", rf"/lists/{UID}/fields", self.get_fields, old),
            ("GET", rf"/lists/{UID}/segments", self.get_segments, old),
            ("POST", rf"/lists/{UID}/segments", self.create_segment, new),
            ("GET", segment, self.get_segment, new),
            ("PUT", segment, self.update_segment, new),
            ("DELETE", segment, self.delete_segment, new),
        ]

    # -- endpoints ----------------------------------------------------------------------------

    def get_operators(self, request: httpx.Request) -> httpx.Response:
        records = [{"operator_id": i, "name": n, "slug": s} for i, n, s in OPERATORS]
        return _json(200, {"status": "success", "data": {"count": "10", "records": records}})

    def get_lists(self, request: httpx.Request) -> httpx.Response:
        found = [(uid, v) for uid, v in self.lists.items() if v["status"] == "active"]
        found.sort(key=lambda item: -item[1]["list_id"])
        records = [{"general": {"list_uid": uid, "name": v["name"]}} for uid, v in found]
        return _page(request, records, self.max_per_page)

    def create_list(self, request: httpx.Request) -> httpx.Response:
        form = _form(request)
        general, defaults = form.get("general", {}), form.get("defaults", {})
        errors: dict[str, Any] = {}
        for group, key in (("general", "name"), ("general", "description")):
            value = sanitise(str(form.get(group, {}).get(key, "")))
            if not 2 <= len(value) <= 255:
                errors.setdefault(group, {})[key] = f"{key.title()} is invalid."
        for key in ("from_name", "from_email", "reply_to"):
            if not sanitise(str(defaults.get(key, ""))):
                errors.setdefault("defaults", {})[key] = f"{key} cannot be blank."
        if errors:
            return _json(422, {"status": "error", "error": errors})
        uid = self.add_list(sanitise(general["name"]))
        self.lists[uid].update(form=form)
        return _json(201, {"status": "success", "list_uid": uid})

    def get_fields(self, request: httpx.Request, list_uid: str) -> httpx.Response:
        if list_uid not in self.lists:
            return _error(404, NO_LIST)
        records = copy.deepcopy(self.fields[list_uid])
        return _json(200, {"status": "success", "data": {"records": records}})

    def get_segments(self, request: httpx.Request, list_uid: str) -> httpx.Response:
        if list_uid not in self.lists:
            return _error(404, NO_LIST)
        found = [
            (uid, s)
            for uid, s in self.segments.items()
            if s["list_uid"] == list_uid and s["status"] != "pending-delete"
        ]
        found.sort(key=lambda item: -item[1]["segment_id"])
        records = [
            {"segment_uid": uid, "name": s["name"], "subscribers_count": self._count()}
            for uid, s in found
        ]
        return _page(request, records, self.max_per_page)

    def get_segment(self, request: httpx.Request, list_uid: str, uid: str) -> httpx.Response:
        stored = self.segments.get(uid)
        if list_uid not in self.lists:
            return _error(404, NO_LIST)
        if stored is None or stored["list_uid"] != list_uid:
            return _error(404, NO_SEGMENT)
        return _json(200, {"status": "success", "data": {"record": self._record(uid)}})

    def create_segment(self, request: httpx.Request, list_uid: str) -> httpx.Response:
        if list_uid not in self.lists:
            return _error(404, NO_LIST)
        form = _form(request)
        checked = self._check(form, None)
        if isinstance(checked, httpx.Response):
            return checked
        uid = self._insert(list_uid, checked)
        return _json(201, {"status": "success", "data": {"record": self._record(uid)}})

    def update_segment(self, request: httpx.Request, list_uid: str, uid: str) -> httpx.Response:
        stored = self.segments.get(uid)
        if list_uid not in self.lists:
            return _error(404, NO_LIST)
        if stored is None or stored["list_uid"] != list_uid:
            return _error(404, NO_SEGMENT)
        checked = self._check(_form(request), stored)
        if isinstance(checked, httpx.Response):
            return checked
        stored.update(checked)  # both condition tables wiped and re-inserted from the request
        self._snapshot()
        return _json(200, {"status": "success", "data": {"record": self._record(uid)}})

    def delete_segment(self, request: httpx.Request, list_uid: str, uid: str) -> httpx.Response:
        stored = self.segments.get(uid)
        if stored is None or stored["list_uid"] != list_uid:
            return _error(404, NO_SEGMENT)
        if stored["status"] == "pending-delete":
            del self.segments[uid]  # a second DELETE purges it
        else:
            stored["status"] = "pending-delete"
        self._snapshot()
        return _json(200, {"status": "success"})

    # -- validation ---------------------------------------------------------------------------

    def _check(self, form: dict[str, Any], stored: dict[str, Any] | None) -> Any:
        name = sanitise(str(form.get("name", stored["name"] if stored else "")))
        if not name or len(name) > 255:
            return _json(422, {"status": "error", "error": {"name": "Name cannot be blank."}})
        default = stored["operator_match"] if stored else "all"
        match = str(form.get("operator_match", default))
        if match not in ("any", "all"):
            return _json(422, {"status": "error", "error": {"operator_match": "Invalid."}})
        conditions, problems = self._conditions(form.get("conditions", {}))
        campaigns, more = self._campaigns(form.get("campaign_conditions", {}))
        if problems or more:
            echo = {
                "conditions": form.get("conditions"),
                "campaign": form.get("campaign_conditions"),
            }
            return _json(422, {"status": "error", "error": [*problems, *more], "data": echo})
        if len(conditions) + len(campaigns) > self.max_segment_conditions:
            message = (
                f"You are only allowed to add {self.max_segment_conditions} segment conditions."
            )
            return _json(422, {"status": "error", "error": message})
        found = {"name": name, "operator_match": match}
        return found | {"conditions": conditions, "campaign_conditions": campaigns}

    def _conditions(self, raw: Any) -> tuple[list[dict[str, str]], list[str]]:
        known = {str(f["field_id"]) for fields in self.fields.values() for f in fields}
        kept: list[dict[str, str]] = []
        problems: list[str] = []
        for item in (raw or {}).values():
            row = {k: sanitise(str(item.get(k, ""))) for k in ("field_id", "operator_id", "value")}
            if row["field_id"] not in known:  # a foreign key only: any list's field passes
                problems.append("Field ID is invalid.")
            elif row["operator_id"] not in {op[0] for op in OPERATORS}:
                problems.append("Operator ID is invalid.")
            elif not row["value"] or len(row["value"]) > 255:
                problems.append("Value cannot be blank.")
            elif row not in kept:  # duplicates are silently dropped
                kept.append(row)
        return kept, problems

    def _campaigns(self, raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
        actions = {"open", "click"} | (
            {"not_open", "not_click"} if self.version >= (2, 4, 2) else set()
        )
        kept: list[dict[str, Any]] = []
        problems: list[str] = []
        for item in (raw or {}).values():
            row: dict[str, Any] = {k: sanitise(str(v)) for k, v in item.items()}
            row["campaign_id"] = row.get("campaign_id") or None
            value = row.get("time_value", "")
            if row.get("action") not in actions:
                problems.append("Action is invalid.")
            elif row["campaign_id"] is not None and row["campaign_id"] not in self.campaigns:
                problems.append("Campaign ID is invalid.")
            elif row.get("time_comparison_operator") not in {"lte", "lt", "gte", "gt", "eq"}:
                problems.append("Time comparison operator is invalid.")
            elif not value.isdigit() or not 0 <= int(value) <= 10_000:
                problems.append("Time value is invalid.")
            elif row.get("time_unit") not in {"day", "month", "year"}:
                problems.append("Time unit is invalid.")
            elif row not in kept:
                kept.append(row)
        return kept, problems

    # -- responses ----------------------------------------------------------------------------

    def _count(self) -> int:
        self.reads += 1  # subscribers_count is live: it moves, and must never be compared
        return 18_200 + self.reads

    def _record(self, uid: str) -> dict[str, Any]:
        stored = self.segments[uid]
        return {
            "segment_uid": uid,
            "segment_id": str(stored["segment_id"]),
            "name": stored["name"],
            "operator_match": stored["operator_match"],
            "date_added": f"10/23/23, 2:{self.reads % 60:02d} PM",
            "subscribers_count": self._count(),
            "conditions": copy.deepcopy(stored["conditions"]),
            "campaign_conditions": copy.deepcopy(stored["campaign_conditions"]),
        }

    def _snapshot(self) -> None:
        self.history.append(
            {
                uid: len(s["conditions"]) + len(s["campaign_conditions"])
                for uid, s in self.segments.items()
            }
        )


def _form(request: httpx.Request) -> dict[str, Any]:
    """What PHP sees: urlencoded bodies are decoded, anything else (JSON) is empty."""
    if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return php_decode(request.content)


def _page(request: httpx.Request, records: list[Any], most: int) -> httpx.Response:
    page = max(1, int(request.url.params.get("page", "1") or 1))
    per_page = min(most, max(10, int(request.url.params.get("per_page", "10") or 10)))
    if not records:
        empty = dict.fromkeys(("count", "total_pages", "current_page", "next_page", "prev_page"))
        return _json(200, {"status": "success", "data": {**empty, "records": []}})
    total = -(-len(records) // per_page)
    data = {
        "count": str(len(records)),
        "total_pages": total,
        "current_page": page,
        "next_page": page + 1 if page < total else None,
        "prev_page": page - 1 if page > 1 else None,
        "records": records[(page - 1) * per_page : page * per_page],
    }
    return _json(200, {"status": "success", "data": data})


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def _error(status: int, message: str) -> httpx.Response:
    return _json(status, {"status": "error", "error": message})
