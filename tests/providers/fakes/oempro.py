"""A stateful fake of the Oempro / Octeth command API, as providers/oempro.md documents it.

One endpoint, ``POST <installation>/api.php``; the operation is the ``Command`` field,
matched case-insensitively (both spellings appear in the official docs). Bodies are read as
``x-www-form-urlencoded`` (PHP bracket arrays included) or JSON (Octeth 5.x; a body sent as
JSON that is not JSON answers HTTP 400 ``100000``, an unknown command HTTP 400 ``100003``).
Every handled answer is HTTP 200 with ``Success``/``ErrorCode``/``ErrorText`` and the payload
at the top level; errors use the documented shapes (a list of codes with parallel texts, an
int with a string, an object for ``Segments.Delete``).

It holds lists, custom fields (global ones too), segments with their criteria, users'
sessions and API key. ``SegmentRulesJson`` comes back re-serialised as the docs warn (G1,
G2): numbers as strings, keys reordered, ``\\/`` and ``\\u`` escapes, ids as strings. A
session expires ``session_lifetime`` seconds after sign-in on the fake clock, answering
``99998``. Legacy segments hold only the opaque ``SegmentRules``. Every request is recorded
(decoded), and faults can be injected: 429s, ``Success: false`` answers, hard failures,
missing permissions (``99999``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx

from tests.providers.fakes import FakeClock

from . import one_at_a_time

BASE_URL = "https://mail.example.com/oempro"
API_KEY = "AB12-CD34-EF56-GH78"
USERNAME = "reconciler"
PASSWORD = 'pa/ss"wörd-0123'
"""A password that JSON escapes (``\\/``, ``\\"``, ``\\u00f6``): redaction must cover it."""

WRITES = {
    "list.create": "create_list",
    "customfield.create": "create_field",
    "segment.create": "create_segment",
    "segment.update": "update_segment",
    "segments.delete": "delete_segment",
}


def php_decode(body: bytes) -> dict[str, Any]:
    """A form body as PHP's ``$_POST``: ``a[]=x&a[]=y`` is a list, ``a[k]=v`` a dict."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        if "[" not in key:
            result[key] = value
            continue
        name, rest = key.split("[", 1)
        inner = rest.rstrip("]")
        if inner == "":
            result.setdefault(name, []).append(value)
        else:
            result.setdefault(name, {})[inner] = value
    return result


def _strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def reserialise(value: Any) -> str:
    """What PHP gives back for stored criteria: numbers as strings, other key order, ASCII
    with ``\\u`` escapes and escaped slashes."""
    return json.dumps(_reordered(_strings(value)), ensure_ascii=True).replace("/", "\\/")


@dataclass
class FakeOempro:
    base_url: str = BASE_URL
    api_key: str = API_KEY
    username: str = USERNAME
    password: str = PASSWORD
    clock: FakeClock = field(default_factory=FakeClock)
    session_lifetime: float = 1800.0
    hard_failures: bool = True
    """Octeth 5.9.3+: an unknown command or a bad JSON body is an HTTP 400."""
    string_ids: bool = True
    """Older examples return ids as strings (``"ListID": "1"``), newer ones as numbers."""
    field_id_key: str = "CustomFieldID"
    """``FieldID`` on an older page (G7)."""
    total_key: str = "TotalSegmentCount"
    """``TotalSegments`` for Oempro 4 clients (G7)."""
    max_lists_per_page: int = 1000
    """How many lists one ``Lists.Get`` page holds at most, whatever was asked."""
    list_limit: int = 1000
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)
    fields: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every request body, decoded (``Command``, credentials and parameters)."""
    denied: set[str] = field(default_factory=set)
    """Commands (lower case) the user's group may not run: ``99999``."""
    fail_next: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Command (lower case) -> the ``ErrorCode``/``ErrorText`` its next call answers."""
    http_fail_next: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Command (lower case) -> (HTTP status, code) of its next call's hard failure."""
    rate_limited: bool = False
    logins: int = 0
    done: list[str] = field(default_factory=list)
    """Labels of the write commands that succeeded, in order."""
    counts: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- state edited directly, as a person in the web UI would ----------------------------

    def add_list(self, name: str) -> int:
        list_id = next(self._ids)
        self.lists[list_id] = {"ListID": list_id, "Name": name, "SubscriberCount": 0}
        self.fields[list_id] = []
        return list_id

    def add_field(
        self,
        list_id: int,
        name: str,
        field_type: str = "Single line",
        validation: str = "Disabled",
        is_global: bool = False,
    ) -> int:
        field_id = next(self._ids)
        record = {
            "CustomFieldID": field_id,
            "RelListID": 0 if is_global else list_id,
            "FieldName": name,
            "FieldType": field_type,
            "FieldDefaultValue": "",
            "ValidationMethod": validation,
            "IsRequired": "No",
            "IsUnique": "No",
            "Visibility": "Public",
            "IsGlobal": "Yes" if is_global else "No",
        }
        self.fields.setdefault(0 if is_global else list_id, []).append(record)
        return field_id

    def add_segment(
        self,
        list_id: int,
        name: str,
        criteria: Any = None,
        operator: str = "and",
        legacy: str = "",
        raw_json: str | None = None,
    ) -> int:
        """A segment as the UI would store it: ``criteria`` (stored as given), or the raw
        ``SegmentRulesJson`` text, or only the legacy ``SegmentRules``."""
        segment_id = next(self._ids)
        self.segments[segment_id] = {
            "SegmentID": segment_id,
            "RelListID": list_id,
            "SegmentName": name,
            "SegmentOperator": operator,
            "SegmentRules": legacy,
            "criteria": criteria,
            "raw_json": raw_json,
        }
        return segment_id

    def list_id(self, name: str) -> int:
        (found,) = [i for i, item in self.lists.items() if item["Name"] == name]
        return found

    def field_id(self, list_id: int, name: str) -> int:
        records = [*self.fields.get(list_id, []), *self.fields.get(0, [])]
        (found,) = [f["CustomFieldID"] for f in records if f["FieldName"] == name]
        return int(found)

    def segment_by_name(self, list_name: str, name: str) -> dict[str, Any]:
        list_id = self.list_id(list_name)
        (found,) = [
            s
            for s in self.segments.values()
            if s["RelListID"] == list_id and s["SegmentName"] == name
        ]
        return found

    def expire_sessions(self) -> None:
        self.clock.time += self.session_lifetime + 1

    def commands(self) -> list[str]:
        return [str(call.get("Command", "")) for call in self.calls]

    def writes(self) -> list[str]:
        """One label per write the server carried out (refused calls are not writes)."""
        return list(self.done)

    def mount(self, router: respx.MockRouter) -> None:
        router.post(f"{self.base_url}/api.php").mock(side_effect=self.handle)

    # -- the HTTP side ------------------------------------------------------------------------

    @one_at_a_time
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.rate_limited:
            return httpx.Response(429, headers={"Retry-After": "2"})
        if request.headers.get("Content-Type", "").startswith("application/json"):
            try:
                body = json.loads(request.content)
            except ValueError:
                return self._hard(400, 100000, "Invalid JSON body")
            if not isinstance(body, dict):
                return self._hard(400, 100000, "Invalid JSON body")
        else:
            body = php_decode(request.content)
        self.calls.append(body)
        command = str(body.get("Command", "")).lower()
        handler = self._handlers().get(command)
        if handler is None:
            if self.hard_failures:
                return self._hard(400, 100003, f'Invalid API command: "{command}" not found.')
            return _fail([1], ["Invalid command"])
        if command in self.http_fail_next:
            status, code = self.http_fail_next.pop(command)
            return self._hard(status, code, "Hard failure")
        if command != "user.login":
            refused = self._refused(body)
            if refused is not None:
                return refused
        if command in self.denied:
            return _fail(99999, "Not enough privileges")
        if command in self.fail_next:
            return httpx.Response(200, json={"Success": False, **self.fail_next.pop(command)})
        response = handler(body)
        if command in WRITES and json.loads(response.content).get("Success"):
            self.done.append(WRITES[command])
        return response

    def _hard(self, status: int, code: int, text: str) -> httpx.Response:
        errors = [{"Code": code, "Message": text}]
        data = {"Success": False, "ErrorCode": code, "ErrorText": text, "Errors": errors}
        return httpx.Response(status, json=data)

    def _refused(self, body: dict[str, Any]) -> httpx.Response | None:
        if body.get("APIKey") is not None:
            return None if body["APIKey"] == self.api_key else _fail(99998, "Invalid API key")
        session = body.get("SessionID")
        expires = self.sessions.get(str(session))
        if expires is None or expires <= self.clock.now():
            return _fail(99998, "Invalid session")
        return None

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], httpx.Response]]:
        return {
            "user.login": self.login,
            "lists.get": self.get_lists,
            "list.create": self.create_list,
            "customfields.get": self.get_fields,
            "customfield.create": self.create_field,
            "segments.get": self.get_segments,
            "segment.create": self.create_segment,
            "segment.update": self.update_segment,
            "segments.delete": self.delete_segments,
        }

    def _id(self, value: int) -> int | str:
        return str(value) if self.string_ids else value

    # -- commands -----------------------------------------------------------------------------

    def login(self, body: dict[str, Any]) -> httpx.Response:
        missing = [c for c, k in ((1, "Username"), (2, "Password")) if not body.get(k)]
        if missing:
            texts = {1: "Missing username", 2: "Missing password"}
            return _fail(missing, [texts[c] for c in missing])
        if body["Username"] != self.username or body["Password"] != self.password:
            return _fail(3, "Invalid login information")
        self.logins += 1
        session = f"sess-{self.logins:04d}-5f3c9a1b7e"
        self.sessions[session] = self.clock.now() + self.session_lifetime
        return _ok({"SessionID": session, "UserInfo": {"UserID": self._id(42)}})

    def get_lists(self, body: dict[str, Any]) -> httpx.Response:
        rows = sorted(self.lists.values(), key=lambda item: item["ListID"])
        if str(body.get("OrderType", "ASC")).upper() == "DESC":
            rows.reverse()
        start = int(body.get("RecordsFrom") or 0)
        size = int(body.get("RecordsPerRequest") or 0) or len(rows)
        page = rows[start : start + min(size, self.max_lists_per_page)]
        lists = [{**item, "ListID": self._id(item["ListID"])} for item in page]
        return _ok({"TotalListCount": len(rows), "Lists": lists})

    def create_list(self, body: dict[str, Any]) -> httpx.Response:
        name = body.get("SubscriberListName")
        if not name:
            return _fail([1], ["Missing subscriber list name"])
        if len(self.lists) >= self.list_limit:
            return _fail([3], ["List limit exceeded"])
        return _ok({"ListID": self.add_list(str(name))})

    def get_fields(self, body: dict[str, Any]) -> httpx.Response:
        list_id = _int(body.get("SubscriberListID"))
        if list_id is None:
            return _fail(1, "Missing subscriber list id")
        records = list(self.fields.get(list_id, []))
        if str(body.get("ReturnGlobalCustomFields")).lower() in ("true", "1"):
            records += self.fields.get(0, [])
        shaped = []
        for record in sorted(records, key=lambda f: f["FieldName"]):
            item = {k: v for k, v in record.items() if k != "CustomFieldID"}
            item[self.field_id_key] = str(record["CustomFieldID"])  # always strings (G2)
            item["RelListID"] = str(record["RelListID"])
            shaped.append(item)
        return _ok({"TotalFieldCount": len(shaped), "CustomFields": shaped})

    def create_field(self, body: dict[str, Any]) -> httpx.Response:
        required = ((1, "SubscriberListID"), (2, "FieldName"), (3, "FieldType"))
        missing = [code for code, key in required if not body.get(key)]
        if missing:
            return _fail(missing, [f"Missing parameter {c}" for c in missing])
        if body.get("ValidationMethod") == "Custom" and not body.get("ValidationRule"):
            return _fail([4], ["Missing validation rule"])
        list_id = _int(body.get("SubscriberListID"))
        if list_id not in self.lists:
            return _fail([1], ["Missing subscriber list id"])
        validation = str(body.get("ValidationMethod") or "Disabled")
        field_id = self.add_field(
            list_id, str(body["FieldName"]), str(body["FieldType"]), validation
        )
        return _ok({"CustomFieldID": field_id})

    def get_segments(self, body: dict[str, Any]) -> httpx.Response:
        list_id = _int(body.get("SubscriberListID"))
        if list_id is None:
            return _fail([1], "Missing subscriber list id")
        order = str(body.get("OrderField") or "SegmentName")
        found = [s for s in self.segments.values() if s["RelListID"] == list_id]
        found.sort(key=lambda s: s.get(order, s["SegmentName"]))
        if str(body.get("OrderType") or "DESC").upper() == "DESC":  # the default (G11)
            found.reverse()
        rows = [self._segment_row(s) for s in found]
        if str(body.get("IncludeTotals", "true")).lower() not in ("true", "1"):
            rows = [{k: v for k, v in row.items() if k != "SubscriberCount"} for row in rows]
        return _ok({self.total_key: len(rows), "Segments": rows})

    def _segment_row(self, segment: dict[str, Any]) -> dict[str, Any]:
        if segment["raw_json"] is not None:
            text = segment["raw_json"]
        elif segment["criteria"] is None:
            text = ""
        else:
            text = reserialise(segment["criteria"])
        return {
            "SegmentID": self._id(segment["SegmentID"]),
            "SegmentName": segment["SegmentName"],
            "SegmentOperator": segment["SegmentOperator"],
            "SubscriberCount": next(self.counts),  # cached, drifting counts (G6)
            "SegmentRules": segment["SegmentRules"],
            "SegmentRulesJson": text,
            "CreationDate": "2026-01-01 10:00:00",
        }

    def _rules(self, body: dict[str, Any], stored: dict[str, Any]) -> None:
        """``RulesJson`` must be a JSON *string*, also inside a JSON body (G1); old-style
        arrays are kept as the opaque legacy form."""
        value = body.get("RulesJson")
        if isinstance(value, str):
            try:
                stored["criteria"] = json.loads(value) if value.strip() else None
                stored["raw_json"] = None
            except ValueError:
                stored["raw_json"] = value
        if body.get("SegmentRuleField"):
            parts = zip(
                body["SegmentRuleField"],
                body.get("SegmentRuleOperator", []),
                body.get("SegmentRuleFilter", []),
                strict=False,
            )
            stored["SegmentRules"] = ",,,".join("|||".join(p) for p in parts)

    def create_segment(self, body: dict[str, Any]) -> httpx.Response:
        required = (
            (1, "SubscriberListID", "Missing subscriber list id"),
            (2, "SegmentName", "Missing segment name"),
            (3, "SegmentOperator", "Missing segment operator"),
        )
        missing = [(c, t) for c, k, t in required if not body.get(k)]
        if missing:
            return _fail([c for c, _ in missing], [t for _, t in missing])
        list_id = _int(body.get("SubscriberListID"))
        if list_id not in self.lists:
            return _fail([4], ["List not found or doesn't belong to user"])
        segment_id = self.add_segment(
            list_id, str(body["SegmentName"]), None, str(body["SegmentOperator"])
        )
        self._rules(body, self.segments[segment_id])
        return _ok({"SegmentID": segment_id})

    def update_segment(self, body: dict[str, Any]) -> httpx.Response:
        missing = [(1, "Missing segment id")] if not body.get("SegmentID") else []
        missing += [(2, "Missing segment name")] if not body.get("SegmentName") else []
        segment = self.segments.get(_int(body.get("SegmentID")) or -1)
        if body.get("SegmentID") and segment is None:
            missing.append((4, "Invalid segment id"))
        if missing:
            return _fail([c for c, _ in missing], [t for _, t in missing])
        assert segment is not None
        operator = body.get("SegmentOperator")
        if operator is not None and str(operator).lower() not in ("and", "or"):
            return _fail([5], ["Invalid segment operator"])
        target = body.get("SubscriberListID")
        if target is not None and str(target).isdigit():
            if int(target) not in self.lists:
                return _fail([6], ["Invalid subscriber list id"])
            segment["RelListID"] = int(target)
        segment["SegmentName"] = str(body["SegmentName"])
        if operator is not None:
            segment["SegmentOperator"] = str(operator)
        self._rules(body, segment)  # omitted rules are kept (inferred: not a replace)
        return _ok({})

    def delete_segments(self, body: dict[str, Any]) -> httpx.Response:
        ids = [part for part in str(body.get("Segments") or "").split(",") if part.strip()]
        if not ids:
            return _fail([1], ["Segment ids are missing"])
        for part in ids:  # unknown ids: skipped (undocumented either way)
            self.segments.pop(_int(part) or -1, None)
        return _ok({})


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"Success": True, "ErrorCode": 0, "ErrorText": "", **data})


def _fail(codes: Any, texts: Any) -> httpx.Response:
    return httpx.Response(200, json={"Success": False, "ErrorCode": codes, "ErrorText": texts})
