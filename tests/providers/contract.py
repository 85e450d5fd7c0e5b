"""The contract every provider passes, whatever platform it speaks to.

A provider plugs in with a :class:`ProviderHarness` (how to configure a target, reach into
the backend behind it, and see which writes it made) and one subclass of
:class:`ProviderContract` in ``test_contract.py``::

    class TestMautic(HttpContract):  # HttpContract and AddRuleGroupContract extend it
        @pytest.fixture
        def harness(self, tmp_path, no_real_http) -> ProviderHarness:
            return MauticHarness(tmp_path, no_real_http)

Every test drives the library the CLI uses (``reconciler.workspace.Workspace``) with a
registry dict and a fake clock, so nothing sleeps and no entry point is needed.
"""

from __future__ import annotations

import textwrap
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from reconciler.errors import AuthError, RateLimited
from reconciler.model import LiveSegment
from reconciler.plan import Action, ApplyResult, Plan
from reconciler.provider import Provider, ProviderContext
from reconciler.workspace import Workspace
from tests.providers.fakes import FakeClock

__all__ = [
    "AddRuleGroupContract",
    "HttpContract",
    "ProviderContract",
    "ProviderHarness",
    "Session",
    "lists_yaml",
]

LIST = "Newsletter"

SEGMENTS = """\
      - name: Gmail
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
      - name: Weekly 2024
        rules:
          - {field: Frequency, op: equals, value: Weekly}
          - {field: date_subscribed, op: after, value: "2024-01-01"}
"""


def lists_yaml(segments: str = SEGMENTS, prune: bool = False, ignore: str = "") -> str:
    """The ``lists:`` block every contract test starts from (portable to every shape)."""
    head = f"""\
lists:
  - name: {LIST}
    prune: {"true" if prune else "false"}
    fields:
      - {{name: Frequency, type: select, options: [Weekly, Monthly]}}
    segments:
"""
    if ignore:
        head = head.replace("    fields:", f"    ignore: [{ignore}]\n    fields:")
    return head + segments


class ProviderHarness(ABC):
    """What the contract needs to know about one provider and the backend behind it."""

    key: ClassVar[str]
    provider_class: ClassVar[type[Provider]]
    segments: ClassVar[str] = SEGMENTS
    """The contract's two segments (``Gmail``, ``Weekly 2024``), in rules this provider
    can store; the shared block suits most providers."""
    http: ClassVar[bool] = True
    """Whether the provider speaks HTTP: then auth, rate limits and call counts are checked."""

    @abstractmethod
    def target_yaml(self) -> str:
        """The target's provider-specific keys, one ``key: value`` per line."""

    @abstractmethod
    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        """Change a segment's rules directly in the backend, as a person in the UI would."""

    def writes(self) -> list[str] | None:
        """One label per write call made so far (``create_segment``, ``update_segment``,
        ``add_rule_group``, ``delete_segment``, ...), or None when calls are not visible."""
        return None

    def break_auth(self) -> None:
        """Make the backend refuse the target's credentials."""
        raise NotImplementedError

    def rate_limit(self) -> None:
        """Make the backend answer every call with 429."""
        raise NotImplementedError


@dataclass
class Session:
    """One project directory; each call opens a fresh workspace, like one CLI run."""

    harness: ProviderHarness
    root: Path
    registry: dict[str, type[Provider]]
    clock: FakeClock = field(default_factory=FakeClock)

    def write(self, lists: str) -> None:
        target = textwrap.indent(self.harness.target_yaml(), "    ")
        text = f"version: 1\ntargets:\n  main:\n    provider: {self.harness.key}\n{target}\n"
        text += "defaults:\n  target: main\n" + lists
        (self.root / "reconciler.yaml").write_text(text)

    def workspace(self) -> Workspace:
        context = ProviderContext(base_dir=self.root, clock=self.clock)
        return Workspace.open(self.root / "reconciler.yaml", self.registry, context)

    def plan(self) -> Plan:
        ws = self.workspace()
        try:
            return ws.plan()
        finally:
            ws.close()

    def apply(self) -> tuple[Plan, ApplyResult]:
        """Plan and apply; when every change applied, check that planning again is empty."""
        ws = self.workspace()
        try:
            current = ws.plan()
            result = ws.apply(current)
            if result.ok:
                ws.check_converged()
            return current, result
        finally:
            ws.close()

    def live(self, name: str) -> LiveSegment:
        ws = self.workspace()
        try:
            (live_list,) = ws.fetch().lists
        finally:
            ws.close()
        (found,) = [s for s in live_list.segments if s.name == name]
        return found


def actions(current: Plan) -> list[tuple[str, str | None]]:
    return [(c.action.value, c.segment) for c in current.changes]


class ProviderContract:
    """The shared tests. Subclasses provide a ``harness`` fixture."""

    @pytest.fixture
    def session(self, harness: ProviderHarness, tmp_path: Path) -> Session:
        registry = {harness.key: harness.provider_class}
        return Session(harness, tmp_path, registry)

    def _applied(self, session: Session, lists: str = "") -> None:
        session.write(lists or lists_yaml(session.harness.segments))
        _, result = session.apply()
        assert result.ok, result.outcomes

    def test_plan_apply_then_plan_is_empty(self, session: Session) -> None:
        session.write(lists_yaml(session.harness.segments))
        first, result = session.apply()
        assert actions(first) == [
            ("create_list", None),
            ("create_field", None),
            ("create_segment", "Gmail"),
            ("create_segment", "Weekly 2024"),
        ]
        assert result.ok, result.outcomes
        assert session.plan().is_empty

    def test_second_apply_is_a_no_op(self, session: Session, harness: ProviderHarness) -> None:
        self._applied(session)
        before = harness.writes()
        again, result = session.apply()
        assert again.is_empty and not result.outcomes
        assert harness.writes() == before

    def test_rename_is_one_update(self, session: Session, harness: ProviderHarness) -> None:
        self._applied(session)
        old = session.live("Gmail")
        renamed = session.harness.segments.replace(
            "- name: Gmail\n", "- name: Google\n        renamed_from: [Gmail]\n"
        )
        session.write(lists_yaml(renamed))
        before = list(harness.writes() or [])
        current, result = session.apply()
        assert actions(current) == [("update_segment", "Google")]
        assert result.ok, result.outcomes
        assert session.live("Google").id == old.id
        if harness.writes() is not None:
            assert harness.writes() == [*before, "update_segment"]

    def test_prune_deletes_undeclared_segments(self, session: Session) -> None:
        self._applied(session, lists_yaml(session.harness.segments, prune=True))
        kept = session.harness.segments.split("      - name: Weekly 2024")[0]
        session.write(lists_yaml(kept, prune=True))
        current, result = session.apply()
        assert actions(current) == [("delete_segment", "Weekly 2024")]
        assert result.ok, result.outcomes
        assert session.plan().is_empty

    def test_without_prune_undeclared_segments_are_unmanaged(self, session: Session) -> None:
        self._applied(session)
        session.write(lists_yaml(session.harness.segments.split("      - name: Weekly 2024")[0]))
        current = session.plan()
        assert current.is_empty
        assert [u.segment for u in current.unmanaged] == ["Weekly 2024"]

    def test_out_of_band_edit_is_drift(self, session: Session, harness: ProviderHarness) -> None:
        self._applied(session)
        harness.edit_out_of_band(LIST, "Gmail")
        ws = session.workspace()
        try:
            report = ws.drift()
        finally:
            ws.close()
        status = {item.segment: item.status for item in report.items}
        assert status == {"Gmail": "changed", "Weekly 2024": "in_sync"}
        current, result = session.apply()
        assert actions(current) == [("update_segment", "Gmail")]
        assert result.ok and session.plan().is_empty

    def test_optional_contracts_cover_what_the_provider_offers(
        self, harness: ProviderHarness
    ) -> None:
        """A provider offering add_rule_group or speaking HTTP runs those contracts too."""
        if Action.ADD_RULE_GROUP in harness.provider_class.capabilities.changes:
            assert isinstance(self, AddRuleGroupContract)
        if harness.http:
            assert isinstance(self, HttpContract)


class AddRuleGroupContract(ProviderContract):
    """For providers with the ``add_rule_group`` change kind."""

    def test_appended_group_is_one_add(self, session: Session, harness: ProviderHarness) -> None:
        self._applied(session)
        grown = session.harness.segments.replace(
            '"@gmail.com"}\n', '"@gmail.com"}\n          - {field: name, op: not_empty}\n', 1
        )
        session.write(lists_yaml(grown))
        before = list(harness.writes() or [])
        current, result = session.apply()
        assert actions(current) == [("add_rule_group", "Gmail")]
        assert result.ok, result.outcomes
        assert harness.writes() == [*before, "add_rule_group"]


class HttpContract(ProviderContract):
    """For providers that speak HTTP: credentials and rate limits."""

    def test_refused_credentials_are_an_auth_error(
        self, session: Session, harness: ProviderHarness
    ) -> None:
        session.write(lists_yaml(session.harness.segments))
        harness.break_auth()
        with pytest.raises(AuthError):
            session.plan()

    def test_rate_limits_are_retried_then_reported(
        self, session: Session, harness: ProviderHarness
    ) -> None:
        session.write(lists_yaml(session.harness.segments))
        harness.rate_limit()
        with pytest.raises(RateLimited):
            session.plan()
        assert len(session.clock.sleeps) >= 2  # retried, on the injected clock only
