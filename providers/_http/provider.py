"""The base class of providers that speak HTTP: one client per target, built on first use
(so ``validate`` never opens a connection), closed with the provider, and changes handed
to one handler per change kind."""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from reconciler.errors import ProviderError
from reconciler.plan import Action, Change
from reconciler.provider import Provider, ProviderContext

from .client import HttpClient

__all__ = ["HttpProvider"]


class HttpProvider(Provider):
    """A provider whose platform is an HTTP API."""

    platform: ClassVar[str]
    """The platform's name, for messages."""
    handlers: ClassVar[Mapping[Action, Callable[[Any, Change], None]]]
    """One method per change kind the provider executes."""

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        super().__init__(target, settings, context)
        self._http: HttpClient | None = None
        self._lock = threading.Lock()

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
