"""A green plan is a promise, for Mautic: generated configurations against the stateful fake,
and raw live states the fake can hold imported (tests/providers/promise.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import respx
from hypothesis import strategies as st

from tests.providers.contract import ProviderHarness
from tests.providers.fakes.mautic import FakeMautic
from tests.providers.promise import FieldSpec, PromiseHarness, Seeder, import_test, promise_test
from tests.providers.test_mautic import MauticHarness


class MauticPromise(PromiseHarness):
    """Contact fields declared by alias; the instance already holds some of them, one under
    a label (``Joined``) whose alias differs, so both the create and the match paths run."""

    fields = (
        FieldSpec("frequency", "select", ("Weekly", "Monthly"), ("Weekly", "Monthly")),
        FieldSpec("score", "number"),
        FieldSpec("Joined", "date"),
        FieldSpec("note", "text"),
    )

    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        harness = MauticHarness(router)
        harness.fake.add_field("Score", "score", "number")
        harness.fake.add_field("Joined", "joined_on", "date")
        return harness

    def live_states(self) -> st.SearchStrategy[Seeder]:
        """One segment each, as someone in Mautic's UI (or an old version) left it: filters
        of every documented kind, including LIKE patterns, contact fields whose alias is a
        standard field name, absolute datetimes, special and company filters, membership of
        another segment, legacy and stale keys, hidden operators, no filter at all; options
        with markup, generated and custom aliases; names shared within a category."""
        return st.builds(
            _seeder,
            st.sampled_from(["Newsletter", "Partners"]),
            st.sampled_from(["Alpha", "alpha", "Beta", "Gmail 2024", "VIP  readers!", "Ünï 1"]),
            st.lists(
                st.tuples(st.sampled_from(["and", "or"]), st.sampled_from(FILTERS)),
                max_size=3,
            ),
            st.fixed_dictionaries({}, optional=OPTIONS),
        )


def _filter(field: str, kind: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return (
        {"field": field, "object": "lead", "type": kind, "operator": operator}
        | {"properties": {"filter": value}}
        | extra
    )


MEMBERSHIP = "membership"
"""A ``leadlist`` filter on the segment seeded just before (when there is one)."""

FILTERS: list[dict[str, Any] | str] = [
    _filter("email", "email", "like", "gmail"),
    _filter("email", "email", "like", "%@x.com"),
    _filter("email", "email", "contains", "a_b"),
    _filter("email", "email", "endsWith", "@x.com"),
    _filter("email", "email", "=", " spaced "),
    _filter("email", "email", "regexp", "^a"),
    _filter("email", "email", "!empty", None),
    _filter("firstname", "text", "in", "Ann|Bob"),
    _filter("status", "text", "=", "active"),
    _filter("name", "text", "like", "Ann"),
    _filter("frequency", "select", "=", "Weekly"),
    _filter("frequency", "select", "in", ["Weekly", "Monthly"]),
    _filter("last_seen", "datetime", "gt", "2024-01-01 10:00"),
    _filter("last_seen", "datetime", "lt", "-7 days"),
    _filter("joined_on", "date", "gt", "2024-01-01"),
    _filter("score", "number", "gte", 5),
    _filter("score", "number", "between", ["1", "9"]),
    _filter("date_added", "date", "lt", "2024-01-01"),
    _filter("points", "number", "gt", "5"),
    _filter("vip", "boolean", "=", 1),
    _filter("hobbies", "multiselect", "in", ["chess"]),
    {"field": "name", "object": "company", "type": "text", "operator": "=", "filter": "Acme"},
    {"field": "email", "object": "lead", "type": "email", "operator": "like", "filter": "old"}
    | {"display": None},
    _filter("email", "email", "like", "new", filter="stale", display="stale"),
    MEMBERSHIP,
]

OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "description": st.sampled_from(["For VIPs", "<p>Our <b>best</b> readers</p>", ""]),
    "publicName": st.sampled_from(["Public name", "Alpha"]),
    "isPublished": st.booleans(),
    "isGlobal": st.booleans(),
    "isPreferenceCenter": st.booleans(),
    "alias": st.sampled_from(["custom-alias", "Not_Clean", "alpha"]),
}


def _ensure_fields(fake: FakeMautic) -> None:
    """The contact fields the seeded filters name (``status`` and ``name`` are contact
    fields whose aliases are standard field names)."""
    if any(f["alias"] == "status" for f in fake.fields.values()):
        return
    fake.add_field("Status", "status", "text")
    fake.add_field("Name", "name", "text")
    fake.add_field("Frequency", "frequency", "select", ["Weekly", "Monthly"])
    fake.add_field("Last seen", "last_seen", "datetime")
    fake.add_field("VIP", "vip", "boolean")
    fake.add_field("Hobbies", "hobbies", "multiselect", ["chess", "golf"])


def _seeder(
    category: str,
    name: str,
    filters: list[tuple[str, dict[str, Any] | str]],
    options: dict[str, Any],
) -> Seeder:
    def seed(harness: MauticHarness) -> None:
        fake = harness.fake
        _ensure_fields(fake)
        found = [i for i, c in fake.categories.items() if c["title"] == category]
        category_id = found[0] if found else fake.add_category(category)
        stored = []
        for glue, item in filters:
            if item == MEMBERSHIP:
                if not fake.segments:
                    continue
                item = _filter("leadlist", "leadlist", "in", [max(fake.segments)])
            assert isinstance(item, dict)
            stored.append({"glue": glue} | item)
        ident = fake.add_segment(name, category_id, stored)
        fake.segments[ident].update(options)
        if "publicName" not in options:
            fake.segments[ident]["publicName"] = name

    return seed


test_mautic_promise = promise_test(MauticPromise(), examples=int(os.environ.get("MAUTIC_EX", "60")))
test_mautic_import = import_test(MauticPromise(), examples=int(os.environ.get("MAUTIC_EX", "40")))
