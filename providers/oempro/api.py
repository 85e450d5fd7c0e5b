"""Typed calls to the Oempro command API: one method per Command, no domain knowledge.

Facts: providers/oempro.md. Every call is ``POST <installation>/api.php`` with ``Command``
and ``ResponseFormat=JSON`` in the body, plus ``APIKey`` or ``SessionID``:

- Commands are spelled one way, the dotted PascalCase of Oempro 4 and its clients
  (``Segment.Create``); Octeth documents the same commands in lower case and evidently
  matches them case-insensitively, but that is inferred, so one spelling is used throughout.
- Bodies are form-encoded (every release) or JSON (Octeth 5.x), per the target's
  ``encoding``. ``RulesJson`` is a JSON *string* in both (double-encoded inside JSON, G1).
- With ``username``/``password`` the first call signs in once (``User.Login`` with
  ``Username``/``Password`` as Oempro 4 and the fact file's own example write them; one
  Octeth page writes them in lower case, UNKNOWN which it reads, so the documented example
  wins) and every call then carries the ``SessionID``. A call answered ``99998`` (expired
  session) signs in again once and is sent again; a fresh session refused again is an
  ``AuthError``. Writes are sent again only then: the server refused them before acting.
- Reads are retried like idempotent requests (they change nothing); writes never are once
  the server may have acted.
- Answers are parsed into the frozen records below at this edge. Ids come back as strings
  or numbers (G2, G7): every id is read as a string; ``CustomFieldID``/``FieldID`` and
  ``TotalSegmentCount``/``TotalSegments`` are read with fallbacks; ``SubscriberCount`` (asked
  for with ``IncludeTotals``) is kept as a segment's live member count, shown by the plan
  and never compared: it is cached and lags (G6).
- The session id is a secret the client learns only after signing in, so every error
  leaving this module is redacted here too (``HttpClient`` takes its secrets when built).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from providers._http import HttpClient, redact
from reconciler.errors import ApiError, AuthError, ReconcilerError
from reconciler.model import JSONValue

from .answers import AUTH_FAILED, Envelope, error_for, read_envelope

__all__ = [
    "COMMANDS",
    "PAGE_SIZE",
    "FieldRecord",
    "ListRecord",
    "OemproApi",
    "SegmentRecord",
    "secret_forms",
]

PATH = "/api.php"
PAGE_SIZE = 100
"""Lists asked for per ``Lists.Get`` page; pages are followed until every list is read."""
MAX_PAGES = 10_000

LOGIN = "User.Login"
LISTS_GET = "Lists.Get"
LIST_CREATE = "List.Create"
FIELDS_GET = "CustomFields.Get"
FIELD_CREATE = "CustomField.Create"
SEGMENTS_GET = "Segments.Get"
SEGMENT_CREATE = "Segment.Create"
SEGMENT_UPDATE = "Segment.Update"
SEGMENTS_DELETE = "Segments.Delete"
COMMANDS = (
    LOGIN,
    LISTS_GET,
    LIST_CREATE,
    FIELDS_GET,
    FIELD_CREATE,
    SEGMENTS_GET,
    SEGMENT_CREATE,
    SEGMENT_UPDATE,
    SEGMENTS_DELETE,
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)


class ListRecord(_Record):
    id: str
    name: str


class FieldRecord(_Record):
    """A custom field of a list (or a global one): what rules reference by id."""

    id: str
    name: str
    field_type: str = ""
    validation: str = ""
    is_global: bool = False
    """An account-wide field (``RelListID`` 0): every list has it."""

    @classmethod
    def parse(cls, data: JSONValue) -> FieldRecord:
        item = data if isinstance(data, dict) else {}
        ident = item.get("CustomFieldID", item.get("FieldID"))
        is_global = str(item.get("RelListID", "")) == "0" or item.get("IsGlobal") in (
            "Yes",
            True,
        )
        return cls.model_validate(
            {
                "id": ident,
                "name": item.get("FieldName"),
                "field_type": item.get("FieldType") or "",
                "validation": item.get("ValidationMethod") or "",
                "is_global": is_global,
            }
        )


class SegmentRecord(_Record):
    """A segment as ``Segments.Get`` returns it; ``subscriber_count`` is its cached
    ``SubscriberCount``, for display only (G6: never compared)."""

    id: str
    name: str
    operator: str = ""
    rules_json: str = ""
    legacy_rules: str = ""
    subscriber_count: JSONValue = None

    @field_validator("rules_json", "legacy_rules", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, list | dict):  # already decoded by some release: keep it exact
            return json.dumps(value)
        return value


def secret_forms(secret: str) -> list[str]:
    """``secret`` as it may appear in a JSON text as well: escaped (``\\/``, ``\\"``,
    ``\\uXXXX``), so an answer echoing it is redacted whatever its encoding."""
    escaped = json.dumps(secret)[1:-1]
    unescaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    return list(dict.fromkeys([secret, escaped, unescaped, escaped.replace("/", "\\/")]))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _redacting(
    method: Callable[Concatenate[OemproApi, _P], _R],
) -> Callable[Concatenate[OemproApi, _P], _R]:
    """Errors raised while reading an answer leave without any secret (an unexpected
    answer is quoted, and could echo the session id)."""

    @functools.wraps(method)
    def wrapper(self: OemproApi, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except ReconcilerError as exc:
            raise self._redacted(exc) from None

    return wrapper


class _Session:
    """The ``SessionID`` of a username/password target: one sign-in per run, renewed once
    when a call answers that it expired."""

    def __init__(self, login: Callable[[], str]) -> None:
        self._login = login
        self._lock = threading.Lock()
        self.current: str | None = None
        self.logins = 0

    def get(self) -> str:
        with self._lock:
            if self.current is None:
                self.current = self._login()
                self.logins += 1
            return self.current

    def renew(self, refused: str) -> None:
        """Sign in again, unless another thread already replaced the refused session."""
        with self._lock:
            if self.current == refused:
                self.current = None
        self.get()


class OemproApi:
    """The commands the adapter uses, for one installation and one set of credentials."""

    def __init__(
        self,
        http: HttpClient,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        encoding: str = "form",
    ) -> None:
        self.http = http
        self._api_key = api_key
        self._username = username
        self._password = password
        self._json = encoding == "json"
        self.session: _Session | None = None
        if api_key is None:
            self.session = _Session(self._sign_in)

    # -- one call ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` without the client's secrets nor the current session id."""
        text = self.http.redact(text)
        current = self.session.current if self.session is not None else None
        return redact(text, secret_forms(current)) if current else text

    def call(
        self, command: str, params: Mapping[str, Any], *, read: bool = False
    ) -> dict[str, JSONValue]:
        """Send one command; return its payload or raise the core's exception for it."""
        session = self.session.get() if self.session is not None else None
        envelope = self._send(command, params, session, read)
        if not envelope.success and session is not None and AUTH_FAILED in envelope.codes:
            assert self.session is not None
            self.session.renew(session)  # expired mid-run: once, then the answer stands
            envelope = self._send(command, params, self.session.get(), read)
        if not envelope.success:
            raise error_for(command, envelope, self.redact)
        return envelope.data

    def _credentials(self, session: str | None) -> dict[str, str]:
        if session is not None:
            return {"SessionID": session}
        if self._api_key is not None:
            return {"APIKey": self._api_key}
        return {}

    def _send(
        self, command: str, params: Mapping[str, Any], session: str | None, read: bool
    ) -> Envelope:
        body = {"Command": command, "ResponseFormat": "JSON", **self._credentials(session)}
        body.update(params)
        try:
            if self._json:
                response = self.http.request("POST", PATH, json=body, idempotent=read)
            else:
                form = {key: _form_value(value) for key, value in body.items()}
                response = self.http.request("POST", PATH, data=form, idempotent=read)
            try:
                decoded = response.json()
            except ValueError:
                decoded = None
            envelope = read_envelope(decoded)
            if envelope is None:
                raise ApiError(
                    f"Oempro answered {command} with something that is not its JSON envelope "
                    "(is base_url the installation root?)",
                    method="POST",
                    url=PATH,
                    status=response.status_code,
                    body=response.text[:200] or None,
                )
        except ReconcilerError as exc:
            raise self._redacted(exc) from None
        return envelope

    def _redacted(self, error: ReconcilerError) -> ReconcilerError:
        error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
        if isinstance(error, ApiError):
            error.body = self.redact(error.body) if error.body else error.body
            error.url = self.redact(error.url) if error.url else error.url
        return error

    def _sign_in(self) -> str:
        params = {"Username": self._username, "Password": self._password}
        envelope = self._send(LOGIN, {**params, "DisableCaptcha": "true"}, None, read=False)
        if not envelope.success:
            raise error_for(LOGIN, envelope, self.redact)
        session = envelope.data.get("SessionID")
        if not isinstance(session, str) or not session:
            raise AuthError("Oempro signed in without answering a SessionID")
        return session

    # -- reading ----------------------------------------------------------------------------

    @_redacting
    def lists(self) -> list[ListRecord]:
        """Every list of the user, archived ones too (so a declared list that is archived
        is found, never created a second time), following ``RecordsFrom`` to the end."""
        found: dict[str, ListRecord] = {}
        start = 0
        for _ in range(MAX_PAGES):
            params = {
                "OrderField": "ListID",
                "OrderType": "ASC",
                "RecordsPerRequest": PAGE_SIZE,
                "RecordsFrom": start,
                "Archived": "all",
            }
            data = self.call(LISTS_GET, params, read=True)
            rows = _rows(data, "Lists", LISTS_GET)
            fresh = [r for r in (self._list(row) for row in rows) if r.id not in found]
            found.update((r.id, r) for r in fresh)
            total = _count(data.get("TotalListCount"))
            if not rows or not fresh or (total is not None and len(found) >= total):
                break
            if total is None and len(rows) < PAGE_SIZE:
                break
            start += len(rows)
        return list(found.values())

    def _list(self, row: JSONValue) -> ListRecord:
        item = row if isinstance(row, dict) else {}
        return _parse(ListRecord, {"id": item.get("ListID"), "name": item.get("Name")}, row)

    @_redacting
    def fields(self, list_id: str) -> list[FieldRecord]:
        """The list's custom fields and the account's global ones (``RelListID`` 0)."""
        params = {"SubscriberListID": _id(list_id), "ReturnGlobalCustomFields": True}
        data = self.call(FIELDS_GET, params, read=True)
        rows = _rows(data, "CustomFields", FIELDS_GET)
        try:
            return [FieldRecord.parse(row) for row in rows]
        except ValidationError:
            raise _shape_error(FIELDS_GET, rows) from None

    @_redacting
    def segments(self, list_id: str) -> list[SegmentRecord]:
        """Every segment of the list (one unpaginated answer), by ascending id (G11)."""
        params = {
            "SubscriberListID": _id(list_id),
            "OrderField": "SegmentID",
            "OrderType": "ASC",
            # Each segment's (cached) SubscriberCount, in this one answer: the plan shows
            # it on updates and deletes. True is the documented default.
            "IncludeTotals": True,
        }
        data = self.call(SEGMENTS_GET, params, read=True)
        records = [self._segment(row) for row in _rows(data, "Segments", SEGMENTS_GET)]
        return sorted(records, key=lambda r: (len(r.id), r.id))

    def _segment(self, row: JSONValue) -> SegmentRecord:
        item = row if isinstance(row, dict) else {}
        data = {
            "id": item.get("SegmentID"),
            "name": item.get("SegmentName"),
            "operator": item.get("SegmentOperator") or "",
            "rules_json": item.get("SegmentRulesJson"),
            "legacy_rules": item.get("SegmentRules"),
            "subscriber_count": item.get("SubscriberCount"),
        }
        return _parse(SegmentRecord, data, row)

    # -- writing ----------------------------------------------------------------------------

    @_redacting
    def create_list(self, name: str) -> str:
        data = self.call(LIST_CREATE, {"SubscriberListName": name})
        return _new_id(data, "ListID", LIST_CREATE)

    @_redacting
    def create_field(self, list_id: str, name: str, field_type: str, validation: str) -> str:
        params = {
            "SubscriberListID": _id(list_id),
            "FieldName": name,
            "FieldType": field_type,
            "ValidationMethod": validation,
        }
        return _new_id(self.call(FIELD_CREATE, params), "CustomFieldID", FIELD_CREATE)

    @_redacting
    def create_segment(self, list_id: str, name: str, operator: str, rules_json: str) -> str:
        params = {
            "SubscriberListID": _id(list_id),
            "SegmentName": name,
            "SegmentOperator": operator,
            "RulesJson": rules_json,
        }
        return _new_id(self.call(SEGMENT_CREATE, params), "SegmentID", SEGMENT_CREATE)

    @_redacting
    def update_segment(self, segment_id: str, name: str, operator: str, rules_json: str) -> None:
        """Name, operator and the complete rules in one call (G3, G4, G8)."""
        params = {
            "SegmentID": _id(segment_id),
            "SegmentName": name,
            "SegmentOperator": operator,
            "RulesJson": rules_json,
        }
        self.call(SEGMENT_UPDATE, params)

    @_redacting
    def delete_segments(self, segment_ids: Sequence[str]) -> None:
        self.call(SEGMENTS_DELETE, {"Segments": ",".join(segment_ids)})


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _id(value: str) -> int | str:
    """An id as the docs' JSON examples send it: a number where it is one."""
    return int(value) if value.isdigit() else value


def _count(value: JSONValue) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _rows(data: Mapping[str, JSONValue], key: str, command: str) -> list[JSONValue]:
    rows = data.get(key)
    if rows is None or rows == "" or rows is False:
        return []  # an empty collection is sometimes null or absent
    if isinstance(rows, dict):
        rows = list(rows.values())
    if not isinstance(rows, list):
        raise _shape_error(command, data)
    return rows


_T = TypeVar("_T", bound=_Record)


def _parse(model: type[_T], data: Mapping[str, object], raw: JSONValue) -> _T:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise _shape_error(f"a {model.__name__}", raw) from None


def _new_id(data: Mapping[str, JSONValue], key: str, command: str) -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) in ("", "0"):
        raise _shape_error(f"{command} (no {key})", data)
    return str(value)


def _shape_error(what: str, data: object) -> ApiError:
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    return ApiError(f"Oempro answered {what} with an unexpected shape", body=text[:200])
