"""Code 277 mapped back to the declared rules that Campaign Monitor could not parse.

``ResultData`` holds one ``RuleResult`` per submitted rule, in the order sent; each failing
one is matched to the canonical leaf sent at that position (or, if the counts differ, by
RuleType and clause) and from there to the declared rule and its path in the segment.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import ApiError
from reconciler.model import Rule, Segment
from reconciler.rules import key, path_text, render

from . import checks, mapping
from .api import RuleResult, RulesRejected, WireRule

__all__ = ["SegmentRulesRejected", "rejected"]

Path = tuple[str | int, ...]


class SegmentRulesRejected(ApiError):
    """Campaign Monitor rejected some rules (277); ``rule_paths`` are the failing rules'
    paths inside the segment's YAML mapping, e.g. ``("rules", 2, "any", 0)``."""

    def __init__(self, message: str, rule_paths: Sequence[Path], **where: str | int | None) -> None:
        self.rule_paths = tuple(rule_paths)
        super().__init__(message, **where)  # type: ignore[arg-type]


def _reason(result: RuleResult) -> str:
    failing = [c for c in result.clauses if c.code != 0]
    if failing:
        return "; ".join(f"{c.message} (code {c.code})" for c in failing)
    return f"{result.message} (code {result.code})"


def _leaf_for(index: int, result: RuleResult, results: int, leaves: Sequence[Rule]) -> Rule | None:
    if results == len(leaves):
        return leaves[index]
    for clause in result.clauses:  # counts differ: match the rule by what was sent
        for leaf in leaves:
            try:
                sent: WireRule = mapping.to_wire(leaf, None, strict=False)
            except mapping.Untranslatable:
                continue
            if sent.clause == clause.clause:
                return leaf
    return None


def rejected(error: RulesRejected, segment: Segment, leaves: Sequence[Rule]) -> ApiError:
    """The 277 as an error naming each failing declared rule, its path and the reason."""
    where = checks.origins(segment)
    lines: list[str] = []
    paths: list[Path] = []
    for index, result in enumerate(error.results):
        if not result.failed:
            continue
        leaf = _leaf_for(index, result, len(error.results), leaves)
        origin = where.get(key(leaf)) if leaf is not None else None
        if origin is not None:
            paths.append(origin[0])
            name = f"{path_text(origin[0])} ({render(origin[1])})"
        else:
            clause = result.clauses[0].clause if result.clauses else ""
            name = f"{result.rule_type} {clause!r}".strip()
        lines.append(f"{name}: {_reason(result)}")
    detail = "; ".join(lines) or "no rule result says which"
    return SegmentRulesRejected(
        f"Campaign Monitor could not parse the rules of segment {segment.name!r}: {detail}",
        paths,
        method=error.method,
        url=error.url,
        status=error.status,
    )
