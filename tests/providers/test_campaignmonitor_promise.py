"""A green plan is a promise, for Campaign Monitor: generated configurations against the
stateful fake (tests/providers/promise.py), and raw live states the fake can hold imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import respx
from hypothesis import strategies as st

from tests.providers.contract import ProviderHarness
from tests.providers.promise import FieldSpec, PromiseHarness, Seeder, import_test, promise_test
from tests.providers.test_contract import CampaignMonitorHarness

FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Note": ("Text", ()),
    "Score": ("Number", ()),
    "Joined": ("Date", ()),
    "Frequency": ("MultiSelectOne", ("Weekly", "Monthly")),
    "Hobbies": ("MultiSelectMany", ("Chess", "Golf")),
    "Country Code": ("Country", ()),
    "State": ("USState", ()),
    "Status": ("Text", ()),  # named like a standard field: its rules read as native
    "Email": ("Text", ()),
}
"""The custom fields a seeded list holds (name -> DataType, options); the fake derives
each Key by dropping spaces (``[CountryCode]``)."""

WIRE_RULES: list[tuple[str, str]] = [
    ("EmailAddress", "CONTAINS @x.com"),
    ("EmailAddress", " contains   @Y.com "),
    ("Name", "EQUALS Ann Lee"),
    ("Name", "PROVIDED"),
    ("Name", "NOT_PROVIDED"),
    ("Name", "CONTAINS bob"),  # a verb the API refuses (2712): read as native
    ("DateSubscribed", "AFTER 2024-01-01"),
    ("DateSubscribed", "between 2016-01-01 and 2024-06-30"),
    ("DateSubscribed", "BEFORE 2010-05-05"),  # older than ten years: time-bombed (2723)
    ("DateSubscribed", "EQUALS soon"),
    ("CampaignOpened", "1234abcd1234abcd"),
    ("CampaignClickedAny", "c0ffee"),
    ("CampaignNotOpened", "c0ffee"),
    ("CampaignOpenedNoClick", "c0ffee"),
    ("CampaignClickedSpecific", "abc www.example.com/x"),
    ("[Note]", "EQUALS hello"),
    ("[Note]", "EQUALS 5"),
    ("[Note]", "PROVIDED"),
    ("[Note]", "NOT_PROVIDED"),
    ("[Score]", "BETWEEN 1 AND 10"),
    ("[Score]", "EQUALS 5"),
    ("[Joined]", "BETWEEN 2024-01-01 AND 2024-12-31"),
    ("[Joined]", "EQUALS 2024-01-01"),
    ("[Frequency]", "EQUALS Weekly"),
    ("[Frequency]", "NOT_EQUALS Monthly"),
    ("[Frequency]", "EQUALS Daily"),  # no longer an option
    ("[Hobbies]", "EQUALS Chess"),
    ("[CountryCode]", "EQUALS Wales"),
    ("[State]", "EQUALS Ohio"),
    ("[Status]", "EQUALS gold"),
    ("Status", "PROVIDED"),  # a Key without its brackets (UNVERIFIED either way)
    ("[Email]", "EQUALS a@x.com"),
    ("[Gone]", "EQUALS x"),  # a field deleted since
]


class CampaignMonitorPromise(PromiseHarness):
    fields = (
        FieldSpec("Frequency", "select", ("Weekly", "Monthly"), ("Weekly", "Monthly")),
        FieldSpec("Score", "number"),
        FieldSpec("Joined", "date"),
        FieldSpec("Note", "text"),
    )
    campaigns = ("1234abcd1234abcd", "c0ffee")
    """Fully formed CampaignIDs (one token each): the fake accepts them."""

    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        return CampaignMonitorHarness(router)

    def live_states(self) -> st.SearchStrategy[Seeder]:
        """Segments of any stored RuleGroups (none, or rules of every RuleType and field
        DataType, some the API would now refuse), written straight into the fake."""
        rule = st.sampled_from(WIRE_RULES)
        return st.builds(
            _seeder,
            st.sampled_from(["Newsletter", "Partners"]),
            st.sampled_from(["Alpha", "alpha", "Beta", "Gmail 2024", "VIP readers"]),
            st.lists(st.lists(rule, min_size=1, max_size=3), max_size=3),
            st.booleans(),
        )


def _seeder(
    list_name: str, title: str, groups: list[list[tuple[str, str]]], system: bool
) -> Seeder:
    def seed(harness: Any) -> None:
        fake = harness.fake
        found = [i for i, item in fake.lists.items() if item["Title"] == list_name]
        list_id = found[0] if found else fake.add_list(list_name)
        if not found:
            for name, (data_type, options) in FIELDS.items():
                fake.add_field(list_id, name, data_type, list(options))
        titles = {s["Title"].casefold() for s in fake.segments.values() if s["ListID"] == list_id}
        if title.casefold() not in titles:  # titles are unique ignoring case (275)
            fake.add_segment(list_id, title, groups, system=system)

    return seed


test_campaignmonitor_promise = promise_test(CampaignMonitorPromise(), examples=60)
test_campaignmonitor_import = import_test(CampaignMonitorPromise(), examples=30)
