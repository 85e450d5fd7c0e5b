"""``base_url`` checking shared by every HTTP provider's settings and by the client."""

from __future__ import annotations

from typing import Annotated

import httpx
from pydantic import AfterValidator

__all__ = ["BaseUrl", "base_url_problem", "check_base_url"]


def base_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be a base URL, never quoting it (it may carry credentials)."""
    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL as exc:
        return f"base_url is not a valid URL ({str(exc).split(':')[0]})"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "base_url must be an http:// or https:// URL with a host"
    return None


def check_base_url(value: str) -> str:
    """A pydantic validator: the URL without surrounding spaces or a trailing slash."""
    value = value.strip().rstrip("/")
    problem = base_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


BaseUrl = Annotated[str, AfterValidator(check_base_url)]
"""A provider setting holding an http(s) base URL; ``validate`` reports a bad one with its
file and line."""
