"""YAML round-trips: segments written by ``import`` load back as the same segments."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config import load_config
from reconciler.importing import import_yaml
from reconciler.model import LiveList, LiveSegment, LiveState, Segment
from tests.strategies import segments

ROOT = "version: 1\ntargets: {local: {provider: reference}}\ninclude: [imported.yaml]\n"


def _live(items: list[Segment]) -> LiveState:
    unique = {s.name: s for s in items}
    live = tuple(
        LiveSegment(id=str(i), name=s.name, match=s.match, rules=s.rules, options=s.options)
        for i, s in enumerate(unique.values())
    )
    return LiveState(lists=(LiveList(target="local", name="L", id="1", segments=live),))


@given(st.lists(segments(), min_size=1, max_size=4))
def test_imported_yaml_loads_back_exactly(items: list[Segment]) -> None:
    live = _live(items)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "imported.yaml").write_text(import_yaml(live, "local"))
        (root / "reconciler.yaml").write_text(ROOT)
        config = load_config(root / "reconciler.yaml", environ={})
    (declared,) = config.lists
    expected = {s.name: (s.match, s.rules) for s in live.lists[0].segments}
    assert {s.name: (s.match, s.rules) for s in declared.segments} == expected


@pytest.mark.parametrize(
    ("name", "value", "native"),
    [
        # ruamel writes U+0085 bare (YAML 1.2); libyaml reads it as a line break (YAML 1.1).
        ("a\x85b", "x\u2028y", "plain"),
        # ':' in a plain scalar inside a flow mapping is fine in YAML 1.2, not for libyaml.
        ("url: rules", "see http://example.com/a", "abc http://x"),
    ],
)
def test_text_that_yaml_readers_disagree_on_survives(name: str, value: str, native: str) -> None:
    segment = Segment.model_validate(
        {
            "name": name,
            "rules": [
                {"field": "email", "op": "equals", "value": value},
                {"native": {"RuleType": "CampaignOpened", "Clause": native}},
            ],
        }
    )
    test_imported_yaml_loads_back_exactly.hypothesis.inner_test([segment])  # type: ignore[attr-defined]


def test_segments_without_rules_are_named_but_not_imported() -> None:
    empty = LiveSegment(id="9", name="Everyone", rules=())
    kept = LiveSegment.model_validate(
        {"id": "1", "name": "Kept", "rules": [{"field": "email", "op": "not_empty"}]}
    )
    text = import_yaml(
        LiveState(lists=(LiveList(target="local", name="L", id="1", segments=(empty, kept)),)),
        "local",
    )
    assert '# Not imported: "Everyone" (id 9): it has no rules' in text
    assert "name: Everyone" not in text and "name: Kept" in text


@pytest.mark.parametrize("value", ["? x", ".5e3", "- a", "a, b", "#tag", "yes", "null", "", " x"])
def test_text_that_looks_like_yaml_syntax_survives(value: str) -> None:
    segment = Segment.model_validate(
        {"name": "S", "rules": [{"field": "email", "op": "equals", "value": value}]}
    )
    test_imported_yaml_loads_back_exactly.hypothesis.inner_test([segment])  # type: ignore[attr-defined]


# no NUL: the loader refuses it in any text (issue 11)
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=20,
    )
)
def test_any_text_value_survives_import(value: str) -> None:
    segment = Segment.model_validate(
        {"name": "S", "rules": [{"field": "email", "op": "equals", "value": value}]}
    )
    test_imported_yaml_loads_back_exactly.hypothesis.inner_test([segment])  # type: ignore[attr-defined]


def test_import_declares_only_the_fields_its_rules_use() -> None:
    segment = LiveSegment.model_validate(
        {"id": "1", "name": "S", "rules": [{"field": "plan", "op": "equals", "value": "pro"}]}
    )
    live = LiveList.model_validate(
        {
            "target": "local",
            "name": "L",
            "id": "1",
            "fields": [{"name": "Plan", "type": "select"}, {"name": "Unused", "type": "text"}],
            "segments": [segment.model_dump(by_alias=True)],
        }
    )
    text = import_yaml(LiveState(lists=(live,)), "local")
    assert "{name: Plan, type: select}" in text
    assert "Unused" not in text


def test_a_segment_holding_nul_is_named_but_not_imported() -> None:
    bad = LiveSegment.model_validate(
        {"id": "7", "name": "A\x00B", "rules": [{"field": "email", "op": "not_empty"}]}
    )
    value = LiveSegment.model_validate(
        {"id": "8", "name": "V", "rules": [{"field": "email", "op": "equals", "value": "x\x00"}]}
    )
    text = import_yaml(
        LiveState(lists=(LiveList(target="local", name="L", id="1", segments=(bad, value)),)),
        "local",
    )
    assert "\x00" not in text
    assert text.count("it holds the NUL character, which YAML cannot") == 2
