"""The provider contract: what an adapter declares and the four things it does.

A provider translates; it never diffs. It declares its ``capabilities`` (the rule shape its
platform stores, operators per field type, change kinds), validates its target settings
with ``settings_model``, ``fetch``es the lists in scope as canonical ``LiveState``, and
``apply``s one ``Change`` at a time. The core plans, orders, guards and reports.

Providers register by key in the entry-point group ``reconciler.providers``; the entry point
names a ``Provider`` subclass, and that class is the factory.
"""

from __future__ import annotations

import gc
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from .errors import ConflictError
from .model import STANDARD_FIELDS, LiveState, Rule, Segment
from .plan import Action, Change, Plan

__all__ = [
    "Capabilities",
    "Clock",
    "Deadline",
    "Problem",
    "Provider",
    "ProviderContext",
    "Scope",
    "Shape",
    "SystemClock",
    "format_duration",
    "paused_gc",
    "settings_as",
    "unique_names",
]

Shape = Literal["tree", "cnf", "dnf", "flat", "two_level"]
"""How a platform stores rules:

- ``tree``: any nesting of all/any groups.
- ``cnf``: AND of OR-groups (Campaign Monitor RuleGroups).
- ``dnf``: OR of AND-groups (Mautic filters with glue).
- ``flat``: one list of conditions combined by all or any (MailWizz).
- ``two_level``: groups joined by one connector, the other connector inside (Oempro).
"""


class Problem(NamedTuple):
    """Why something declared cannot be done, at ``path`` inside the declaring mapping."""

    path: tuple[str | int, ...]
    message: str


class Capabilities(BaseModel):
    """What a provider can store and do; ``validate`` checks segments against this offline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: Shape
    operators: dict[str, frozenset[str]]
    """Field operators allowed per field type (text, number, date, select, ...)."""
    events: frozenset[str] = frozenset()
    """Behaviour events it can express; empty means no behaviour rules."""
    within: bool = False
    """Whether behaviour rules may carry a ``within: {days: N}`` window."""
    membership: frozenset[str] = frozenset()
    """Membership operators it can express; empty means no membership rules."""
    native: bool = False
    """Whether ``native:`` rules are accepted."""
    max_conditions: int | None = None
    """Most leaf conditions one segment may hold after conversion, if the platform caps it."""
    expands_in: bool = False
    """Whether ``in``/``not_in`` are stored as one condition per value (for the count)."""
    changes: frozenset[Action] = frozenset(
        {Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT}
    )
    field_types: frozenset[str] = frozenset({"text", "number", "date", "select"})
    """Custom field types its platform has: a declared field of another type is refused by
    ``validate``. Whether missing fields can be created is ``create_field`` in ``changes``."""
    standard_operators: dict[str, frozenset[str]] = {}
    """Operators per standard field (``email``, ``name``, ...) where the platform allows
    other operators than ``operators`` gives that field's type; an empty set means rules
    cannot test that field at all. Fields not named here follow ``operators``."""
    field_scope: Literal["list", "account"] = "list"
    """Where custom fields live: ``list`` (each list has its own) or ``account`` (one set
    shared by every list of the target, as Mautic's contact fields are)."""
    stores_as: dict[str, str] = {}
    """Declared field type -> the live field type the platform keeps it as, where they
    differ (MailWizz keeps numbers and dates in text fields); otherwise the same type."""
    names_case_insensitive: bool = False
    """Whether the platform treats segment names differing only in case as one name (it
    refuses a second one): then ``Alpha`` renamed ``alpha`` is matched and updated."""
    concurrent_apply: bool = False
    """Whether ``apply`` may run on several threads at once (independent changes of one
    target, up to its ``max_concurrency``). Otherwise the applier hands this provider one
    change at a time, in plan order (from a worker thread, never two at once)."""

    def operators_for(self, field: str, field_type: str | None) -> frozenset[str]:
        """The operators a rule on ``field`` may use: a custom field of ``field_type``, or
        (``field_type`` None) the standard field of that name."""
        folded = field.casefold()
        if field_type is None and folded in self.standard_operators:
            return self.standard_operators[folded]
        kind = STANDARD_FIELDS.get(folded) if field_type is None else field_type
        return self.operators.get(kind or "", frozenset())


@dataclass(frozen=True)
class Scope:
    """Which lists of one target to fetch; ``None`` means every list (for ``import``).

    ``segments`` narrows further (the convergence check after ``apply``): for each list
    name it holds, only the segments whose name (compared casefolded) or id is in its set
    need their rules read; a provider may leave the other segments of that list out of the
    result. A list absent from ``segments`` (or ``segments`` None) is read whole."""

    lists: frozenset[str] | None = None
    segments: Mapping[str, frozenset[str]] | None = None
    expected: Mapping[str, Mapping[str, Segment]] | None = field(
        default=None, compare=False, hash=False, repr=False
    )
    """A hint, for speed: per list name, the declared segments by name. A provider whose
    stored form of a segment is exactly what applying its declaration writes (the same
    bytes, compared) may give the declaration's own rules and options for it without
    decoding them, as long as the result equals a full read (its codec's tests prove
    that). ``plan`` and ``drift`` pass the declared segments, and the convergence check
    after ``apply`` the segments written: bytes that equal what was sent have read back."""

    def expected_segment(self, list_name: str, name: object) -> Segment | None:
        """The declared segment ``name`` of ``list_name`` in the hint, if any."""
        if self.expected is None:
            return None
        declared = self.expected.get(list_name)
        return None if declared is None or type(name) is not str else declared.get(name)

    def includes(self, name: str) -> bool:
        return self.lists is None or name in self.lists

    def wants_segment(self, list_name: str, name: str, segment_id: str | None = None) -> bool:
        """Whether the rules of segment ``name`` (id ``segment_id``) of ``list_name`` must be
        read; ``segments`` holds casefolded names and ids."""
        if self.segments is None or list_name not in self.segments:
            return True
        wanted = self.segments[list_name]
        return name.casefold() in wanted or (segment_id is not None and segment_id in wanted)


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock; tests inject their own so nothing ever sleeps."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def format_duration(seconds: float) -> str:
    """``900`` as ``15m``, ``5400`` as ``1h30m``, ``2.5`` as ``2.5s``: how ``--timeout`` is
    written."""
    if seconds != int(seconds) or seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value)


class Deadline:
    """When the run must stop: ``--timeout`` seconds after it started, on ``clock``.

    ``at`` is absolute on the clock. Time spent in ``paused()`` (the confirmation prompt,
    where a person reads the plan) moves it later, so only the tool's own work counts.
    Providers share one instance through their ``ProviderContext``.
    """

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.at = clock.now() + seconds

    def remaining(self) -> float:
        """Seconds left (zero or negative once it passed)."""
        return self.at - self.clock.now()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        """How the option was given, for messages: ``--timeout (15m)``."""
        return f"--timeout ({format_duration(self.seconds)})"

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside does not count against the deadline."""
        started = self.clock.now()
        try:
            yield
        finally:
            self.at += max(0.0, self.clock.now() - started)


def _no_progress(message: str) -> None:
    """Default progress sink: say nothing."""


def _no_advance(label: str, done: int, total: int) -> None:
    """Default counting-progress sink: say nothing."""


@dataclass(frozen=True)
class ProviderContext:
    """What the core hands every provider: the seams tests replace."""

    base_dir: Path = field(default_factory=Path.cwd)
    """Directory of the root config file; relative paths in target settings start here."""
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str], None] = _no_progress
    """Progress messages for long fetches (the CLI sends them to stderr)."""
    advance: Callable[[str, int, int], None] = _no_advance
    """Counting progress of a long step: ``(label, done, total)``, e.g. ``("Reading", 50,
    1000)``; called from the calling thread, possibly for every item. The CLI draws a bar on
    a terminal and prints at most every few seconds in logs."""
    http_transport: Any = None
    """An ``httpx`` transport for HTTP providers (tests pass a mock); ``None`` is real HTTP."""
    max_concurrency: int | None = None
    """The target's ``max_concurrency`` (concurrent reads), if set."""
    requests_per_second: float | None = None
    """The target's ``requests_per_second`` budget, if set."""
    deadline: Deadline | None = None
    """When the run must stop (``--timeout``); HTTP waits and requests never go past it, and
    the applier starts no change after it. ``None``: no deadline (library use, tests)."""


class Provider(ABC):
    """Base class of every provider; the class itself is the registered factory."""

    key: ClassVar[str]
    platform: ClassVar[str] = ""
    """The platform's name for messages (``Campaign Monitor``); empty: the provider key."""
    capabilities: ClassVar[Capabilities]
    settings_model: ClassVar[type[BaseModel]]
    """Validates the provider-specific keys of a target (extra keys forbidden)."""

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        self.target = target
        self.settings = settings
        self.context = context

    @property
    def platform_name(self) -> str:
        return self.platform or f'provider "{self.key}"'

    @classmethod
    def capabilities_for(cls, settings: BaseModel) -> Capabilities:
        """The capabilities of one target, when its settings change them (for example a
        per-install condition limit). ``validate`` checks segments against this."""
        return cls.capabilities

    @classmethod
    def store_identity(cls, settings: BaseModel, base_dir: Path) -> str | None:
        """What names the store a target's settings point at (a file, say), where two
        targets could name one by accident; ``validate`` refuses two targets with one
        identity, since each would prune and plan against the other's segments. ``base_dir``
        is the root configuration file's directory. The default, ``None``: no identity."""
        return None

    @classmethod
    def check_segment(
        cls, segment: Segment, field_types: Mapping[str, str]
    ) -> Sequence[str | Problem]:
        """Provider-specific reasons this segment cannot be stored (offline, no network):
        a ``Problem`` is reported at its path inside the segment (the rule's own line), a
        plain string at the segment.

        ``field_types`` maps each custom field the list declares (casefolded) to its type.

        The core already checks the shape, operators, events and limits from
        ``capabilities``; override this for what those cannot say (e.g. native rules).
        """
        return []

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        """The rules as the platform would store and return them, for comparison.

        ``list_name`` is the list the segment belongs to (its custom fields may matter).

        Both the declared and the live rules go through this before the core compares their
        normal forms, so platform rewriting never shows as a perpetual diff. The default
        is the identity: the core's normal form already ignores order and nesting.
        """
        return match, rules

    def check_change(self, change: Change, planned: Plan) -> list[Problem]:
        """Why ``change`` could not be executed against the live state last fetched, before
        anything is written (``plan`` refuses the whole plan with these, located in the YAML).

        ``planned`` is the whole plan, so a provider can count on what earlier changes
        create (a list, a field, a segment a membership rule names). The default finds no
        problem; a provider whose ``apply`` translates rules against live data (field types,
        ids) translates them here the same way, without sending anything.
        """
        return []

    def import_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options ``import`` writes for a live segment: those a person would declare
        (values equal to the platform's defaults left out). The default keeps them all."""
        return dict(options)

    @abstractmethod
    def fetch(self, scope: Scope) -> LiveState:
        """Read the lists in scope with their fields and segments, as canonical rules."""

    @abstractmethod
    def apply(self, change: Change) -> None:
        """Execute one change with the fewest safe calls, or raise a ``ProviderError``."""

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections and files."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large batch of objects.

    Loading 10,000 segments allocates about a million long-lived objects; with the
    collector on, its repeated passes over that growing heap cost more than the building
    itself. The objects built are then frozen (moved out of the collector's generations),
    so later collections do not scan them again; they are still freed by reference count.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def unique_names(items: Iterable[tuple[str, str]], owner: str, kind: str = "lists") -> None:
    """Refuse to guess between live objects sharing a name: ``items`` are (name, id) pairs.

    Raises ``ConflictError`` naming every clash, e.g. "the client has several lists named
    'News' (ids 1, 2); rename all but one".
    """
    by_name: dict[str, list[str]] = {}
    for name, ident in items:
        by_name.setdefault(name, []).append(ident)
    clashes = [f"{name!r} (ids {', '.join(ids)})" for name, ids in by_name.items() if len(ids) > 1]
    if clashes:
        raise ConflictError(
            f"{owner} has several {kind} named {'; '.join(clashes)}; rename all but one"
        )


_Settings = TypeVar("_Settings", bound=BaseModel)


def settings_as(settings: BaseModel, model: type[_Settings]) -> _Settings:
    """A target's settings as the provider's own model (validated again if given as another)."""
    if isinstance(settings, model):
        return settings
    return model.model_validate(settings.model_dump())
