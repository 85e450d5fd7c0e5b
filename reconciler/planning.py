"""Compare the declared lists with the live state: ``plan`` and ``detect_drift``. Pure.

Identity is the segment's name within its list and target. A live segment named in a
declared segment's ``renamed_from`` is the same segment under an old name: one update, not a
delete and a create. Live segments matching a list's ``ignore`` globs are invisible. Two
live segments answering to one declared name are a conflict, never a silent pick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from . import rules
from .errors import ConflictError
from .model import (
    Config,
    LiveField,
    LiveList,
    LiveSegment,
    LiveState,
    MailingList,
    MembershipRule,
    Rule,
    Segment,
)
from .plan import (
    ACTION_ORDER,
    Action,
    Change,
    DriftItem,
    DriftReport,
    Plan,
    SafetyLimit,
    SafetyReport,
    Unmanaged,
    fingerprint,
    segment_digests,
)
from .provider import Capabilities
from .shapes import to_cnf

if TYPE_CHECKING:
    from .sample import Sample

__all__ = [
    "Canon",
    "SafetyPolicy",
    "acknowledge",
    "detect_drift",
    "live_digests",
    "plan",
    "plan_differences",
    "segment_diff",
    "stale_reasons",
]


class Canon(Protocol):
    """What planning needs from a provider: its capabilities and its canonical form."""

    @property
    def capabilities(self) -> Capabilities: ...

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]: ...


@dataclass(frozen=True)
class SafetyPolicy:
    """Deletion limits: more than ``max_fraction`` of a list's segments (once it has
    ``min_segments`` or more), or leaving a list empty, needs acknowledgement.

    With a ``sample`` (``--sample``), each segment change carries its impact on the sample
    subscribers of its list; with ``max_shrink`` too (``--max-shrink``, a fraction), a
    segment updated so that it loses more than that share of its sample members needs the
    same acknowledgement as a deletion (``allow_delete`` naming it, or ``allow_all``)."""

    max_fraction: float = 0.3
    min_segments: int = 10
    allow_delete: frozenset[str] = frozenset()
    allow_all: bool = False
    sample: Sample | None = None
    max_shrink: float | None = None

    def acknowledges(self, name: str) -> bool:
        """Whether a segment past a limit is acknowledged (by name, or all of them)."""
        return self.allow_all or name in self.allow_delete


@dataclass
class _Match:
    """The outcome of matching one list: pairs, creations and leftovers."""

    pairs: list[tuple[Segment, LiveSegment]] = field(default_factory=list)
    missing: list[Segment] = field(default_factory=list)
    leftover: list[LiveSegment] = field(default_factory=list)


def _visible(live: LiveList | None, declared: MailingList) -> list[LiveSegment]:
    if live is None:
        return []
    patterns = declared.ignore
    return [s for s in live.segments if not any(fnmatchcase(s.name, p) for p in patterns)]


def _name_key(capabilities: Capabilities) -> Callable[[str], str]:
    """How the platform compares segment names: exactly, or ignoring case."""
    return str.casefold if capabilities.names_case_insensitive else str


def _match_list(
    declared: MailingList, live_segments: Sequence[LiveSegment], capabilities: Capabilities
) -> _Match:
    norm = _name_key(capabilities)
    by_name: dict[str, list[LiveSegment]] = {}
    for live in live_segments:
        by_name.setdefault(norm(live.name), []).append(live)
    conflicts = [
        f'list "{declared.name}" has {len(found)} live segments named '
        f"{_quoted_names(found)} "
        f"(ids {', '.join(s.id for s in found)}); rename or delete all but one"
        for name, found in by_name.items()
        if len(found) > 1 and not _ignored_duplicate(declared, name, norm)
    ]
    if conflicts:
        raise ConflictError("; ".join(conflicts))
    claimed: set[str] = set()
    result = _Match()
    waiting: list[Segment] = []
    for segment in declared.segments:
        found = by_name.get(norm(segment.name))
        if found and found[0].id not in claimed:
            result.pairs.append((segment, found[0]))
            claimed.add(found[0].id)
        else:
            waiting.append(segment)
    for segment in waiting:
        old = [by_name[norm(n)][0] for n in segment.renamed_from if norm(n) in by_name]
        old = [s for s in old if s.id not in claimed]
        if len(old) > 1:
            raise ConflictError(
                f'segment "{segment.name}" in list "{declared.name}" was renamed from '
                f"several live segments ({', '.join(f'{s.name} #{s.id}' for s in old)}); "
                "keep one name in renamed_from"
            )
        if old:
            result.pairs.append((segment, old[0]))
            claimed.add(old[0].id)
        else:
            result.missing.append(segment)
    result.leftover = [s for s in live_segments if s.id not in claimed]
    return result


def _quoted_names(found: Sequence[LiveSegment]) -> str:
    """``"A"``, or ``"A" / "a"`` where names differ only in case."""
    return " / ".join(f'"{name}"' for name in sorted({s.name for s in found}))


def _ignored_duplicate(declared: MailingList, name: str, norm: Callable[[str], str]) -> bool:
    """Duplicates the list does not manage are not our conflict (only unmanaged ones)."""
    return all(
        name != norm(s.name) and name not in {norm(old) for old in s.renamed_from}
        for s in declared.segments
    )


def _options_diff(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """Declared options compared with live ones; keys only the platform sets are ignored."""
    from deepdiff import DeepDiff  # only when options are declared: a heavy import

    live = {k: before.get(k) for k in after}
    found = DeepDiff(live, dict(after), ignore_order=True, verbose_level=2)
    lines: list[str] = []
    for kind in ("values_changed", "type_changes"):
        for path, change in found.get(kind, {}).items():
            where = path.replace("root", "options", 1)
            lines.append(f"~ {where}: {change['old_value']!r} -> {change['new_value']!r}")
    for kind, symbol in (("dictionary_item_added", "+"), ("iterable_item_added", "+")):
        for path, value in found.get(kind, {}).items():
            lines.append(f"{symbol} {path.replace('root', 'options', 1)}: {value!r}")
    for kind in ("dictionary_item_removed", "iterable_item_removed"):
        for path, value in found.get(kind, {}).items():
            lines.append(f"- {path.replace('root', 'options', 1)}: {value!r}")
    return lines


def segment_diff(declared: Segment, live: LiveSegment, canon: Canon, list_name: str) -> list[str]:
    """Readable differences between a declared segment and its live counterpart."""
    lines: list[str] = []
    if declared.name != live.name:
        lines.append(f'~ name: "{live.name}" -> "{declared.name}"')
    # Rules read back exactly as declared are the same rules under any provider's
    # canonical form: the common no-op case needs no normal form at all.
    if declared.rules != live.rules or declared.match != live.match:
        want_match, want = canon.canonical_rules(declared.match, declared.rules, list_name)
        have_match, have = canon.canonical_rules(live.match, live.rules, list_name)
        if rules.segment_key(want_match, want) != rules.segment_key(have_match, have):
            lines.extend(rules.diff_lines(have_match, have, want_match, want))
    if declared.options:
        lines.extend(_options_diff(live.options, declared.options))
    return lines


def _cnf_groups(canonical: tuple[str, tuple[Rule, ...]]) -> set[rules.Key]:
    """The AND-ed groups of rules in CNF, each as its normal-form key."""
    return {rules.key(rules.group_of("any", clause)) for clause in to_cnf(*canonical)}


def _only_groups_appended(
    declared: Segment, live: LiveSegment, canon: Canon, list_name: str
) -> bool:
    """True when the rules differ only by one whole AND-ed group added (same name and
    options): one call appends one group, so anything more is one update instead."""
    if Action.ADD_RULE_GROUP not in canon.capabilities.changes or declared.name != live.name:
        return False
    if declared.options and _options_diff(live.options, declared.options):
        return False
    have = _cnf_groups(canon.canonical_rules(live.match, live.rules, list_name))
    want = _cnf_groups(canon.canonical_rules(declared.match, declared.rules, list_name))
    return bool(have) and have < want and len(want - have) == 1


def _segment_changes(
    target: str, declared: MailingList, matched: _Match, canon: Canon
) -> Iterator[Change]:
    for segment in matched.missing:
        yield Change(
            action=Action.CREATE_SEGMENT,
            target=target,
            list=declared.name,
            segment=segment.name,
            after=segment,
            source=segment.source,
        )
    for segment, live in matched.pairs:
        lines = segment_diff(segment, live, canon, declared.name)
        if not lines:
            continue
        if not live.managed:
            raise ConflictError(
                f'segment "{live.name}" (id {live.id}) in list "{declared.name}" cannot be '
                f"written by this provider ({live.reason or 'rules it cannot translate'}), so "
                "it is never changed: declare it exactly as `reconciler import` writes it, "
                "change it in the platform, or give the declaration another name"
            )
        grows = _only_groups_appended(segment, live, canon, declared.name)
        yield Change(
            action=Action.ADD_RULE_GROUP if grows else Action.UPDATE_SEGMENT,
            target=target,
            list=declared.name,
            segment=segment.name,
            before=live,
            after=segment,
            diff=tuple(lines),
            source=segment.source,
        )


def _live_fields(target: str, live_list: LiveList | None, live: LiveState) -> list[LiveField]:
    """The custom fields a declaration in this list can mean: the list's own, and the
    account's where fields belong to the whole account."""
    fields = list(live_list.fields) if live_list is not None else []
    return fields + list(live.account_fields.get(target, ()))


def _field_changes(
    target: str,
    declared: MailingList,
    have: Sequence[LiveField],
    canon: Canon,
    created: set[tuple[str, str, str]],
) -> Iterator[Change]:
    """One create per declared field that no live field answers to. For account-wide
    fields, a field several lists declare is created once (``created`` remembers it)."""
    account = canon.capabilities.field_scope == "account"
    for field_def in declared.fields:
        if any(f.answers_to(field_def.name) for f in have):
            continue
        scope_key = (target, "" if account else declared.name, field_def.name.casefold())
        if scope_key in created:
            continue
        created.add(scope_key)
        yield Change(
            action=Action.CREATE_FIELD,
            target=target,
            list=declared.name,
            field=field_def,
            source=declared.source,
        )


def _prunable(leftover: Sequence[LiveSegment], allow_delete: frozenset[str]) -> list[LiveSegment]:
    """The leftovers ``prune`` deletes: not those the provider cannot manage, unless each is
    named with ``--allow-delete`` (``--allow-deletes`` alone is not enough for them)."""
    return [s for s in leftover if s.managed or s.name in allow_delete]


def _list_changes(
    target: str,
    declared: MailingList,
    live_list: LiveList | None,
    matched: _Match,
    canon: Canon,
    fields: tuple[Sequence[LiveField], set[tuple[str, str, str]]],
    allow_delete: frozenset[str],
) -> Iterator[Change]:
    if live_list is None:
        yield Change(
            action=Action.CREATE_LIST, target=target, list=declared.name, source=declared.source
        )
    yield from _field_changes(target, declared, fields[0], canon, fields[1])
    yield from _segment_changes(target, declared, matched, canon)
    if declared.prune:
        for segment in _prunable(matched.leftover, allow_delete):
            yield Change(
                action=Action.DELETE_SEGMENT,
                target=target,
                list=declared.name,
                segment=segment.name,
                before=segment,
            )


def _safety(
    target: str,
    declared: MailingList,
    visible: int,
    changes: Sequence[Change],
    policy: SafetyPolicy,
) -> SafetyLimit | None:
    deletes = tuple(c.segment or "" for c in changes if c.is_delete)
    if not deletes:
        return None
    creates = sum(1 for c in changes if c.action is Action.CREATE_SEGMENT)
    if visible - len(deletes) + creates <= 0:
        reason = (
            f'deleting all {len(deletes)} segments of list "{declared.name}" would leave it '
            "with no segments"
        )
    elif visible >= policy.min_segments and len(deletes) / visible > policy.max_fraction:
        share = round(100 * len(deletes) / visible)
        reason = (
            f"deleting {len(deletes)} of {visible} segments ({share}%) from list "
            f'"{declared.name}" exceeds the limit of {round(100 * policy.max_fraction)}%'
        )
    else:
        return None
    acknowledged = policy.allow_all or all(name in policy.allow_delete for name in deletes)
    return SafetyLimit(
        target=target,
        list=declared.name,
        reason=reason,
        deletes=deletes,
        acknowledged=acknowledged,
    )


def live_digests(config: Config, live: LiveState) -> dict[str, str]:
    """The live state's digests, leaving out the segments each declared list ignores."""
    patterns = {(_target_of(item, config), item.name): item.ignore for item in config.lists}

    def hidden(live_list: LiveList, segment: LiveSegment) -> bool:
        ignore = patterns.get((live_list.target, live_list.name), ())
        return any(fnmatchcase(segment.name, pattern) for pattern in ignore)

    return segment_digests(live, hidden)


def _target_of(declared: MailingList, config: Config) -> str:
    return declared.target or config.defaults.target or ""


def plan(
    config: Config,
    live: LiveState,
    providers: Mapping[str, Canon],
    policy: SafetyPolicy | None = None,
    *,
    digests: bool = True,
) -> Plan:
    """Every change that makes ``live`` match the declared lists of ``config``, in order.

    With ``digests`` (the default), the plan carries the live state's digests, which a saved
    plan is checked against; without, ``fingerprint`` and ``live_digests`` stay empty."""
    policy = policy or SafetyPolicy()
    changes: list[Change] = []
    unmanaged: list[Unmanaged] = []
    limits: list[SafetyLimit] = []
    scope: dict[str, list[str]] = {}
    created: set[tuple[str, str, str]] = set()
    for declared in config.lists:
        target = _target_of(declared, config)
        canon = providers[target]
        scope.setdefault(target, []).append(declared.name)
        live_list = live.find(target, declared.name)
        visible = _visible(live_list, declared)
        matched = _match_list(declared, visible, canon.capabilities)
        have = _live_fields(target, live_list, live)
        list_changes = list(
            _list_changes(
                target, declared, live_list, matched, canon, (have, created), policy.allow_delete
            )
        )
        changes.extend(list_changes)
        kept = matched.leftover
        if declared.prune:
            pruned = {s.id for s in _prunable(kept, policy.allow_delete)}
            kept = [s for s in kept if s.id not in pruned]
        unmanaged.extend(
            Unmanaged(
                target=target,
                list=declared.name,
                segment=s.name,
                segment_id=s.id,
                reason=s.reason if not s.managed else "",
            )
            for s in kept
        )
        limit = _safety(target, declared, len(visible), list_changes, policy)
        if limit is not None:
            limits.append(limit)
    found = live_digests(config, live) if digests else {}
    ordered = _membership_first(sorted(changes, key=Change.sort_key))
    safety = SafetyReport(
        max_delete_fraction=policy.max_fraction,
        min_segments_for_fraction=policy.min_segments,
        limits=tuple(limits),
    )
    if policy.sample is not None:
        ordered, safety = _sampled(config, ordered, safety, policy)
    return Plan(
        changes=ordered,
        unmanaged=tuple(unmanaged),
        safety=safety,
        fingerprint=fingerprint(found) if digests else "",
        live_digests=found,
        scope={target: tuple(names) for target, names in scope.items()},
    )


def _sampled(
    config: Config, changes: tuple[Change, ...], safety: SafetyReport, policy: SafetyPolicy
) -> tuple[tuple[Change, ...], SafetyReport]:
    """The changes with their impact on ``policy.sample``, and the ``--max-shrink`` limits
    they trip. Imported here: a plan without a sample never loads the evaluator."""
    from .impact import shrink_limits, with_impact

    assert policy.sample is not None
    lists = {(_target_of(item, config), item.name): item for item in config.lists}
    changes = with_impact(changes, policy.sample, lists)
    if policy.max_shrink is not None:
        safety = safety.model_copy(
            update={
                "max_shrink_fraction": policy.max_shrink,
                "shrink_limits": shrink_limits(changes, policy.max_shrink, policy.acknowledges),
            }
        )
    return changes, safety


def _references(change: Change) -> set[str]:
    """Names of the lists or segments a created segment's membership rules refer to."""
    if change.after is None:
        return set()
    return {
        rule.list_ for _, rule in rules.walk(change.after.rules) if isinstance(rule, MembershipRule)
    }


def _membership_first(changes: list[Change]) -> tuple[Change, ...]:
    """Creates ordered so that a segment named in another's membership rule comes first
    (platforms such as Mautic refer to segments by id, which must exist). Otherwise the
    order is unchanged; a cycle (no order can satisfy it) is broken where it is first met."""
    creates = {(c.target, c.segment): c for c in changes if c.action is Action.CREATE_SEGMENT}
    depth: dict[tuple[str, str | None], int] = {}

    def depth_of(key: tuple[str, str | None], seen: frozenset[tuple[str, str | None]]) -> int:
        if key not in depth:
            needed = [(key[0], name) for name in _references(creates[key])]
            inner = [depth_of(n, seen | {key}) for n in needed if n in creates and n not in seen]
            depth[key] = 1 + max(inner, default=-1)
        return depth[key]

    def order(change: Change) -> tuple[int, int]:
        if change.action is not Action.CREATE_SEGMENT:
            return (ACTION_ORDER[change.action], 0)
        return (ACTION_ORDER[change.action], depth_of((change.target, change.segment), frozenset()))

    return tuple(sorted(changes, key=order))


def acknowledge(current: Plan, policy: SafetyPolicy) -> Plan:
    """A saved plan with its safety limits re-judged under this run's flags."""
    limits = tuple(
        limit.model_copy(
            update={
                "acknowledged": limit.acknowledged
                or all(policy.acknowledges(n) for n in limit.deletes)
            }
        )
        for limit in current.safety.limits
    )
    update: dict[str, object] = {"limits": limits}
    if current.safety.shrink_limits is not None:
        update["shrink_limits"] = tuple(
            limit.model_copy(
                update={"acknowledged": limit.acknowledged or policy.acknowledges(limit.segment)}
            )
            for limit in current.safety.shrink_limits
        )
    return current.model_copy(update={"safety": current.safety.model_copy(update=update)})


def detect_drift(config: Config, live: LiveState, providers: Mapping[str, Canon]) -> DriftReport:
    """One item per segment in scope: in sync, changed, missing, unmanaged or extra."""
    items: list[DriftItem] = []
    for declared in config.lists:
        target = _target_of(declared, config)
        live_list = live.find(target, declared.name)
        canon = providers[target]
        matched = _match_list(declared, _visible(live_list, declared), canon.capabilities)
        base = {"target": target, "list": declared.name}
        for segment, live_segment in matched.pairs:
            lines = segment_diff(segment, live_segment, canon, declared.name)
            status = "changed" if lines else "in_sync"
            items.append(DriftItem(**base, segment=segment.name, status=status, diff=tuple(lines)))
        items.extend(DriftItem(**base, segment=s.name, status="missing") for s in matched.missing)
        items.extend(
            DriftItem(
                **base,
                segment=s.name,
                status="extra" if declared.prune and s.managed else "unmanaged",
            )
            for s in matched.leftover
        )
    return DriftReport(items=tuple(items))


def stale_reasons(saved: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """What changed between the live state a plan was made from and the live state now."""
    reasons: list[str] = []
    for name in sorted(saved.keys() | current.keys()):
        if name not in current:
            reasons.append(f"{name} is gone")
        elif name not in saved:
            reasons.append(f"{name} appeared")
        elif saved[name] != current[name]:
            reasons.append(f"{name} changed")
    return reasons


def _change_key(change: Change) -> str:
    name = change.segment or (change.field.name if change.field else "")
    return f"{change.action.value} {change.target}/{change.list}" + (f"/{name}" if name else "")


_NOT_COMPARED: dict[str, Any] = {
    "source": True,
    "impact": True,
    "before": {"member_count"},
}
"""What a saved plan may hold differently from the plan made now and still be the same
plan: where its declarations were, and what it showed (impact on a sample, live member
counts), which is display only and never trusted."""


def plan_differences(saved: Plan, fresh: Plan) -> list[str]:
    """How a saved plan differs from the plan made now (changes and safety limits, not the
    acknowledgements): empty when applying ``fresh`` does exactly what ``saved`` says."""

    def changes(p: Plan) -> dict[str, list[object]]:
        found: dict[str, list[object]] = {}
        for change in p.changes:
            data = change.model_dump(mode="json", exclude=_NOT_COMPARED)
            found.setdefault(_change_key(change), []).append(data)
        return found

    def limits(p: Plan) -> list[object]:
        return [
            limit.model_dump(mode="json", exclude={"acknowledged"}) for limit in p.safety.limits
        ]

    have, want = changes(saved), changes(fresh)
    found: list[str] = []
    for key in sorted(have.keys() | want.keys()):
        if key not in want:
            found.append(f"{key} is in the saved plan but not planned now")
        elif key not in have:
            found.append(f"{key} is planned now but not in the saved plan")
        elif have[key] != want[key]:
            found.append(f"{key} differs from what is planned now")
    order = [_change_key(c) for c in saved.changes] != [_change_key(c) for c in fresh.changes]
    if order and not found:
        found.append("the changes are in another order than planned now")
    if limits(saved) != limits(fresh) or (
        saved.safety.max_delete_fraction,
        saved.safety.min_segments_for_fraction,
    ) != (fresh.safety.max_delete_fraction, fresh.safety.min_segments_for_fraction):
        found.append("the safety limits differ from those planned now")
    return found
