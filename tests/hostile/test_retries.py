"""Retries are bounded and every run has a deadline (issue 11, item 6).

A server cannot make the client hammer it (``Retry-After`` of 0, negative or garbage still
waits the minimum) nor keep it waiting past the run's ``--timeout``; when the deadline
passes, ``apply`` starts nothing more, says what was and was not applied, and exits 1.
Every wait is on an injected clock: nothing sleeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from providers._http import HttpClient, RetryPolicy
from providers._http.oauth import ClientCredentialsAuth
from providers.mailwizz import MailWizzProvider
from reconciler.applying import NOT_STARTED
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.errors import ApiError, ProviderError
from reconciler.provider import Deadline, ProviderContext
from tests.cli.conftest import Project, segments_yaml
from tests.providers.fakes import FakeClock

BASE = "https://api.example.test/v3"
POLICY = RetryPolicy()


def client(
    answer: Callable[[httpx.Request], httpx.Response],
    clock: FakeClock,
    *,
    deadline: float | None = None,
    **kwargs: Any,
) -> HttpClient:
    context = ProviderContext(
        clock=clock,
        http_transport=httpx.MockTransport(answer),
        deadline=Deadline(clock, deadline) if deadline is not None else None,
        requests_per_second=kwargs.pop("requests_per_second", None),
    )
    return HttpClient(base_url=BASE, context=context, **kwargs)


def limited_then_ok(header: str) -> Callable[[httpx.Request], httpx.Response]:
    answers = [httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200, json=1)]
    return lambda request: answers.pop(0)


# -- bounded retries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "0",
        "-5",
        "0.0001",
        "1e-300",
        "-inf",
        "nan",
        "inf",
        "soon",
        "",
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ],
)
def test_a_retry_after_asking_for_no_wait_still_waits_the_minimum(header: str) -> None:
    clock = FakeClock()
    with client(limited_then_ok(header), clock) as http:
        assert http.get_json("/x") == 1
    [wait] = clock.sleeps
    assert POLICY.min_delay == 0.25
    assert POLICY.min_delay <= wait <= POLICY.max_delay


@given(
    headers=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True).map(str),
            st.integers(-(10**30), 10**30).map(str),
            st.text(max_size=12),
        ),
        min_size=1,
        max_size=12,
    ),
    statuses=st.lists(st.sampled_from([429, 502, 503, 504]), min_size=12, max_size=12),
)
def test_retries_are_bounded_whatever_the_server_says(
    headers: list[str], statuses: list[int]
) -> None:
    clock = FakeClock()
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        header = headers[(calls - 1) % len(headers)]
        safe = "".join(ch for ch in header if " " <= ch <= "~")  # what a header can hold
        return httpx.Response(statuses[calls - 1], headers={"Retry-After": safe})

    with client(answer, clock) as http, pytest.raises(ProviderError):
        http.get_json("/x")
    assert calls <= POLICY.max_attempts
    assert all(POLICY.min_delay <= wait <= POLICY.max_delay for wait in clock.sleeps)
    assert sum(clock.sleeps) <= POLICY.max_total_wait


# -- the deadline in the HTTP layer -------------------------------------------------------------


def test_a_wait_past_the_deadline_is_not_taken() -> None:
    clock = FakeClock()
    answer = lambda request: httpx.Response(503, headers={"Retry-After": "30"})  # noqa: E731
    with client(answer, clock, deadline=10) as http, pytest.raises(ApiError) as caught:
        http.get_json("/x")
    assert clock.sleeps == []
    assert "stopped: the run's --timeout (10s) passes before the next attempt" in str(caught.value)


def test_retries_stop_at_the_deadline_not_at_the_call_budget() -> None:
    clock = FakeClock()
    route_calls: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        route_calls.append(clock.now())
        return httpx.Response(503, headers={"Retry-After": "1"})

    with client(answer, clock, deadline=2.5) as http, pytest.raises(ApiError, match="--timeout"):
        http.get_json("/x")
    assert clock.sleeps == [1.0, 1.0]
    assert route_calls == [1000.0, 1001.0, 1002.0]
    assert clock.time <= 1002.5


def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    sent: list[httpx.Request] = []
    with client(lambda r: sent.append(r) or httpx.Response(200), clock, deadline=5) as http:
        clock.time += 5
        with pytest.raises(ApiError) as caught:
            http.request("POST", "/segments", json={})
    assert sent == []
    assert str(caught.value) == (
        "the run's --timeout (5s) passed before this call to api.example.test was sent "
        f"(POST {BASE}/segments)"
    )


def test_the_rate_limit_never_waits_past_the_deadline() -> None:
    clock = FakeClock()
    with client(
        lambda r: httpx.Response(200, json=0), clock, deadline=2.5, requests_per_second=1
    ) as http:
        for _ in range(3):
            http.get_json("/x")
        with pytest.raises(ApiError, match="passed before this call"):
            http.get_json("/x")
    assert clock.sleeps == [1.0, 1.0]


def test_request_timeouts_are_cut_to_what_is_left_of_the_run() -> None:
    clock = FakeClock()
    seen: list[dict[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200, json=0)

    with client(answer, clock, deadline=12) as http:
        http.get_json("/x")
        clock.time += 10
        http.get_json("/x")
    assert seen[0] == {"connect": 10.0, "read": 12.0, "write": 12.0, "pool": 12.0}
    assert seen[1] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


def test_the_oauth_token_request_has_the_same_timeouts() -> None:
    clock = FakeClock()
    seen: dict[str, Any] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.extensions.get("timeout")
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t0ken-abcdef", "expires_in": 60})
        return httpx.Response(200, json=0)

    auth = ClientCredentialsAuth("https://api.example.test/oauth/v2/token", "id", "s3cret", clock)
    with client(answer, clock, deadline=7, auth=auth) as http:
        http.get_json("/x")
    assert (
        seen["/oauth/v2/token"]
        == seen["/v3/x"]
        == {
            "connect": 7.0,
            "read": 7.0,
            "write": 7.0,
            "pool": 7.0,
        }
    )


def test_time_at_the_prompt_does_not_count() -> None:
    clock = FakeClock()
    deadline = Deadline(clock, 60)
    clock.time += 50
    with deadline.paused():
        clock.time += 600  # a person reading the plan
    assert deadline.remaining() == 10
    assert deadline.describe() == "--timeout (1m)"


# -- the deadline end to end --------------------------------------------------------------------


class TickingClock(FakeClock):
    """A clock that moves one second each time it is read: the run's work takes time."""

    def now(self) -> float:
        self.time += 1
        return self.time


def _run(project: Project, clock: FakeClock, *args: str) -> Result:
    argv = ["-c", str(project.root / "reconciler.yaml"), "--no-color", *args]
    return CliRunner().invoke(cli, argv, obj=State(clock=clock))


def _stored(project: Project) -> list[str]:
    with sqlite3.connect(project.root / "state.db") as db:
        return sorted(name for (name,) in db.execute("select name from segments"))


def test_apply_stops_at_the_deadline_reports_and_exits_1(project: Project) -> None:
    names = [f"S{i}" for i in range(6)]
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml(*names))
    result = _run(project, TickingClock(), "apply", "--auto-approve", "--timeout", "5s")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    applied = [line for line in lines if line.startswith("applied ")]
    late = [line for line in lines if line.startswith("skipped ")]
    assert len(applied) == 3 and len(late) == 4  # each reading of the clock takes a second
    assert all(line.endswith(f": {NOT_STARTED}") for line in late)
    assert lines[-1] == f"Apply: 3 applied, 0 failed, 4 skipped (4 {NOT_STARTED})."
    stopped = "Stopped: the run's --timeout (5s) passed; 4 of 7 change(s) not started."
    assert stopped in result.stderr
    assert "Re-read the live state" not in result.stderr
    assert _stored(project) == ["S0", "S1"]
    again = _run(project, FakeClock(), "apply", "--auto-approve")
    assert again.exit_code == 0, again.output
    assert _stored(project) == names


def test_a_saved_plan_stops_at_the_deadline_too(project: Project) -> None:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A", "B", "C"))
    plan_file = str(project.root / "plan.json")
    assert _run(project, FakeClock(), "plan", "-o", plan_file).exit_code == 0
    result = _run(project, TickingClock(), "--timeout", "4", "apply", plan_file)
    assert result.exit_code == 1, result.output
    assert result.stdout.endswith(f"Apply: 3 applied, 0 failed, 1 skipped (1 {NOT_STARTED}).\n")


@pytest.mark.parametrize("value", ["0", "-1", "soon", "15 minutes", "1e400", "nan"])
def test_a_timeout_that_is_no_duration_is_a_usage_error(project: Project, value: str) -> None:
    project.write("lists: []\n")
    for argv in (("--timeout", value, "plan"), ("plan", "--timeout", value)):
        result = _run(project, FakeClock(), *argv)
        assert result.exit_code == 1
        assert "--timeout" in result.stderr and "duration" in result.stderr


def test_a_server_asking_to_wait_past_the_deadline_ends_the_plan(
    tmp_path: Path, no_real_http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = "https://mail.example.com/api"
    no_real_http.get(url__startswith=base).respond(503, headers={"Retry-After": "3600"})
    monkeypatch.setenv("MW_API_KEY", "mw-key-0123456789")
    (tmp_path / "reconciler.yaml").write_text(
        "version: 1\ntargets:\n  mw:\n    provider: mailwizz\n"
        f"    base_url: {base}\n    api_key: ${{MW_API_KEY}}\n"
        "lists:\n  - name: News\n    segments: []\n"
    )
    clock = FakeClock()
    state = State(registry={"mailwizz": MailWizzProvider}, clock=clock)
    argv = ["-c", str(tmp_path / "reconciler.yaml"), "plan", "--timeout", "20s"]
    result = CliRunner().invoke(cli, argv, obj=state)
    assert result.exit_code == 1
    assert "the run's --timeout (20s) passes before the next attempt" in result.stderr
    assert clock.sleeps == []
    assert "mw-key-0123456789" not in result.output
