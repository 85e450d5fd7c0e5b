"""Target settings of the MailWizz provider: where the install is, the key, the limit, and
the defaults MailWizz needs to create a list."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, StrictStr, field_validator

from providers._http.urls import BaseUrl

__all__ = ["DEFAULT_MAX_CONDITIONS", "Company", "MailWizzSettings"]

DEFAULT_MAX_CONDITIONS = 3
"""The customer-group option ``lists.max_segment_conditions`` of a standard install."""


class Company(BaseModel):
    """``company[...]`` of a list create; optional when the customer account has company
    details, which MailWizz merges in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr | None = None
    country: StrictStr | None = None
    zone: StrictStr | None = None
    address_1: StrictStr | None = None
    address_2: StrictStr | None = None
    zone_name: StrictStr | None = None
    city: StrictStr | None = None
    zip_code: StrictStr | None = None

    def form(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MailWizzSettings(BaseModel):
    """Target settings: ``base_url`` (the install's API URL), ``api_key``, the optional
    ``max_segment_conditions`` and the list defaults needed to create a list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: BaseUrl
    api_key: SecretStr
    max_segment_conditions: StrictInt = Field(default=DEFAULT_MAX_CONDITIONS, ge=1)
    from_name: StrictStr | None = Field(default=None, min_length=1)
    from_email: StrictStr | None = Field(default=None, min_length=3)
    reply_to: StrictStr | None = Field(default=None, min_length=3)
    subject: StrictStr | None = None
    company: Company | None = None

    @field_validator("api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the api_key is empty")
        return value

    def list_defaults(self) -> tuple[str, str, str] | None:
        if self.from_name and self.from_email and self.reply_to:
            return self.from_name, self.from_email, self.reply_to
        return None
