"""The one HTTP layer every provider uses: retries, limits, error translation, redaction.

Each provider builds one :class:`HttpClient` per target. It wraps a thread-safe
``httpx.Client`` and adds, in this order around every attempt:

1. **Concurrency cap.** A semaphore of ``context.max_concurrency`` (default 8) slots is
   held by one attempt (its rate-limit turn and its time on the wire), never during a
   retry's backoff, so nested ``map_concurrent`` calls cannot deadlock and retries do not
   hog slots. ``map_concurrent`` runs on a thread pool of the same size (threads, no async:
   one code path); ``apply`` runs up to ``max_concurrency`` changes at once on the core's
   threads, and their requests share the same slots.
2. **Rate limit.** ``context.requests_per_second`` spaces request starts at least ``1/rps``
   apart: a token bucket of one token, reserved under a lock and waited for on
   ``context.clock`` (never ``time.sleep``), so it is exact with a fake clock. Taking the
   turn after the slot keeps released slots from sending a burst.
3. **Retry.** 429, 502, 503, 504 and connection errors or timeouts are retried up to
   ``RetryPolicy.max_attempts`` times with full-jitter exponential backoff
   (``uniform(0, min(max_delay, base_delay * 2**n))``). A ``Retry-After`` header (seconds or
   HTTP-date) replaces the backoff. Every wait is at least ``min_delay`` (0.25 s: a
   ``Retry-After`` of 0, negative or unreadable cannot make the client hammer a server),
   at most ``max_delay`` and what is left of ``max_total_wait`` (the total slept across
   the retries of one call); when that budget or the attempts run out, the call gives up.
   POST and PATCH are not idempotent: they are retried only when the server cannot have
   acted (429, or a connection never made), unless the caller passes ``idempotent=True``
   (e.g. an RPC-style read sent as POST).
4. **Translation.** The final failure becomes the core's exception tree, once, here:
   401/403 ``AuthError``, 404 ``NotFound``, 429 ``RateLimited``, anything else ``ApiError``
   with method, redacted URL, status and a short text excerpt of the body (HTML reduced to
   its text). No httpx exception escapes; none is chained, so no secret rides along in
   ``__cause__``. A provider's ``classify`` hook sees every response first and may ask for a
   retry or name the exception (see :class:`Verdict`).

The run's deadline (``context.deadline``, the CLI's ``--timeout``) bounds it all: no
request is sent, no rate-limit turn or retry wait is taken past it, and each attempt's
connect/read/write/pool timeouts are cut to what is left of it.

Secrets given to the client, every credential header it sends (whatever ``auth`` or
``headers`` put there, Basic pairs decoded), credential-named fields of request bodies and
queries (``APIKey``, ``Password``, ``SessionID``...) and whatever a provider registers with
``add_secrets`` are replaced by ``***`` in every message and log line, including httpx's own
request log, in every form they may be written in (raw, URL-encoded, JSON- or
Python-escaped, base64; see ``redaction``), wherever they stand as a whole token.
Credential-looking query parameters and ``Bearer``/``Basic`` tokens are masked whatever
their value. Errors an ``HttpProvider``'s ``fetch``/``apply`` raise pass through the same
redaction. A header value HTTP cannot carry is reported by name, never quoted. Close the
client (or use it as a context manager) to detach it from httpx's logger.
"""

from .client import USER_AGENT, HttpClient
from .policy import RetryPolicy, Verdict
from .redaction import redact

__all__ = ["USER_AGENT", "HttpClient", "RetryPolicy", "Verdict", "redact"]
