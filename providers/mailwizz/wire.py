"""Tags and slugs <-> the list's ``field_id`` and the install's ``operator_id``. Pure.

``mapping.py`` translates canonical rules to conditions that name fields by merge tag and
operators by slug; these functions resolve them against one list's fields and the install's
condition operators (and back), and de-duplicate by id as the server does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from reconciler.model import Rule

from .api import FieldRecord, OperatorRecord, SegmentRecord, WireCampaignCondition, WireCondition
from .mapping import CampaignCondition, Compiled, Condition, Untranslatable, decompile

__all__ = ["FieldIndex", "OperatorIndex", "from_wire", "to_wire"]


class FieldIndex:
    """One list's fields by merge tag (case-insensitive) and by ``field_id``."""

    def __init__(self, fields: Iterable[FieldRecord]) -> None:
        self.fields = tuple(fields)
        self._by_tag = {f.tag.casefold(): f for f in self.fields}
        self._by_id = {f.field_id: f for f in self.fields}

    def field_id(self, condition: Condition) -> str:
        if condition.field_id:
            if condition.field_id not in self._by_id:
                raise Untranslatable(f"field_id {condition.field_id} is not a field of the list")
            return condition.field_id
        found = self._by_tag.get(condition.tag.casefold())
        if found is None:
            raise Untranslatable(f"the list has no field tagged {condition.tag}")
        return found.field_id

    def tag(self, field_id: str) -> str:
        found = self._by_id.get(field_id)
        return found.tag if found is not None else ""


class OperatorIndex:
    """The install's condition operators by slug and by id."""

    def __init__(self, operators: Iterable[OperatorRecord]) -> None:
        found = tuple(operators)
        self._by_slug = {o.slug.strip().lower(): o.operator_id for o in found}
        self._by_id = {o.operator_id: o.slug.strip().lower() for o in found}

    def operator_id(self, condition: Condition) -> str:
        if condition.operator_id:
            if condition.operator_id not in self._by_id:
                raise Untranslatable(
                    f"this install has no condition operator {condition.operator_id}"
                )
            return condition.operator_id
        found = self._by_slug.get(condition.slug)
        if found is None:
            raise Untranslatable(f"this install has no condition operator {condition.slug!r}")
        return found

    def slug(self, operator_id: str) -> str:
        return self._by_id.get(operator_id, "")


def to_wire(
    compiled: Compiled, fields: FieldIndex, operators: OperatorIndex
) -> tuple[tuple[WireCondition, ...], tuple[WireCampaignCondition, ...]]:
    """The conditions with ids, de-duplicated as the server will (ids, not tags, decide)."""
    conditions: dict[tuple[str, ...], WireCondition] = {}
    problems: dict[str, None] = {}
    for condition in compiled.conditions:
        try:
            wire = WireCondition(
                field_id=fields.field_id(condition),
                operator_id=operators.operator_id(condition),
                value=condition.value,
            )
        except Untranslatable as exc:
            problems[exc.reason] = None
            continue
        conditions.setdefault(wire.identity(), wire)
    if problems:
        raise Untranslatable("; ".join(problems))
    campaigns = tuple(
        WireCampaignCondition(
            action=c.action,
            campaign_id=c.campaign_id,
            time_comparison_operator=c.time_comparison_operator,
            time_value=c.time_value,
            time_unit=c.time_unit,
        )
        for c in compiled.campaign_conditions
    )
    return tuple(conditions.values()), campaigns


def from_wire(
    record: SegmentRecord, fields: FieldIndex, operators: OperatorIndex
) -> tuple[str, tuple[Rule, ...]]:
    """A stored segment as canonical ``(match, rules)``, values trimmed, duplicates dropped."""
    conditions: dict[tuple[str, ...], Condition] = {}
    for wire in record.conditions:
        tag, slug = fields.tag(wire.field_id), operators.slug(wire.operator_id)
        found = Condition(
            tag=tag,
            slug=slug,
            value=wire.value.strip(),
            field_id="" if tag else wire.field_id,
            operator_id="" if slug else wire.operator_id,
        )
        conditions.setdefault(found.identity(), found)
    campaigns: dict[tuple[str | None, ...], CampaignCondition] = {}
    for item in record.campaign_conditions:
        found_c = CampaignCondition(
            item.action.strip(),
            item.campaign_id.strip() if item.campaign_id else None,
            item.time_comparison_operator.strip(),
            item.time_value.strip(),
            item.time_unit.strip(),
        )
        campaigns.setdefault(found_c.identity(), found_c)
    match: Literal["all", "any"] = "any" if record.operator_match.strip() == "any" else "all"
    return decompile(Compiled(match, tuple(conditions.values()), tuple(campaigns.values())))
