"""A plan's audience impact: who each segment change moves among sample subscribers. Pure.

``plan --sample FILE`` evaluates every segment created, updated or deleted on the sample
subscribers of its list, before and after the change, with the one rule evaluator
(:mod:`reconciler.evaluate`), and ``--max-shrink PCT`` turns a segment that would lose
more than PCT % of its sample members into a safety limit. Both are made afresh by each
plan, from the sample and the configuration given to that run: an impact read back from a
saved plan is only ever shown.

Only planning imports this module, and only when a sample is given: a plan without
``--sample`` never loads the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .model import MailingList
from .plan import Action, Change, Impact, ShrinkLimit
from .sample import Members, Sample, change_members

__all__ = ["SEGMENT_CHANGES", "shrink_limits", "with_impact"]

SEGMENT_CHANGES = frozenset(
    {
        Action.CREATE_SEGMENT,
        Action.UPDATE_SEGMENT,
        Action.ADD_RULE_GROUP,
        Action.DELETE_SEGMENT,
    }
)
"""The changes that move members (lists and fields select nobody)."""


def _impact(before: Members | None, after: Members | None, total: int) -> Impact:
    had = before.members if before is not None else frozenset()
    has = after.members if after is not None else frozenset()
    unknown_before = before.undecided if before is not None else frozenset()
    unknown_after = after.undecided if after is not None else frozenset()
    return Impact(
        sample=total,
        before=len(had),
        after=len(has),
        left=len(had - has - unknown_after),
        joined=len(has - had - unknown_before),
        undecided=len(unknown_before | unknown_after),
    )


def change_impact(
    change: Change, sample: Sample, lists: Mapping[tuple[str, str], MailingList]
) -> Impact | None:
    """The change's impact on the sample subscribers of its list; None for a change that
    is not a segment's, or a list without sample subscribers."""
    if change.action not in SEGMENT_CHANGES:
        return None
    total = len(sample.of_list(change.target, change.list))
    if not total:
        return None
    before, after = change_members(change, sample, lists)
    return _impact(before, after, total)


def with_impact(
    changes: Sequence[Change], sample: Sample, lists: Mapping[tuple[str, str], MailingList]
) -> tuple[Change, ...]:
    """``changes`` in the same order, each segment change carrying its impact."""
    found: list[Change] = []
    for change in changes:
        impact = change_impact(change, sample, lists)
        found.append(change if impact is None else change.model_copy(update={"impact": impact}))
    return tuple(found)


def shrink_limits(
    changes: Sequence[Change], max_shrink: float, acknowledged: Callable[[str], bool]
) -> tuple[ShrinkLimit, ...]:
    """One limit per updated segment whose impact (made by this plan) loses more than the
    fraction ``max_shrink`` of its sample members. Deletions are left to the deletion
    limits; ``acknowledged`` says whether a segment's name is acknowledged."""
    limits: list[ShrinkLimit] = []
    for change in changes:
        impact = change.impact
        if change.is_delete or impact is None or impact.lost_fraction <= max_shrink:
            continue
        name = change.segment or ""
        share = _percent(100 * impact.lost_fraction)
        reason = (
            f'segment "{name}" in list "{change.list}" would lose {impact.left:,} of its '
            f"{impact.before:,} sample members ({share} %), more than --max-shrink "
            f"{_percent(100 * max_shrink)} %"
        )
        limits.append(
            ShrinkLimit(
                target=change.target,
                list=change.list,
                segment=name,
                before=impact.before,
                lost=impact.left,
                reason=reason,
                acknowledged=acknowledged(name),
            )
        )
    return tuple(limits)


def _percent(value: float) -> str:
    """``76``, ``12.5``: at most one decimal, none when whole."""
    return f"{round(value, 1):g}"
