"""MailWizz's error answers read once, here, into the core's exception tree.

The envelope is ``{"status": "error", "error": ...}`` where ``error`` is a string, an object
keyed by attribute (possibly nested) or a list of strings (providers/mailwizz.md section 5).

- **400 is every authentication problem** (no key, unknown key, IP not allowed, inactive
  customer, API disabled for the group, missing per-key permission) and also a wrong HTTP
  method. This adapter always sends the documented method, so a 400 is reported as an
  ``AuthError`` carrying the server's own words (which tell the two apart for a person).
- **404 ``"Page not found."``** on a segment route means the route does not exist: segment
  create/update/delete and the condition-operators endpoint arrived in MailWizz 2.3.8. The
  API tells a missing route from a missing object only by this text, so the documented
  message is compared exactly, once, here. Any other 404 is ``NotFound``.
- **422** (validation, the condition limit, a segment too slow to count, the list limit) is
  an ``ApiError`` with the flattened validation messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from providers._http import Verdict, redact
from reconciler.errors import ApiError, AuthError
from reconciler.model import JSONValue

__all__ = ["PAGE_NOT_FOUND", "Classifier", "error_text"]

PAGE_NOT_FOUND = "Page not found."
TOO_OLD = (
    'this MailWizz install has no {what} route (it answers 404 "Page not found."): segment '
    "create, update and delete and the condition-operators endpoint need MailWizz 2.3.8 or "
    "newer; upgrade the install, or check that base_url is its API URL"
)
EXCERPT = 300


def error_text(body: JSONValue) -> str:
    """The ``error`` of an envelope as one line: ``name: Name cannot be blank.; ...``."""
    error = body.get("error") if isinstance(body, dict) else None
    parts: list[str] = []

    def walk(prefix: str, value: JSONValue) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(f"{prefix}[{index}]" if prefix else "", inner)
        elif value not in (None, ""):
            parts.append(f"{prefix}: {value}" if prefix else str(value))

    walk("", error)
    return "; ".join(parts)[:EXCERPT]


def _body(response: httpx.Response) -> JSONValue:
    try:
        return response.json()
    except ValueError:  # not JSON (e.g. a proxy's HTML page): default handling
        return None


class Classifier:
    """The ``classify`` hook of the provider's ``HttpClient``; knows the secrets to hide."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = tuple(secrets)

    def __call__(self, response: httpx.Response) -> Verdict | None:
        status = response.status_code
        if status not in (400, 404, 422):
            return None
        body = _body(response)
        if body is None:
            return None
        text = redact(error_text(body), self._secrets)
        request = response.request
        where = f"{request.method} {request.url.path} -> {status}"
        if status == 400:
            return Verdict(
                error=AuthError(
                    f"MailWizz refused the request ({where}: {text or 'no message'}); it "
                    "answers 400 for a missing or unknown API key, an IP address not allowed, "
                    "an inactive account, API access disabled or a key without permission for "
                    "this endpoint: check the target's api_key and the key's permissions"
                )
            )
        if status == 404:
            if text != PAGE_NOT_FOUND or "/segments" not in request.url.path:
                return None
            what = "condition-operators" if "condition-operators" in request.url.path else "segment"
            return Verdict(
                error=ApiError(
                    TOO_OLD.format(what=what),
                    method=request.method,
                    url=request.url.path,
                    status=404,
                )
            )
        return Verdict(
            error=ApiError(
                "MailWizz refused the change",
                method=request.method,
                url=request.url.path,
                status=status,
                body=text or None,
            )
        )
