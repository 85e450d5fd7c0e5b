"""Secret redaction and body excerpts: nothing secret leaves the HTTP layer in text."""

from __future__ import annotations

import base64
import html
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus

import httpx

__all__ = [
    "EXCERPT_CHARS",
    "RedactingFilter",
    "credential_secrets",
    "excerpt",
    "redact",
    "redact_forms",
    "secret_forms",
]

EXCERPT_CHARS = 200
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-auth-token", "api-key", "cookie"}
)
_SCHEME_TOKEN = re.compile(r"\b(Basic|Bearer|Token|Digest)\s+[A-Za-z0-9._~+/=-]{8,}")
_SECRET_PARAM = re.compile(
    r"(?i)\b((?:api[_-]?key|apikey|access[_-]?token|token|password|passwd|secret|"
    r"client[_-]?secret|signature|key)=)[^&#\s\"']+"
)
_URL_PASSWORD = re.compile(r"(://[^/@:\s]+:)[^/@\s]+@")
_HTML_DROP = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->")
_HTML_TAG = re.compile(r"(?s)<[^>]*>")
_MIN_DERIVED_SECRET = 6
"""Parts derived from credentials shorter than this (Campaign Monitor's password "x") are
not redacted on their own: replacing every "x" would wreck messages and hide nothing."""


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret, in its plain, URL-encoded and base64 forms, as ``***``.

    Also masks credential-looking query parameters, URL passwords and ``Basic``/``Bearer``
    tokens whatever their value, as a second line of defence.
    """
    return redact_forms(text, secret_forms(secrets))


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Every form of each secret to replace, longest first.

    Plain, URL-encoded (path and form style) and base64; the base64 prefix made of whole
    3-byte groups also hides the secret as the user of a Basic ``user:password`` pair.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        encoded = base64.b64encode(secret.encode()).decode()
        aligned = encoded[: len(secret.encode()) // 3 * 4]  # also a prefix of b64(secret + ":pw")
        forms.update({secret, quote(secret, safe=""), quote(secret), quote_plus(secret)})
        forms.update(f for f in (encoded, aligned) if len(f) >= 4)
    return tuple(sorted(forms, key=len, reverse=True))


def redact_forms(text: str, forms: Sequence[str]) -> str:
    """``text`` with the generic patterns masked, then each of ``forms`` replaced."""
    text = _SCHEME_TOKEN.sub(r"\1 ***", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    text = _URL_PASSWORD.sub(r"\1***@", text)
    for form in forms:
        if form in text:
            text = text.replace(form, "***")
    return text


def credential_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, their tokens, and the user and password of Basic auth."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() not in _CREDENTIAL_HEADERS or not value:
            continue
        found.append(value)
        scheme, _, token = value.partition(" ")
        if not token:
            continue
        found.append(token)
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(token, validate=True).decode()
            except ValueError:
                continue
            found.append(pair)
            found += [p for p in pair.split(":", 1) if len(p) >= _MIN_DERIVED_SECRET]
    return found


class RedactingFilter(logging.Filter):
    """Redacts one client's secrets from records of another library's logger (httpx's).

    It holds its client's ``redact`` weakly, so a client never closed is still freed.
    """

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = weakref.WeakMethod(redact)

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redact()
        if redact is not None:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


def excerpt(response: httpx.Response, forms: Sequence[str]) -> str | None:
    """At most ``EXCERPT_CHARS`` of the body as one line of text, HTML reduced, redacted."""
    try:
        text = response.text
    except (LookupError, ValueError):
        text = response.content.decode("utf-8", "replace")
    if "html" in response.headers.get("Content-Type", "") or text.lstrip().startswith("<"):
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_DROP.sub(" ", text)))
    text = redact_forms(" ".join(text.split()), forms)
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1].rstrip() + "…"
    return text or None
