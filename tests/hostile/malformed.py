"""Malformed configurations, generated: each has exactly one problem, and says where it is.

``CASES`` is built from category generators (syntax, structure, scalars, schema types,
unknown keys, numbers, rules, references, targets, environment, includes, file kinds,
limits). Each :class:`Case` is a small project: files to write (relative to the project
directory; ``../outside/...`` lands next to it, outside the configuration), symbolic links,
FIFOs, raw bytes, environment variables, and what the one error line must say:

- ``file`` and ``line``: the error is ``Error: FILE:LINE:COLUMN: ...``; ``line=None`` marks a
  problem with a whole file (not a regular file, too large), reported ``Error: FILE: ...``;
- ``expected``: a part of the message;
- ``absent``: text that must appear nowhere in the output (the content of a file outside
  the configuration, a secret).

Lines are found in the generated text itself (:func:`at`), so a case and its expectation
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["CASES", "SECRET", "Case", "at"]

SECRET = "hostile-secret-value-5f2c"
"""The value of every credential environment variable the cases set."""

ROOT = "reconciler.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    files: dict[str, str]
    expected: str
    line: int | None
    file: str = ROOT
    links: dict[str, str] = field(default_factory=dict)
    fifos: tuple[str, ...] = ()
    raw: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()


def at(text: str, needle: str) -> int:
    """The 1-based line of the one line of ``text`` holding ``needle``."""
    found = [n for n, line in enumerate(text.split("\n"), 1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


# -- a valid configuration to break ------------------------------------------------------

TARGETS = "targets:\n  local:\n    provider: reference\n    path: state.db\n"
FIELDS = (
    "    fields:\n"
    "      - {name: Frequency, type: select, options: [Weekly, Monthly]}\n"
    "      - {name: Score, type: number}\n"
)
RULE = '          - {field: email, op: contains, value: "@gmail.com"}\n'


def config(
    *,
    head: str = "version: 1\n",
    targets: str = TARGETS,
    extra_root: str = "",
    list_keys: str = "",
    fields: str = FIELDS,
    segment_keys: str = "",
    rules: str = RULE,
) -> str:
    """A one-list, one-segment configuration with pieces replaced or added."""
    return (
        head
        + targets
        + extra_root
        + "lists:\n  - name: News\n"
        + list_keys
        + fields
        + "    segments:\n      - name: Gmail\n"
        + segment_keys
        + "        rules:\n"
        + rules
    )


OK = config()


def rule(text: str) -> str:
    return f"          - {text}\n"


def one(
    id: str, category: str, text: str, expected: str, needle: str | None, **extra: object
) -> Case:
    """A case whose only file is the root, erring on the line holding ``needle``."""
    line = None if needle is None else at(text, needle)
    return Case(id, category, {ROOT: text}, expected, line, **extra)  # type: ignore[arg-type]


# -- categories ---------------------------------------------------------------------------


def syntax() -> Iterator[Case]:
    broken = [
        ("unclosed-flow-sequence", "version: 1\nlists: [\n  {name: x}\n", 4),
        ("unclosed-flow-mapping", "version: 1\nlists:\n  - {name: x\n", 4),
        ("tab-indent", "version: 1\nlists:\n\t- name: News\n", 3),
        ("bad-indent", "version: 1\nlists:\n  - name: News\n   target: x\n", 4),
        ("undefined-alias", "version: 1\nlists: *nope\n", 2),
        ("unknown-escape", 'version: 1\nlists: [{name: "a\\qb"}]\n', 2),
        ("bad-unicode-escape", 'version: 1\nlists: [{name: "\\uZZZZ"}]\n', 2),
        ("unterminated-double", 'version: 1\nlists: [{name: "abc}]\n', 3),
        ("unterminated-single", "version: 1\nlists: [{name: 'abc}]\n", 3),
        ("mapping-value-here", "version: 1\nlists: a: b\n", 2),
        ("stray-closer", "version: 1\nlists: ]\n", 2),
        ("two-documents", "version: 1\n---\nversion: 1\n", 2),
        ("bad-directive", "%FOO bar\nversion: 1\n", 1),
        ("reserved-at", "version: 1\nlists: @x\n", 2),
        ("reserved-backtick", "version: 1\nlists: `x\n", 2),
        ("block-scalar-indicator", "version: 1\nlists: |x\n  a\n", 2),
        ("control-character", "version: 1\nlists: [a\x01b]\n", 2),
        ("lone-key-in-flow", "version: 1\nlists: {a, b: }: c}\n", 2),
        ("anchor-without-node", "version: 1\nlists: [&a]\nx: &b\n  &c y\n", 4),
        ("sequence-in-mapping", "version: 1\n- a\n", 2),
        ("mapping-after-sequence", "version: 1\nlists:\n  - a\n  b: c\n", 4),
    ]
    for name, text, line in broken:
        yield Case(f"syntax-{name}", "syntax", {ROOT: text}, "invalid YAML", line)


def structure() -> Iterator[Case]:
    text = config(extra_root="defaults: {}\n") + "defaults: {}  # again\n"
    yield one("dup-root-key", "structure", text, 'duplicate key "defaults"', "# again")
    text = config(list_keys="    prune: true\n    prune: false\n")
    yield one("dup-list-key", "structure", text, 'duplicate key "prune"', "prune: false")
    text = config(segment_keys="        match: all\n        match: any\n")
    yield one("dup-segment-key", "structure", text, 'duplicate key "match"', "match: any")
    text = config(rules=rule("{field: email, op: empty, field: name}"))
    yield one("dup-rule-key", "structure", text, 'duplicate key "field"', "field: name")
    text = config(targets=TARGETS + "    provider: reference  # again\n")
    yield one("dup-target-key", "structure", text, 'duplicate key "provider"', "# again")
    text = config(targets=TARGETS + "  local: {provider: reference}  # again\n")
    yield one("dup-target-name", "structure", text, 'duplicate key "local"', "# again")
    for key in ("5", "true", "null", "1.5", "[a]", "{a: 1}"):
        text = config(list_keys=f"    ? {key}\n    : x\n")
        yield one(f"non-text-key-{key}", "structure", text, "keys must be text", f"? {key}")
    for tag in ("!x", "!!binary", "!!timestamp", "!!set", "!!python/object", "!<tag:x>"):
        text = config(rules=rule(f"{{field: email, op: equals, value: {tag} y}}"))
        yield one(f"tag-{tag}", "structure", text, "unsupported tag", "op: equals")
    for tag, value in (("!!int", "x"), ("!!float", "y"), ("!!bool", "maybe"), ("!!null", "z")):
        text = config(rules=rule(f"{{field: email, op: equals, value: {tag} {value}}}"))
        yield one(f"bad-{tag[2:]}", "structure", text, f"is not a valid {tag[2:]}", "op: equals")
    text = config(segment_keys="        options: &o {a: *o}\n")
    yield one(
        "alias-cycle",
        "structure",
        text,
        "an alias refers to a collection that contains it",
        "        options:",
    )
    text = config(list_keys="    ignore: !!map [a]\n")
    yield one("tag-mismatch-map", "structure", text, "unsupported tag", "ignore:")


def scalars() -> Iterator[Case]:
    big = "integer out of range"
    values = {
        "int64-max-plus-one": "9223372036854775808",
        "int64-min-minus-one": "-9223372036854775809",
        "twenty-digits": "99999999999999999999",
        "past-digit-limit": "9" * 5000,
        "hex-huge": "0x" + "F" * 5000,
        "oct-huge": "0o" + "7" * 40,
        "tagged-int-huge": "!!int '" + "9" * 30 + "'",
    }
    for name, value in values.items():
        text = config(rules=rule(f"{{field: Score, op: equals, value: {value}}}"))
        yield one(f"int-{name}", "scalars", text, big, "field: Score")
    for where, text, needle in (
        ("version", config(head="version: 99999999999999999999\n"), "version"),
        (
            "days",
            config(rules=rule("{campaign: c1, event: opened, within: {days: 0x" + "1" * 20 + "}}")),
            "campaign",
        ),
        (
            "max-concurrency",
            config(targets=TARGETS + "    max_concurrency: 18446744073709551616\n"),
            "max_concurrency",
        ),
    ):
        yield one(f"int-huge-{where}", "scalars", text, big, needle)
    nul = "NUL character"
    places = {
        "segment-name": config().replace("name: Gmail", 'name: "Gm\\0ail"'),
        "list-name": config().replace("name: News", 'name: "Ne\\0ws"'),
        "field-name": config().replace("name: Score", 'name: "Sc\\x00ore"'),
        "rule-value": config(rules=rule('{field: email, op: equals, value: "a\\u0000b"}')),
        "path": config(
            targets='targets:\n  local:\n    provider: reference\n    path: "st\\0ate.db"\n'
        ),
        "key": config(segment_keys='        options: {"a\\0": 1}\n'),
        "include": config(extra_root='include: ["lists/\\0*.yaml"]\n'),
        "tagged": config(rules=rule('{field: email, op: equals, value: !!str "x\\0"}')),
        "renamed-from": config(segment_keys='        renamed_from: ["Old\\0"]\n'),
    }
    for name, text in places.items():
        needle = "\\0" if "\\0" in text else ("\\x00" if "\\x00" in text else "\\u0000")
        yield one(f"nul-{name}", "scalars", text, nul, needle)


# (field path, how to place a value, wrong values): every value must be refused with
# "must be ..." or "must not be empty" at the line of the value.
_TEXT_WRONG = ["5", "true", "[a]", "{a: 1}", "1.5"]
_ENUMS = frozenset({"field.type", "segment.match", "rule.op", "behaviour.event", "membership.op"})
_LIST_WRONG = ["x", "5", "{a: 1}", "true"]


def schema_types() -> Iterator[Case]:
    def placed(slot: str, value: str) -> tuple[str, str]:
        """The configuration with ``value`` at ``slot``, and a needle for its line."""
        score = "{name: Score, type: number}"
        segments = "    segments:\n      - name: Gmail\n        rules:\n" + RULE
        here = "  # here"
        texts = {
            "defaults.target": config(extra_root=f"defaults:\n  target: {value}{here}\n"),
            "target.provider": config(targets=f"targets:\n  local:\n    provider: {value}{here}\n"),
            "list.name": OK.replace("  - name: News\n", f"  - name: {value}{here}\n"),
            "list.target": config(list_keys=f"    target: {value}{here}\n"),
            "list.prune": config(list_keys=f"    prune: {value}{here}\n"),
            "list.ignore": config(list_keys=f"    ignore: {value}{here}\n"),
            "list.fields": config(fields=f"    fields: {value}{here}\n"),
            "list.segments": OK.replace(segments, f"    segments: {value}{here}\n"),
            "field.name": OK.replace(score, f"{{name: {value}, type: number}}{here}"),
            "field.type": OK.replace(score, f"{{name: Score, type: {value}}}{here}"),
            "field.options": OK.replace("[Weekly, Monthly]}", f"{value}}}{here}"),
            "segment.name": OK.replace("      - name: Gmail\n", f"      - name: {value}{here}\n"),
            "segment.renamed_from": config(segment_keys=f"        renamed_from: {value}{here}\n"),
            "segment.match": config(segment_keys=f"        match: {value}{here}\n"),
            "segment.options": config(segment_keys=f"        options: {value}{here}\n"),
            "rule.field": config(rules=rule(f"{{field: {value}, op: empty}}{here}")),
            "rule.op": config(rules=rule(f"{{field: email, op: {value}, value: x}}{here}")),
            "behaviour.campaign": config(rules=rule(f"{{campaign: {value}, event: opened}}{here}")),
            "behaviour.event": config(rules=rule(f"{{campaign: c1, event: {value}}}{here}")),
            "behaviour.within": config(
                rules=rule(f"{{campaign: c1, event: opened, within: {value}}}{here}")
            ),
            "membership.list": config(rules=rule(f"{{list: {value}, op: in}}{here}")),
            "membership.op": config(rules=rule(f"{{list: VIP, op: {value}}}{here}")),
            "native.native": config(rules=rule(f"{{native: {value}}}{here}")),
            "group.any": config(rules=rule(f"{{any: {value}}}{here}")),
        }
        return texts[slot], here

    table = {
        "defaults.target": [*_TEXT_WRONG, '""'],
        "target.provider": [*_TEXT_WRONG, '""'],
        "list.name": [*_TEXT_WRONG, '""'],
        "list.target": [*_TEXT_WRONG, '""'],
        "list.prune": ["yes", "1", "[true]", "x"],
        "list.ignore": [*_LIST_WRONG, "[5]"],
        "list.fields": _LIST_WRONG,
        "list.segments": _LIST_WRONG,
        "field.name": ["5", "true", "[a]", '""'],
        "field.type": ["date_time", "5", "[text]"],
        "field.options": ["x", "[5]", "{a: 1}"],
        "segment.name": ["5", "[a]", "{a: 1}", '""'],
        "segment.renamed_from": ["x", "[5]", "{a: 1}"],
        "segment.match": ["some", "5", "true"],
        "segment.options": ["x", "[1]", "5"],
        "rule.field": ["5", "[a]", '""'],
        "rule.op": ["like", "5", "[equals]"],
        "behaviour.campaign": ["[a]", "true", '""'],
        "behaviour.event": ["bounced", "5"],
        "behaviour.within": ["5", "{days: 0}", "{days: -1}", "{days: 1.5}", "{days: true}"],
        "membership.list": ["5", "[a]", '""'],
        "membership.op": ["out", "5"],
        "native.native": ["5", "x", "[a]", "{}"],
        "group.any": ["5", "x", "[]"],
    }
    for slot, values in table.items():
        for value in values:
            text, needle = placed(slot, value)
            expected = "is not one of" if slot in _ENUMS else "must"
            yield one(f"type-{slot}-{value}", "schema", text, expected, needle)


def unknown_keys() -> Iterator[Case]:
    cases = [
        ("root", config(extra_root="lsts: []\n"), "lsts", 'unknown key "lsts"'),
        (
            "defaults",
            config(extra_root="defaults: {targt: local}\n"),
            "targt",
            'unknown key "targt"',
        ),
        ("list", config(list_keys="    prun: true\n"), "prun", '(did you mean "prune"?)'),
        ("list-far", config(list_keys="    colour: red\n"), "colour", "(allowed: "),
        (
            "field",
            config().replace("type: number}", "type: number, typ: text}"),
            "typ: text",
            'unknown key "typ"',
        ),
        ("segment", config(segment_keys="        mach: any\n"), "mach", '(did you mean "match"?)'),
        (
            "rule",
            config(rules=rule("{field: email, op: equals, value: x, vlaue: y}")),
            "vlaue",
            'unknown key "vlaue"',
        ),
        (
            "behaviour",
            config(rules=rule("{campaign: c1, event: opened, evnt: x}")),
            "evnt",
            'unknown key "evnt"',
        ),
        (
            "within",
            config(rules=rule("{campaign: c1, event: opened, within: {days: 3, dys: 3}}")),
            "dys",
            'unknown key "dys"',
        ),
        (
            "membership",
            config(rules=rule("{list: VIP, op: in, opp: x}")),
            "opp",
            'unknown key "opp"',
        ),
        (
            "group",
            config(rules=rule("{any: [{field: email, op: empty}], anyy: []}")),
            "anyy",
            'unknown key "anyy"',
        ),
        (
            "target-setting",
            config(targets=TARGETS + "    pth: x.db\n"),
            "pth",
            '(did you mean "path"?)',
        ),
    ]
    for name, text, needle, expected in cases:
        yield one(f"unknown-key-{name}", "unknown-keys", text, expected, needle)
    text = config(rules=rule("{op: contains, value: x}"))
    yield one(
        "rule-without-kind", "unknown-keys", text, "a rule needs one of the keys", "op: contains"
    )


def numbers() -> Iterator[Case]:
    for value in ("true", "false", "1.0", "'1'", "2", "0", "null", "[1]", "{a: 1}", "-1", ".inf"):
        text = config(head=f"version: {value}\n")
        yield one(f"version-{value}", "numbers", text, '"version" must', f"version: {value}")
    for value, expected in (
        (".inf", "finite"),
        ("-.inf", "finite"),
        (".nan", "finite"),
        ("0", "greater than or equal to 0.01"),
        ("-1", "greater than or equal to 0.01"),
        ("1e-300", "greater than or equal to 0.01"),
        ("0.001", "greater than or equal to 0.01"),
        ("'5'", "must be"),
        ("true", "must be"),
        ("[5]", "must be"),
    ):
        text = config(targets=TARGETS + f"    requests_per_second: {value}\n")
        yield one(f"rps-{value}", "numbers", text, expected, "requests_per_second")
    for value, expected in (
        ("0", "greater than 0"),
        ("-1", "greater than 0"),
        ("101", "less than or equal to 100"),
        ("1.5", "must be"),
        ("true", "must be"),
        ("'4'", "must be"),
        ("1000000", "less than or equal to 100"),
    ):
        text = config(targets=TARGETS + f"    max_concurrency: {value}\n")
        yield one(f"concurrency-{value}", "numbers", text, expected, "max_concurrency")
    for value in (".nan", ".inf", "-.inf", "!!float .NaN"):
        for shape, options in (
            ("top", f"{{a: {value}}}"),
            ("nested", f"{{a: {{b: [1, {value}]}}}}"),
        ):
            text = config(segment_keys=f"        options: {options}\n")
            yield one(
                f"options-{shape}-{value}",
                "numbers",
                text,
                "NaN and infinity are not allowed",
                "        options:",
            )
    for value in (".nan", ".inf", "-.inf"):
        text = config(rules=rule(f"{{field: Score, op: equals, value: {value}}}"))
        yield one(f"rule-value-{value}", "numbers", text, "finite number", "field: Score")
        text = config(rules=rule(f"{{field: Score, op: in, value: [1, {value}]}}"))
        yield one(f"rule-list-value-{value}", "numbers", text, "finite number", "field: Score")


def rules() -> Iterator[Case]:
    cases = [
        ("between-one", "{field: Score, op: between, value: [1]}", "between"),
        ("between-three", "{field: Score, op: between, value: [1, 2, 3]}", "between"),
        ("between-scalar", "{field: Score, op: between, value: 5}", "between"),
        ("in-empty", "{field: email, op: in, value: []}", "non-empty list"),
        ("in-scalar", "{field: email, op: in, value: x}", "non-empty list"),
        ("equals-list", "{field: email, op: equals, value: [a, b]}", "single value"),
        ("empty-with-value", "{field: email, op: empty, value: x}", "takes no value"),
        ("contains-no-value", "{field: email, op: contains}", "needs a value"),
        (
            "group-both",
            "{any: [{field: email, op: empty}], all: [{field: name, op: empty}]}",
            "exactly one",
        ),
        ("group-empty-all", "{all: []}", "must not be empty"),
        ("scalar-rule", "just-text", "a rule needs one of the keys"),
        ("list-rule", "[1, 2]", "a rule needs one of the keys"),
        ("deep-bad-op", "{any: [{all: [{field: email, op: is, value: x}]}]}", "is not one of"),
        ("value-mapping", "{field: email, op: equals, value: {a: 1}}", "must be text"),
        ("within-zero", "{campaign: c1, event: opened, within: {days: 0}}", "greater than 0"),
        ("operator-for-type", "{field: email, op: gt, value: 5}", "gt"),
        ("select-contains", "{field: Frequency, op: contains, value: Weekly}", "contains"),
    ]
    for name, text, expected in cases:
        doc = config(rules=rule(text))
        yield one(f"rule-{name}", "rules", doc, expected, text[:12])
    doc = config().replace("        rules:\n" + RULE, "        rules: []\n")
    yield one("rule-none", "rules", doc, '"rules" must not be empty', "rules: []")
    doc = config().replace("        rules:\n" + RULE, "        match: all\n")
    yield one("rule-missing", "rules", doc, 'missing required key "rules"', "- name: Gmail")


def segment(name: str, keys: str = "") -> str:
    return f"      - name: {name}\n{keys}        rules:\n" + RULE


def references() -> Iterator[Case]:
    two_targets = TARGETS + "  other:\n    provider: reference\n    path: other.db\n"
    cases = [
        (
            "unknown-field-hint",
            config(rules=rule("{field: Frequncy, op: equals, value: Weekly}")),
            "Frequncy",
            '(did you mean "Frequency"?)',
        ),
        (
            "unknown-field",
            config(rules=rule("{field: zzz, op: empty}")),
            "zzz",
            'unknown field "zzz"',
        ),
        (
            "unknown-field-deep",
            config(rules=rule("{any: [{all: [{field: nope, op: empty}]}]}")),
            "nope",
            'unknown field "nope"',
        ),
        (
            "standard-field-declared",
            OK.replace("{name: Score, type: number}", "{name: Email, type: text}"),
            "name: Email",
            "is a standard field",
        ),
        (
            "duplicate-field",
            OK.replace("{name: Score, type: number}", "{name: frequency, type: text}"),
            "name: frequency",
            'duplicate field "frequency"',
        ),
        (
            "options-on-text",
            OK.replace("{name: Score, type: number}", "{name: Note, type: text, options: [a]}"),
            "name: Note",
            "cannot have options",
        ),
        (
            "renamed-from-declared",
            config(segment_keys="        renamed_from: [Other]\n") + segment("Other"),
            "renamed_from",
            "names a segment that is still declared",
        ),
        (
            "ignore-hides-name",
            config(list_keys="    ignore: [Gm*]\n"),
            "- name: Gmail",
            "matches the list's ignore pattern",
        ),
        (
            "unknown-list-target",
            config(list_keys="    target: lcoal\n"),
            "target: lcoal",
            '(did you mean "local"?)',
        ),
        (
            "unknown-default-target",
            config(extra_root="defaults: {target: nowhere}\n"),
            "nowhere",
            'unknown target "nowhere"',
        ),
        ("no-target-many", config(targets=two_targets), "- name: News", "names no target"),
        (
            "unknown-provider-hint",
            config(targets="targets:\n  local:\n    provider: refrence\n"),
            "refrence",
            '(did you mean "reference"?)',
        ),
        (
            "unknown-provider",
            config(targets="targets:\n  local:\n    provider: zzzz\n"),
            "zzzz",
            "(installed:",
        ),
        (
            "duplicate-segment",
            OK + segment("gmail ").replace("gmail ", "Gmail2").replace("Gmail2", "Gmail ZZ"),
            "Gmail ZZ",
            "",
        ),
    ]
    for name, text, needle, expected in cases[:-1]:
        yield one(f"ref-{name}", "references", text, expected, needle)
    text = OK + segment("Gmail").replace("name: Gmail", "name: Gmail  # again")
    yield one("ref-duplicate-segment", "references", text, 'duplicate segment "Gmail"', "# again")
    text = OK + "  - name: News  # again\n"
    yield one("ref-duplicate-list", "references", text, 'duplicate list "News"', "# again")
    text = config(segment_keys="        renamed_from: [Old]\n")
    text += segment("Second", "        renamed_from: [Old]  # again\n")
    yield one(
        "ref-renamed-twice", "references", text, 'is already renamed to segment "Gmail"', "# again"
    )


def targets() -> Iterator[Case]:
    def with_target(body: str) -> str:
        return config(targets="targets:\n  local:\n" + body)

    cases = [
        (
            "path-int",
            with_target("    provider: reference\n    path: 5\n"),
            "path: 5",
            '"path" must be text',
        ),
        (
            "path-list",
            with_target("    provider: reference\n    path: [a]\n"),
            "path: [a]",
            '"path" must be text',
        ),
        (
            "path-empty",
            with_target('    provider: reference\n    path: ""\n'),
            "path:",
            '"path" must not be empty',
        ),
        (
            "path-tab",
            with_target('    provider: reference\n    path: "a\\tb.db"\n'),
            "path:",
            "control character",
        ),
        (
            "path-newline",
            with_target('    provider: reference\n    path: "a.db\\n"\n'),
            "path:",
            "control character",
        ),
        (
            "path-unknown-home",
            with_target("    provider: reference\n    path: ~no-such-user-zz/s.db\n"),
            "path:",
            "home directory",
        ),
        (
            "provider-missing",
            with_target("    path: s.db\n"),
            "  local:",
            'missing required key "provider"',
        ),
        (
            "target-not-mapping",
            config(targets="targets:\n  local: reference\n"),
            "local: reference",
            "must be a mapping",
        ),
        ("targets-list", config(targets="targets: [local]\n"), "targets:", "must be a mapping"),
    ]
    for name, text, needle, expected in cases:
        yield one(f"target-{name}", "targets", text, expected, needle)
    same = "same store as target"
    two = TARGETS + "  copy:\n    provider: reference\n    path: {path}\n"
    for name, path in (
        ("same", "state.db"),
        ("dot", "./state.db"),
        ("dotdot", "sub/../state.db"),
        ("double-slash", ".//state.db"),
    ):
        text = config(targets=two.format(path=path), list_keys="    target: local\n")
        yield one(f"target-one-store-{name}", "targets", text, same, "  copy:")
    text = config(targets=two.format(path="link.db"), list_keys="    target: local\n")
    yield Case(
        "target-one-store-symlink",
        "targets",
        {ROOT: text, "state.db": ""},
        same,
        at(text, "  copy:"),
        links={"link.db": "state.db"},
    )
    cm = TARGETS + "  news:\n    provider: campaignmonitor\n    client_id: c1\n"
    cm += "    api_key: ${CM_KEY}\n"
    mw = TARGETS + "  shop:\n    provider: mailwizz\n    base_url: https://mail.example.test/api\n"
    mw += "    api_key: ${MW_KEY}\n"
    for name, targets_text, variable in (
        ("campaignmonitor", cm, "CM_KEY"),
        ("mailwizz", mw, "MW_KEY"),
    ):
        text = config(targets=targets_text, extra_root="defaults: {target: local}\n")
        for kind, value, expected in (
            ("newline", SECRET + "\n", "control character (copied with its trailing newline?)"),
            ("crlf", SECRET + "\r\n", "control character"),
            ("non-ascii", SECRET + "\u00e9", "non-ASCII character"),
            ("zero-width", SECRET + "\u200b", "non-ASCII character"),
        ):
            yield one(
                f"credential-{name}-{kind}",
                "targets",
                text,
                expected,
                "api_key:",
                env={variable: value},
                absent=(SECRET,),
            )


def environment() -> Iterator[Case]:
    cases = [
        ("list-name", config().replace("name: News", "name: ${NO_SUCH_LIST}"), "NO_SUCH_LIST"),
        (
            "path",
            config(
                targets="targets:\n  local:\n    provider: reference\n"
                "    path: ${NO_SUCH_DIR}/s.db\n"
            ),
            "NO_SUCH_DIR",
        ),
        (
            "rule-value",
            config(rules=rule("{field: email, op: equals, value: '${NO_SUCH_DOMAIN}'}")),
            "NO_SUCH_DOMAIN",
        ),
        (
            "provider",
            config(targets="targets:\n  local:\n    provider: ${NO_SUCH_PROVIDER}\n"),
            "NO_SUCH_PROVIDER",
        ),
        (
            "second-of-two",
            config(
                targets="targets:\n  local:\n    provider: reference\n"
                "    path: ${HOSTILE_DIR}/${NO_SUCH_FILE}\n"
            ),
            "NO_SUCH_FILE",
        ),
    ]
    for name, text, variable in cases:
        yield one(
            f"env-{name}",
            "environment",
            text,
            f"environment variable {variable} is not set",
            variable,
            env={"HOSTILE_DIR": SECRET},
            absent=(SECRET,),
        )


def includes() -> Iterator[Case]:
    def root(patterns: str) -> str:
        return config(extra_root=f"include: {patterns}\n")

    lists = "lists:\n  - name: Extra\n    segments: []\n"
    outside = "password: " + SECRET + "\nuser: root\n"
    cases: list[tuple[str, str, dict[str, str], dict[str, str], tuple[str, ...], str]] = [
        ("absolute", '["/etc/passwd"]', {}, {}, (), "is an absolute path"),
        ("absolute-glob", '["/**/*.yaml"]', {}, {}, (), "is an absolute path"),
        (
            "dotdot",
            '["../outside/secret.yaml"]',
            {"../outside/secret.yaml": outside},
            {},
            (SECRET, "password"),
            'uses ".."',
        ),
        (
            "dotdot-inner",
            '["lists/../../outside/secret.yaml"]',
            {"../outside/secret.yaml": outside},
            {},
            (SECRET,),
            'uses ".."',
        ),
        (
            "dotdot-harmless",
            '["lists/../lists/a.yaml"]',
            {"lists/a.yaml": lists},
            {},
            (),
            'uses ".."',
        ),
        (
            "symlink-file",
            '["lists/*.yaml"]',
            {"../outside/secret.yaml": outside},
            {"lists/link.yaml": "../../outside/secret.yaml"},
            (SECRET, "password"),
            "resolves outside the configuration's directory",
        ),
        (
            "symlink-dir",
            '["shared/*.yaml"]',
            {"../outside/secret.yaml": outside},
            {"shared": "../outside"},
            (SECRET, "password"),
            "resolves outside the configuration's directory",
        ),
        (
            "symlink-recursive",
            '["**/*.yaml"]',
            {"../outside/secret.yaml": outside, "lists/a.yaml": lists},
            {"lists/deep/link.yaml": "../../../outside/secret.yaml"},
            (SECRET,),
            "resolves outside",
        ),
        (
            "no-match-literal",
            '["lists/news.yaml"]',
            {},
            {},
            (),
            'include "lists/news.yaml" matches no file',
        ),
        (
            "no-match-missing-dir",
            '["lsts/*.yaml"]',
            {"lists/a.yaml": lists},
            {},
            (),
            "matches no file",
        ),
        (
            "no-match-other-files",
            '["lists/*.yml"]',
            {"lists/a.yaml": lists},
            {},
            (),
            "matches no file",
        ),
        ("no-match-directory", '["lists"]', {"lists/a.yaml": lists}, {}, (), "matches no file"),
        (
            "no-match-loop",
            '["loop/**/*.yml"]',
            {"loop/x.txt": ""},
            {"loop/a": ".", "loop/b": "."},
            (),
            "matches no file",
        ),
        (
            "not-a-list",
            '"lists/*.yaml"',
            {"lists/a.yaml": lists},
            {},
            (),
            '"include" must be a list',
        ),
        ("item-not-text", "[5]", {}, {}, (), "must be text"),
    ]
    for name, patterns, files, links, absent, expected in cases:
        text = root(patterns)
        yield Case(
            f"include-{name}",
            "includes",
            {ROOT: text, **files},
            expected,
            at(text, "include:"),
            links=links,
            absent=absent,
        )
    inc = root('["lists/*.yaml"]')
    included: list[tuple[str, str, str, int | None, tuple[str, ...]]] = [
        ("scalar", "just some text\nmore text\n", "must be a mapping holding lists:", 1, ()),
        ("list", "- a\n- b\n", "must be a mapping holding lists:", 1, ()),
        ("secret-mapping", outside, 'it has no "lists"', 1, (SECRET, "password")),
        (
            "extra-key",
            lists + "targets: {}\n",
            'unknown key "targets" (an included file holds only "lists")',
            4,
            (),
        ),
        ("version-key", "version: 1\n" + lists, 'unknown key "version"', 1, ()),
        (
            "typo-lists",
            "list:\n  - name: Extra\n",
            'unknown key "list" (did you mean "lists"?)',
            1,
            (),
        ),
        ("syntax", "lists: [\n", "invalid YAML", 2, ()),
        ("bad-list", "lists:\n  - name: Extra\n    prun: true\n", '(did you mean "prune"?)', 3, ()),
        ("lists-not-list", "lists: 5\n", '"lists" must be a list, not an integer', 1, ()),
        ("deep", "lists: " + "[" * 200 + "\n", "nested more than 100 levels deep", 1, ()),
    ]
    for name, content, expected, line, absent in included:
        yield Case(
            f"included-{name}",
            "includes",
            {ROOT: inc, "lists/a.yaml": content},
            expected,
            line,
            file="lists/a.yaml",
            absent=absent,
        )
    yield Case(
        "included-not-utf8",
        "includes",
        {ROOT: inc},
        "not UTF-8 text",
        2,
        file="lists/a.yaml",
        raw={"lists/a.yaml": b"lists:\n  - name: \xff\xfe\n"},
    )
    yield Case(
        "included-fifo",
        "includes",
        {ROOT: root('["lists/pipe.yaml"]')},
        "it is a FIFO (named pipe)",
        None,
        file="lists/pipe.yaml",
        fifos=("lists/pipe.yaml",),
    )
    text = root('["lists/zero.yaml"]')
    yield Case(
        "included-device",
        "includes",
        {ROOT: text},
        "resolves outside",
        at(text, "include:"),
        links={"lists/zero.yaml": "/dev/zero"},
    )
    text = config(extra_root="include:\n  - lists/*.yaml\n  - lists/none.yaml\n")
    yield Case(
        "include-second-pattern",
        "includes",
        {ROOT: text, "lists/a.yaml": lists},
        'include "lists/none.yaml" matches no file',
        at(text, "lists/none.yaml"),
    )


def files() -> Iterator[Case]:
    yield Case("file-fifo-root", "files", {}, "it is a FIFO (named pipe)", None, fifos=(ROOT,))
    yield Case(
        "file-dev-zero-root",
        "files",
        {},
        "it is a character device",
        None,
        links={ROOT: "/dev/zero"},
    )
    yield Case(
        "file-dev-null-root",
        "files",
        {},
        "it is a character device",
        None,
        links={ROOT: "/dev/null"},
    )
    yield Case("file-empty", "files", {ROOT: "# nothing\n"}, "the configuration is empty", 1)
    yield Case(
        "file-foreign-root",
        "files",
        {ROOT: f"password: {SECRET}\nroot:$6$hash:19000:0:99999:7:::\n"},
        "this is not a configuration file",
        1,
        absent=(SECRET, "password", "hash"),
    )
    yield Case(
        "file-list-root", "files", {ROOT: "- version: 1\n"}, "the configuration is not a mapping", 1
    )
    yield Case(
        "file-scalar-root", "files", {ROOT: "version 1\n"}, "the configuration is not a mapping", 1
    )
    yield Case(
        "file-not-utf8",
        "files",
        {},
        "not UTF-8 text",
        3,
        raw={ROOT: b"version: 1\nlists:\n  - name: N\xe9ws\n"},
    )
    yield Case(
        "file-latin1-bom", "files", {}, "not UTF-8 text", 1, raw={ROOT: b"\xff\xfeversion: 1\n"}
    )
    yield Case(
        "file-too-large",
        "files",
        {},
        "larger than 16 MiB",
        None,
        raw={ROOT: b"version: 1\n" + b"#" * (16 * 1024 * 1024)},
    )


def limits() -> Iterator[Case]:
    deep = "nested more than 100 levels deep"
    # (name, text after "version: 1", the line of the first node past 100 levels)
    mixed = "".join(" " * (2 * i) + "- a:\n" for i in range(60)) + " " * 120 + "x\n"
    shapes = [
        ("flow-101", "lists: " + "[" * 100 + "]" * 100, 2),
        ("flow-30000", "lists: " + "[" * 30000, 2),
        ("flow-balanced-30000", "lists: " + "[" * 30000 + "]" * 30000, 2),
        ("flow-mappings", "lists: " + "{a: " * 5000, 2),
        ("flow-fake-closers", "lists: " + "[ ']]]]', " * 3000 + "x" + "]" * 3000, 2),
        ("flow-fake-closers-double", "lists: " + '[ "]}]}", ' * 3000 + "x" + "]" * 3000, 2),
        ("flow-commented", "lists: " + "[ # ]]]]\n" * 300, 101),  # one level per line
        ("block-sequences", "lists:\n" + "- " * 30000 + "x", 3),
        ("block-indented", "lists:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 150)), 102),
        ("block-mixed", "lists:\n" + mixed, 52),  # two levels a line: 1 + 2 * 49 + 2 > 100
    ]
    for name, body, line in shapes:
        text = "version: 1\n" + body + "\n"
        yield Case(f"limit-{name}", "limits", {ROOT: text}, deep, line)
    laughs = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(laughs) + "\n"
    # located at the anchored node its aliases repeat most (a7, ten times in a8)
    yield one("limit-alias-nodes", "limits", text, "aliases expand to too much data", "a7: &a7")
    big = "x" * 1_000_000
    text = f"version: 1\nbig: &big {big}\nmany: [" + ", ".join(["*big"] * 20) + "]\n"
    yield Case("limit-alias-text", "limits", {ROOT: text}, "aliases expand to too much text", 2)
    inner = "[" * 60 + "x" + "]" * 60
    text = f"version: 1\nd: &d {inner}\ne: " + "[" * 60 + "*d" + "]" * 60 + "\n"
    yield Case("limit-alias-depth", "limits", {ROOT: text}, "nested more than 100 levels", 2)


def _all() -> list[Case]:
    found: list[Case] = []
    for generate in (
        syntax,
        structure,
        scalars,
        schema_types,
        unknown_keys,
        numbers,
        rules,
        references,
        targets,
        environment,
        includes,
        files,
        limits,
    ):
        found.extend(generate())
    return found


CASES = _all()
