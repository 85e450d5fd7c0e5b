"""Secret redaction and body excerpts: nothing secret leaves the HTTP layer in text.

A :class:`Redactor` masks a set of secrets wherever one stands as a whole token, in any of
the forms it travels in: raw; percent-encoded (any of its characters as ``%XX`` of their
UTF-8 bytes, a space as ``+``); escaped the way JSON and Python write strings (``\\u002d``
in either case, a surrogate pair, ``\\/``, ``\\"``, ``\\n``, ``\\x1b``, a UTF-8 byte as
``\\xc3``); any mixture of those; and base64 (the whole secret, and the user part at the
start of a Basic ``user:password`` token). "A whole token" means: where the secret begins
(ends) with a letter or digit, the text just before (after) it is not a letter or digit,
unless that letter or digit ends an escape (``%20``, ``\\u00e9``, ``\\n``). So a one-letter
key masks the word ``k`` but leaves ``known`` alone, and a secret is still masked right
after an encoded space (``q=hello%20SECRET``).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus

import httpx

__all__ = [
    "EXCERPT_CHARS",
    "RedactingFilter",
    "Redactor",
    "credential_fields",
    "credential_secrets",
    "excerpt",
    "redact",
]

EXCERPT_CHARS = 200
_EXCERPT_SCAN = 64 * 1024
"""Characters of a body read for an excerpt: redacting more would cost time for text that
is never shown."""
MASK = "***"
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-auth-token", "api-key", "cookie"}
)
_CREDENTIAL_WORDS = re.compile(
    r"apikey|password|passwd|passphrase|secret|token|sessionid|signature|credential"
)
"""In a body field or query parameter name (lowercased, letters and digits only): its
value is a credential (Oempro's ``APIKey``, ``Password``, ``SessionID``; ``client_secret``)."""
_CREDENTIAL_NAMES = frozenset({"key", "auth", "pass", "pwd", "sid"})
_PARAM_NAMES = (
    r"api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|token|password|passwd|secret|"
    r"client[_-]?secret|signature|session[_-]?id|key"
)
_SCHEME_TOKEN = re.compile(r"\b(Basic|Bearer|Token|Digest)\s+[A-Za-z0-9._~+/=-]{8,}")
_SECRET_PARAM = re.compile(rf"(?i)\b((?:{_PARAM_NAMES})=)[^&#\s\"']+")
_SECRET_JSON = re.compile(rf'(?i)("(?:{_PARAM_NAMES})"\s*:\s*")(?:[^"\\]|\\.)+(")')
_URL_PASSWORD = re.compile(r"(://[^/@:\s]+:)[^/@\s]+@")
_HTML_DROP = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->")
_HTML_TAG = re.compile(r"(?s)<[^>]*>")
_MIN_DERIVED_USER = 6
"""The user half of a Basic pair is masked on its own only from this length: it is often
no secret (Mautic's username), and the whole pair and the password are masked anyway."""
_MIN_TAIL = 4
"""Characters of a secret's start that, ending a text, are masked as a secret cut short
(a body excerpt cut at a fixed length by whoever quoted it)."""
_TAIL_AFTER = re.compile(r"(?:…|\.\.\.)?\Z")
_MIN_ALIGNED = 6
"""Bytes a secret needs before the base64 prefix it leaves inside a longer base64 token
(``base64(secret + ":pw")``) is masked too: shorter prefixes would hit unrelated text."""

_SHORT_ESCAPES = {"/": "\\/", '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SHORT_ESCAPES |= {"\b": "\\b", "\f": "\\f", "'": "\\'"}
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_TOKEN_START = (
    r"(?:(?<![^\W_])|(?<=%[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4})"
    r"|(?<=\\U[0-9A-Fa-f]{8})|(?<=\\x[0-9A-Fa-f]{2})|(?<=\\[nrtbf]))"
)
"""Where a secret beginning with a letter or digit may start: not right after another
letter or digit, unless that one ends an escape sequence."""
_TOKEN_END = r"(?![^\W_])"


def _hex(value: int, width: int) -> str:
    """``value`` as ``width`` hex digits, matching either case."""
    digits = f"{value:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char(ch: str) -> str:
    """Every way one character of a secret may be written in a message."""
    code = ord(ch)
    ways = [re.escape(ch)]
    utf8 = ch.encode("utf-8", "surrogatepass")
    ways.append("".join(r"(?:%|\\u0025)" + _hex(byte, 2) for byte in utf8))
    if ch == " ":
        ways.append(r"\+")
    if code <= 0xFFFF:
        ways.append(r"\\u" + _hex(code, 4))
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        ways.append(r"\\u" + _hex(high, 4) + r"\\u" + _hex(low, 4))
        ways.append(r"\\U" + _hex(code, 8))
    if code <= 0xFF:
        ways.append(r"\\x" + _hex(code, 2))
    if code > 0x7F:
        ways.append("".join(r"\\x" + _hex(byte, 2) for byte in utf8))
    if ch in _SHORT_ESCAPES:
        ways.append(re.escape(_SHORT_ESCAPES[ch]))
    if ch in _ENTITIES:
        ways.append(_ENTITIES[ch])
    ways.append(f"&#0*{code};|&#[xX]0*{_hex(code, 1)};")
    return "(?:" + "|".join(dict.fromkeys(ways)) + ")"


def _pattern(secret: str, *, whole: bool = True) -> str:
    """``secret`` in any of its written forms, as a whole token (``whole=False``: only its
    start must be one, for a prefix of a longer base64 token)."""
    start = _TOKEN_START if secret[0].isalnum() else ""
    end = _TOKEN_END if whole and secret[-1].isalnum() else ""
    return start + "".join(_char(ch) for ch in secret) + end


class Redactor:
    """Masks a fixed set of secrets, in all their forms, in any text; thread-safe."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        forms: dict[str, int] = {}  # pattern -> length of the form, longest tried first
        for secret in self.secrets:
            forms.setdefault(_pattern(secret), len(secret))
            data = secret.encode("utf-8", "surrogatepass")
            encoded = base64.b64encode(data).decode()
            forms.setdefault(_pattern(encoded), len(encoded))
            aligned = encoded[: len(data) // 3 * 4]  # a prefix of base64(secret + ":pw")
            if len(data) >= _MIN_ALIGNED and aligned != encoded:
                forms.setdefault(_pattern(aligned, whole=False), len(aligned))
        ordered = sorted(forms, key=lambda pattern: (-forms[pattern], pattern))
        self._regex = re.compile("|".join(ordered)) if ordered else None
        self._tails: dict[str, list[tuple[int, str]]] = {}
        """Last character of a cut -> (length, form) of every prefix it may end, longest
        first; so a text is checked only against the prefixes its last character ends."""
        for form in {form for secret in self.secrets for form in _plain_forms(secret)}:
            for size in range(_tail_minimum(form), len(form)):
                self._tails.setdefault(form[size - 1], []).append((size, form))
        for prefixes in self._tails.values():
            prefixes.sort(reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with the generic patterns masked, then each secret in every form."""
        text = _SCHEME_TOKEN.sub(rf"\1 {MASK}", text)
        text = _SECRET_PARAM.sub(rf"\1{MASK}", text)
        text = _SECRET_JSON.sub(rf"\1{MASK}\2", text)
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
        if self._regex is not None:
            text = self._regex.sub(MASK, text)
        return self._cut_short(text)

    def _cut_short(self, text: str) -> str:
        """``text`` with the start of a secret that ends it (cut off by a truncation) masked."""
        end = _TAIL_AFTER.search(text)
        stop = end.start() if end is not None else len(text)
        for size, form in self._tails.get(text[stop - 1], ()) if stop else ():
            start = stop - size
            if start < 0 or not text.startswith(form[:size], start):
                continue
            if form[0].isalnum() and start > 0 and text[start - 1].isalnum():
                continue
            return text[:start] + MASK + text[stop:]
        return text

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """This redactor with more secrets (itself when they are all known already)."""
        more = frozenset(s for s in secrets if s)
        return self if more <= self.secrets else Redactor(self.secrets | more)


def _tail_minimum(form: str) -> int:
    """How much of ``form`` a cut must have kept to be masked: ``_MIN_TAIL`` characters,
    and past the colon of a ``user:password`` pair (a user name alone is no secret)."""
    for colon in (":", "%3A"):
        at = form.find(colon)
        if at > 0:
            return max(_MIN_TAIL, at + len(colon) + 1)
    return _MIN_TAIL


def _plain_forms(secret: str) -> set[str]:
    """The common written forms of ``secret``, for spotting one cut short."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    }


@functools.lru_cache(maxsize=64)
def _redactor(secrets: frozenset[str]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret, in every form it may be written in, as ``***``.

    Also masks credential-looking query parameters and JSON members, URL passwords and
    ``Basic``/``Bearer`` tokens whatever their value, as a second line of defence.
    """
    return _redactor(frozenset(secrets))(text)


def credential_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, their tokens, and the pair, password (and a long enough
    user) of Basic auth."""
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
            user, _, password = pair.partition(":")
            found += [pair, password]
            if len(user) >= _MIN_DERIVED_USER:
                found.append(user)
    return [secret for secret in found if secret]


def _is_credential_name(name: str) -> bool:
    folded = "".join(ch for ch in name.lower() if ch.isalnum())
    return folded in _CREDENTIAL_NAMES or _CREDENTIAL_WORDS.search(folded) is not None


def credential_fields(data: object) -> list[str]:
    """Values of credential-named members anywhere in a form, JSON body or query mapping
    (``APIKey``, ``Password``, ``SessionID``, ``client_secret``, ``access_token``...)."""
    found: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, str) and _is_credential_name(str(key)):
                found.append(value)
            else:
                found += credential_fields(value)
    elif isinstance(data, list | tuple):
        for item in data:
            found += credential_fields(item)
    return [secret for secret in found if secret]


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


def excerpt(response: httpx.Response, redact: Callable[[str], str] | Redactor) -> str | None:
    """At most ``EXCERPT_CHARS`` of the body as one line of text, HTML reduced, redacted.

    The body is redacted before it is reduced (tags stripped, entities decoded, spaces
    collapsed, so no secret is cut apart first) and again after (in case reducing spelled
    one out), then cut."""
    try:
        text = response.text
    except (LookupError, ValueError):
        text = response.content.decode("utf-8", "replace")
    text = redact(text[:_EXCERPT_SCAN])
    if "html" in response.headers.get("Content-Type", "") or text.lstrip().startswith("<"):
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_DROP.sub(" ", text)))
    text = redact(" ".join(text.split())[: EXCERPT_CHARS * 4])
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1].rstrip() + "…"
    return text or None
