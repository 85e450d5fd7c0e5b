"""The client: one attempt at a time, retried, limited and translated into the error tree."""

from __future__ import annotations

import logging
import random
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

from .policy import RateLimiter, RetryPolicy, Verdict, retry_after
from .redaction import RedactingFilter, credential_secrets, excerpt, redact_forms, secret_forms
from .urls import base_url_problem

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "USER_AGENT", "HttpClient"]

USER_AGENT = f"segment-reconciler/{__version__} (+python-httpx/{httpx.__version__})"
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy()
PROGRESS_EVERY = 50

log = logging.getLogger("providers.http")

T = TypeVar("T")
R = TypeVar("R")

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: safe to retry for any method."""


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
        self._secrets = frozenset([*secrets, *credential_secrets(merged)])
        self._forms = secret_forms(self._secrets)
        self._secrets_lock = threading.Lock()
        self._httpx_filter = RedactingFilter(self.redact)
        logging.getLogger("httpx").addFilter(self._httpx_filter)
        self._client = httpx.Client(
            base_url=base_url,
            transport=context.http_transport,
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
        content = data.encode() if isinstance(data, str) else None
        form = None if isinstance(data, str) else data
        request = self._client.build_request(
            method, path, json=json, data=form, content=content, params=params, headers=headers
        )
        url = self.redact(str(request.url))
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            response, failure = self._attempt(request, url)
            verdict = None
            if response is not None:
                verdict = self._classify(response) if self._classify else None
                if verdict is not None and verdict.error is not None and not verdict.retry:
                    raise self._redacted(verdict.error) from None
                if (response.status_code < 400 and verdict is None) or verdict == Verdict():
                    return response
            retryable, wait = self._retryable(response, failure, verdict, replayable)
            remaining = self.retry.max_total_wait - waited
            if not retryable or attempt >= self.retry.max_attempts or remaining <= 0:
                tried = f" after {attempt} attempts ({waited:.1f} s waiting)" if attempt > 1 else ""
                error = self._error(method, url, response, failure, verdict, replayable, tried)
                raise error from None
            if wait is None:
                with self._rng_lock:
                    wait = self.retry.backoff(attempt, self._rng)
            delay = max(0.0, min(wait, self.retry.max_delay, remaining))
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
        re-raised. Progress goes to ``context.progress`` every 50 items, from this thread.
        """
        todo = list(items)
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
                for done, future in enumerate(as_completed(futures), 1):
                    results[futures[future]] = future.result()
                    if done % PROGRESS_EVERY == 0 or done == len(todo) >= PROGRESS_EVERY:
                        self.context.progress(f"fetched {done}/{len(todo)}")
            except BaseException as exc:  # the first failure, or Ctrl-C in this thread
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                error = first[0] if first and isinstance(exc, Exception) else exc
        if error is not None:
            raise error
        return [results[index] for index in range(len(todo))]

    def _redacted(self, error: ReconcilerError) -> ReconcilerError:
        """A provider's error with every secret masked (its text may quote the server)."""
        error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
        return error

    def redact(self, text: str) -> str:
        """``text`` without this client's secrets."""
        return redact_forms(text, self._forms)

    def _learn_secrets(self, request: httpx.Request) -> None:
        """Request hook, run after auth: whatever credentials are sent get redacted too."""
        found = credential_secrets(request.headers)
        if found and not self._secrets.issuperset(found):
            with self._secrets_lock:
                self._secrets |= frozenset(found)
                self._forms = secret_forms(self._secrets)

    def close(self) -> None:
        logging.getLogger("httpx").removeFilter(self._httpx_filter)
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt and its reading -----------------------------------------------------------

    def _attempt(
        self, request: httpx.Request, url: str
    ) -> tuple[httpx.Response | None, httpx.HTTPError | None]:
        with self._slots:
            self._limiter.acquire()
            started = time.perf_counter()
            try:
                response = self._client.send(request)
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
        url: str,
        response: httpx.Response | None,
        failure: httpx.HTTPError | None,
        verdict: Verdict | None,
        replayable: bool,
        tried: str,
    ) -> ReconcilerError:
        if verdict is not None and verdict.error is not None:
            return self._redacted(verdict.error)
        host = httpx.URL(url).host if "://" in url else url
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
            return ApiError(message, method=method, url=url)
        status = response.status_code
        body = excerpt(response, self._forms)
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
        return ApiError(message, method=method, url=url, status=status, body=body)

    def _decode(self, method: str, response: httpx.Response, *, allow_empty: bool) -> JSONValue:
        if allow_empty and not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            url = self.redact(str(response.request.url))
            raise ApiError(
                f"{httpx.URL(url).host} answered with a body that is not JSON",
                method=method,
                url=url,
                status=response.status_code,
                body=excerpt(response, self._forms),
            ) from None
