"""Target settings of the Oempro provider: where the installation is and how to sign in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, StrictStr, model_validator

from providers._http.urls import BaseUrl

__all__ = ["OemproSettings"]


class OemproSettings(BaseModel):
    """Target settings: ``base_url`` (the installation root; the adapter adds ``/api.php``)
    and either ``api_key`` (sent as ``APIKey`` with every call) or ``username`` and
    ``password`` (one ``User.Login`` per run, then its ``SessionID``).

    ``encoding`` is how request bodies are sent: ``form`` (``x-www-form-urlencoded``, what
    every Oempro and Octeth release reads; the default) or ``json`` (Octeth 5.x only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: BaseUrl
    api_key: SecretStr | None = None
    username: StrictStr | None = None
    password: SecretStr | None = None
    encoding: Literal["form", "json"] = "form"

    @model_validator(mode="after")
    def _one_credential(self) -> OemproSettings:
        key = self.api_key is not None
        login = (self.username, self.password)
        if key and any(v is not None for v in login):
            raise ValueError("give either api_key, or username and password, not both")
        if not key and not all(v is not None for v in login):
            raise ValueError("give either api_key, or username and password")
        if self.api_key is not None and not self.api_key.get_secret_value().strip():
            raise ValueError("the api_key is empty")
        if self.password is not None and not self.password.get_secret_value():
            raise ValueError("the password is empty")
        if self.username is not None and not self.username.strip():
            raise ValueError("the username is empty")
        if self.base_url.lower().endswith(".php"):
            raise ValueError("base_url is the installation root; the adapter adds /api.php itself")
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials that must never appear in any output."""
        found = [self.api_key, self.password]
        return tuple(s.get_secret_value() for s in found if s is not None)
