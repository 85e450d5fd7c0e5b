"""Rows <-> models in the reference backend: the fast paths agree with the plain ones, and
a store edited by hand (hostile rows) gives one clear error, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import to_jsonable_python

from providers.reference import ReferenceProvider
from providers.reference.columns import dumps, rules_json, segment_columns
from providers.reference.decoding import decode_state
from providers.reference.store import FieldRow, ListRow, SegmentRow
from reconciler.errors import ProviderError
from reconciler.model import FieldDef, LiveSegment, LiveState, Rule, Segment
from reconciler.plan import Action
from reconciler.provider import Scope
from reconciler.sharing import MAX_DEPTH
from tests.factories import make_group, make_rule, make_segment
from tests.providers.reference_support import (
    TARGET,
    change,
    create_list,
    create_segment,
    live_segment,
    opened,
)
from tests.strategies import rule_trees, segments

# -- the plain paths, as the backend had them: the reference the fast paths must equal ----


def plain_rules_json(rules: Sequence[Rule]) -> str:
    return json.dumps(
        [rule.model_dump(by_alias=True, exclude_none=True) for rule in rules],
        ensure_ascii=False,
        separators=(",", ":"),
        default=to_jsonable_python,
    )


def plain_document(
    lists: Sequence[ListRow], fields: Sequence[FieldRow], segments: Sequence[SegmentRow]
) -> str:
    """The whole state as one JSON text built from the stored columns, for JSON mode."""
    documents = []
    for row in lists:
        field_texts = [
            f'{{"id":"{f.id}","name":{dumps(f.name)},"type":{dumps(f.type)},"options":{f.options}}}'
            for f in fields
            if f.list_id == row.id
        ]
        segment_texts = [
            f'{{"id":"{s.id}","name":{dumps(s.name)},"match":{dumps(s.match)},'
            f'"rules":{s.rules},"options":{s.options}}}'
            for s in segments
            if s.list_id == row.id
        ]
        documents.append(
            f'{{"target":{dumps(TARGET)},"name":{dumps(row.name)},"id":"{row.id}",'
            f'"fields":[{",".join(field_texts)}],"segments":[{",".join(segment_texts)}]}}'
        )
    return f'{{"lists":[{",".join(documents)}]}}'


def rows_of(
    declared: Sequence[Segment],
) -> tuple[list[ListRow], list[FieldRow], list[SegmentRow]]:
    """Two lists holding ``declared`` in turn, each with two fields: rows as the store has."""
    lists = [ListRow(1, "News"), ListRow(2, "Zoë")]
    fields = [
        FieldRow(1, 1, "Frequency", "select", dumps(["Weekly", "Monthly"])),
        FieldRow(2, 2, "Age", "number", "[]"),
        FieldRow(3, 1, "Vip", "boolean", "[]"),
    ]
    rows = [
        SegmentRow(10 + n, 1 + n % 2, segment.name, segment.match, *segment_columns(segment), 1)
        for n, segment in enumerate(declared)
    ]
    return lists, fields, rows


def typed(value: Any) -> str:
    """``repr`` of parsed JSON: tells 1 from 1.0 from True, and NaN shows as ``nan``."""
    return repr(value)


# -- writing ---------------------------------------------------------------------------

ENCODING_CASES: dict[str, list[Any]] = {
    "scalars": [make_rule("a", "in", ["x", 1, 1.0, True, False, -(10**30), 1e-7, 1e100])],
    "unicode": [make_rule("name", "contains", 'Zoë "q" \\ \n\t\u2028\U0001f600')],
    "no value": [make_rule("a", "empty")],
    "behaviour within": [{"campaign": 42, "event": "opened", "within": {"days": 3}}],
    "membership": [{"list": "VIP"}, {"list": "B", "op": "not_active_in"}],
    "groups": [make_group("any", make_rule("a", "gt", 1), make_group("all", {"list": "V"}))],
    "native non-finite": [
        make_group("any", {"native": {"inf": math.inf, "ninf": -math.inf, "big": 2**70}})
    ],
}


@pytest.mark.parametrize("rules", list(ENCODING_CASES.values()), ids=list(ENCODING_CASES.keys()))
def test_reference_rules_column_equals_the_plain_encoding(rules: list[Any]) -> None:
    declared = make_segment("S", *rules)
    assert typed(json.loads(rules_json(declared.rules))) == typed(
        json.loads(plain_rules_json(declared.rules))
    )


def test_reference_native_nan_is_kept_not_nulled() -> None:
    declared = make_segment("S", {"native": {"n": math.nan}})
    (stored,) = json.loads(rules_json(declared.rules))
    assert math.isnan(stored["native"]["n"])


@settings(max_examples=30)
@given(st.lists(rule_trees(max_leaves=6), min_size=1, max_size=3))
def test_reference_rules_column_equals_the_plain_encoding_generated(rules: list[Rule]) -> None:
    assert typed(json.loads(rules_json(rules))) == typed(json.loads(plain_rules_json(rules)))


# -- reading ---------------------------------------------------------------------------


@settings(max_examples=30)
@given(st.lists(segments(max_leaves=4), max_size=4))
def test_reference_decoding_equals_json_mode_validation(declared: list[Segment]) -> None:
    lists, fields, rows = rows_of(declared)

    fast = decode_state(TARGET, lists, fields, rows, "state.db")

    plain = LiveState.model_validate_json(plain_document(lists, fields, rows))
    assert fast == plain
    assert repr(fast) == repr(plain)
    assert fast.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)


def test_reference_decoding_equals_json_mode_for_every_rule_kind() -> None:
    declared = [
        make_segment(name, *rules, options={"b": [1, None], "a": {"x": 1.0}})
        for name, rules in ENCODING_CASES.items()
        if name != "native non-finite"  # NaN never equals itself; -inf is checked below
    ]
    lists, fields, rows = rows_of(declared)

    fast = decode_state(TARGET, lists, fields, rows, "state.db")

    assert repr(fast) == repr(LiveState.model_validate_json(plain_document(lists, fields, rows)))
    assert [len(live.segments) for live in fast.lists] == [3, 3]
    assert [field.name for field in fast.lists[0].fields] == ["Frequency", "Vip"]


def test_reference_decodes_non_finite_native_values() -> None:
    declared = make_segment("S", *ENCODING_CASES["native non-finite"])
    lists, fields, rows = rows_of([declared])
    (live,) = decode_state(TARGET, lists, fields, rows, "state.db").lists[0].segments
    assert repr(live.rules) == repr(declared.rules)


# -- identical rules shared -------------------------------------------------------------


def decoded(*rules_columns: str) -> list[LiveSegment]:
    """Segments S0, S1, ... of one list, with these ``rules`` columns."""
    rows = [SegmentRow(n, 1, f"S{n}", "all", text, "{}", 1) for n, text in enumerate(rules_columns)]
    (live,) = decode_state(TARGET, [ListRow(1, "News")], [], rows, "state.db").lists
    assert repr(live) == repr(
        LiveState.model_validate_json(plain_document([ListRow(1, "News")], [], rows)).lists[0]
    )
    return list(live.segments)


def test_reference_identical_rules_are_one_shared_instance() -> None:
    leaf = '{"field":"status","op":"equals","value":"active"}'
    group = f'{{"any":[{leaf},{{"field":"Age","op":"in","value":[1,2]}}]}}'
    first, second, third = decoded(f"[{leaf},{group}]", f"[{group},{leaf}]", f"[{leaf}]")

    assert first.rules[0] is second.rules[1] is third.rules[0]
    assert first.rules[1] is second.rules[0]
    assert first.rules[1].rules[0] is first.rules[0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "values",
    [["1", "1.0", "true", '"1"'], ["0.0", "-0.0"], ["[1]", "[1.0]", "[true]", '["1"]']],
    ids=["scalars", "signed zero", "in lists"],
)
def test_reference_equal_values_of_other_types_are_not_shared(values: list[str]) -> None:
    op = "in" if values[0].startswith("[") else "equals"
    columns = [f'[{{"field":"a","op":"{op}","value":{value}}}]' for value in values]

    rules = [segment.rules[0] for segment in decoded(*columns)]

    assert len({id(rule) for rule in rules}) == len(values)
    assert len({repr(rule) for rule in rules}) == len(values)


def test_reference_absent_and_null_values_keep_what_was_given() -> None:
    absent, null = decoded(
        '[{"field":"a","op":"empty"}]', '[{"field":"a","op":"empty","value":null}]'
    )
    assert absent.rules[0].model_fields_set == {"field", "op"}
    assert null.rules[0].model_fields_set == {"field", "op", "value"}


def test_reference_a_rule_like_a_shared_one_is_still_checked(tmp_path: Path) -> None:
    good = '{"field":"a","op":"empty"}'
    bad = '{"field":"a","op":"empty","extra":1}'
    rows = [SegmentRow(1, 1, "Good", "all", f"[{good}]", "{}", 1)]
    rows.append(SegmentRow(2, 1, "Bad", "all", f"[{good},{bad}]", "{}", 1))

    with pytest.raises(ProviderError, match=r"segment 'Bad' \(id 2\) .*rules\.1\.field\.extra"):
        decode_state(TARGET, [ListRow(1, "News")], [], rows, "state.db")


def test_reference_groups_deeper_than_shared_still_decode() -> None:
    rule: dict[str, Any] = {"field": "a", "op": "empty"}
    for depth in range(MAX_DEPTH + 5):
        rule = {("any", "all")[depth % 2]: [rule, {"field": "b", "op": "empty"}]}
    (segment,) = decoded(json.dumps([rule]))
    assert len(segment.rules) == 1


# -- hostile rows ----------------------------------------------------------------------


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ReferenceProvider]:
    with opened(tmp_path) as provider:
        create_list(provider)
        create_segment(provider, make_segment("Seg"))
        provider.apply(change(Action.CREATE_FIELD, field=FieldDef(name="F")))
        yield provider


def edit(path: Path, sql: str, *args: object) -> None:
    """Change the store behind the provider's back, as a person with a SQLite shell can."""
    raw = sqlite3.connect(path)
    with raw:
        raw.execute(sql, args)
    raw.close()


def deep_groups(depth: int) -> str:
    rule: dict[str, Any] = {"field": "a", "op": "empty"}
    for _ in range(depth):
        rule = {"any": [rule]}
    return json.dumps([rule])


SEGMENT = "segment 'Seg' (id 1) of list 'News'"
HOSTILE_SEGMENTS: dict[str, tuple[str, object, str]] = {
    "rules not JSON": ("rules", "not json", "rules is not valid JSON (Expecting value"),
    "rules smuggling keys": (
        "rules",
        '[],"managed":false,"reason":"x"',
        "rules is not valid JSON (Extra data",
    ),
    "unknown operator": ("rules", '[{"field": "x", "op": "nope"}]', "rules.0.field.op: Input"),
    "rules not a list": ("rules", '{"field": "x", "op": "empty"}', "rules: Input should be"),
    "NaN value": ("rules", '[{"field": "a", "op": "gt", "value": NaN}]', "rules.0.field.value"),
    "too many digits": (
        "rules",
        '[{"field": "a", "op": "gt", "value": ' + "9" * 5000 + "}]",
        "rules is not valid JSON (Exceeds the limit",
    ),
    "nested too deeply for JSON": ("rules", "[" * 100_000, "rules is nested too deeply"),
    "groups nested too deeply": ("rules", deep_groups(300), "rules.0.group.any.0.group.any."),
    "rules a blob": ("rules", b"[]", "rules holds bytes data, not JSON text"),
    "rules a number": ("rules", "42", "rules: Input should be a valid tuple"),
    "options a list": ("options", "[1]", "options: Input should be a valid dictionary"),
    "name not UTF-8": ("name", b"\xff", "name: Input should be a valid string"),
    "match unknown": ("match", "most", "match: Input should be 'all' or 'any'"),
}


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    list(HOSTILE_SEGMENTS.values()),
    ids=list(HOSTILE_SEGMENTS.keys()),
)
def test_reference_fetch_refuses_a_hostile_segment_row(
    tmp_path: Path, provider: ReferenceProvider, column: str, value: object, expected: str
) -> None:
    # CHECK (match IN ...) guards the column; a hand-edited file need not have it.
    raw = sqlite3.connect(tmp_path / "state.db")
    with raw:
        raw.execute("PRAGMA ignore_check_constraints = ON")
        raw.execute(f"UPDATE segments SET {column} = ?", (value,))
    raw.close()

    with pytest.raises(ProviderError) as caught:
        provider.fetch(Scope())

    message = str(caught.value)
    name = re.escape(repr(value) if column == "name" else "'Seg'")
    assert message.startswith(f"{tmp_path / 'state.db'} holds data this version of the ")
    assert re.search(rf"cannot read \(\d+ problems?; first in segment {name} \(id 1\) of", message)
    assert expected in message
    assert len(message) < 600


def test_reference_a_deep_error_location_is_cut_short(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    edit(tmp_path / "state.db", "UPDATE segments SET rules = ?", deep_groups(300))
    with pytest.raises(ProviderError, match=r"problems; first in .*any\.0\.…: ") as caught:
        provider.fetch(Scope())
    assert str(caught.value).count("group") == 2
    assert str(caught.value).endswith("Recursion error - maximum validation depth exceeded)")


def test_reference_a_hostile_field_row_names_the_field(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    edit(tmp_path / "state.db", "UPDATE fields SET options = '\"Weekly\"'")
    with pytest.raises(ProviderError, match=r"first in field 'F' \(id 1\) of list 'News'"):
        provider.fetch(Scope())
    edit(tmp_path / "state.db", "UPDATE fields SET options = '[', type = 'text'")
    with pytest.raises(ProviderError, match=r"field 'F' \(id 1\) .*options is not valid JSON"):
        provider.fetch(Scope())


def test_reference_a_hostile_list_row_names_the_list(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    edit(tmp_path / "state.db", "UPDATE lists SET name = ?", b"\x80")
    with pytest.raises(ProviderError, match=r"first in list b'\\x80' \(id 1\): name: "):
        provider.fetch(Scope())


def test_reference_names_from_the_store_are_quoted_and_cut(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    hostile = "\x1b[2J" + "x" * 10_000
    edit(tmp_path / "state.db", "UPDATE segments SET name = ?, rules = 'nope'", hostile)
    with pytest.raises(ProviderError) as caught:
        provider.fetch(Scope())
    message = str(caught.value)
    assert "\x1b" not in message
    assert "'\\x1b[2Jxxx" in message
    assert len(message) < 400


def test_reference_keys_from_the_store_are_quoted_and_cut_in_locations(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    key = "\x1b]0;pwned\x07" + "k" * 500
    rules = json.dumps([{"field": "a", "op": "empty", key: 1}])
    edit(tmp_path / "state.db", "UPDATE segments SET rules = ?", rules)
    with pytest.raises(ProviderError, match="Extra inputs are not permitted") as caught:
        provider.fetch(Scope())
    message = str(caught.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "rules.0.field.'\\x1b]0;pwned\\x07kkk" in message
    assert len(message) < 400


def test_reference_apply_refuses_a_hostile_row_it_must_compare(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    planned = live_segment(provider, "Seg")
    edit(tmp_path / "state.db", "UPDATE segments SET rules = '[{\"field\": 1}]'")
    with pytest.raises(ProviderError, match=r"first in segment 'Seg' \(id 1\) of list 'News'"):
        provider.apply(change(Action.DELETE_SEGMENT, before=planned))


# -- a narrowed re-read (Scope.segments) -------------------------------------------------


def test_reference_fetch_reads_only_the_segments_asked_for(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        for list_name in ("News", "Other"):
            create_list(provider, list_name)
            for name in ("Alpha", "Beta", "Gamma"):
                create_segment(provider, make_segment(name), list_name)
        gamma = live_segment(provider, "Gamma")

        scope = Scope(
            lists=frozenset({"News", "Other"}),
            segments={"News": frozenset({"alpha", gamma.id})},
        )
        state = provider.fetch(scope)

    assert [(lst.name, [s.name for s in lst.segments]) for lst in state.lists] == [
        ("News", ["Alpha", "Gamma"]),
        ("Other", ["Alpha", "Beta", "Gamma"]),
    ]


# -- rows stored exactly as declared (``Scope.expected``) -----------------------------------


def expecting(declared: Sequence[Segment]) -> Scope:
    """The hint ``plan`` gives for ``rows_of(declared)``: each segment under its list."""
    by_list: dict[str, dict[str, Segment]] = {"News": {}, "Zoë": {}}
    for n, segment in enumerate(declared):
        by_list["News" if n % 2 == 0 else "Zoë"][segment.name] = segment
    return Scope(expected=by_list)


@settings(max_examples=40)
@given(st.lists(segments(max_leaves=4), max_size=4, unique_by=lambda s: s.name))
def test_reference_rows_stored_as_declared_read_as_a_full_decode(declared: list[Segment]) -> None:
    lists, fields, rows = rows_of(declared)

    full = decode_state(TARGET, lists, fields, rows, "state.db")
    hinted = decode_state(TARGET, lists, fields, rows, "state.db", expecting(declared))

    assert hinted == full
    assert repr(hinted) == repr(full)
    assert hinted.model_dump_json() == full.model_dump_json()
    live = [segment for live_list in hinted.lists for segment in live_list.segments]
    for segment in declared:  # the hint was taken: nothing was parsed again
        (same,) = [s for s in live if s.name == segment.name]
        assert same.rules is segment.rules


def test_reference_a_row_not_stored_as_declared_is_decoded() -> None:
    declared = make_segment("S", make_rule("email", "contains", "@x.com"))
    lists, fields, (row,) = rows_of([declared])
    spaced = row.rules.replace(",", ", ")  # the same rules, not the text apply writes
    other = make_segment("S", make_rule("email", "contains", "@y.com"))
    for stored, want in [(spaced, declared), (segment_columns(other)[0], other)]:
        changed = SegmentRow(row.id, row.list_id, row.name, row.match, stored, row.options, 1)
        state = decode_state(TARGET, lists, fields, [changed], "state.db", expecting([declared]))
        (live,) = state.lists[0].segments
        assert live.rules == want.rules
        assert live.rules is not declared.rules


HINTED_ROWS: dict[str, dict[str, object]] = {
    "other name case": {"name": "s"},
    "other match": {"match": "any"},
    "options added": {"options": '{"a":1}'},
    "rules as bytes": {"rules": b"x"},
    "name as bytes": {"name": b"S"},
}


@pytest.mark.parametrize("edit", list(HINTED_ROWS.values()), ids=list(HINTED_ROWS.keys()))
def test_reference_the_hint_needs_every_column_as_declared(edit: dict[str, object]) -> None:
    declared = make_segment("S", make_rule("email", "contains", "@x.com"))
    lists, fields, (row,) = rows_of([declared])
    changed = dataclasses.replace(row, **edit)  # type: ignore[arg-type]
    try:
        full = decode_state(TARGET, lists, fields, [changed], "state.db")
    except ProviderError as refused:
        with pytest.raises(ProviderError) as caught:
            decode_state(TARGET, lists, fields, [changed], "state.db", expecting([declared]))
        assert str(caught.value) == str(refused)
        return
    hinted = decode_state(TARGET, lists, fields, [changed], "state.db", expecting([declared]))
    assert repr(hinted) == repr(full)
    assert hinted.lists[0].segments[0].rules is not declared.rules


def test_reference_a_hostile_row_named_as_declared_is_still_refused(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    edit(tmp_path / "state.db", "UPDATE segments SET rules = ?", "not json")
    declared = {"News": {"Seg": make_segment("Seg", make_rule("email", "empty"))}}
    with pytest.raises(ProviderError, match="rules is not valid JSON"):
        provider.fetch(Scope(expected=declared))


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def segments_with_options(draw: st.DrawFn) -> Segment:
    """A segment with options and a ``native:`` rule of any JSON (infinities included)."""
    segment = draw(segments(max_leaves=3))
    native = draw(
        st.dictionaries(
            st.text(max_size=4),
            _JSON | st.sampled_from([math.inf, -math.inf]),
            min_size=1,
            max_size=3,
        )
    )
    options = draw(st.dictionaries(st.text(min_size=1, max_size=6), _JSON, max_size=3))
    data = segment.model_dump(by_alias=True, exclude_none=True)
    data["rules"] = [*data["rules"], {"native": native}]
    return Segment.model_validate({**data, "options": options})


@settings(max_examples=60)
@given(st.lists(segments_with_options(), min_size=1, max_size=3, unique_by=lambda s: s.name))
def test_reference_the_hint_equals_a_full_decode_with_options_and_native_rules(
    declared: list[Segment],
) -> None:
    lists, fields, rows = rows_of(declared)

    full = decode_state(TARGET, lists, fields, rows, "state.db")
    hinted = decode_state(TARGET, lists, fields, rows, "state.db", expecting(declared))

    assert hinted == full
    assert hinted.model_dump_json() == full.model_dump_json()
    assert all(s.rules is d.rules for s, d in zip(_live(hinted, declared), declared, strict=True))


def _live(state: LiveState, declared: list[Segment]) -> list[LiveSegment]:
    by_name = {s.name: s for live_list in state.lists for s in live_list.segments}
    return [by_name[segment.name] for segment in declared]


def test_reference_a_write_takes_no_lock_close_may_hold(provider: ReferenceProvider) -> None:
    # close() holds the open lock while it waits for the store's lock; a write holds the
    # store's lock while it remembers the columns it wrote, so that must not need the other.
    done = threading.Event()
    segment = make_segment("S")
    with provider._open_lock:
        worker = threading.Thread(target=lambda: (provider._columns(segment), done.set()))
        worker.start()
        assert done.wait(10), "remembering the columns written waited for the open lock"
    worker.join()


def test_reference_columns_written_are_kept_only_until_the_next_read(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
        provider.apply(change(Action.CREATE_SEGMENT, after=make_segment("A")))
        assert len(provider._written) == 1  # for the check that reads the apply back
        provider.fetch(Scope())
        assert provider._written == {}
        provider.apply(change(Action.CREATE_SEGMENT, after=make_segment("B")))
    assert provider._written == {}  # closed
