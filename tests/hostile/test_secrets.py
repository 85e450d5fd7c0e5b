"""Secrets never printed (issue 11, item 5).

A fake server echoes whatever it is sent (URL, headers, body) back in every encoding a
server might use; no form of a credential may survive in any message the HTTP layer or a
provider builds from that answer, nor in a log line. Redaction must not mangle text that
only contains a secret inside a longer word. Nothing here sleeps or leaves the machine.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import h11
import httpx
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from providers._http import HttpClient, RetryPolicy, Verdict, redact
from providers._http.redaction import Redactor
from providers.mailwizz import MailWizzProvider
from providers.mailwizz.settings import MailWizzSettings
from reconciler.errors import ApiError, ConfigError, ReconcilerError
from reconciler.provider import ProviderContext, Scope
from tests.providers.fakes import FakeClock

BASE = "https://api.example.test/v3"
KEY = "k3y-SECRET-0123456789abcdef"
MASK = "***"
ONCE = RetryPolicy(max_attempts=1)


# -- the check: no form of a secret stands as a whole token ---------------------------------


def _whole_token_at(text: str, form: str, start: int) -> bool:
    """Whether ``form`` found at ``start`` is a token of its own, not inside a longer word
    of letters and digits."""
    end = start + len(form)
    glued_before = form[0].isalnum() and start > 0 and text[start - 1].isalnum()
    glued_after = form[-1].isalnum() and end < len(text) and text[end].isalnum()
    return not glued_before and not glued_after


def _escape_all(secret: str) -> str:
    """Every character as a JSON ``\\uXXXX`` escape (surrogate pairs past the BMP)."""
    return "".join(
        f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else json.dumps(ch)[1:-1] for ch in secret
    )


def forms_of(secret: str, user: str | None = "alice") -> set[str]:
    """The forms a credential travels in: raw, URL-encoded, JSON-escaped, base64 (alone,
    and as the password of ``user`` in a Basic pair)."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        _escape_all(secret),
        _escape_all(secret).upper().replace("\\U", "\\u"),
        base64.b64encode(secret.encode()).decode(),
        repr(secret)[1:-1],  # as Python quotes text
        repr(secret.encode())[2:-1],  # as h11 quotes a header it refuses
    }
    if user is not None:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return {form for form in forms if form}


def leaks(text: str, forms: set[str]) -> list[str]:
    """The forms that stand as whole tokens in ``text`` once masks are set aside."""
    found = []
    for part in text.split(MASK):
        for form in forms:
            start = part.find(form)
            while start != -1:
                if _whole_token_at(part, form, start):
                    found.append(form)
                    break
                start = part.find(form, start + 1)
    return found


def texts_of(error: BaseException) -> list[str]:
    """Everything of an error that could be printed: its message and its text fields."""
    return [str(error), *(v for v in vars(error).values() if isinstance(v, str))]


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line of the HTTP layer and of httpx, at debug level."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("httpx", "providers.http")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> HttpClient:
    context = ProviderContext(clock=FakeClock(), http_transport=httpx.MockTransport(handler))
    kwargs.setdefault("retry", ONCE)
    return HttpClient(base_url=BASE, context=context, **kwargs)


# -- the property: an echoing server cannot make the client print a secret ------------------

ECHOES: dict[str, Callable[[str], str]] = {
    "raw": lambda text: text,
    "json": lambda text: json.dumps({"error": text}),
    "json-unicode": lambda text: json.dumps({"error": text}, ensure_ascii=False),
    "json-slashes": lambda text: json.dumps({"error": text}).replace("/", "\\/"),
    "json-every-char": lambda text: '{"error": "' + _escape_all(text) + '"}',
    "url-encoded": lambda text: "error=" + quote_plus(text),
    "percent-encoded": lambda text: "error: " + quote(text, safe=""),
    "html": lambda text: f"<html><body><p>{text}</p></body></html>",
}

header_safe = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24
)
any_secret = st.text(min_size=1, max_size=24).filter(lambda s: s.strip("*") != "")
surrounding = st.text(max_size=40)


def _echo(request: httpx.Request) -> str:
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    return f"{request.method} {request.url} | {headers} | {request.content.decode()}"


@example(secret="k", note="known k", echo="raw", way="header", status=400)
@example(secret="s3cr3t-2", note="x", echo="json-every-char", way="form", status=500)
@example(secret="é/", note="café", echo="json", way="json", status=200)
@given(
    secret=st.one_of(header_safe, any_secret),
    note=surrounding,
    echo=st.sampled_from([*sorted(ECHOES), "protocol-error"]),
    way=st.sampled_from(["header", "basic", "query", "form", "json"]),
    status=st.sampled_from([200, 400, 422, 500, 503]),
)
def test_no_form_of_a_secret_survives_an_echoing_server(
    secret: str, note: str, echo: str, way: str, status: int
) -> None:
    if way in ("header", "basic"):  # what a header can carry at all
        assume(secret.isascii() and secret.isprintable() and secret == secret.strip())

    def answer(request: httpx.Request) -> httpx.Response:
        if echo == "protocol-error":  # a transport error quoting what it choked on
            raise httpx.RemoteProtocolError(f"Illegal header value {_echo(request).encode()!r}")
        body = ECHOES[echo](_echo(request))
        return httpx.Response(status, content=body.encode(), headers={"X-Echo": "yes"})

    def quoting(response: httpx.Response) -> Verdict | None:  # a provider quoting the body
        if response.status_code == 422:
            return Verdict(error=ApiError(f"refused: {response.text}", body=response.text))
        return None

    kwargs: dict[str, Any] = {"classify": quoting, "retry": RetryPolicy(max_attempts=2)}
    if way == "header":
        kwargs |= {"headers": {"X-Api-Key": secret}, "secrets": [secret]}
    elif way == "basic":
        kwargs |= {"auth": httpx.BasicAuth("alice", secret)}
    elif way == "query":
        kwargs |= {"secrets": [secret]}
    lines: list[str] = []
    handler = _Lines(lines)
    logging.getLogger("httpx").addHandler(handler)
    texts: list[str] = []
    try:
        with client(answer, **kwargs) as http:
            if way in ("header", "basic", "query"):
                params = {"q": note, **({"apikey": secret} if way == "query" else {})}
                http.get_json("/echo", params=params)
            elif way == "form":  # Oempro: credentials travel in the body, named as such
                form = {"Command": "Lists.Get", "Note": note, "APIKey": secret}
                http.request("POST", "/echo", data=form, idempotent=True)
            else:
                http.send_json("POST", "/echo", {"Note": note, "SessionID": secret})
    except ReconcilerError as exc:
        texts = texts_of(exc)
    finally:
        logging.getLogger("httpx").removeHandler(handler)
    assert texts or (status == 200 and echo != "protocol-error")  # an error to check
    forms = forms_of(secret)
    for text in [*texts, *lines]:
        assert not leaks(text, forms), (text, leaks(text, forms))


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@given(secret=any_secret, before=surrounding, after=surrounding)
def test_redact_masks_every_form_standing_alone(secret: str, before: str, after: str) -> None:
    forms = forms_of(secret, user=None)
    for form in forms:
        text = f"{before} {form} {after}"
        assert not leaks(redact(text, [secret]), forms), (form, text)


@given(secret=any_secret, words=st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)))
def test_redact_leaves_words_that_only_contain_a_secret(secret: str, words: list[str]) -> None:
    glued = [word for word in words if secret in word and word != secret]
    text = " ".join(glued)
    assert redact(text, [secret]) == text


# -- the cases the issue names ----------------------------------------------------------------


def test_a_one_letter_key_does_not_mangle_words_but_is_masked_as_a_word() -> None:
    assert redact("known k unknown kk (k) key=k", ["k"]) == "known *** unknown kk (***) key=***"


@pytest.mark.parametrize(
    "body",
    [
        '{"error": "unknown key k3y\\u002dSECRET\\u002d0123456789abcdef"}',
        '{"error": "unknown key \\u006b3y-SECRET-0123456789ABCDEF"}',  # a different key
        '{"error": "unknown key k3y\\u002DSECRET\\u002D0123456789abcdef"}',
        '{"error": "unknown key \\u006B\\u0033y-SECRET-0123456789abcdef"}',
        '{"error": "unknown key k3y%2DSECRET-0123456789abcdef"}',
    ],
)
def test_a_json_escaped_key_in_a_body_is_masked(body: str) -> None:
    with (
        client(lambda request: httpx.Response(400, text=body), secrets=[KEY]) as http,
        pytest.raises(ApiError) as caught,
    ):
        http.get_json("/lists")
    decoded = json.loads(caught.value.body or "{}") if "%" not in body else {}
    assert KEY not in json.dumps(decoded) and KEY not in str(caught.value)
    if "ABCDEF" in body:  # not the key: left alone
        assert "0123456789ABCDEF" in str(caught.value)
    else:
        assert caught.value.body == '{"error": "unknown key ***"}'


def test_basic_auth_pair_and_password_alone_are_masked_in_base64() -> None:
    password = "hunter2-horse-battery"
    pair = base64.b64encode(f"admin:{password}".encode()).decode()
    alone = base64.b64encode(password.encode()).decode()
    body = f"header {pair} password {alone} raw {password} admin"
    with (
        client(
            lambda request: httpx.Response(500, text=body), auth=httpx.BasicAuth("admin", password)
        ) as http,
        pytest.raises(ApiError) as caught,
    ):
        http.get_json("/lists")
    assert caught.value.body == "header *** password *** raw *** admin"


@pytest.mark.parametrize("value", ["abc\n", "ab\rc", "abc\x00", "abcé", " abc", "a\x1bc"])
def test_an_illegal_header_value_is_named_never_quoted(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        client(lambda request: httpx.Response(200), headers={"X-Api-Key": value})
    message = str(caught.value)
    assert "X-Api-Key header" in message and "not shown" in message
    assert value.strip() not in message and repr(value) not in message


def test_h11_refusing_a_header_is_reported_without_its_value() -> None:
    """httpx's real transport raises ``LocalProtocolError("Illegal header value b'...'")``
    quoting the value; the client reports it without quoting anything."""

    def h11_like(request: httpx.Request) -> httpx.Response:
        try:
            h11.Request(method=request.method, target="/", headers=request.headers.raw)
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        return httpx.Response(200)

    class SneakyAuth(httpx.Auth):  # sets a header value the client never saw
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, Any, None]:
            request.headers["X-Api-Key"] = f"{KEY}\x0b"
            yield request

    with client(h11_like, auth=SneakyAuth()) as http, pytest.raises(ApiError) as caught:
        http.get_json("/lists")
    assert "not valid HTTP" in str(caught.value) and "value is not shown" in str(caught.value)
    assert not leaks(str(caught.value), forms_of(KEY))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_per_call_header_with_a_line_break_is_refused_unquoted() -> None:
    with (
        client(lambda request: httpx.Response(200)) as http,
        pytest.raises(ApiError, match="Authorization header would hold a line break") as caught,
    ):
        http.request("GET", "/x", headers={"Authorization": f"Bearer {KEY}\r\nX: y"})
    assert KEY not in str(caught.value)


def test_an_invalid_url_is_reported_without_quoting_it() -> None:
    with (
        client(lambda request: httpx.Response(200), secrets=[KEY]) as http,
        pytest.raises(ApiError, match="could not build the request URL") as caught,
    ):
        http.get_json(f"/lists/{KEY}\n")
    assert KEY not in str(caught.value)


def test_credentials_named_in_a_form_body_are_learned_and_masked() -> None:
    """Oempro sends ``APIKey``, ``Password`` and ``SessionID`` in the body: an answer
    echoing them, in any encoding, shows none of them."""
    echoed = json.dumps({"ErrorText": f"bad {KEY} / p\u00e4ss-w0rd / sess-1234567"})
    login = {"Command": "User.Login", "APIKey": KEY, "Password": "p\u00e4ss-w0rd"}
    with client(lambda request: httpx.Response(400, text=echoed)) as http:
        with pytest.raises(ApiError) as caught:
            http.request("POST", "/api.php", data=login)
        with pytest.raises(ApiError) as again:
            http.request("POST", "/api.php", json={"SessionID": "sess-1234567", "A": "x"})
    assert caught.value.body == '{"ErrorText": "bad *** / *** / sess-1234567"}'
    assert again.value.body == '{"ErrorText": "bad *** / *** / ***"}'


def test_a_provider_can_register_a_secret_it_receives() -> None:
    with client(lambda request: httpx.Response(500, text="token tok-9876543 expired")) as http:
        http.add_secrets("tok-9876543")
        with pytest.raises(ApiError) as caught:
            http.get_json("/x")
    assert caught.value.body == "token *** expired"


def test_error_fields_are_redacted_not_only_the_message() -> None:
    def refuse(response: httpx.Response) -> Verdict:
        return Verdict(error=ApiError("no", url=f"/x?k={KEY}", body=f"key {KEY}"))

    with (
        client(lambda request: httpx.Response(400), classify=refuse, secrets=[KEY]) as http,
        pytest.raises(ApiError) as caught,
    ):
        http.get_json("/x")
    assert (caught.value.url, caught.value.body) == ("/x?k=***", "key ***")


def test_log_lines_never_carry_a_secret(logged: list[str]) -> None:
    with client(lambda request: httpx.Response(503, text=KEY), secrets=[KEY]) as http:
        http.retry = RetryPolicy(max_attempts=3)
        with pytest.raises(ApiError):
            http.get_json("/lists", params={"key": KEY, "token": quote(KEY)})
    assert len(logged) >= 5
    assert not any(leaks(line, forms_of(KEY)) for line in logged)


def test_excerpts_are_redacted_before_spaces_collapse() -> None:
    secret = "ab  cd\tef"
    body = f"x {secret} y <b>{secret}</b>"
    http = client(lambda request: httpx.Response(500, text=body), secrets=[secret])
    with http, pytest.raises(ApiError) as caught:
        http.get_json("/x")
    assert caught.value.body == "x *** y <b>***</b>"


def test_a_secret_cut_short_at_the_end_of_a_quoted_body_is_masked() -> None:
    redactor = Redactor([KEY])
    assert redactor(f'answer: {{"data": "{KEY[:9]}') == 'answer: {"data": "***'
    assert redactor(f"answer: {KEY[:12]}…") == "answer: ***…"
    assert redactor("answer: k3y") == "answer: k3y"  # too short to tell from any word


# -- MailWizz: its "unexpected shape" errors quote the body ----------------------------------


def _mailwizz(answer: Callable[[httpx.Request], httpx.Response], key: str) -> MailWizzProvider:
    settings = MailWizzSettings(base_url="https://mail.example.com/api", api_key=SecretStr(key))
    context = ProviderContext(clock=FakeClock(), http_transport=httpx.MockTransport(answer))
    return MailWizzProvider("mw", settings, context)


@pytest.mark.parametrize(
    "data",
    [
        lambda key: {"records": f"key {key} is not allowed"},
        lambda key: {"records": {"echo": "\u2010", "raw": key}, "é": "\u202e"},
        lambda key: {"next_page": "x" * 174 + " " + key},  # cut at 200, 10 characters in
        lambda key: "é " * 20 + key,
    ],
    ids=["plain", "escaped", "cut", "unicode"],
)
def test_mailwizz_unexpected_shape_never_quotes_the_key(
    data: Callable[[str], Any],
) -> None:
    key = "mw-k/y+0123456789"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": data(key)})

    with _mailwizz(answer, key) as provider, pytest.raises(ApiError) as caught:
        provider.fetch(Scope())
    assert "unexpected shape" in str(caught.value)
    for text in texts_of(caught.value):
        assert not leaks(text, forms_of(key)), text
        assert key[:8] not in text and json.dumps(key)[1:9] not in text
