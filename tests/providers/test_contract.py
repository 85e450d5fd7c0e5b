"""The provider contract (tests/providers/contract.py), run for every provider."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import ClassVar

import pytest
import respx
from hypothesis import strategies as st

from providers.campaignmonitor import CampaignMonitorProvider
from providers.reference import ReferenceProvider
from providers.reference.store import Store
from reconciler.model import Rule
from reconciler.provider import Provider
from reconciler.rules import rule_data
from tests import strategies
from tests.providers.contract import (
    AddRuleGroupContract,
    HttpContract,
    ProviderContract,
    ProviderHarness,
)
from tests.providers.fakes.campaignmonitor import CURRENT_YEAR, FakeCampaignMonitor
from tests.providers.promise import FieldSpec, PromiseHarness, Seeder, import_test, promise_test


class ReferenceHarness(ProviderHarness):
    key: ClassVar[str] = "reference"
    provider_class: ClassVar[type[Provider]] = ReferenceProvider
    http: ClassVar[bool] = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def target_yaml(self) -> str:
        return "path: state.db"

    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        rules = json.dumps([{"field": "email", "op": "contains", "value": "@edited.example"}])
        with sqlite3.connect(self.root / "state.db") as db:
            changed = db.execute(
                "update segments set rules = ? where name = ?", (rules, segment_name)
            ).rowcount
        assert changed == 1


LABELS = {
    ("POST", "lists"): "create_list",
    ("POST", "customfields"): "create_field",
    ("POST", "segments"): "create_segment",
    ("POST", "rules"): "add_rule_group",
    ("PUT", "segments"): "update_segment",
    ("DELETE", "segments"): "delete_segment",
    ("DELETE", "rules"): "delete_rules",
}


class FakeYearCampaignMonitor(CampaignMonitorProvider):
    """The provider living in the fake's year (the DateSubscribed ten-year window, error
    2723, is counted from "today"), so tests do not depend on the date they run on."""

    @classmethod
    def current_year(cls) -> int:
        return CURRENT_YEAR


class CampaignMonitorHarness(ProviderHarness):
    key: ClassVar[str] = "campaignmonitor"
    provider_class: ClassVar[type[Provider]] = FakeYearCampaignMonitor

    def __init__(self, router: respx.MockRouter) -> None:
        self.fake = FakeCampaignMonitor()
        self.fake.mount(router)

    def target_yaml(self) -> str:
        return f"api_key: {self.fake.api_key}\nclient_id: {self.fake.client_id}"

    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        segment = self.fake.segment_by_title(list_name, segment_name)
        segment["RuleGroups"] = [
            {"Rules": [{"RuleType": "EmailAddress", "Clause": "CONTAINS @edited.example"}]}
        ]

    def writes(self) -> list[str]:
        labels = []
        for method, path in self.fake.writes():
            resource = path.rsplit("/", 1)[-1].removesuffix(".json")
            kind = resource if resource in ("rules", "customfields") else path.split("/")[1]
            labels.append(LABELS[(method, kind)])
        return labels

    def break_auth(self) -> None:
        self.fake.api_key = "another-key-entirely"

    def rate_limit(self) -> None:
        self.fake.rate_limited = True


class TestReferenceContract(ProviderContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ProviderHarness:
        return ReferenceHarness(tmp_path)


class TestCampaignMonitorContract(AddRuleGroupContract, HttpContract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return CampaignMonitorHarness(no_real_http)


class ReferencePromise(PromiseHarness):
    fields = (
        FieldSpec("Frequency", "select", ("Weekly", "Monthly"), ("Weekly", "Monthly")),
        FieldSpec("Score", "number"),
        FieldSpec("Joined", "date"),
        FieldSpec("Note", "text"),
    )

    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        return ReferenceHarness(root)

    def live_states(self) -> st.SearchStrategy[Seeder]:
        """Segments of any valid rule tree (or none), and fields of any type, one named
        like a standard field, written straight into the store."""
        return st.builds(
            _reference_seeder,
            st.sampled_from(["Newsletter", "Partners"]),
            st.sampled_from(["Alpha", "alpha", "Beta", "Gmail 2024"]),
            st.sampled_from(["all", "any"]),
            st.lists(strategies.rules(), max_size=3),
            st.sampled_from([("Frequency", "select"), ("Status", "text"), ("Score", "number")]),
        )


def _reference_seeder(
    list_name: str, name: str, match: str, rules: list[Rule], field: tuple[str, str]
) -> Seeder:
    def seed(harness: ReferenceHarness) -> None:
        store = Store.open(str(harness.root / "state.db"))
        try:
            with store.write() as tx:
                found = tx.find_list(list_name)
                list_id = found.id if found else tx.insert_list(list_name)
                if tx.find_field(list_id, field[0]) is None:
                    tx.insert_field(list_id, field[0], field[1], "[]")
                if tx.find_segment(list_id, name) is None:
                    data = json.dumps([rule_data(rule) for rule in rules])
                    tx.insert_segment(list_id, name, match, data, "{}")
        finally:
            store.close()

    return seed


test_reference_promise = promise_test(ReferencePromise())
test_reference_import = import_test(ReferencePromise())
