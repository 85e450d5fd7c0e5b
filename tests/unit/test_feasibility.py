"""What plan refuses once the live state is known, and how names and fields are matched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from reconciler.config import load_config
from reconciler.errors import ConfigError, ConflictError
from reconciler.feasibility import plan_problems
from reconciler.model import Config, LiveState
from reconciler.plan import Action, Change, Plan
from reconciler.planning import SafetyPolicy, detect_drift, plan
from reconciler.provider import Capabilities, Problem, Provider, ProviderContext, Scope
from reconciler.validation import validate_config

BASE = frozenset({Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT})
TEXT = {"text": frozenset({"equals", "contains"})}


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stub(Provider):
    """A provider of plain data: its capabilities and problems are set per test."""

    key: ClassVar[str] = "stub"
    platform: ClassVar[str] = "Stubland"
    settings_model: ClassVar[type[BaseModel]] = _Settings
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="tree", operators=TEXT, changes=BASE | {Action.CREATE_LIST}
    )

    def __init__(self, capabilities: Capabilities, refuse: dict[str, str] | None = None) -> None:
        super().__init__("t", _Settings(), ProviderContext())
        self._capabilities = capabilities
        self.refuse = refuse or {}
        self.seen: list[Change] = []

    @classmethod
    def capabilities_for(cls, settings: BaseModel) -> Capabilities:
        return cls.capabilities  # an instance made by stub() answers with its own

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        self.seen.append(change)
        reason = self.refuse.get(change.segment or "")
        return [Problem(("rules", 0, "op"), reason)] if reason else []

    def fetch(self, scope: Scope) -> LiveState:
        return LiveState()

    def apply(self, change: Change) -> None:
        raise NotImplementedError


def stub(refuse: dict[str, str] | None = None, **caps: Any) -> Stub:
    capabilities = Capabilities(shape="tree", operators={}, **{"changes": BASE, **caps})
    provider = Stub(capabilities, refuse)
    provider.capabilities_for = lambda settings: capabilities  # type: ignore[method-assign]
    provider.capabilities = capabilities  # type: ignore[misc]
    return provider


YAML = """\
version: 1
targets:
  t: {provider: stub}
defaults: {target: t}
lists:
  - name: News
    fields:
      - {name: Plan, type: text}
    segments:
      - name: Pro
        rules:
          - {field: Plan, op: equals, value: pro}
      - name: alpha
        rules:
          - {field: email, op: contains, value: "@x.org"}
"""


def loaded(tmp_path: Path, text: str = YAML) -> Config:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text)
    return load_config(path)


def live(
    fields: list[dict[str, Any]] | None = None,
    segments: list[dict[str, Any]] | None = None,
    account: list[dict[str, Any]] | None = None,
) -> LiveState:
    data: dict[str, Any] = {
        "lists": [
            {
                "target": "t",
                "name": "News",
                "id": "1",
                "fields": fields or [],
                "segments": segments or [],
            }
        ]
    }
    if account is not None:
        data["account_fields"] = {"t": account}
    return LiveState.model_validate(data)


def problems(cfg: Config, state: LiveState, provider: Stub) -> list[str]:
    current = plan(cfg, state, {"t": provider})
    return [str(e) for e in plan_problems(cfg, state, current, {"t": provider})]


def test_a_field_the_provider_cannot_create_is_refused_at_its_declaration(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    (message,) = problems(cfg, live(), stub())
    assert message.endswith(
        'reconciler.yaml:8:10: field "Plan" does not exist in list "News", and Stubland cannot '
        "create custom fields through its API: create it in Stubland, then plan again"
    )


def test_a_list_the_provider_cannot_create_is_refused(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    found = problems(cfg, LiveState(), stub(changes=BASE | {Action.CREATE_FIELD}))
    assert (
        len(found) == 1
        and 'list "News" does not exist, and Stubland cannot create lists' in found[0]
    )
    assert ":6:" in found[0]  # the list's name line


def test_a_live_field_of_another_type_names_both_types_and_the_rules(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    field = {"name": "plan", "type": "select", "options": ["pro", "free"], "native_type": "select"}
    (message,) = problems(cfg, live([field]), stub())
    assert ":8:22:" in message  # at the declared type
    assert (
        'field "Plan" is declared text but the live field "plan" in Stubland is select' in message
    )
    assert 'used by segment "Pro" rules[0]' in message


def test_stores_as_lets_a_declared_type_live_in_another(tmp_path: Path) -> None:
    cfg = loaded(
        tmp_path,
        YAML.replace("type: text", "type: number").replace("equals, value: pro", "gt, value: 5"),
    )
    state = live([{"name": "PLAN", "type": "text"}])
    assert problems(cfg, state, stub()) != []
    assert problems(cfg, state, stub(stores_as={"number": "text"})) == []


def test_declared_options_must_be_the_live_ones(tmp_path: Path) -> None:
    cfg = loaded(
        tmp_path,
        YAML.replace("{name: Plan, type: text}", "{name: Plan, type: select, options: [pro]}"),
    )
    (message,) = problems(
        cfg, live([{"name": "Plan", "type": "select", "options": ["pro", "free"]}]), stub()
    )
    assert "declared with options ['pro'] but the live field has ['pro', 'free']" in message
    assert (
        problems(cfg, live([{"name": "Plan", "type": "select", "options": ["pro"]}]), stub()) == []
    )


def test_provider_problems_are_located_at_the_rule(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    state = live([{"name": "Plan", "type": "text"}])
    (message,) = problems(cfg, state, stub(refuse={"Pro": "no such verb"}))
    assert message.endswith(":12:27: no such verb")


def test_a_field_is_matched_by_any_of_its_names(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    state = live(account=[{"name": "plan_alias", "type": "text", "aliases": ["Plan"]}])
    provider = stub(field_scope="account")
    current = plan(cfg, state, {"t": provider})
    assert [c.action for c in current.changes] == [Action.CREATE_SEGMENT, Action.CREATE_SEGMENT]
    assert problems(cfg, state, provider) == []


def test_an_account_field_declared_by_several_lists_is_created_once(tmp_path: Path) -> None:
    text = YAML + "  - name: Other\n    fields:\n      - {name: plan, type: text}\n"
    cfg = loaded(tmp_path, text)
    state = LiveState.model_validate({"account_fields": {"t": []}})

    def creates(provider: Stub) -> list[str]:
        current = plan(cfg, state, {"t": provider})
        return [c.list for c in current.changes if c.action is Action.CREATE_FIELD]

    assert creates(
        stub(field_scope="account", changes=BASE | {Action.CREATE_LIST, Action.CREATE_FIELD})
    ) == ["News"]
    assert creates(stub(changes=BASE | {Action.CREATE_LIST, Action.CREATE_FIELD})) == [
        "News",
        "Other",
    ]


def test_case_insensitive_names_make_a_case_rename_one_update(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    rules: list[dict[str, Any]] = [{"field": "email", "op": "contains", "value": "@x.org"}]
    state = live([{"name": "Plan", "type": "text"}], [{"id": "9", "name": "Alpha", "rules": rules}])
    exact = plan(cfg, state, {"t": stub()})
    assert [(c.action.value, c.segment) for c in exact.changes if c.segment != "Pro"] == [
        ("create_segment", "alpha")
    ]
    folded = plan(cfg, state, {"t": stub(names_case_insensitive=True)})
    (change,) = [c for c in folded.changes if c.segment != "Pro"]
    assert change.action is Action.UPDATE_SEGMENT and change.before is not None
    assert change.before.id == "9" and change.diff == ('~ name: "Alpha" -> "alpha"',)


def test_case_insensitive_live_duplicates_are_a_conflict(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    rules: list[dict[str, Any]] = [{"field": "email", "op": "contains", "value": "@x.org"}]
    state = live(
        [],
        [
            {"id": "1", "name": "Alpha", "rules": rules},
            {"id": "2", "name": "ALPHA", "rules": rules},
        ],
    )
    with pytest.raises(ConflictError, match='named "ALPHA" / "Alpha" \\(ids 1, 2\\)'):
        plan(cfg, state, {"t": stub(names_case_insensitive=True)})


def test_every_segment_change_is_shown_to_the_provider(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    provider = stub()
    problems(cfg, live([{"name": "Plan", "type": "text"}]), provider)
    assert [(c.action, c.segment) for c in provider.seen] == [
        (Action.CREATE_SEGMENT, "Pro"),
        (Action.CREATE_SEGMENT, "alpha"),
    ]


class CaseBlind(Stub):
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="tree", operators=TEXT, changes=BASE, names_case_insensitive=True
    )


def test_validate_refuses_names_differing_only_in_case_where_the_platform_ignores_case(
    tmp_path: Path,
) -> None:
    text = YAML.replace("- name: Pro\n", "- name: Alpha\n").replace("{field: Plan", "{field: email")
    cfg = loaded(tmp_path, text)
    validate_config(cfg, {"stub": Stub})  # an exact platform: two names
    with pytest.raises(
        ConfigError,
        match=r'duplicate segment "alpha" in list "News" \(same as "Alpha" ignoring case\)',
    ):
        validate_config(cfg, {"stub": CaseBlind})


def _unreadable(sid: str, name: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"native": {"type": "ui_only"}}]
    return {"id": sid, "name": name, "rules": rules, "managed": False, "reason": "a UI clause"}


def test_a_segment_the_provider_cannot_manage_is_never_pruned_unless_named(tmp_path: Path) -> None:
    cfg = loaded(tmp_path, YAML.replace("  - name: News\n", "  - name: News\n    prune: true\n"))
    state = live([{"name": "Plan", "type": "text"}], [_unreadable("7", "Legacy")])
    current = plan(cfg, state, {"t": stub()}, SafetyPolicy(allow_all=True))
    assert not [c for c in current.changes if c.is_delete]
    (kept,) = current.unmanaged
    assert (kept.segment, kept.segment_id, kept.reason) == ("Legacy", "7", "a UI clause")
    named = plan(cfg, state, {"t": stub()}, SafetyPolicy(allow_delete=frozenset({"Legacy"})))
    assert [(c.action, c.segment) for c in named.changes if c.is_delete] == [
        (Action.DELETE_SEGMENT, "Legacy")
    ]
    report = detect_drift(cfg, state, {"t": stub()})
    assert {i.segment: i.status for i in report.items}["Legacy"] == "unmanaged"


def test_a_declared_segment_whose_live_one_cannot_be_written_is_refused_if_it_differs(
    tmp_path: Path,
) -> None:
    cfg = loaded(tmp_path)
    state = live([{"name": "Plan", "type": "text"}], [_unreadable("7", "Pro")])
    with pytest.raises(ConflictError, match=r'segment "Pro" \(id 7\) .* cannot be written'):
        plan(cfg, state, {"t": stub()})
    same = {**_unreadable("7", "Pro"), "rules": [{"field": "Plan", "op": "equals", "value": "pro"}]}
    current = plan(cfg, live([{"name": "Plan", "type": "text"}], [same]), {"t": stub()})
    assert [c.segment for c in current.changes] == ["alpha"]  # "Pro" is in sync: nothing to write
