"""Live member counts: read from each platform's answer that carries one (Campaign Monitor
``ActiveSubscribers``, MailWizz ``subscribers_count``, Oempro ``SubscriberCount``), shown by
the plan on updates and deletes, and never compared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import respx

from reconciler.provider import Provider
from reconciler.render import render_plan
from tests.providers import test_mailwizz, test_oempro
from tests.providers.contract import ProviderHarness, Session, lists_yaml
from tests.providers.test_contract import CampaignMonitorHarness


def _answers(router: respx.MockRouter) -> list[Any]:
    found = []
    for call in router.calls:
        try:
            found.append(call.response.json())
        except ValueError:
            continue
    return found


def _campaignmonitor_count(router: respx.MockRouter, name: str) -> Any:
    """``ActiveSubscribers`` of the last get-one-segment answer for ``name``."""
    answers = [a for a in _answers(router) if isinstance(a, dict) and a.get("Title") == name]
    return answers[-1]["ActiveSubscribers"]


def _mailwizz_count(router: respx.MockRouter, name: str) -> Any:
    """``subscribers_count`` of the last segment record read for ``name``."""
    records = [
        a["data"]["record"]
        for a in _answers(router)
        if isinstance(a, dict) and isinstance(a.get("data"), dict) and "record" in a["data"]
    ]
    return [r for r in records if r.get("name") == name][-1]["subscribers_count"]


def _oempro_count(router: respx.MockRouter, name: str) -> Any:
    """``SubscriberCount`` of ``name`` in the last ``Segments.Get`` answer."""
    answers = [a for a in _answers(router) if isinstance(a, dict) and "Segments" in a]
    rows = [row for row in answers[-1]["Segments"] if row["SegmentName"] == name]
    return rows[0]["SubscriberCount"]


@dataclass(frozen=True)
class Case:
    harness: Callable[[respx.MockRouter], ProviderHarness]
    registry: dict[str, type[Provider]]
    lists: Callable[[str], str]
    wire_count: Callable[[respx.MockRouter, str], Any]


CASES = {
    "campaignmonitor": Case(
        CampaignMonitorHarness,
        {"campaignmonitor": CampaignMonitorHarness.provider_class},
        lambda segments: lists_yaml(segments),
        _campaignmonitor_count,
    ),
    "mailwizz": Case(
        test_mailwizz.MailWizzHarness,
        dict(test_mailwizz.REGISTRY),
        lambda segments: test_mailwizz.lists_yaml(segments),
        _mailwizz_count,
    ),
    "oempro": Case(
        test_oempro.OemproHarness,
        dict(test_oempro.REGISTRY),
        lambda segments: test_oempro.lists_yaml(segments),
        _oempro_count,
    ),
}
SEGMENTS = """\
      - name: Gmail
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
"""


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
def session(case: Case, no_real_http: respx.MockRouter, tmp_path: Any) -> Session:
    harness = case.harness(no_real_http)
    clock = getattr(getattr(harness, "fake", None), "clock", None)
    found = Session(harness, tmp_path, case.registry)
    if clock is not None:
        found.clock = clock
    found.write(case.lists(SEGMENTS))
    _, result = found.apply()
    assert result.ok, result.outcomes
    return found


def test_the_live_count_is_the_one_the_platform_answered(
    case: Case, session: Session, no_real_http: respx.MockRouter
) -> None:
    live = session.live("Gmail")
    wire = case.wire_count(no_real_http, "Gmail")
    assert isinstance(wire, int) and live.member_count == wire


def test_the_plan_shows_the_count_on_an_update_and_it_never_makes_one(
    case: Case, session: Session, no_real_http: respx.MockRouter
) -> None:
    assert session.plan().is_empty and session.plan().is_empty  # the count moves on each read
    session.write(case.lists(SEGMENTS.replace("@gmail.com", "@googlemail.com")))
    current = session.plan()
    (change,) = current.changes
    wire = case.wire_count(no_real_http, "Gmail")
    assert change.before is not None and change.before.member_count == wire
    first = render_plan(current, "text").splitlines()[0]
    assert first.endswith(f"  {wire:,} members now")
