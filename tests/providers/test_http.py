"""The shared HTTP layer: retries, Retry-After, limits, error translation and redaction.

Every test runs against respx with a fake clock: nothing sleeps and nothing leaves the
machine. Concurrency tests hold requests with barriers and events, never with sleeps.
"""

from __future__ import annotations

import base64
import gc
import logging
import random
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import httpx
import pytest
import respx
from pydantic import BaseModel

from providers._http import USER_AGENT, HttpClient, RetryPolicy, Verdict, redact
from providers._http.provider import HttpProvider
from providers._http.urls import check_base_url
from reconciler import __version__
from reconciler.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    NotFound,
    RateLimited,
)
from reconciler.model import LiveState
from reconciler.plan import Action, Change
from reconciler.provider import Capabilities, ProviderContext, Scope

BASE = "https://api.example.test/v3"
API_KEY = "k3y-SECRET-0123456789abcdef"
TOKEN = "tok_SECRET_abcdefghijklmnop"


class FakeClock:
    """Records every sleep and advances time by it; safe to share between threads.

    With ``advance = False`` time stands still, so waits computed by many threads at once
    are exact whatever order the threads run in.
    """

    def __init__(self) -> None:
        self.time = 1000.0
        self.advance = True
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.time

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advance:
                self.time += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router(no_real_http: respx.MockRouter) -> respx.MockRouter:
    return no_real_http


@pytest.fixture
def make_client(clock: FakeClock) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(
        *,
        max_concurrency: int | None = None,
        requests_per_second: float | None = None,
        progress: Callable[[str], None] | None = None,
        advance: Callable[[str, int, int], None] | None = None,
        **kwargs: Any,
    ) -> HttpClient:
        context = ProviderContext(
            clock=clock,
            progress=progress or (lambda message: None),
            advance=advance or (lambda label, done, total: None),
            max_concurrency=max_concurrency,
            requests_per_second=requests_per_second,
        )
        kwargs.setdefault("rng", random.Random(7))
        kwargs.setdefault("base_url", BASE)
        client = HttpClient(context=context, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_clean(error: BaseException, *secrets: str) -> None:
    """No secret in the message, and no chained httpx exception to leak one."""
    for secret in secrets:
        assert secret not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


# -- success, headers ----------------------------------------------------------------------


def test_request_sends_user_agent_naming_tool_and_version(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    route = router.get(f"{BASE}/ping").respond(200, json={"ok": True})
    assert make_client().get_json("/ping") == {"ok": True}
    sent = route.calls.last.request
    assert sent.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith(f"segment-reconciler/{__version__} ")
    assert sent.headers["Accept"] == "application/json"


def test_send_json_posts_body_and_decodes_answer(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    route = router.post(f"{BASE}/segments").respond(201, json="abc123")
    assert make_client().send_json("post", "/segments", {"Title": "VIP"}) == "abc123"
    assert route.calls.last.request.content == b'{"Title":"VIP"}'


def test_send_json_returns_none_for_empty_body(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.put(f"{BASE}/segments/1").respond(200, content=b"")
    assert make_client().send_json("PUT", "/segments/1", {"Title": "VIP"}) is None


def test_request_sends_form_data_and_raw_string_bodies(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    route = router.post(f"{BASE}/api.php").respond(200, json={})
    client = make_client()
    client.request("POST", "/api.php", data={"Command": "Segments.Get"})
    assert route.calls.last.request.content == b"Command=Segments.Get"
    client.request("POST", "/api.php", data="raw text")
    assert route.calls.last.request.content == b"raw text"


def test_requests_are_logged_at_debug_with_method_url_and_status(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    router.get(f"{BASE}/lists").respond(200, json=[])
    with caplog.at_level(logging.DEBUG, logger="providers.http"):
        make_client().get_json("/lists")
    [record] = [r for r in caplog.records if r.name == "providers.http"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith(f"GET {BASE}/lists -> 200 in ")


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_request_retries_each_retry_status_then_succeeds(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock, status: int
) -> None:
    router.get(f"{BASE}/lists").mock(
        side_effect=[httpx.Response(status), httpx.Response(status), httpx.Response(200, json=[1])]
    )
    assert make_client().get_json("/lists") == [1]
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 0.5 and 0 <= clock.sleeps[1] <= 1.0


def test_backoff_is_full_jitter_doubling_capped_and_floored(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=5.0, max_total_wait=1000)
    router.get(f"{BASE}/x").respond(503)
    with pytest.raises(ApiError):
        make_client(retry=policy, rng=random.Random(3)).get_json("/x")
    rng = random.Random(3)
    expected = [max(0.25, rng.uniform(0, min(5.0, 2 ** (n - 1)))) for n in range(1, 8)]
    assert clock.sleeps == pytest.approx(expected)
    assert min(clock.sleeps) == policy.min_delay == 0.25  # two draws fell below the floor


@pytest.mark.parametrize(
    ("header", "expected"),
    # 0 and negative waits are raised to RetryPolicy.min_delay (issue 11, item 6)
    [("7", 7.0), ("0", 0.25), ("2.5", 2.5), ("-3", 0.25), ("Wed, 21 Oct 2026 07:28:12 GMT", 12.0)],
)
def test_request_honours_retry_after(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    clock: FakeClock,
    header: str,
    expected: float,
) -> None:
    limited = httpx.Response(
        429, headers={"Retry-After": header, "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}
    )
    router.get(f"{BASE}/lists").mock(side_effect=[limited, httpx.Response(200, json=[])])
    make_client().get_json("/lists")
    assert clock.sleeps == [expected]


def test_retry_after_is_capped_by_max_delay(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    limited = httpx.Response(503, headers={"Retry-After": "3600"})
    router.get(f"{BASE}/lists").mock(side_effect=[limited, httpx.Response(200, json=[])])
    make_client().get_json("/lists")
    assert clock.sleeps == [30.0]


@pytest.mark.parametrize("header", ["soon", "Wed, 99 Foo 2026", "21 Oct 2026 07:28:12"])
def test_unreadable_retry_after_falls_back_to_backoff(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock, header: str
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": header})
    router.get(f"{BASE}/lists").mock(side_effect=[limited, httpx.Response(200, json=[])])
    make_client().get_json("/lists")
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 0.5


def test_request_gives_up_after_max_attempts(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    route = router.get(f"{BASE}/lists").respond(503, text="busy")
    with pytest.raises(ApiError) as caught:
        make_client(retry=RetryPolicy(max_attempts=4)).get_json("/lists")
    assert route.call_count == 4
    assert len(clock.sleeps) == 3
    error = caught.value
    assert (error.method, error.url, error.status, error.body) == (
        "GET",
        f"{BASE}/lists",
        503,
        "busy",
    )
    assert str(error).startswith("api.example.test answered with an error after 4 attempts (")
    assert str(error).endswith(f" waiting) (GET {BASE}/lists -> 503): busy")


def test_rate_limit_past_the_retries_is_rate_limited(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    router.get(f"{BASE}/lists").respond(429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimited) as caught:
        make_client().get_json("/lists")
    assert clock.sleeps == [1.0] * 5
    assert str(caught.value) == (
        "api.example.test kept answering 'too many requests' after 6 attempts (5.0 s waiting) "
        f"(GET {BASE}/lists -> 429); lower requests_per_second or max_concurrency for this target"
    )


def test_request_gives_up_when_total_wait_is_spent(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    policy = RetryPolicy(max_attempts=50, max_total_wait=70.0)
    route = router.get(f"{BASE}/lists").respond(429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited, match=r"after 4 attempts \(70.0 s waiting\)"):
        make_client(retry=policy).get_json("/lists")
    assert clock.sleeps == [30.0, 30.0, 10.0]
    assert route.call_count == 4


def test_one_attempt_policy_never_sleeps(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    router.get(f"{BASE}/lists").respond(502)
    with pytest.raises(ApiError) as caught:
        make_client(retry=RetryPolicy(max_attempts=1)).get_json("/lists")
    assert clock.sleeps == []
    assert "attempts" not in str(caught.value)


@pytest.mark.parametrize("status", [400, 409, 422, 500])
def test_other_errors_are_not_retried(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock, status: int
) -> None:
    route = router.get(f"{BASE}/lists").respond(status, json={"Code": 250, "Message": "Bad"})
    with pytest.raises(ApiError) as caught:
        make_client().get_json("/lists")
    assert route.call_count == 1 and clock.sleeps == []
    assert caught.value.status == status
    assert caught.value.body == '{"Code":250,"Message":"Bad"}'


@pytest.mark.parametrize("field", ["max_attempts", "base_delay", "max_delay", "max_total_wait"])
def test_retry_policy_refuses_nonsense(field: str) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**{field: -1})  # type: ignore[arg-type]


# -- timeouts and connection failures ------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
)
def test_get_retries_timeouts_and_connection_failures(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    clock: FakeClock,
    failure: Exception,
) -> None:
    router.get(f"{BASE}/lists").mock(side_effect=[failure, httpx.Response(200, json=[])])
    assert make_client().get_json("/lists") == []
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            httpx.ReadTimeout("timed out"),
            "no answer from api.example.test in time after 6 attempts "
            "(0.0 s waiting) (ReadTimeout: timed out) (GET {BASE}/lists)",
        ),
        (
            httpx.ConnectTimeout(""),
            "no answer from api.example.test in time after 6 attempts "
            "(0.0 s waiting) (ConnectTimeout) (GET {BASE}/lists)",
        ),
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "could not reach api.example.test after 6 attempts (0.0 s waiting) "
            "(ConnectError: [Errno 111] Connection refused) (GET {BASE}/lists)",
        ),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            "could not reach api.example.test after 6 attempts (0.0 s waiting) "
            "(RemoteProtocolError: peer closed connection) (GET {BASE}/lists)",
        ),
    ],
)
def test_transport_failures_past_the_retries_become_api_errors(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    clock: FakeClock,
    failure: Exception,
    message: str,
) -> None:
    route = router.get(f"{BASE}/lists").mock(side_effect=failure)
    policy = RetryPolicy(base_delay=0.0, min_delay=0.0)
    with pytest.raises(ApiError) as caught:
        make_client(retry=policy).get_json("/lists")
    assert route.call_count == 6 and clock.sleeps == [0.0] * 5
    assert str(caught.value) == message.format(BASE=BASE)
    assert (caught.value.method, caught.value.status) == ("GET", None)
    assert_clean(caught.value)


def test_transport_failure_messages_are_redacted(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(f"{BASE}/lists").mock(
        side_effect=httpx.ConnectError(f"cannot connect to {BASE}/lists?apikey={API_KEY}")
    )
    with pytest.raises(ApiError) as caught:
        make_client(secrets=[API_KEY], retry=RetryPolicy(max_attempts=1)).get_json("/lists")
    assert_clean(caught.value, API_KEY)


@pytest.mark.parametrize(
    "answer", [httpx.Response(503), httpx.Response(502), httpx.ReadTimeout("slow")]
)
def test_post_is_not_retried_when_the_server_may_have_acted(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock, answer: Any
) -> None:
    route = router.post(f"{BASE}/segments").mock(side_effect=[answer, httpx.Response(201)])
    with pytest.raises(ApiError):
        make_client().send_json("POST", "/segments", {"Title": "VIP"})
    assert route.call_count == 1 and clock.sleeps == []


def test_post_timeout_says_the_change_may_have_been_made(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.post(f"{BASE}/segments").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ApiError, match="may or may not have been made, run plan to see"):
        make_client().send_json("POST", "/segments", {"Title": "VIP"})


@pytest.mark.parametrize(
    "answer", [httpx.Response(429), httpx.ConnectError("refused"), httpx.ConnectTimeout("t")]
)
def test_post_is_retried_when_the_server_cannot_have_acted(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], answer: Any
) -> None:
    route = router.post(f"{BASE}/segments").mock(
        side_effect=[answer, httpx.Response(201, json="id")]
    )
    assert make_client().send_json("POST", "/segments", {"Title": "VIP"}) == "id"
    assert route.call_count == 2


def test_idempotent_post_is_retried_like_a_get(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    route = router.post(f"{BASE}/api.php").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(200)]
    )
    make_client().request("POST", "/api.php", data={"Command": "Lists.Get"}, idempotent=True)
    assert route.call_count == 3


# -- status mapping and bodies -------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_auth_errors(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], status: int
) -> None:
    router.get(f"{BASE}/lists").respond(status, json={"Code": 50, "Message": "Invalid API key"})
    with pytest.raises(AuthError) as caught:
        make_client().get_json("/lists")
    assert str(caught.value) == (
        f"api.example.test refused the credentials (GET {BASE}/lists -> {status}: "
        '{"Code":50,"Message":"Invalid API key"}); check the target\'s keys'
    )
    assert_clean(caught.value)


def test_missing_object_is_not_found(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.delete(f"{BASE}/segments/9").respond(404)
    with pytest.raises(NotFound) as caught:
        make_client().request("DELETE", "/segments/9")
    assert str(caught.value) == f"not found (DELETE {BASE}/segments/9 -> 404)"


def test_html_error_page_becomes_short_text_excerpt(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>500 Internal Server Error</title>"
        "<style>body { color: red; }</style><script>var x = '<b>';</script></head>"
        "<body><!-- debug --><h1>Internal&nbsp;Server &amp; Error</h1>"
        f"<p>{'The server encountered an unexpected condition. ' * 10}</p></body></html>"
    )
    router.get(f"{BASE}/lists").respond(500, html=page)
    with pytest.raises(ApiError) as caught:
        make_client().get_json("/lists")
    body = caught.value.body
    assert body is not None and len(body) == 200 and body.endswith("…")
    assert body.startswith(
        "500 Internal Server Error Internal Server & Error The server encountered"
    )
    assert "<" not in body and "color" not in body and "debug" not in body


def test_html_body_without_content_type_is_still_reduced(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(f"{BASE}/lists").respond(502, content=b"  <html><body>Bad gateway</body></html>")
    with pytest.raises(ApiError) as caught:
        make_client(retry=RetryPolicy(max_attempts=1)).get_json("/lists")
    assert caught.value.body == "Bad gateway"


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        (b"", {}, None),
        (b"\xff\xfe broken \xff", {}, "\ufffd\ufffd broken \ufffd"),
        (b"oops", {"Content-Type": "text/plain; charset=no-such-charset"}, "oops"),
        (b"line one\n\n   line two\t", {}, "line one line two"),
    ],
)
def test_error_bodies_of_any_kind_become_one_line_of_text(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    content: bytes,
    headers: dict[str, str],
    expected: str | None,
) -> None:
    router.get(f"{BASE}/lists").respond(400, content=content, headers=headers)
    with pytest.raises(ApiError) as caught:
        make_client().get_json("/lists")
    assert caught.value.body == expected


@pytest.mark.parametrize("content", [b"<html>maintenance</html>", b"{not json", b"\xff\xfe"])
def test_success_with_a_body_that_is_not_json_is_an_api_error(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], content: bytes
) -> None:
    router.get(f"{BASE}/lists").respond(200, content=content)
    with pytest.raises(ApiError) as caught:
        make_client().get_json("/lists")
    assert str(caught.value).startswith(
        f"api.example.test answered with a body that is not JSON (GET {BASE}/lists -> 200)"
    )
    assert_clean(caught.value)


def test_get_json_refuses_an_empty_success_body(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(f"{BASE}/lists").respond(200, content=b"")
    with pytest.raises(ApiError, match="not JSON"):
        make_client().get_json("/lists")


def test_no_httpx_exception_escapes_an_invalid_response(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    route = router.get(f"{BASE}/lists").mock(
        side_effect=lambda request: httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )
    )
    with pytest.raises(ApiError) as caught:
        make_client().get_json("/lists")
    assert route.call_count == 1
    assert str(caught.value) == (
        "could not read the answer of api.example.test "
        "(DecodingError: Error -3 while decompressing data: incorrect header check) "
        f"(GET {BASE}/lists)"
    )
    assert_clean(caught.value)


# -- classify hook -------------------------------------------------------------------------


def campaign_monitor_codes(response: httpx.Response) -> Verdict | None:
    if response.status_code != 400:
        return None
    code = response.json().get("Code")
    if code == 278:
        return Verdict(retry=True)
    if code == 284:
        return Verdict(retry=True, error=ConflictError("segment still calculating"))
    if code == 275:
        return Verdict(error=ConflictError("a segment with that title already exists"))
    return None


def test_classify_can_ask_for_a_retry(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    busy = httpx.Response(400, json={"Code": 278, "Message": "calculation in progress"})
    route = router.put(f"{BASE}/segments/1").mock(side_effect=[busy, busy, httpx.Response(200)])
    make_client(classify=campaign_monitor_codes).send_json("PUT", "/segments/1", {})
    assert route.call_count == 3 and len(clock.sleeps) == 2


def test_classify_retry_that_never_ends_raises_a_generic_api_error(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.put(f"{BASE}/segments/1").respond(400, json={"Code": 278, "Message": "in progress"})
    with pytest.raises(ApiError, match="kept asking to retry later after 6 attempts") as caught:
        make_client(classify=campaign_monitor_codes).send_json("PUT", "/segments/1", {})
    assert caught.value.status == 400


def test_classify_retry_that_never_ends_raises_its_own_error(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.put(f"{BASE}/segments/1").respond(400, json={"Code": 284, "Message": "x"})
    with pytest.raises(ConflictError, match="segment still calculating"):
        make_client(classify=campaign_monitor_codes).send_json("PUT", "/segments/1", {})


def test_classify_can_name_the_error_at_once(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    route = router.post(f"{BASE}/segments").respond(400, json={"Code": 275, "Message": "dup"})
    with pytest.raises(ConflictError, match="already exists"):
        make_client(classify=campaign_monitor_codes).send_json("POST", "/segments", {})
    assert route.call_count == 1 and clock.sleeps == []


def test_classify_sees_successes_and_can_accept_any_status(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    seen: list[int] = []

    def accept_all(response: httpx.Response) -> Verdict:
        seen.append(response.status_code)
        return Verdict()

    router.get(f"{BASE}/a").respond(200)
    router.delete(f"{BASE}/b").respond(404)
    client = make_client(classify=accept_all)
    assert client.request("GET", "/a").status_code == 200
    assert client.request("DELETE", "/b").status_code == 404
    assert seen == [200, 404]


def test_classify_can_fail_a_success_status(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    def rpc_errors(response: httpx.Response) -> Verdict | None:
        body = response.json()
        return None if body["Success"] else Verdict(error=ApiError(body["ErrorText"]))

    router.post(f"{BASE}/api.php").respond(200, json={"Success": False, "ErrorText": "no list"})
    with pytest.raises(ApiError, match="no list"):
        make_client(classify=rpc_errors).request("POST", "/api.php", idempotent=True)


# -- redaction -----------------------------------------------------------------------------


def test_api_key_in_the_query_never_appears_in_errors_or_logs(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    router.get(url__startswith=f"{BASE}/lists").respond(
        500, text=f"bad request for apikey {API_KEY}"
    )
    client = make_client(secrets=[API_KEY], retry=RetryPolicy(max_attempts=2))
    with caplog.at_level(logging.DEBUG), pytest.raises(ApiError) as caught:
        client.get_json("/lists", params={"apikey": API_KEY, "page": 2})
    assert caught.value.url == f"{BASE}/lists?apikey=***&page=2"
    assert caught.value.body == "bad request for apikey ***"
    assert_clean(caught.value, API_KEY)
    assert caplog.records and any(r.name == "httpx" for r in caplog.records)
    for record in caplog.records:
        assert API_KEY not in record.getMessage()


def test_authorization_header_never_appears_in_errors_or_logs(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = router.get(f"{BASE}/lists").respond(
        401, json={"error": f"token Bearer {TOKEN} expired"}
    )
    client = make_client(headers={"Authorization": f"Bearer {TOKEN}"})
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        client.get_json("/lists")
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_clean(caught.value, TOKEN)
    assert "Bearer ***" in str(caught.value)
    assert TOKEN not in caplog.text


def test_basic_credentials_are_redacted_in_every_form(
    router: respx.MockRouter,
    make_client: Callable[..., HttpClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    encoded = base64.b64encode(f"{API_KEY}:x".encode()).decode()
    router.get(f"{BASE}/lists").respond(
        500, text=f"key={API_KEY} header=Basic {encoded} raw {encoded} pair {API_KEY}:x"
    )
    client = make_client(auth=httpx.BasicAuth(API_KEY, "x"), retry=RetryPolicy(max_attempts=1))
    with caplog.at_level(logging.DEBUG), pytest.raises(ApiError) as caught:
        client.get_json("/lists")
    message = str(caught.value)
    assert API_KEY not in message and encoded not in message
    assert caught.value.body == "key=*** header=Basic *** raw *** pair ***"
    assert API_KEY not in caplog.text and encoded not in caplog.text


def test_secret_derived_from_auth_does_not_blank_short_passwords(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(f"{BASE}/lists").respond(400, text="index exceeds max")
    client = make_client(auth=httpx.BasicAuth(API_KEY, "x"))
    with pytest.raises(ApiError) as caught:
        client.get_json("/lists")
    assert caught.value.body == "index exceeds max"


class ApiKeyAuth(httpx.Auth):
    """A provider's own auth class: the client learns the key from what it sends."""

    def __init__(self, key: str) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Api-Key"] = self.key
        yield request


def test_credentials_sent_by_any_auth_or_per_call_header_are_redacted(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(f"{BASE}/a").respond(500, text=f"bad key {API_KEY}")
    router.get(f"{BASE}/b").respond(500, text=f"bad token {TOKEN}")
    client = make_client(auth=ApiKeyAuth(API_KEY), retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ApiError) as first:
        client.get_json("/a")
    with pytest.raises(ApiError) as second:
        client.request("GET", "/b", headers={"Authorization": f"Token {TOKEN}"})
    assert first.value.body == "bad key ***"
    assert second.value.body == "bad token ***"


def test_post_error_that_may_have_been_applied_says_so(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.post(f"{BASE}/segments").respond(504, text="gateway timeout")
    with pytest.raises(ApiError) as caught:
        make_client().send_json("POST", "/segments", {})
    assert str(caught.value) == (
        "api.example.test answered with an error; the change may or may not have been made, "
        f"run plan to see (POST {BASE}/segments -> 504): gateway timeout"
    )


def test_closing_the_client_detaches_it_from_the_httpx_logger(
    make_client: Callable[..., HttpClient],
) -> None:
    httpx_logger = logging.getLogger("httpx")
    before = list(httpx_logger.filters)
    client = make_client()
    assert len(httpx_logger.filters) == len(before) + 1
    client.close()
    assert httpx_logger.filters == before


def test_a_client_never_closed_is_still_freed(clock: FakeClock) -> None:
    client = HttpClient(base_url=BASE, context=ProviderContext(clock=clock))
    ref = weakref.ref(client)
    leftover = logging.getLogger("httpx").filters[-1]
    assert isinstance(leftover, logging.Filter)
    del client
    gc.collect()
    assert ref() is None
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    assert leftover.filter(record) and record.getMessage() == "GET /x"
    logging.getLogger("httpx").removeFilter(leftover)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key s3cr3t/+=ab here", "key *** here"),
        ("url ?k=s3cr3t%2F%2B%3Dab&x=1", "url ?k=***&x=1"),
        ("form k=s3cr3t%2F%2B%3Dab", "form k=***"),
        ("path /s3cr3t/%2B%3Dab/", "path /***/"),
        ("b64 " + base64.b64encode(b"s3cr3t/+=ab").decode(), "b64 ***"),
        ("basic " + base64.b64encode(b"s3cr3t/+=ab:pw").decode(), "basic ***"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer ***"),
        ("https://user:hunter22@host/path", "https://user:***@host/path"),
        (
            "GET /x?access_token=zzz&api_key=yyy&page=1",
            "GET /x?access_token=***&api_key=***&page=1",
        ),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact_hides_every_form_of_a_secret(text: str, expected: str) -> None:
    result = redact(text, ["s3cr3t/+=ab", ""])
    assert "s3cr3t" not in result
    assert result.startswith(expected)


# -- concurrency and rate limits -----------------------------------------------------------


def test_map_concurrent_returns_results_in_input_order(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    router.get(path__regex=r"/v3/segments/(?P<sid>\d+)$").mock(
        side_effect=lambda request, sid: httpx.Response(200, json={"id": int(sid)})
    )
    client = make_client(max_concurrency=8)
    results = client.map_concurrent(lambda sid: client.get_json(f"/segments/{sid}"), range(100))
    assert results == [{"id": n} for n in range(100)]


def test_map_concurrent_of_nothing_is_empty(make_client: Callable[..., HttpClient]) -> None:
    assert make_client().map_concurrent(str, []) == []


def test_map_concurrent_counts_progress_from_the_calling_thread(
    make_client: Callable[..., HttpClient],
) -> None:
    counts: list[tuple[str, int, int]] = []
    threads: set[int] = set()

    def advance(label: str, done: int, total: int) -> None:
        counts.append((label, done, total))
        threads.add(threading.get_ident())

    messages: list[str] = []
    client = make_client(progress=messages.append, advance=advance)
    client.map_concurrent(str, range(120))
    assert counts == [("Reading", n, 120) for n in range(121)]
    assert threads == {threading.get_ident()}
    assert messages == []  # a count, not one line per item
    counts.clear()
    client.map_concurrent(str, [])
    assert counts == []


def test_map_concurrent_caps_requests_in_flight(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    cap = 3
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    together = threading.Barrier(cap, timeout=10)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        together.wait()  # proves `cap` requests really run at once
        with lock:
            in_flight -= 1
        return httpx.Response(200, json=1)

    router.get(path__startswith="/v3/segments/").mock(side_effect=answer)
    client = make_client(max_concurrency=cap)
    results = client.map_concurrent(lambda n: client.get_json(f"/segments/{n}"), range(cap * 4))
    assert results == [1] * (cap * 4)
    assert peak == cap


def test_map_concurrent_reraises_the_first_failure_and_skips_the_rest(
    make_client: Callable[..., HttpClient],
) -> None:
    started: list[int] = []

    def fetch(n: int) -> int:
        started.append(n)
        if n == 2:
            raise NotFound(f"segment {n}")
        return n

    with pytest.raises(NotFound, match="segment 2"):
        make_client(max_concurrency=1).map_concurrent(fetch, range(100))
    assert started == [0, 1, 2]


def test_map_concurrent_raises_the_first_of_several_failures(
    make_client: Callable[..., HttpClient],
) -> None:
    release = threading.Event()

    def fetch(n: int) -> int:
        if n == 0:
            raise AuthError("first")
        release.wait(timeout=10)
        raise ApiError("later")

    client = make_client(max_concurrency=2)
    with pytest.raises(AuthError, match="first"):
        try:
            client.map_concurrent(fetch, range(4))
        finally:
            release.set()


def test_concurrent_requests_share_the_concurrency_cap(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    """The cap holds for threads the caller starts too, not only inside map_concurrent."""
    gate = threading.Event()
    entered = threading.Semaphore(0)
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        entered.release()
        gate.wait(timeout=10)
        with lock:
            in_flight -= 1
        return httpx.Response(200, json=0)

    router.get(f"{BASE}/x").mock(side_effect=answer)
    client = make_client(max_concurrency=2)
    threads = [threading.Thread(target=client.get_json, args=("/x",)) for _ in range(5)]
    for thread in threads:
        thread.start()
    assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
    with lock:
        assert in_flight == 2
    gate.set()
    for thread in threads:
        thread.join(timeout=10)
    assert peak == 2


def test_rate_limit_spaces_requests_on_the_clock(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    starts: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        starts.append(clock.now())
        return httpx.Response(200, json=0)

    router.get(f"{BASE}/x").mock(side_effect=answer)
    client = make_client(requests_per_second=4)
    for _ in range(5):
        client.get_json("/x")
    assert starts == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    assert clock.sleeps == [0.25] * 4


def test_rate_limit_does_not_wait_once_the_interval_has_passed(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    router.get(f"{BASE}/x").respond(200, json=0)
    client = make_client(requests_per_second=2)
    client.get_json("/x")
    clock.time += 10
    client.get_json("/x")
    assert clock.sleeps == []


def test_rate_limit_holds_inside_map_concurrent(
    router: respx.MockRouter, make_client: Callable[..., HttpClient], clock: FakeClock
) -> None:
    clock.advance = False  # every thread reserves its slot at the same instant
    router.get(path__startswith="/v3/s/").respond(200, json=0)
    client = make_client(max_concurrency=8, requests_per_second=10)
    client.map_concurrent(lambda n: client.get_json(f"/s/{n}"), range(40))
    assert sorted(clock.sleeps) == pytest.approx([0.1 * n for n in range(1, 40)])


def test_errors_a_provider_builds_from_the_body_are_redacted_too(
    router: respx.MockRouter, make_client: Callable[..., HttpClient]
) -> None:
    def echo(response: httpx.Response) -> Verdict | None:
        if response.status_code >= 400:
            return Verdict(error=ConflictError(f"server said: {response.json()['Message']}"))
        return None

    router.post(f"{BASE}/segments").respond(400, json={"Message": f"bad key {API_KEY}"})
    with pytest.raises(ConflictError) as caught:
        make_client(classify=echo, secrets=(API_KEY,)).send_json("POST", "/segments", {})
    assert API_KEY not in str(caught.value)
    assert "server said: bad key" in str(caught.value)


@pytest.mark.parametrize(
    "base_url", ["http://[::1:8080/api", "ftp://example.com", "example.com/api", "https://u:pw@:9"]
)
def test_a_malformed_base_url_is_a_clear_config_error(
    base_url: str, make_client: Callable[..., HttpClient]
) -> None:
    with pytest.raises(ConfigError, match="base_url") as caught:
        make_client(base_url=base_url)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" https://host/api/ ", "https://host/api"),
        ("http://[::1:80/x", "base_url is not a valid URL (Invalid port)"),
        ("ftp://u:pw@host/api", "base_url must be an http:// or https:// URL with a host"),
    ],
)
def test_base_url_setting_is_checked_without_quoting_it(value: str, expected: str) -> None:
    try:
        assert check_base_url(value) == expected
    except ValueError as exc:
        assert str(exc) == expected
        assert "pw" not in str(exc)


# -- state an HttpProvider keeps while apply runs on threads ---------------------------------


class _Settings(BaseModel):
    pass


class _Keeping(HttpProvider[_Settings]):
    """An HttpProvider whose only state is what ``_once`` keeps."""

    key = "keeping"
    platform = "Keeping"
    settings_model = _Settings
    capabilities = Capabilities(shape="tree", operators={}, concurrent_apply=True)
    handlers: ClassVar[dict[Action, Callable[[Any, Change], None]]] = {}

    def _build_http(self) -> HttpClient:
        raise NotImplementedError

    def fetch(self, scope: Scope) -> LiveState:
        return LiveState()


def test_threads_needing_one_missing_value_load_it_once() -> None:
    provider = _Keeping("t", _Settings(), ProviderContext())
    store: dict[str, int] = {}
    callers = 8
    asked = threading.Barrier(callers, timeout=10)  # the loader and the seven others
    loads: list[int] = []

    def load() -> int:
        asked.wait()  # every other caller is about to ask, and finds the value missing
        loads.append(1)
        return 42

    def ask(first: bool) -> int:
        if not first:
            asked.wait()
        return provider._once(store, "k", load)

    with ThreadPoolExecutor(callers) as pool:
        found = list(pool.map(ask, [True] + [False] * (callers - 1)))
    assert found == [42] * callers and loads == [1] and store == {"k": 42}
