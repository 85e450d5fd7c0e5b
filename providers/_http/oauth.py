"""OAuth2 client-credentials authentication shared by HTTP providers.

``POST <token_url>`` form-encoded with ``client_id``, ``client_secret`` and
``grant_type=client_credentials`` answers ``{"access_token", "expires_in"}``. The token is
sent as ``Authorization: Bearer`` (a header, never a query parameter, so it never appears in
a URL), reused until shortly before it expires, and fetched again when it has expired or
when the API answers 401 (once per request). A transient failure of the token endpoint
(429 or 5xx) is returned as the request's own answer, so the client's retry policy applies.

Nothing here logs or formats the token or the secret: messages pass through ``redact`` with
both, and ``HttpClient`` learns the Bearer header on every request and masks it too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator

import httpx

from reconciler.errors import ApiError, AuthError
from reconciler.provider import Clock

from .redaction import redact

__all__ = ["DEFAULT_LIFETIME", "ClientCredentialsAuth"]

DEFAULT_LIFETIME = 3600.0
"""Seconds a token lives when the answer has no ``expires_in`` (one hour)."""
EARLY = 30.0
"""Fetch a new token this many seconds before the old one expires (at most a tenth of its
lifetime), so a request never leaves with a token that expires on the way."""
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class ClientCredentialsAuth(httpx.Auth):
    """``httpx.Auth`` for the OAuth2 client-credentials grant; thread-safe, one token shared."""

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
        hint: str = "check client_id and client_secret",
    ) -> None:
        self.token_url = token_url
        self._hint = hint
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0
        """How many tokens were fetched (for tests and progress)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timeout = request.extensions.get("timeout")  # the client's, capped by the deadline
        token = yield from self._current(stale=None, timeout=timeout)
        if token is None:
            return  # the token endpoint's transient failure is the answer: it gets retried
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        token = yield from self._current(stale=token, timeout=timeout)  # expired or revoked
        if token is None:
            return
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def _current(
        self, stale: str | None, timeout: object = None
    ) -> Generator[httpx.Request, httpx.Response, str | None]:
        """A token to use: the shared one while valid (and not the one just refused), else a
        new one. None when the token endpoint failed transiently (its answer is final)."""
        with self._lock:
            fresh = self._clock.now() < self._expires_at
            if self._token is not None and self._token != stale and fresh:
                return self._token
            self._token = None
            token_request = self._token_request()
            if timeout is not None:  # else httpcore would wait forever for the token endpoint
                token_request.extensions["timeout"] = timeout
            response = yield token_request
            if response.status_code in _TRANSIENT:
                return None
            token, lifetime = self._read(response)
            self.fetches += 1
            self._token = token
            self._expires_at = self._clock.now() + lifetime - min(EARLY, lifetime / 10)
            return token

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret,
        }
        return httpx.Request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )

    def _read(self, response: httpx.Response) -> tuple[str, float]:
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        where = f"POST {self.token_url} -> {response.status_code}"
        if response.status_code >= 400:
            reason = f"{data.get('error', '')}: {data.get('error_description', '')}".strip(": ")
            raise AuthError(
                self._redact(
                    f"the OAuth2 client credentials were refused ({where}"
                    + (f": {reason}" if reason else "")
                    + f"); {self._hint}"
                )
            )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ApiError(self._redact(f"the token endpoint answered without a token ({where})"))
        lifetime = data.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME
        except (TypeError, ValueError):
            seconds = DEFAULT_LIFETIME
        return token, max(seconds, 0.0)

    def _redact(self, text: str) -> str:
        secrets = [s for s in (self._secret, self._token) if s]
        return redact(text, secrets)
