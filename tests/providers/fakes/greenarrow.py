"""A stateful fake of the GreenArrow Studio API v2, as providers/greenarrow.md documents it.

It holds mailing lists and segments ("segmentation criterias") of one organization and
answers the documented endpoints under ``/ga/api/v2`` with the ``{success, data,
error_code, error_message}`` envelope and the documented error codes. It reproduces what
an adapter must normalise: the generated ``description`` (G1), operators echoed in the
space spelling whatever was sent (or, switched on, the underscore one: G2), the
``mailing_list`` object added next to ``mailing_list_id`` (G3, G4), optionally a definition
echoed under one explicit top-level ``all`` (G5), members echoed in another order (G6),
list ids as text and ``_epoch`` companions (G12). Collections are paginated (``per_page``
up to 2000, ``page`` or ``page_token``, never both; segments default to 2000 per page,
other collections to 100); ``page_cap`` makes the server serve fewer per page. Segment
names are not unique (G8). Writing a clause type outside ``supported_types`` is
``invalid_request`` (G10); segments built in the UI are stored as given with ``add_segment``.
A delete of a segment ``in_use`` by a campaign is ``validation_failed`` (G14). The
Segments API refuses remote lists. Every request is recorded.

Where the facts are silent the fake chooses and says so: the HTTP statuses of error
envelopes (``ERROR_STATUS``; ``errors_as_200`` answers them all with 200), the body of a
refused key (Rails' plain-text ``HTTP Basic: Access denied.``), the messages, and which
error a clause naming an unknown list gets (``invalid_request``).
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

BASE_URL = "https://studio.example.com"
API = "/ga/api/v2"
MAX_PER_PAGE = 2000
STATUSES = ("active", "unsubscribed", "bounced", "scomp", "deactivated")
MEMBERSHIP = ("is in", "is not in", "is active in", "is not active in")
ERROR_STATUS = {
    "validation_failed": 422,
    "invalid_request": 400,
    "requested_too_many": 400,
    "not_found": 404,
    "multiple_records_found": 400,
    "internal_error": 500,
}
"""The fake's choice: the facts document no HTTP status for errors."""

_WORDS = {
    "is in": "is in the mailing list",
    "is not in": "is not in the mailing list",
    "is active in": "is active in the mailing list",
    "is not active in": "is not active in the mailing list",
}


def _spelling(operator: str) -> str:
    return " ".join(operator.replace("_", " ").split())


@dataclass
class Fault:
    """Make the ``skip``-th and following calls matching ``method`` and ``path`` (a regex on
    the path after ``/ga/api/v2``) fail ``times`` times with ``kind``."""

    method: str
    path: str
    kind: str
    times: int = 1
    skip: int = 0
    seen: int = 0

    KINDS = ("429", "503", "internal_error", "timeout", "timeout_after", "drop", "drop_after")

    def matches(self, request: httpx.Request, path: str) -> bool:
        if request.method != self.method or not re.fullmatch(self.path, path):
            return False
        self.seen += 1
        return self.seen > self.skip and self.times > 0


@dataclass
class FakeGreenArrow:
    base_url: str = BASE_URL
    organization_id: int = 1
    raw_key: str = "6d3f0c9e8b7a41d2a5c4e3f2b1a09876"
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)
    supported_types: set[str] = field(
        default_factory=lambda: {"any", "all", "in_mailing_list", "subscriber_status"}
    )
    in_use: set[int] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    rate_limited: bool = False
    page_cap: int | None = None
    page_tokens: bool = True
    underscore_operators: bool = False
    reverse_members: bool = False
    wrap_in_all: bool = False
    ids_as_text: bool = False
    errors_as_200: bool = False
    _ids: dict[str, int] = field(default_factory=dict)

    @property
    def api_key(self) -> str:
        """The key as Studio shows it: base64 of ``<organization id>:<raw key>``."""
        return base64.b64encode(f"{self.organization_id}:{self.raw_key}".encode()).decode()

    # -- test helpers: state edited directly, as someone in the Studio UI would ---------------

    def new_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind] + (100 if kind == "segment" else 0)  # never equal to a list id

    def add_list(self, name: str, remote: bool = False) -> int:
        ident = self.new_id("list")
        self.lists[ident] = {
            "id": ident,
            "name": name,
            "d_from_email": "news@example.com",
            "d_from_name": "News",
            "d_autowinner_enabled": False,
            "d_autowinner_percentage": "25.0",  # numbers as strings (G12)
            "d_seed_lists": [],
            "is_remote_list": remote,
            "created_at": "2024-01-02T03:04:05-05:00",
            "created_at_epoch": 1704182645,
        }
        return ident

    def list_id(self, name: str) -> int:
        (found,) = [i for i, item in self.lists.items() if item["name"] == name]
        return found

    def add_segment(self, list_id: int, name: str, clause: list[Any]) -> int:
        """Store a segment as the UI would: any clause types, no validation."""
        ident = self.new_id("segment")
        self.segments[ident] = {
            "id": ident,
            "mailing_list_id": list_id,
            "name": name,
            "clause": copy.deepcopy(clause),
        }
        return ident

    def segment_named(self, list_name: str, name: str) -> dict[str, Any]:
        list_id = self.list_id(list_name)
        (found,) = [
            s
            for s in self.segments.values()
            if s["mailing_list_id"] == list_id and s["name"] == name
        ]
        return found

    def names(self, list_name: str) -> list[str]:
        list_id = self.list_id(list_name)
        return sorted(s["name"] for s in self.segments.values() if s["mailing_list_id"] == list_id)

    def writes(self) -> list[tuple[str, str]]:
        """Every write as ``(method, path after /ga/api/v2)``."""
        return [(r.method, _api_path(r)) for r in self.requests if r.method != "GET"]

    def mount(self, router: respx.MockRouter) -> None:
        router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    # -- the HTTP side --------------------------------------------------------------------------

    @one_at_a_time
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not request.url.path.startswith(API + "/"):
            return self._error("not_found", "No route matches", 404)
        path = _api_path(request)
        if request.headers.get("Authorization") != f"Basic {self.api_key}":
            # The body for a refused key is UNKNOWN; Rails' HTTP Basic answer is this.
            return httpx.Response(401, text="HTTP Basic: Access denied.\n")
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
            return httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests")
        if kind == "503":
            return httpx.Response(
                503, text="<html><body><h1>503 Service Unavailable</h1></body></html>"
            )
        if kind == "internal_error":
            return self._error("internal_error", "An internal error occurred")
        if kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if kind == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response", request=request
            )
        return None  # the *_after kinds act after the server did

    def _dispatch(self, request: httpx.Request, path: str) -> httpx.Response:
        for method, pattern, handler in self._routes():
            found = re.fullmatch(pattern, path)
            if found and request.method == method:
                return handler(request, *(int(g) for g in found.groups()))
        return self._error("not_found", "No route matches", 404)

    def _routes(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        return [
            ("GET", r"/mailing_lists", self.get_lists),
            ("POST", r"/mailing_lists", self.create_list),
            ("GET", r"/segments", self.get_segments),
            ("GET", r"/mailing_lists/(\d+)/segments", self.get_list_segments),
            ("POST", r"/mailing_lists/(\d+)/segments", self.create_segment),
            ("GET", r"/segments/(\d+)", self.get_segment),
            ("PUT", r"/segments/(\d+)", self.update_segment),
            ("DELETE", r"/segments/(\d+)", self.delete_segment),
        ]

    # -- envelope and pages -------------------------------------------------------------------

    def _ok(self, data: Any, **extra: Any) -> httpx.Response:
        body = {"success": True, "data": data, "error_code": None, "error_message": None}
        return _json(200, body | extra)

    def _error(self, code: str, message: str, status: int | None = None) -> httpx.Response:
        body = {"success": False, "data": None, "error_code": code, "error_message": message}
        return _json(200 if self.errors_as_200 else status or ERROR_STATUS[code], body)

    def _page(
        self, request: httpx.Request, rows: list[dict[str, Any]], default: int
    ) -> httpx.Response:
        params = request.url.params
        if "page" in params and "page_token" in params:
            return self._error("invalid_request", "Specify either page or page_token, not both")
        per_page = int(params.get("per_page", default))
        if per_page > MAX_PER_PAGE:
            return self._error("requested_too_many", f"per_page cannot exceed {MAX_PER_PAGE}")
        size = min(per_page, self.page_cap or per_page)
        rows = sorted(rows, key=lambda r: r["id"])
        token = params.get("page_token")
        if token is not None:
            after = _token_id(token)
            if after is None:
                return self._error("invalid_request", "Invalid page_token")
            start = sum(1 for r in rows if r["id"] <= after)  # contiguous: after the last id
        else:
            start = int(params.get("page", 0)) * size
        chunk = rows[start : start + size]
        pages = max(1, -(-len(rows) // size))
        extra: dict[str, Any] = {
            "page": start // size,
            "per_page": size,
            "num_records": len(rows),
            "num_pages": pages,
        }
        if self.page_tokens:
            more = start + size < len(rows) and chunk
            extra["page_token"] = token
            extra["next_page_token"] = _token(chunk[-1]["id"]) if more else None
        return self._ok([copy.deepcopy(r) for r in chunk], **extra)

    # -- mailing lists ----------------------------------------------------------------------------

    def get_lists(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, list(self.lists.values()), 100)

    def create_list(self, request: httpx.Request) -> httpx.Response:
        body = _body(request).get("mailing_list")
        if not isinstance(body, dict) or not str(body.get("name") or "").strip():
            return self._error("validation_failed", "name cannot be blank")
        ident = self.add_list(body["name"])
        return self._ok(copy.deepcopy(self.lists[ident]))

    # -- segments -----------------------------------------------------------------------------

    def _summary(self, segment: dict[str, Any]) -> dict[str, Any]:
        echoed = self._echo(segment)
        return {k: echoed[k] for k in ("id", "mailing_list_id", "name", "description")}

    def get_segments(self, request: httpx.Request) -> httpx.Response:
        rows = [self._summary(s) for s in self.segments.values()]
        return self._page(request, rows, MAX_PER_PAGE)

    def get_list_segments(self, request: httpx.Request, list_id: int) -> httpx.Response:
        refused = self._list_problem(list_id)
        if refused is not None:
            return refused
        rows = [self._summary(s) for s in self.segments.values() if s["mailing_list_id"] == list_id]
        return self._page(request, rows, MAX_PER_PAGE)

    def get_segment(self, request: httpx.Request, ident: int) -> httpx.Response:
        found = self.segments.get(ident)
        if found is None:
            return self._error("not_found", f"Segment {ident} not found")
        return self._ok(self._echo(found))

    def create_segment(self, request: httpx.Request, list_id: int) -> httpx.Response:
        refused = self._list_problem(list_id)
        if refused is not None:
            return refused
        body = _body(request).get("segmentation_criteria")
        problem = self._invalid(body)
        if problem is not None:
            return problem
        assert isinstance(body, dict)
        ident = self.add_segment(list_id, body["name"], [])
        self.segments[ident]["clause"] = [self._store(c) for c in body["clause"]]
        return self._ok(self._echo(self.segments[ident]))

    def update_segment(self, request: httpx.Request, ident: int) -> httpx.Response:
        found = self.segments.get(ident)
        if found is None:
            return self._error("not_found", f"Segment {ident} not found")
        body = _body(request).get("segmentation_criteria")
        problem = self._invalid(body)
        if problem is not None:
            return problem
        assert isinstance(body, dict)
        found["name"] = body["name"]
        found["clause"] = [self._store(c) for c in body["clause"]]
        return self._ok(self._echo(found))

    def delete_segment(self, request: httpx.Request, ident: int) -> httpx.Response:
        if ident not in self.segments:
            return self._error("not_found", f"Segment {ident} not found")
        if ident in self.in_use:
            return self._error(
                "validation_failed",
                "Segment is in use by an unfinished campaign or autoresponder",
            )
        del self.segments[ident]
        return self._ok(None)

    def _list_problem(self, list_id: int) -> httpx.Response | None:
        found = self.lists.get(list_id)
        if found is None:
            return self._error("not_found", f"Mailing list {list_id} not found")
        if found["is_remote_list"]:
            return self._error("invalid_request", "This API is not available on Remote Lists")
        return None

    # -- the Segment Definition ---------------------------------------------------------------

    def _invalid(self, body: Any) -> httpx.Response | None:
        """PUT and POST both need ``name`` and ``clause`` (G9); clauses are checked."""
        if not isinstance(body, dict) or not str(body.get("name") or "").strip():
            return self._error("validation_failed", "name cannot be blank")
        clause = body.get("clause")
        if not isinstance(clause, list):
            return self._error("validation_failed", "clause is required")
        for item in clause:
            problem = self._clause_problem(item)
            if problem is not None:
                return self._error("invalid_request", problem)
        return None

    def _clause_problem(self, clause: Any) -> str | None:
        if not isinstance(clause, dict):
            return "Each clause must be a hash"
        kind = clause.get("type")
        if kind not in self.supported_types:
            return f"Unsupported clause type: {kind}"
        if kind in ("any", "all"):
            members = clause.get("clauses")
            if not isinstance(members, list) or not members:
                return f"A {kind} clause needs clauses"
            return next((p for p in map(self._clause_problem, members) if p), None)
        if kind == "in_mailing_list":
            if _spelling(str(clause.get("operator", ""))) not in MEMBERSHIP:
                return f"Invalid operator: {clause.get('operator')}"
            if self._referenced(clause) not in self.lists:
                return "The mailing list in an in_mailing_list clause does not exist"
        if kind == "subscriber_status":
            if _spelling(str(clause.get("operator", ""))) not in ("is", "is not"):
                return f"Invalid operator: {clause.get('operator')}"
            if clause.get("value") not in STATUSES:
                return f"Invalid status: {clause.get('value')}"
        return None

    def _referenced(self, clause: dict[str, Any]) -> int | None:
        inner = clause.get("mailing_list")
        if isinstance(inner, dict) and inner.get("id") is not None:
            return int(inner["id"])  # "if both, id wins"
        if clause.get("mailing_list_id") is not None:
            return int(clause["mailing_list_id"])
        if isinstance(inner, dict) and inner.get("name") is not None:
            found = [i for i, item in self.lists.items() if item["name"] == inner["name"]]
            return found[0] if len(found) == 1 else None
        return None

    def _store(self, clause: dict[str, Any]) -> dict[str, Any]:
        """As saved: operators in the space spelling, list references by id."""
        kind = clause["type"]
        if kind in ("any", "all"):
            return {"type": kind, "clauses": [self._store(c) for c in clause["clauses"]]}
        if kind == "in_mailing_list":
            return {
                "type": kind,
                "operator": _spelling(clause["operator"]),
                "mailing_list_id": self._referenced(clause),
            }
        if kind == "subscriber_status":
            return {
                "type": kind,
                "operator": _spelling(clause["operator"]),
                "value": clause["value"],
            }
        return copy.deepcopy(clause)

    def _echo(self, segment: dict[str, Any]) -> dict[str, Any]:
        clause = [self._echo_clause(c) for c in segment["clause"]]
        if self.wrap_in_all and clause:
            clause = [{"type": "all", "clauses": clause}]
        return {
            "id": segment["id"],
            "mailing_list_id": str(segment["mailing_list_id"])
            if self.ids_as_text
            else segment["mailing_list_id"],
            "name": segment["name"],
            "description": "All of the following criteria ... "
            + " ".join(f"({self._describe(c)})" for c in segment["clause"]),
            "clause": clause,
            "updated_at": "2024-05-06T07:08:09-05:00",
            "updated_at_epoch": 1714997289,
        }

    def _echo_clause(self, clause: Any) -> Any:
        if not isinstance(clause, dict):
            return copy.deepcopy(clause)
        out = copy.deepcopy(clause)
        kind = out.get("type")
        if kind in ("any", "all") and isinstance(out.get("clauses"), list):
            members = [self._echo_clause(c) for c in out["clauses"]]
            out["clauses"] = members[::-1] if self.reverse_members else members
        if isinstance(out.get("operator"), str) and self.underscore_operators:
            out["operator"] = out["operator"].replace(" ", "_")
        if kind == "in_mailing_list" and "mailing_list" not in out and out.get("mailing_list_id"):
            ident = out["mailing_list_id"]
            listed = self.lists.get(ident) if isinstance(ident, int) else None
            out["mailing_list"] = {"id": ident, "name": listed["name"] if listed else None}
            if self.ids_as_text:
                out["mailing_list_id"] = str(ident)
                out["mailing_list"]["id"] = str(ident)
        return out

    def _describe(self, clause: Any) -> str:
        if not isinstance(clause, dict):
            return "?"
        kind = clause.get("type")
        if kind in ("any", "all"):
            inner = " ".join(f"({self._describe(c)})" for c in clause.get("clauses") or [])
            return f"{str(kind).title()} of the following criteria ... {inner}"
        if kind == "in_mailing_list":
            listed = self.lists.get(clause.get("mailing_list_id"))  # type: ignore[arg-type]
            name = listed["name"] if listed else "?"
            words = _WORDS.get(_spelling(str(clause.get("operator"))), "?")
            return f'Subscriber {words} "{name}"'
        if kind == "subscriber_status":
            return f"Status {clause.get('operator')} {str(clause.get('value')).title()}"
        return f"Criteria of type {kind}"


def _api_path(request: httpx.Request) -> str:
    return request.url.path.removeprefix(API)


def _token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def _token_id(token: str) -> int | None:
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except ValueError:
        return None
    return int(value) if kind == "after" and value.isdigit() else None


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        found = json.loads(request.content or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
