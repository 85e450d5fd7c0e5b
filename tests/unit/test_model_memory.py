"""What model instances share to save memory (one empty ``options``, the fields-set of
segments read back as declared), and that sharing it is safe."""

from __future__ import annotations

from hypothesis import given, settings

from reconciler.model import FieldRule, Segment
from tests.strategies import segments


def test_a_copy_with_changes_never_changes_the_shared_set() -> None:
    from reconciler.model import LiveSegment

    declared = Segment.model_validate({"name": "A", "rules": [{"field": "email", "op": "empty"}]})
    first, second = LiveSegment.stored_as(declared, "1"), LiveSegment.stored_as(declared, "2")
    copied = first.model_copy(update={"member_count": 3})
    assert "member_count" in copied.model_fields_set
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == {"id", "name", "match", "rules", "options"}
    assert first.model_dump(exclude_unset=True) == {
        "id": "1",
        "name": "A",
        "match": "all",
        "rules": ({"field": "email", "op": "empty"},),
        "options": {},
    }


def test_different_fields_given_keep_different_sets() -> None:
    bare = FieldRule(field="email", op="empty")
    valued = FieldRule(field="email", op="contains", value="x")
    assert bare.model_fields_set == {"field", "op"}
    assert valued.model_fields_set == {"field", "op", "value"}


def test_segments_without_options_share_one_empty_mapping_that_stays_empty() -> None:
    from reconciler.model import LiveSegment

    first = Segment.model_validate({"name": "A", "rules": [{"field": "email", "op": "empty"}]})
    live = LiveSegment.model_validate({"id": "1", "name": "B", "rules": []})
    given = Segment.model_validate(
        {"name": "C", "rules": [{"field": "email", "op": "empty"}], "options": {"x": 1}}
    )
    assert first.options is live.options and first.options == {}
    assert given.options == {"x": 1} and given.options is not first.options
    assert first.model_copy(update={"options": {"y": 2}}).options == {"y": 2}
    assert live.options == {}


@settings(max_examples=40)
@given(segments(max_leaves=4))
def test_a_live_segment_stored_as_declared_equals_one_validated(declared: Segment) -> None:
    from reconciler.model import LiveSegment

    built = LiveSegment.stored_as(declared, "17")
    values = {"id": "17", "name": declared.name, "match": declared.match}
    validated = LiveSegment.model_validate(
        {**values, "rules": declared.rules, "options": declared.options}
    )
    assert built == validated
    assert repr(built) == repr(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert built.managed and built.reason == "" and built.member_count is None
    assert built.rules is declared.rules
    assert built.model_copy(update={"member_count": 3}).member_count == 3
    assert built.model_fields_set == {"id", "name", "match", "rules", "options"}


def test_a_declaration_keeps_its_place_through_copies_and_out_of_dumps() -> None:
    from reconciler.model import MailingList, SourceRef

    segment = Segment.model_validate({"name": "A", "rules": [{"field": "email", "op": "empty"}]})
    assert segment.source is None
    located = segment.model_copy().with_location("f.yaml", ("lists", 0, "segments", 1))
    assert located.source == SourceRef(file="f.yaml", path=("lists", 0, "segments", 1))
    assert located.model_copy(update={"match": "any"}).source == located.source
    assert segment.source is None  # the copy was located, not the original
    assert located.model_dump() == segment.model_dump()
    assert "f.yaml" not in located.model_dump_json() and "f.yaml" not in repr(located)
    listed = MailingList(name="News", segments=(located,))
    listed = listed.with_source(SourceRef(file="f.yaml", path=("lists", 0)))
    assert listed.source == SourceRef(file="f.yaml", path=("lists", 0))
    assert listed.segments[0].source == located.source


def test_an_outcome_assembled_by_the_applier_equals_one_validated() -> None:
    from reconciler.applying import _OUTCOME_FIELDS
    from reconciler.model import assembled
    from reconciler.plan import Action, Change, Outcome

    change = Change(action=Action.CREATE_LIST, target="t", list="L")
    values = {"change": change, "status": "failed", "message": "no"}
    built = assembled(Outcome, dict(values), _OUTCOME_FIELDS)
    validated = Outcome.model_validate(values)
    assert built == validated and repr(built) == repr(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert list(vars(built)) == list(Outcome.model_fields)
