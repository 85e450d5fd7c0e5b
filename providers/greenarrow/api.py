"""Typed calls to the GreenArrow Studio API v2: one method per endpoint, no domain knowledge.

Paths are relative to ``<base_url>/ga/api/v2`` (the text form of the docs: ``/segments/:id``,
never the nested example paths, G13). Request bodies wrap the resource in its key
(``{"mailing_list": {...}}``, ``{"segmentation_criteria": {...}}``).

Every answer is read through the envelope ``{success, data, error_code, error_message}``
(fact file 1), branching on ``success`` and never on the HTTP status alone, whose values
for errors are UNKNOWN. :func:`classify`, handed to the ``HttpClient``, sees every response
first and maps each ``error_code`` into the core's errors:

- ``validation_failed``: ``ConflictError`` on a segment delete (a campaign or autoresponder
  still uses it, G14; never retried), else ``ApiError``;
- ``invalid_request`` (e.g. a clause type the Segments API does not support, G10),
  ``requested_too_many``: ``ApiError``;
- ``not_found``: ``NotFound``; ``multiple_records_found``: ``ConflictError``;
- ``internal_error``: retried like a 503 on GET, PUT and DELETE (not on POST, which may have
  acted), then ``ApiError``;
- any other code: ``ApiError``; an answer with status 401 or 403: ``AuthError``.

Collections are read page by page with ``page_token`` chaining (``per_page`` at the
documented maximum, 2000), which is contiguous even while records change (fact file 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from providers._http import HttpClient, Verdict
from reconciler.errors import ApiError, AuthError, ConflictError, NotFound, ReconcilerError
from reconciler.model import JSONValue

__all__ = [
    "API_PATH",
    "PER_PAGE",
    "GreenArrowApi",
    "MailingList",
    "SegmentDetails",
    "SegmentSummary",
    "classify",
]

API_PATH = "/ga/api/v2"
"""Added to the Studio root; without ``v2`` in the path requests go to API v1 (fact file 1)."""

PER_PAGE = 2000
"""The documented maximum page size; more is ``requested_too_many``."""

_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_M = TypeVar("_M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("id", "mailing_list_id", mode="before", check_fields=False)
    @classmethod
    def _number(cls, value: object) -> object:
        # Numbers may come as text (G12).
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value


class MailingList(_Wire):
    id: int
    name: str
    is_remote_list: bool = False

    @field_validator("is_remote_list", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        return False if value is None else value


class SegmentSummary(_Wire):
    """A row of the segments collection: no ``clause`` (G11); ``description`` is ignored (G1)."""

    id: int
    mailing_list_id: int
    name: str


class SegmentDetails(SegmentSummary):
    clause: Any = None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _error(body: Mapping[str, Any], request: httpx.Request, status: int) -> ReconcilerError:
    """The core's error for an envelope with ``success: false``."""
    code = _text(body.get("error_code"))
    message = _text(body.get("error_message")) or "no message"
    method, path = request.method, request.url.path
    said = f"{code}: {message}" if code else message
    if status in (401, 403):
        return AuthError(
            f"GreenArrow refused the credentials ({method} {path} -> {status}: {said}); "
            "check api_key (the key as Studio shows it, sent as HTTP Basic) or give "
            "organization_id with the raw key"
        )
    is_segment = "/segments" in path
    if code == "validation_failed" and method == "DELETE" and is_segment:
        return ConflictError(
            f"GreenArrow refused to delete the segment ({message}): a segment still used by "
            "an unfinished campaign or autoresponder cannot be deleted; finish or change "
            "those first, or keep the segment (declare it, or ignore: it)"
        )
    if code == "not_found":
        return NotFound(f"GreenArrow: not found ({method} {path}: {message})")
    if code == "multiple_records_found":
        return ConflictError(f"GreenArrow found several records ({method} {path}: {message})")
    hint = ""
    if code == "invalid_request" and is_segment and method in ("POST", "PUT"):
        hint = "; GreenArrow refuses this way a clause type its Segments API does not support"
    if code == "validation_failed":
        what = "GreenArrow refused the change"
    elif code == "internal_error":
        what = "GreenArrow failed with an internal error"
    else:
        what = "GreenArrow could not process the request"
    return ApiError(f"{what} ({said}){hint}", method=method, url=path, status=status)


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("success"), bool):
        return body
    return None


def classify(response: httpx.Response) -> Verdict | None:
    """Read the envelope of every response: ``success`` decides, not the status (None:
    the client's default handling, for transient statuses and bodies without an envelope)."""
    status = response.status_code
    if status in _TRANSIENT_STATUSES:
        return None  # retried by the client (Retry-After honoured), whatever the body says
    body = _envelope(response)
    if body is None:
        if status in (401, 403):
            return Verdict(error=_error({}, response.request, status))
        return None
    if body["success"]:
        return Verdict()  # a success whatever the status
    error = _error(body, response.request, status)
    internal = _text(body.get("error_code")) == "internal_error"
    if internal and response.request.method in _IDEMPOTENT:
        return Verdict(retry=True, error=error)
    return Verdict(error=error)


class GreenArrowApi:
    """The endpoints the adapter uses, for one Studio instance (paths under ``API_PATH``)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    # -- the envelope -----------------------------------------------------------------------

    def _data(self, method: str, path: str, answer: JSONValue) -> JSONValue:
        if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
            raise ApiError(
                "GreenArrow answered without its {success, data, ...} envelope",
                method=method,
                url=path,
                body=json.dumps(answer, default=str)[:200],
            )
        if not answer["success"]:  # classify raises first; this keeps the rule in one place
            raise _error(answer, httpx.Request(method, path), 200)
        return answer.get("data")

    def _parse(self, model: type[_M], data: JSONValue, what: str) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ApiError(
                f"GreenArrow answered {what} with an unexpected shape "
                f"({exc.error_count()} problems)",
                body=json.dumps(data, default=str)[:200],
            ) from None

    # -- reading ----------------------------------------------------------------------------

    def _collection(self, path: str) -> list[JSONValue]:
        """Every record of a paginated collection, by ``page_token`` chaining.

        A server that answers without tokens but with ``page``/``num_pages`` is read by page
        number instead; one that answers with neither sent everything at once (the Segment
        API examples show no pagination keys at all)."""
        params: dict[str, Any] = {"per_page": PER_PAGE}
        rows: list[JSONValue] = []
        tokens: set[str] = set()
        while True:
            answer = self.http.get_json(path, params=params)
            data = self._data("GET", path, answer)
            if not isinstance(data, list):
                raise ApiError(
                    f"GreenArrow answered GET {path} without a list of records", url=path
                )
            rows.extend(data)
            assert isinstance(answer, dict)
            token = answer.get("next_page_token")
            if isinstance(token, str | int) and str(token):
                if str(token) in tokens:
                    raise ApiError(
                        f"GreenArrow's pagination of {path} does not advance (page_token "
                        "repeated); refusing to read forever",
                        url=path,
                    )
                tokens.add(str(token))
                params = {"per_page": PER_PAGE, "page_token": token}
                continue
            page, pages = answer.get("page"), answer.get("num_pages")
            asked = params.get("page", 0)
            tokenless = "next_page_token" not in answer
            if tokenless and isinstance(page, int) and isinstance(pages, int) and data:
                if page != asked:
                    raise ApiError(
                        f"GreenArrow answered page {page} of {path} when page {asked} was "
                        "asked for; refusing to read forever",
                        url=path,
                    )
                if page + 1 < pages:
                    params = {"per_page": PER_PAGE, "page": page + 1}
                    continue
            return _unique(rows)

    def mailing_lists(self) -> list[MailingList]:
        rows = self._collection("/mailing_lists")
        return [self._parse(MailingList, row, "a mailing list") for row in rows]

    def segments(self) -> list[SegmentSummary]:
        """Every segment of the key's organization (without clauses, G11)."""
        rows = self._collection("/segments")
        return [self._parse(SegmentSummary, row, "a segment") for row in rows]

    def segment(self, segment_id: int) -> SegmentDetails:
        path = f"/segments/{segment_id}"
        data = self._data("GET", path, self.http.get_json(path))
        return self._parse(SegmentDetails, data, "a segment")

    # -- writing ----------------------------------------------------------------------------

    def create_list(self, name: str) -> MailingList:
        """``POST /mailing_lists`` with only the name: other required attributes of the
        current version are UNKNOWN (fact file 2); GreenArrow says which, if any, it lacks."""
        body = {"mailing_list": {"name": name}}
        data = self._data(
            "POST", "/mailing_lists", self.http.send_json("POST", "/mailing_lists", body)
        )
        return self._parse(MailingList, data, "the created mailing list")

    def create_segment(self, list_id: int, name: str, clause: list[JSONValue]) -> SegmentDetails:
        """Create answers 200 (not 201) with the new id in ``data.id`` (G8)."""
        path = f"/mailing_lists/{list_id}/segments"
        body = {"segmentation_criteria": {"name": name, "clause": clause}}
        data = self._data("POST", path, self.http.send_json("POST", path, body))
        return self._parse(SegmentDetails, data, "the created segment")

    def update_segment(self, segment_id: int, name: str, clause: list[JSONValue]) -> SegmentDetails:
        """A full replacement: ``name`` and ``clause`` are both required (G9)."""
        path = f"/segments/{segment_id}"
        body = {"segmentation_criteria": {"name": name, "clause": clause}}
        data = self._data("PUT", path, self.http.send_json("PUT", path, body))
        return self._parse(SegmentDetails, data, "the updated segment")

    def delete_segment(self, segment_id: int) -> None:
        path = f"/segments/{segment_id}"
        self._data("DELETE", path, self.http.send_json("DELETE", path))


def _unique(rows: list[JSONValue]) -> list[JSONValue]:
    """Records de-duplicated by id (a page may repeat one that moved during the scan)."""
    seen: set[object] = set()
    found: list[JSONValue] = []
    for row in rows:
        ident = row.get("id") if isinstance(row, dict) else None
        if ident is not None and ident in seen:
            continue
        seen.add(ident)
        found.append(row)
    return found
