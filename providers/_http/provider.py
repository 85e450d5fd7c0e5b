"""The base class of providers that speak HTTP: one client per target, built on first use
(so ``validate`` never opens a connection), closed with the provider, and changes handed
to one handler per change kind.

Their ``apply`` runs on several threads at once (``Capabilities.concurrent_apply``, set by
each provider once its state is safe): what a provider keeps between calls (list ids,
fields, an index of names) is read on first use with ``_once`` and changed under
``_state``. A read under ``_state`` and a later drop under ``_state`` (after a write the
read may not show) can never leave the stale read behind: the drop waits for the read.

Every error leaving a provider's ``fetch``, ``apply`` or ``check_change`` passes through
its client's redaction, so a message a provider builds itself from an answer (an
"unexpected shape" quoting the body) cannot carry a secret out either."""

from __future__ import annotations

import functools
import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel

from reconciler.errors import ProviderError, ReconcilerError
from reconciler.plan import Action, Change
from reconciler.provider import Provider, ProviderContext, settings_as

from .client import HttpClient

__all__ = ["HttpProvider"]

_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S", bound=BaseModel)
_K = TypeVar("_K")
_V = TypeVar("_V")
_GUARDED = ("fetch", "apply", "check_change")
"""The provider methods whose errors are redacted on the way out."""


def _redacting(method: _F) -> _F:
    """``method`` of an ``HttpProvider``, its errors redacted by the provider's client."""

    @functools.wraps(method)
    def wrapper(self: HttpProvider[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ReconcilerError as exc:
            client = self._http
            if client is not None:
                client.redacted(exc)
            raise

    wrapper.__redacting__ = True  # type: ignore[attr-defined]
    return cast(_F, wrapper)


class HttpProvider(Provider, Generic[_S]):
    """A provider whose platform is an HTTP API; ``config`` is its target's settings as
    its own ``settings_model`` (validated again when handed another model)."""

    platform: ClassVar[str]
    """The platform's name, for messages."""
    handlers: ClassVar[Mapping[Action, Callable[[Any, Change], None]]]
    """One method per change kind the provider executes."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _GUARDED:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__redacting__", False):
                setattr(cls, name, _redacting(method))

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        own = cast(_S, settings_as(settings, self.settings_model))
        super().__init__(target, own, context)
        self.config: _S = own
        self._http: HttpClient | None = None
        self._lock = threading.Lock()
        self._state = threading.RLock()
        """Guards what the provider keeps between calls (``apply`` runs on threads)."""

    @abstractmethod
    def _build_http(self) -> HttpClient:
        """The target's client: base URL, credentials, error classification."""

    @property
    def http(self) -> HttpClient:
        """The target's client, built on first use."""
        with self._lock:
            if self._http is None:
                self._http = self._build_http()
            return self._http

    def _once(self, store: MutableMapping[_K, _V], key: _K, load: Callable[[], _V]) -> _V:
        """``store[key]``, loaded under ``_state`` when missing: threads needing it at
        once load it once."""
        found = store.get(key)
        if found is None:
            with self._state:
                found = store.get(key)
                if found is None:
                    found = load()
                    store[key] = found
        return found

    @_redacting
    def apply(self, change: Change) -> None:
        handler = self.handlers.get(change.action)
        if handler is None:
            raise ProviderError(f"{self.platform} cannot {change.action.value}")
        handler(self, change)

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
