"""Guard rails for every test: no real HTTP, no real credentials, no real HOME."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

CREDENTIAL_MARKERS = ("API_KEY", "TOKEN", "SECRET", "PASSWORD", "CLIENT_ID")


@pytest.fixture(autouse=True)
def no_real_http() -> Iterator[respx.MockRouter]:
    """Any HTTP request that no fake answers fails the test instead of leaving the machine."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the developer's shell never reach a test; HOME is a temporary dir."""
    for name in list(os.environ):
        if any(marker in name.upper() for marker in CREDENTIAL_MARKERS):
            monkeypatch.delenv(name)
    monkeypatch.delenv("NO_COLOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
