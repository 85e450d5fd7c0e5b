"""Typed calls to the Campaign Monitor API v3.3: one method per endpoint, no domain knowledge.

Every path ends in ``.json`` and is relative to the target's ``base_url`` (which includes
``/api/v3.3``). Responses are parsed into the frozen models below at this edge; a body of
an unexpected shape is an ``ApiError``. Error bodies are read by :func:`classify`, which the
provider hands to its ``HttpClient``: the envelope is ``{"Code": int, "Message": str}``,
plus ``ResultData`` for code 277 (providers/campaignmonitor.md section 5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from providers._http import HttpClient, Verdict
from reconciler.errors import ApiError, ConflictError, NotFound, PlatformOwned
from reconciler.model import JSONValue

__all__ = [
    "CampaignMonitorApi",
    "ClauseResult",
    "CustomField",
    "ListSummary",
    "RuleResult",
    "RulesRejected",
    "SegmentDetails",
    "SegmentSummary",
    "WireGroup",
    "WireRule",
    "classify",
]

DEFAULT_BASE_URL = "https://api.createsend.com/api/v3.3"

CODE_DUPLICATE_TITLE = 275
CODE_INVALID_RULES = 277
CODE_CALCULATING = 278
CODE_SYSTEM_SEGMENT = 284
CODE_INVALID_SEGMENT = 271

_T = TypeVar("_T")


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ListSummary(_Wire):
    list_id: str = Field(alias="ListID")
    name: str = Field(alias="Name")


class CustomField(_Wire):
    """A list's custom field; ``key`` is the bracketed personalisation tag (``[age]``)."""

    name: str = Field(alias="FieldName")
    key: str = Field(alias="Key")
    data_type: str = Field(alias="DataType")
    options: tuple[str, ...] = Field(default=(), alias="FieldOptions")


class SegmentSummary(_Wire):
    segment_id: str = Field(alias="SegmentID")
    title: str = Field(alias="Title")


class WireRule(_Wire):
    rule_type: str = Field(alias="RuleType")
    clause: str = Field(alias="Clause")

    def body(self) -> dict[str, JSONValue]:
        return {"RuleType": self.rule_type, "Clause": self.clause}


class WireGroup(_Wire):
    rules: tuple[WireRule, ...] = Field(default=(), alias="Rules")

    def body(self) -> dict[str, JSONValue]:
        return {"Rules": [rule.body() for rule in self.rules]}


class SegmentDetails(_Wire):
    """One segment with its rules. ``ActiveSubscribers`` is read as the segment's live
    member count, for display only: it lags rule changes and moves with subscriber
    activity, so it is never compared."""

    segment_id: str = Field(alias="SegmentID")
    list_id: str = Field(default="", alias="ListID")
    title: str = Field(alias="Title")
    rule_groups: tuple[WireGroup, ...] = Field(default=(), alias="RuleGroups")
    active_subscribers: JSONValue = Field(default=None, alias="ActiveSubscribers")


class ClauseResult(_Wire):
    clause: str = Field(default="", alias="Clause")
    code: int = Field(default=0, alias="Code")
    message: str = Field(default="", alias="Message")


class RuleResult(_Wire):
    """One entry of a 277's ``ResultData``, one per submitted rule.

    The docs' prose names the clause part ``ClauseResults`` (a collection) while their
    example shows one object under ``ClauseResult``: both are accepted.
    """

    rule_type: str = Field(default="", alias="RuleType")
    code: int = Field(default=0, alias="Code")
    message: str = Field(default="", alias="Message")
    clause_result: ClauseResult | None = Field(default=None, alias="ClauseResult")
    clause_results: tuple[ClauseResult, ...] = Field(default=(), alias="ClauseResults")

    @property
    def clauses(self) -> tuple[ClauseResult, ...]:
        single = (self.clause_result,) if self.clause_result is not None else ()
        return single + self.clause_results

    @property
    def failed(self) -> bool:
        return self.code != 0 or any(c.code != 0 for c in self.clauses)


class _Envelope(_Wire):
    code: int = Field(alias="Code")
    message: str = Field(default="", alias="Message")
    result_data: tuple[RuleResult, ...] = Field(default=(), alias="ResultData")


class RulesRejected(ApiError):
    """Code 277: the rules could not be parsed; ``results`` has one entry per sent rule."""

    def __init__(self, message: str, results: Sequence[RuleResult], **where: str | int) -> None:
        self.results = tuple(results)
        super().__init__(message, **where)  # type: ignore[arg-type]


def _envelope(response: httpx.Response) -> _Envelope | None:
    try:
        return _Envelope.model_validate_json(response.content)
    except ValidationError:  # not JSON, or not the documented envelope (e.g. an HTML page)
        return None


def classify(response: httpx.Response) -> Verdict | None:
    """Campaign Monitor's 400 result codes as the core's errors; None for default handling."""
    if response.status_code != 400:
        return None
    envelope = _envelope(response)
    if envelope is None:
        return None
    request = response.request
    text = f"{envelope.message} (code {envelope.code})"
    if envelope.code == CODE_CALCULATING:
        # Documented: "segment calculation in progress, try later". Retried with backoff;
        # if the retries run out the change fails with this message and a re-run finishes it.
        return Verdict(retry=True, error=ApiError(f"Campaign Monitor is still calculating: {text}"))
    if envelope.code == CODE_DUPLICATE_TITLE:
        return Verdict(error=ConflictError(f"a segment with this title already exists: {text}"))
    if envelope.code == CODE_SYSTEM_SEGMENT:
        # The fact file: "treat a 284 as 'unmanaged, skip' rather than retrying".
        return Verdict(
            error=PlatformOwned(
                f"left alone: a Campaign Monitor system (engagement) segment, which cannot be "
                f"modified or deleted ({text}); add its name to the list's ignore: patterns"
            )
        )
    if envelope.code == CODE_INVALID_SEGMENT:
        return Verdict(error=NotFound(f"the segment no longer exists ({text}); run plan again"))
    if envelope.code == CODE_INVALID_RULES:
        return Verdict(
            error=RulesRejected(
                f"Campaign Monitor rejected the rules: {text}",
                envelope.result_data,
                method=request.method,
                url=request.url.path,
                status=400,
            )
        )
    return None


def _segment_path(segment_id: str, suffix: str = "") -> str:
    return f"/segments/{quote(segment_id, safe='')}{suffix}.json"


class CampaignMonitorApi:
    """The endpoints the adapter uses, for one client of one account."""

    def __init__(self, http: HttpClient, client_id: str) -> None:
        self.http = http
        self.client_id = client_id

    def _parse(self, adapter: TypeAdapter[_T], data: JSONValue, what: str) -> _T:
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            excerpt = json.dumps(data, default=str)[:200]
            raise ApiError(
                f"Campaign Monitor answered {what} with an unexpected shape "
                f"({exc.error_count()} problems)",
                body=excerpt,
            ) from None

    def _text(self, data: JSONValue, what: str) -> str:
        """Create calls answer with the new id (or Key) as a bare JSON string."""
        if not isinstance(data, str) or not data:
            raise ApiError(f"Campaign Monitor answered {what} without the new id", body=str(data))
        return data

    # -- lists and fields -----------------------------------------------------------------

    def lists(self) -> list[ListSummary]:
        """The client's lists (documented as not paginated: the whole array)."""
        data = self.http.get_json(f"/clients/{quote(self.client_id, safe='')}/lists.json")
        found = self._parse(_LISTS, data, "the lists of the client")
        return list(found)

    def create_list(self, title: str) -> str:
        body = {
            "Title": title,
            "UnsubscribePage": "",
            "ConfirmedOptIn": False,
            "ConfirmationSuccessPage": "",
            "UnsubscribeSetting": "AllClientLists",
        }
        path = f"/lists/{quote(self.client_id, safe='')}.json"
        return self._text(self.http.send_json("POST", path, body), "create list")

    def custom_fields(self, list_id: str) -> list[CustomField]:
        data = self.http.get_json(f"/lists/{quote(list_id, safe='')}/customfields.json")
        found = self._parse(_FIELDS, data, "the custom fields of a list")
        return list(found)

    def create_field(self, list_id: str, name: str, data_type: str, options: Sequence[str]) -> str:
        body = {
            "FieldName": name,
            "DataType": data_type,
            "Options": list(options),
            "VisibleInPreferenceCenter": True,
        }
        path = f"/lists/{quote(list_id, safe='')}/customfields.json"
        return self._text(self.http.send_json("POST", path, body), "create custom field")

    # -- segments ---------------------------------------------------------------------------

    def segments(self, list_id: str) -> list[SegmentSummary]:
        data = self.http.get_json(f"/lists/{quote(list_id, safe='')}/segments.json")
        found = self._parse(_SEGMENTS, data, "the segments of a list")
        return list(found)

    def segment(self, segment_id: str) -> SegmentDetails:
        data = self.http.get_json(_segment_path(segment_id))
        return self._parse(_DETAILS, data, "a segment's details")

    def create_segment(self, list_id: str, title: str, groups: Sequence[WireGroup]) -> str:
        body = {"Title": title, "RuleGroups": [group.body() for group in groups]}
        data = self.http.send_json("POST", _segment_path(list_id), body)
        return self._text(data, "create segment")

    def update_segment(self, segment_id: str, title: str, groups: Sequence[WireGroup]) -> None:
        """Title and *all* rule groups in one atomic PUT (the key is always sent, never
        ``null``: its meaning is UNKNOWN)."""
        body = {"Title": title, "RuleGroups": [group.body() for group in groups]}
        self.http.send_json("PUT", _segment_path(segment_id), body)

    def add_rule_group(self, segment_id: str, group: WireGroup) -> None:
        self.http.send_json("POST", _segment_path(segment_id, "/rules"), group.body())

    def delete_segment(self, segment_id: str) -> None:
        self.http.send_json("DELETE", _segment_path(segment_id))


_LISTS = TypeAdapter(tuple[ListSummary, ...])
_FIELDS = TypeAdapter(tuple[CustomField, ...])
_SEGMENTS = TypeAdapter(tuple[SegmentSummary, ...])
_DETAILS = TypeAdapter(SegmentDetails)
