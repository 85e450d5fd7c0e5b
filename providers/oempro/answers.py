"""Oempro's answers read once, here: the envelope, its error codes, the core's exceptions.

Every handled answer is HTTP 200 with ``{"Success": bool, "ErrorCode": ..., "ErrorText":
...}`` and the payload at the top level (providers/oempro.md sections 1 and 5, G5):

- ``ErrorCode`` is an integer, a list of integers (several problems at once, e.g. ``[1, 2,
  3]``), or (one older example) an object whose values are the codes; ``ErrorText`` is a
  string, a list parallel to ``ErrorCode``, or absent. Both are normalised to tuples.
- Command-specific codes are small integers whose meaning differs per command: each is
  described with its own command's meaning (:data:`MEANINGS`), never guessed across commands.
- ``99998`` is an authentication failure or an expired session (the provider signs in
  again once when it uses a session); ``99999`` a missing permission for the command. The
  Octeth error-handling page swaps the two labels, contradicting every endpoint page and the
  Oempro 4 docs: the endpoint pages win, and both are reported as ``AuthError`` naming the
  command, so neither is ever retried as something else.
- Octeth 5.9.3+ "hard failures" use HTTP 4xx/5xx with the same envelope (``100000`` body not
  JSON, ``100003`` unknown command, ...): :class:`Classifier` reads them for the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx

from providers._http import Verdict
from reconciler.errors import ApiError, AuthError, NotFound, ProviderError
from reconciler.model import JSONValue

__all__ = [
    "AUTH_FAILED",
    "NO_PERMISSION",
    "Classifier",
    "Envelope",
    "error_for",
    "read_envelope",
]

AUTH_FAILED = 99998
NO_PERMISSION = 99999
NOT_FOUND = 99997
OLD_BAD_SESSION = 101
"""One older Octeth page: "Invalid SessionID or APIKey" (but 101 is "2FA required" for
``User.Login``)."""
PATH = "/api.php"
TEXT_CHARS = 300

MEANINGS: dict[str, dict[int, str]] = {
    "User.Login": {
        1: "missing username",
        2: "missing password",
        3: "invalid username or password",
        6: "invalid two-factor code",
        101: "two-factor authentication is required",
    },
    "Lists.Get": {},
    "List.Create": {
        1: "missing list name",
        2: "a list with this name already exists",
        3: "the user group's list limit is reached",
    },
    "CustomFields.Get": {1: "missing subscriber list id"},
    "CustomField.Create": {
        1: "missing subscriber list id",
        2: "missing field name",
        3: "missing field type",
        4: "missing validation rule",
    },
    "Segments.Get": {1: "missing subscriber list id"},
    "Segment.Create": {
        1: "missing subscriber list id",
        2: "missing segment name",
        3: "missing segment operator",
        4: "the list does not exist or does not belong to the user",
    },
    "Segment.Update": {
        1: "missing segment id",
        2: "missing segment name",
        3: "missing segment operator",
        4: "invalid segment id (it does not exist or is not the user's)",
        5: "invalid segment operator",
        6: "invalid subscriber list id",
    },
    "Segments.Delete": {1: "segment ids are missing"},
}
"""Per command, what each of its own codes means (providers/oempro.md; CustomField.Create
from Octeth's api-reference/custom-fields.md). Codes not listed are shown with the server's
text only."""

HARD_FAILURES = {
    100000: "the request body is not valid JSON",
    100001: "the connection method is not allowed",
    100002: "an internal error",
    100003: "the command is unknown to this installation",
    100004: "an internal error",
    100005: "an internal error",
}


@dataclass(frozen=True)
class Envelope:
    """One decoded answer: whether it succeeded, its codes and texts, and the payload."""

    success: bool
    codes: tuple[int, ...]
    texts: tuple[str, ...]
    data: dict[str, JSONValue]


def _codes(value: JSONValue) -> tuple[int, ...]:
    items = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(items, list):
        items = [items]
    found: list[int] = []
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            found.append(item)
        elif isinstance(item, str) and item.strip().lstrip("-").isdigit():
            found.append(int(item))
    return tuple(code for code in found if code != 0)


def _texts(value: JSONValue) -> tuple[str, ...]:
    items = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(items, list):
        items = [items]
    return tuple(str(item) for item in items if item not in (None, ""))


def read_envelope(body: JSONValue) -> Envelope | None:
    """The envelope of a decoded body, or None when it is not one (not an object)."""
    if not isinstance(body, dict):
        return None
    success = body.get("Success") in (True, 1, "1", "true", "True")
    return Envelope(success, _codes(body.get("ErrorCode")), _texts(body.get("ErrorText")), body)


def describe(command: str, envelope: Envelope) -> str:
    """``code 2 (missing segment name); code 4 (...)`` with the server's own words."""
    meanings = MEANINGS.get(command, {})
    texts = envelope.texts
    parts: list[str] = []
    for index, code in enumerate(envelope.codes):
        meaning = meanings.get(code) or HARD_FAILURES.get(code)
        if code == AUTH_FAILED:
            meaning = "authentication failed or the session expired"
        elif code == NO_PERMISSION:
            meaning = f"the user has no permission for {command}"
        server = texts[index] if len(texts) == len(envelope.codes) else ""
        detail = "; ".join(p for p in (meaning, f'server: "{server}"' if server else "") if p)
        parts.append(f"ErrorCode {code}" + (f" ({detail})" if detail else ""))
    if len(texts) != len(envelope.codes) and texts:
        parts.append(f'server: "{" / ".join(texts)}"')
    return ("; ".join(parts) or "no error code")[:TEXT_CHARS]


def error_for(command: str, envelope: Envelope, redact: Callable[[str], str]) -> ProviderError:
    """The core's exception for a ``Success: false`` answer to ``command``."""
    what = redact(describe(command, envelope))
    codes = set(envelope.codes)
    if AUTH_FAILED in codes or (OLD_BAD_SESSION in codes and command != "User.Login"):
        return AuthError(
            f"Oempro refused the credentials for {command} ({what}); check the target's "
            "api_key, or its username and password"
        )
    if NO_PERMISSION in codes:
        return AuthError(
            f"the Oempro user may not run {command} ({what}); give its user group the "
            f'"{command}" permission'
        )
    if command == "User.Login":
        hint = "check the target's username and password"
        if codes & {6, 101}:
            hint = "two-factor sign-in cannot be automated: use an api_key for this target"
        return AuthError(f"Oempro refused to sign in ({what}); {hint}")
    if NOT_FOUND in codes or (command in ("Segment.Update", "Segment.Create") and 4 in codes):
        return NotFound(f"Oempro answered {command} with {what}; run plan again")
    return ApiError(f"Oempro refused {command}", method="POST", url=PATH, status=200, body=what)


class Classifier:
    """The ``classify`` hook of the target's ``HttpClient``: Octeth's hard failures (HTTP
    4xx/5xx carrying the envelope) become one clear error, never retried; 401, 403, 404,
    429 and 502-504 keep the client's own handling."""

    _KEEP = frozenset({401, 403, 404, 429, 502, 503, 504})

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def __call__(self, response: httpx.Response) -> Verdict | None:
        if response.status_code < 400 or response.status_code in self._KEEP:
            return None
        try:
            envelope = read_envelope(response.json())
        except ValueError:
            return None
        if envelope is None:
            return None
        command = _command_of(response.request)
        what = self._redact(describe(command, envelope))
        return Verdict(
            error=ApiError(
                f"Oempro failed {command}",
                method="POST",
                url=PATH,
                status=response.status_code,
                body=what,
            )
        )


def _command_of(request: httpx.Request) -> str:
    """The ``Command`` a request carried (for messages only)."""
    try:
        if request.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(request.content)
            found = body.get("Command") if isinstance(body, dict) else None
        else:
            found = dict(parse_qsl(request.content.decode())).get("Command")
    except (ValueError, UnicodeDecodeError):
        found = None
    return found if isinstance(found, str) else "the command"
