"""Shared data for the impact tests: one list, a few subscribers, plans over them."""

from __future__ import annotations

from datetime import date
from typing import Any

from reconciler.model import Config, LiveState, Rule
from reconciler.plan import Action
from reconciler.provider import Capabilities
from reconciler.sample import Sample
from reconciler.subscriber import Subscriber

NOW = date(2025, 6, 1)
WEEKLY = {"field": "Frequency", "op": "equals", "value": "Weekly"}
MONTHLY = {"field": "Frequency", "op": "equals", "value": "Monthly"}
GMAIL = {"field": "email", "op": "contains", "value": "@gmail.com"}
NATIVE = {"native": {"sql": "1=1"}}


class Canon:
    """A provider that stores rules as given."""

    capabilities = Capabilities(
        shape="tree",
        operators={},
        native=True,
        changes=frozenset({Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT}),
    )

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules


PROVIDERS = {"t": Canon()}


def config(*segments: dict[str, Any], prune: bool = True, name: str = "News") -> Config:
    return Config.model_validate(
        {
            "version": 1,
            "targets": {"t": {"provider": "reference"}},
            "defaults": {"target": "t"},
            "lists": [
                {
                    "name": name,
                    "target": "t",
                    "prune": prune,
                    "fields": [{"name": "Frequency", "type": "text"}],
                    "segments": list(segments),
                }
            ],
        }
    )


def seg(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "rules": list(rules)}


def live(*segments: tuple[str, list[dict[str, Any]]], count: int | None = None) -> LiveState:
    return LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": "News",
                    "id": "L1",
                    "fields": [{"name": "Frequency", "type": "text", "id": "F1"}],
                    "segments": [
                        {"id": str(i), "name": name, "rules": rules, "member_count": count}
                        for i, (name, rules) in enumerate(segments, start=1)
                    ],
                }
            ]
        }
    )


def person(email: str, frequency: str = "", list_name: str = "News") -> Subscriber:
    values: dict[str, Any] = {"email": email, "status": "active"}
    if frequency:
        values["frequency"] = frequency
    return Subscriber(email=email, list=list_name, values=values, target="t")


def sample(*people: Subscriber) -> Sample:
    return Sample.of((p, NOW) for p in people)


WEEKLY_3_MONTHLY_1 = sample(
    person("a@gmail.com", "Weekly"),
    person("b@x.org", "Weekly"),
    person("c@x.org", "Weekly"),
    person("d@gmail.com", "Monthly"),
)
