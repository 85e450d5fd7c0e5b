"""The client: one attempt at a time, retried, limited and translated into the error tree."""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

import httpx

from reconciler import __version__
from reconciler.errors import (
    ApiError,
    AuthError,
    ConfigError,
    NotFound,
    RateLimited,
    ReconcilerError,
)
from reconciler.model import JSONValue
from reconciler.provider import ProviderContext

from .headers import UNSENDABLE, header_problem, unquoted
from .policy import RateLimiter, RetryPolicy, Verdict, retry_after
from .redaction import (
    RedactingFilter,
    Redactor,
    credential_fields,
    credential_secrets,
    excerpt,
)
from .urls import base_url_problem

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "USER_AGENT", "HttpClient"]

USER_AGENT = f"segment-reconciler/{__version__} (+python-httpx/{httpx.__version__})"
DEFAULT_CONCURRENCY = 8
"""Requests in flight when the context sets no ``max_concurrency`` (the workspace always
sets one: the target's, else the core's default, ``applying.DEFAULT_CONCURRENCY``, which
this equals)."""
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy()

log = logging.getLogger("providers.http")

T = TypeVar("T")
R = TypeVar("R")

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: safe to retry for any method."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for the whole process (httpx's default: certifi's CAs).
    Building one loads the CA bundle, about 35 ms; every client of every target shares it."""
    return httpx.create_ssl_context()


class _Url:
    """A request's URL, redacted when first shown: most calls never show it."""

    def __init__(self, request: httpx.Request, redact: Callable[[str], str]) -> None:
        self._request = request
        self._redact = redact
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._redact(str(self._request.url))
        return self._text


class _Skipped(Exception):
    """A ``map_concurrent`` item not run because an earlier one failed."""


class HttpClient:
    """A provider's HTTP client for one target: see the module docstring for the design."""

    def __init__(
        self,
        *,
        base_url: str,
        context: ProviderContext,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        classify: Callable[[httpx.Response], Verdict | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        problem = base_url_problem(base_url)
        if problem is not None:  # settings check this first; a provider may build its own
            raise ConfigError(problem)
        self.context = context
        self.retry = retry
        self.concurrency = context.max_concurrency or DEFAULT_CONCURRENCY
        self._classify = classify
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._limiter = RateLimiter(context.requests_per_second, context.clock)
        merged = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self._redactor = Redactor([*secrets, *credential_secrets(merged)])
        self._secrets_lock = threading.Lock()
        for name, value in merged.items():
            problem = header_problem(name, value)
            if problem is not None:
                raise ConfigError(problem)
        self._httpx_filter = RedactingFilter(self.redact)
        logging.getLogger("httpx").addFilter(self._httpx_filter)
        self._client = httpx.Client(
            base_url=base_url,
            transport=context.http_transport,
            verify=tls_context(),
            timeout=timeout or DEFAULT_TIMEOUT,
            headers=merged,
            auth=auth,
            event_hooks={"request": [self._learn_secrets]},
            limits=httpx.Limits(
                max_connections=max(self.concurrency, 10),
                max_keepalive_connections=self.concurrency,
            ),
        )

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: JSONValue = None,
        data: Mapping[str, Any] | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one call, retrying per the policy; return a successful response or raise.

        ``idempotent`` overrides the method's default (GET, HEAD, OPTIONS, PUT and DELETE
        are; POST and PATCH are not) for retries after the server may have acted.
        """
        method = method.upper()
        replayable = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        request = self._build(method, path, json, data, params, headers)
        url = _Url(request, self.redact)
        timeouts = dict(request.extensions.get("timeout") or {})
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            response, failure = self._attempt(request, url, timeouts)
            verdict = None
            if response is not None:
                verdict = self._classify(response) if self._classify else None
                if verdict is not None and verdict.error is not None and not verdict.retry:
                    raise self.redacted(verdict.error) from None
                if (response.status_code < 400 and verdict is None) or verdict == Verdict():
                    return response
            retryable, asked = self._retryable(response, failure, verdict, replayable)
            delay = self._next_delay(asked, attempt, waited) if retryable else None
            deadline = self.context.deadline
            late = delay is not None and deadline is not None and delay >= deadline.remaining()
            if delay is None or late:
                tried = f" after {attempt} attempts ({waited:.1f} s waiting)" if attempt > 1 else ""
                if late and deadline is not None:
                    tried += (
                        f"; stopped: the run's {deadline.describe()} passes before the next attempt"
                    )
                error = self._error(method, url, response, failure, verdict, replayable, tried)
                raise self.redacted(error) from None
            log.info(
                "%s %s -> %s; retry %d/%d in %.2f s",
                method,
                url,
                response.status_code if response is not None else type(failure).__name__,
                attempt + 1,
                self.retry.max_attempts,
                delay,
            )
            self.context.clock.sleep(delay)
            waited += delay

    def _build(
        self,
        method: str,
        path: str,
        json: JSONValue,
        data: Mapping[str, Any] | str | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Request:
        """The request, its credentials learned; a header or URL httpx would refuse is
        reported without quoting it."""
        self.add_secrets(*credential_fields([data, json, params]))
        for name, value in (headers or {}).items():
            problem = header_problem(name, value)
            if problem is not None:
                raise ApiError(problem, method=method)
        content = data.encode() if isinstance(data, str) else None
        form = None if isinstance(data, str) else data
        try:
            return self._client.build_request(
                method, path, json=json, data=form, content=content, params=params, headers=headers
            )
        except httpx.InvalidURL as exc:
            raise ApiError(
                f"could not build the request URL ({unquoted(exc)}; the URL is not shown)",
                method=method,
            ) from None

    def _next_delay(self, asked: float | None, attempt: int, waited: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when the attempts or the
        call's total wait are spent."""
        if attempt >= self.retry.max_attempts:
            return None
        remaining = self.retry.max_total_wait - waited
        with self._rng_lock:
            delay = self.retry.delay(asked, attempt, self._rng)
        if delay <= remaining:
            return delay
        return remaining if remaining >= self.retry.min_delay and remaining > 0 else None

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> JSONValue:
        """GET ``path`` and decode its JSON body."""
        return self._decode("GET", self.request("GET", path, params=params), allow_empty=False)

    def send_json(self, method: str, path: str, body: JSONValue = None) -> JSONValue:
        """Send ``body`` as JSON; return the decoded answer, or ``None`` for an empty body."""
        response = self.request(method, path, json=body)
        return self._decode(method.upper(), response, allow_empty=True)

    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]`` on ``concurrency`` threads, in input order.

        The first exception raised by ``fn`` stops the work not yet started (queued items
        are cancelled, dequeued ones skip ``fn``), waits for the calls in flight, and is
        re-raised. Progress goes to ``context.advance("Reading", done, total)`` as items
        finish, from this thread.
        """
        todo = list(items)
        if not todo:
            return []
        stop = threading.Event()
        first: list[BaseException] = []
        lock = threading.Lock()

        def run(item: T) -> R:
            if stop.is_set():
                raise _Skipped
            try:
                return fn(item)
            except BaseException as exc:
                with lock:
                    first.append(exc)
                stop.set()
                raise

        results: dict[int, R] = {}
        error: BaseException | None = None
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="reconciler-http") as pool:
            futures = {pool.submit(run, item): index for index, item in enumerate(todo)}
            try:
                self.context.advance("Reading", 0, len(todo))
                for done, future in enumerate(as_completed(futures), 1):
                    results[futures[future]] = future.result()
                    self.context.advance("Reading", done, len(todo))
            except BaseException as exc:  # the first failure, or Ctrl-C in this thread
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                error = first[0] if first and isinstance(exc, Exception) else exc
        if error is not None:
            raise error
        return [results[index] for index in range(len(todo))]

    def redacted(self, error: ReconcilerError) -> ReconcilerError:
        """``error`` with every secret masked in its message and its text attributes (an
        ``ApiError``'s ``url`` and ``body``): its text may quote the server or a request."""
        error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
        for name, value in list(vars(error).items()):
            if isinstance(value, str):
                setattr(error, name, self.redact(value))
            elif isinstance(value, list) and all(isinstance(v, ReconcilerError) for v in value):
                for inner in value:  # ConfigErrors: each reported on its own line
                    self.redacted(inner)
        return error

    def redact(self, text: str) -> str:
        """``text`` without this client's secrets, in any form they may be written in."""
        return self._redactor(text)

    def add_secrets(self, *secrets: str) -> None:
        """Mask these too from now on (a session id or token a provider receives)."""
        found = [secret for secret in secrets if secret]
        if found and not self._redactor.secrets.issuperset(found):
            with self._secrets_lock:
                self._redactor = self._redactor.with_secrets(found)

    def _learn_secrets(self, request: httpx.Request) -> None:
        """Request hook, run after auth: whatever credentials are sent get redacted too."""
        self.add_secrets(*credential_secrets(request.headers))

    def close(self) -> None:
        logging.getLogger("httpx").removeFilter(self._httpx_filter)
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt and its reading -----------------------------------------------------------

    def _attempt(
        self, request: httpx.Request, url: _Url, timeouts: Mapping[str, float | None]
    ) -> tuple[httpx.Response | None, httpx.HTTPError | None]:
        deadline = self.context.deadline
        with self._slots:
            if not self._limiter.acquire(deadline.at if deadline is not None else None):
                raise self._too_late(request, url)
            if deadline is not None:
                left = deadline.remaining()
                if left <= 0:
                    raise self._too_late(request, url)
                request.extensions["timeout"] = {
                    key: left if value is None else min(value, left)
                    for key, value in timeouts.items()
                }
            started = time.perf_counter()
            try:
                response = self._client.send(request)
            except httpx.LocalProtocolError:
                log.debug("%s %s -> LocalProtocolError", request.method, url)
                raise self._unsendable(request, url) from None
            except httpx.RequestError as exc:
                log.debug("%s %s -> %s", request.method, url, type(exc).__name__)
                return None, exc
        log.debug(
            "%s %s -> %d in %.3f s",
            request.method,
            url,
            response.status_code,
            time.perf_counter() - started,
        )
        return response, None

    def _host(self, request: httpx.Request) -> str:
        return self.redact(request.url.host) or "the server"

    def _too_late(self, request: httpx.Request, url: _Url) -> ApiError:
        deadline = self.context.deadline
        assert deadline is not None
        return ApiError(
            f"the run's {deadline.describe()} passed before this call to "
            f"{self._host(request)} was sent",
            method=request.method,
            url=str(url),
        )

    def _unsendable(self, request: httpx.Request, url: _Url) -> ApiError:
        return ApiError(
            f"could not send a request to {self._host(request)}: {UNSENDABLE}",
            method=request.method,
            url=str(url),
        )

    def _retryable(
        self,
        response: httpx.Response | None,
        failure: httpx.HTTPError | None,
        verdict: Verdict | None,
        replayable: bool,
    ) -> tuple[bool, float | None]:
        if response is None:
            unsent = isinstance(failure, _UNSENT_ERRORS)
            return isinstance(failure, _RETRYABLE_ERRORS) and (replayable or unsent), None
        after = retry_after(response)
        if verdict is not None:
            return True, after  # the provider asked for a retry
        status = response.status_code
        if status not in self.retry.retry_statuses:
            return False, None
        return replayable or status == 429, after

    def _error(
        self,
        method: str,
        url: _Url,
        response: httpx.Response | None,
        failure: httpx.HTTPError | None,
        verdict: Verdict | None,
        replayable: bool,
        tried: str,
    ) -> ReconcilerError:
        if verdict is not None and verdict.error is not None:
            return self.redacted(verdict.error)
        host = self.redact(self._client.base_url.host) or "the server"
        if response is not None:
            host = self._host(response.request)
        if response is None:
            reason = self.redact(f"{type(failure).__name__}: {failure}".rstrip(": "))
            if isinstance(failure, httpx.TimeoutException):
                message = f"no answer from {host} in time{tried} ({reason})"
            elif not isinstance(failure, httpx.TransportError):
                message = f"could not read the answer of {host}{tried} ({reason})"
            else:
                message = f"could not reach {host}{tried} ({reason})"
            if not replayable and not isinstance(failure, _UNSENT_ERRORS):
                message += "; the change may or may not have been made, run plan to see"
            return ApiError(message, method=method, url=str(url))
        status = response.status_code
        body = excerpt(response, self.redact)
        where = f"{method} {url} -> {status}" + (f": {body}" if body else "")
        if status in (401, 403):
            return AuthError(f"{host} refused the credentials ({where}); check the target's keys")
        if status == 404:
            return NotFound(f"not found ({where})")
        if status == 429:
            return RateLimited(
                f"{host} kept answering 'too many requests'{tried} ({where}); "
                "lower requests_per_second or max_concurrency for this target"
            )
        if verdict is not None:
            message = f"{host} kept asking to retry later{tried}"
        else:
            message = f"{host} answered with an error{tried}"
        if not replayable and status in self.retry.retry_statuses:
            message += "; the change may or may not have been made, run plan to see"
        return ApiError(message, method=method, url=str(url), status=status, body=body)

    def _decode(self, method: str, response: httpx.Response, *, allow_empty: bool) -> JSONValue:
        if allow_empty and not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            error = ApiError(
                f"{self._host(response.request)} answered with a body that is not JSON",
                method=method,
                url=self.redact(str(response.request.url)),
                status=response.status_code,
                body=excerpt(response, self.redact),
            )
            raise self.redacted(error) from None
