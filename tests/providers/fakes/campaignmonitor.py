"""A stateful fake of the Campaign Monitor API v3.3, as providers/campaignmonitor.md documents it.

It holds clients' lists, custom fields and segments, answers the documented endpoints with
the documented status codes and error envelopes (``{"Code", "Message"}``, ``ResultData``
for 277), and records every request and every state the segments pass through, so tests
can assert that no segment was ever left without its rules. Faults (429 with Retry-After,
503, 278, an HTML error page, a timeout, a dropped connection, before or after the server
acted) are injected at chosen calls.

Where the facts say UNKNOWN the fake makes a choice and says so: the Key derivation of a
custom field, the status of create-field (201), the 401 body for Basic auth, the verbs each
RuleType accepts (exactly the evidenced ones), and clause text (stored as sent). Titles are
unique per list ignoring case (the fact file's 275; issue 8: a case variant is refused too).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from . import one_at_a_time

BASE_URL = "https://api.createsend.com/api/v3.3"
CURRENT_YEAR = 2025
"""The fake's "today" for error 2723 (DateSubscribed operands within the last ten years)."""

RULE_TYPES = (
    "Name",
    "EmailAddress",
    "DateSubscribed",
    "CampaignOpened",
    "CampaignClickedAny",
    "CampaignClickedSpecific",
    "CampaignNotClickedSpecific",
    "CampaignOpenedNoClick",
    "CampaignNotOpened",
)
# RuleType or DataType -> (accepted verbs, code for an illegal verb); only evidenced verbs.
VERBS: dict[str, tuple[frozenset[str], int]] = {
    "Name": (frozenset({"EQUALS", "PROVIDED", "NOT_PROVIDED"}), 2712),
    "EmailAddress": (frozenset({"CONTAINS"}), 2713),
    "DateSubscribed": (frozenset({"AFTER", "BEFORE", "EQUALS", "BETWEEN"}), 2714),
    "Text": (frozenset({"EQUALS", "PROVIDED"}), 2715),
    "Number": (frozenset({"BETWEEN"}), 2716),
    "MultiSelectOne": (frozenset({"EQUALS", "NOT_EQUALS"}), 2717),
    "MultiSelectMany": (frozenset({"EQUALS", "NOT_EQUALS"}), 2717),
    "Date": (frozenset({"BETWEEN"}), 2718),
}
NO_OBJECT = frozenset({"PROVIDED", "NOT_PROVIDED"})
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BETWEEN = re.compile(r"(\S+) AND (\S+)")

HTML_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
)


@dataclass
class Fault:
    """Make the ``skip``-th and following calls matching ``method`` and ``path`` (a regex on
    the path after the base URL) fail ``times`` times with ``kind``."""

    method: str
    path: str
    kind: str
    times: int = 1
    skip: int = 0
    seen: int = 0

    KINDS = ("429", "503", "278", "html", "timeout", "timeout_after", "drop", "drop_after")

    def matches(self, request: httpx.Request, path: str) -> bool:
        if request.method != self.method or not re.fullmatch(self.path, path):
            return False
        self.seen += 1
        return self.seen > self.skip and self.times > 0


@dataclass
class FakeCampaignMonitor:
    api_key: str | None = "test-api-key-0123"
    access_token: str | None = None
    client_id: str = "client0001"
    base_url: str = BASE_URL
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    system_segments: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    history: list[dict[str, list[Any]]] = field(default_factory=list)
    rate_limited: bool = False
    _next_id: int = 0
    _active: int = 0

    # -- test helpers: state edited directly, as someone in the web UI would ------------------

    def new_id(self) -> str:
        self._next_id += 1
        return f"{self._next_id:032x}"

    def add_list(self, title: str) -> str:
        list_id = self.new_id()
        self.lists[list_id] = {"Title": title, "fields": []}
        return list_id

    def list_id(self, title: str) -> str:
        (found,) = [i for i, item in self.lists.items() if item["Title"] == title]
        return found

    def add_field(self, list_id: str, name: str, data_type: str, options: list[str] = ()) -> str:  # type: ignore[assignment]
        # The Key's derivation is UNKNOWN; the fake drops spaces (fixture: "subscription date"
        # -> "[subscriptiondate]"; docs: "Frequency" -> "[Frequency]").
        key = "[" + name.replace(" ", "") + "]"
        self.lists[list_id]["fields"].append(
            {
                "FieldName": name,
                "Key": key,
                "DataType": data_type,
                "FieldOptions": list(options),
                "VisibleInPreferenceCenter": True,
            }
        )
        return key

    def add_segment(
        self, list_id: str, title: str, groups: list[list[tuple[str, str]]], system: bool = False
    ) -> str:
        segment_id = self.new_id()
        self.segments[segment_id] = {"ListID": list_id, "Title": title, "RuleGroups": []}
        self.set_rules(segment_id, groups)
        if system:
            self.system_segments.add(segment_id)
        return segment_id

    def set_rules(self, segment_id: str, groups: list[list[tuple[str, str]]]) -> None:
        self.segments[segment_id]["RuleGroups"] = [
            {"Rules": [{"RuleType": t, "Clause": c} for t, c in group]} for group in groups
        ]
        self._snapshot()

    def segment_by_title(self, list_title: str, title: str) -> dict[str, Any]:
        list_id = self.list_id(list_title)
        (found,) = [
            s for s in self.segments.values() if s["ListID"] == list_id and s["Title"] == title
        ]
        return found

    def titles(self, list_title: str) -> list[str]:
        list_id = self.list_id(list_title)
        return sorted(s["Title"] for s in self.segments.values() if s["ListID"] == list_id)

    def writes(self) -> list[tuple[str, str]]:
        """Every non-GET request as ``(method, path after the base URL)``."""
        prefix = httpx.URL(self.base_url).path
        return [
            (r.method, r.url.path.removeprefix(prefix)) for r in self.requests if r.method != "GET"
        ]

    def ever_without_rules(self) -> list[str]:
        """Segments that, in some recorded state, existed with no rule group at all."""
        return sorted(
            {sid for state in self.history for sid, groups in state.items() if not groups}
        )

    def mount(self, router: respx.MockRouter) -> None:
        router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    # -- the HTTP side --------------------------------------------------------------------------

    @one_at_a_time
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix(httpx.URL(self.base_url).path)
        if not self._authorised(request):
            # The body for a refused Basic key is UNKNOWN; 120 is the documented OAuth code.
            return self._json(401, {"Code": 120, "Message": "Invalid credentials"})
        if self.rate_limited:
            return httpx.Response(429, headers={"Retry-After": "3"})
        fault = next((f for f in self.faults if f.matches(request, path)), None)
        if fault is not None:
            fault.times -= 1
            early = self._fault(fault.kind, request)
            if early is not None:
                return early
        response = self._dispatch(request, path)
        if fault is not None and fault.kind == "timeout_after":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault is not None and fault.kind == "drop_after":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return response

    def _fault(self, kind: str, request: httpx.Request) -> httpx.Response | None:
        if kind == "429":
            return self._json(
                429, {"Code": 429, "Message": "Too many requests"}, {"Retry-After": "7"}
            )
        if kind == "503":
            return self._json(503, {"Code": 503, "Message": "Service unavailable"})
        if kind == "278":
            return self._json(400, {"Code": 278, "Message": "Segment calculation in progress"})
        if kind == "html":
            return httpx.Response(502, text=HTML_PAGE, headers={"Content-Type": "text/html"})
        if kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if kind == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response", request=request
            )
        return None  # the *_after kinds act first

    def _authorised(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme == "Bearer":
            return self.access_token is not None and token == self.access_token
        if scheme == "Basic" and self.api_key is not None:
            user = base64.b64decode(token).decode().partition(":")[0]
            return user == self.api_key  # any password is accepted
        return False

    def _dispatch(self, request: httpx.Request, path: str) -> httpx.Response:
        for method, pattern, handler in self._routes():
            found = re.fullmatch(pattern, path)
            if found and request.method == method:
                return handler(request, *found.groups())
        return httpx.Response(404)  # the clients raise "not found" without reading a body

    def _routes(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        return [
            ("GET", r"/clients/([^/]+)/lists\.json", self.get_lists),
            ("POST", r"/lists/([^/]+)\.json", self.create_list),
            ("GET", r"/lists/([^/]+)/customfields\.json", self.get_fields),
            ("POST", r"/lists/([^/]+)/customfields\.json", self.create_field),
            ("GET", r"/lists/([^/]+)/segments\.json", self.get_segments),
            ("POST", r"/segments/([^/]+)/rules\.json", self.add_rules),
            ("DELETE", r"/segments/([^/]+)/rules\.json", self.delete_rules),
            ("GET", r"/segments/([^/]+)\.json", self.get_segment),
            ("POST", r"/segments/([^/]+)\.json", self.create_segment),
            ("PUT", r"/segments/([^/]+)\.json", self.update_segment),
            ("DELETE", r"/segments/([^/]+)\.json", self.delete_segment),
        ]

    # -- endpoints ------------------------------------------------------------------------------

    def get_lists(self, request: httpx.Request, client_id: str) -> httpx.Response:
        if client_id != self.client_id:
            return httpx.Response(404)
        return self._json(200, [{"ListID": i, "Name": v["Title"]} for i, v in self.lists.items()])

    def create_list(self, request: httpx.Request, client_id: str) -> httpx.Response:
        body = json.loads(request.content)
        assert set(body) >= {"Title", "UnsubscribeSetting"}, body
        return self._json(201, self.add_list(body["Title"]))

    def get_fields(self, request: httpx.Request, list_id: str) -> httpx.Response:
        if list_id not in self.lists:
            return httpx.Response(404)
        return self._json(200, self.lists[list_id]["fields"])

    def create_field(self, request: httpx.Request, list_id: str) -> httpx.Response:
        body = json.loads(request.content)
        return self._json(
            201,
            self.add_field(list_id, body["FieldName"], body["DataType"], body.get("Options", [])),
        )

    def get_segments(self, request: httpx.Request, list_id: str) -> httpx.Response:
        found = [
            {"ListID": s["ListID"], "SegmentID": i, "Title": s["Title"]}
            for i, s in self.segments.items()
            if s["ListID"] == list_id
        ]
        return self._json(200, found)

    def get_segment(self, request: httpx.Request, segment_id: str) -> httpx.Response:
        if segment_id not in self.segments:
            return self._code(271, "Invalid SegmentID")
        self._active += 1  # ActiveSubscribers moves on its own, and must never be compared
        stored = self.segments[segment_id]
        return self._json(
            200,
            {"ActiveSubscribers": self._active, "SegmentID": segment_id, **copy.deepcopy(stored)},
        )

    def create_segment(self, request: httpx.Request, list_id: str) -> httpx.Response:
        body = json.loads(request.content)
        problem = self._check_title(list_id, body.get("Title", ""), None)
        if problem is not None:
            return problem
        groups = body.get("RuleGroups") or []
        rejected = self._check_rules(list_id, [r for g in groups for r in g["Rules"]])
        if rejected is not None:
            return rejected
        segment_id = self.new_id()
        self.segments[segment_id] = {
            "ListID": list_id,
            "Title": body["Title"],
            "RuleGroups": groups,
        }
        self._snapshot()
        return self._json(201, segment_id)

    def update_segment(self, request: httpx.Request, segment_id: str) -> httpx.Response:
        stored = self.segments.get(segment_id)
        if stored is None:
            return self._code(271, "Invalid SegmentID")
        if segment_id in self.system_segments:
            return self._code(284, "This is a system segment and it cannot be modified")
        body = json.loads(request.content)
        problem = self._check_title(stored["ListID"], body.get("Title", ""), segment_id)
        if problem is not None:
            return problem
        if "RuleGroups" in body:  # absent: rules unchanged; present: all replaced at once
            groups = body["RuleGroups"] or []
            rules = [r for g in groups for r in g["Rules"]]
            rejected = self._check_rules(stored["ListID"], rules)
            if rejected is not None:
                return rejected
            stored["RuleGroups"] = groups
        stored["Title"] = body["Title"]
        self._snapshot()
        return httpx.Response(200)

    def add_rules(self, request: httpx.Request, segment_id: str) -> httpx.Response:
        stored = self.segments.get(segment_id)
        if stored is None:
            return self._code(271, "Invalid SegmentID")
        if segment_id in self.system_segments:
            return self._code(284, "This is a system segment and it cannot be modified")
        body = json.loads(request.content)
        rejected = self._check_rules(stored["ListID"], body["Rules"])
        if rejected is not None:
            return rejected
        stored["RuleGroups"].append({"Rules": body["Rules"]})
        self._snapshot()
        return httpx.Response(200)

    def delete_rules(self, request: httpx.Request, segment_id: str) -> httpx.Response:
        if segment_id not in self.segments:
            return self._code(271, "Invalid SegmentID")
        self.segments[segment_id]["RuleGroups"] = []
        self._snapshot()
        return httpx.Response(200)

    def delete_segment(self, request: httpx.Request, segment_id: str) -> httpx.Response:
        if segment_id not in self.segments:
            return self._code(271, "Invalid SegmentID")
        if segment_id in self.system_segments:
            return self._code(284, "This is a system segment and it cannot be modified")
        del self.segments[segment_id]
        self._snapshot()
        return httpx.Response(200)

    # -- validation -----------------------------------------------------------------------------

    def _check_title(self, list_id: str, title: str, own: str | None) -> httpx.Response | None:
        if not title:
            return self._code(273, "The segment title cannot be empty")
        for segment_id, stored in self.segments.items():
            same = stored["Title"].casefold() == title.casefold()  # case variants too (275)
            if stored["ListID"] == list_id and same and segment_id != own:
                return self._code(275, "The segment title must be unique in a list")
        return None

    def _check_rules(self, list_id: str, rules: list[dict[str, str]]) -> httpx.Response | None:
        results = [self._check_rule(list_id, rule) for rule in rules]
        if all(r["Code"] == 0 for r in results):
            return None
        body = {
            "Code": 277,
            "Message": "The supplied segment rules have some problems",
            "ResultData": results,
        }
        return self._json(400, body)

    def _check_rule(self, list_id: str, rule: dict[str, str]) -> dict[str, Any]:
        rule_type, clause = rule.get("RuleType", ""), rule.get("Clause", "")
        keys = {f["Key"]: f for f in self.lists[list_id]["fields"]}
        if not rule_type:
            return _result(rule_type, 2704, "RuleType cannot be empty")
        if not clause:
            return _result(rule_type, 2706, "Any segment rule must have at least one clause")
        if rule_type not in RULE_TYPES and rule_type not in keys:
            return _result(rule_type, 2705, "Invalid RuleType", (clause, 2754, "Clause not parsed"))
        if rule_type.startswith("Campaign"):
            ok = len(clause.split()) == 1
            return _clause(rule_type, clause, 0 if ok else 2750, "Valid CampaignID required")
        field_ = keys.get(rule_type)
        kind = field_["DataType"] if field_ else rule_type
        return _clause(rule_type, clause, *self._check_clause(kind, clause, field_))

    def _check_clause(
        self, kind: str, clause: str, field_: dict[str, Any] | None
    ) -> tuple[int, str]:
        verb, _, rest = clause.partition(" ")
        verbs, illegal = VERBS.get(kind, (frozenset(), 2715))
        if verb not in verbs:
            return illegal, "The verb supplied is illegal"
        if verb in NO_OBJECT:
            return 0, "Success"
        if not rest:
            return 2719, "The verb used requires a matching object"
        if kind in ("DateSubscribed", "Date"):
            return _check_dates(kind, verb, rest)
        if kind == "Number":
            found = BETWEEN.fullmatch(rest)
            if not found or not all(_is_number(x) for x in found.groups()):
                return 2756, "Between number range must be in the format 'X AND Y'"
        if (
            field_
            and field_["DataType"].startswith("MultiSelect")
            and rest not in field_["FieldOptions"]
        ):
            return 2722, "The object supplied is not a valid option on the custom field"
        return 0, "Success"

    # -- responses ------------------------------------------------------------------------------

    def _snapshot(self) -> None:
        self.history.append({i: copy.deepcopy(s["RuleGroups"]) for i, s in self.segments.items()})

    def _json(
        self, status: int, body: object, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return httpx.Response(
            status,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )

    def _code(self, code: int, message: str) -> httpx.Response:
        return self._json(400, {"Code": code, "Message": message})


def _check_dates(kind: str, verb: str, rest: str) -> tuple[int, str]:
    if verb == "BETWEEN":
        found = BETWEEN.fullmatch(rest)
        if not found or not all(DATE.fullmatch(x) for x in found.groups()):
            return 2755, "Between date range must be in the format 'YYYY-MM-DD AND YYYY-MM-DD'"
        operands = list(found.groups())
    elif not DATE.fullmatch(rest):
        return 2720, "All dates must be supplied in the format yyyy-mm-dd"
    else:
        operands = [rest]
    # "within the last ten years including the current year": a later year is outside too
    # (whether the server takes one is not documented; the fake takes the strict reading).
    if kind == "DateSubscribed" and any(
        not CURRENT_YEAR - 10 < int(x[:4]) <= CURRENT_YEAR for x in operands
    ):
        return 2723, "An operand can only be from the last ten (10) years"
    return 0, "Success"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _result(
    rule_type: str, code: int, message: str, clause: tuple[str, int, str] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"RuleType": rule_type, "Code": code, "Message": message}
    if clause is not None:
        result["ClauseResult"] = {"Clause": clause[0], "Code": clause[1], "Message": clause[2]}
    return result


def _clause(rule_type: str, clause: str, code: int, message: str) -> dict[str, Any]:
    if code == 0:
        return _result(rule_type, 0, "Success", (clause, 0, "Success"))
    return _result(
        rule_type, 2703, "The supplied clauses have some problems", (clause, code, message)
    )
