"""Malformed configurations as data, for the loader tests and the CLI ``validate`` tests.

Each case is ``(id, files, expected, line)``: ``files`` maps a path relative to the working
directory to its YAML text (``reconciler.yaml`` is the root); the run must report exactly
one error, in the first file of ``files`` unless ``ERROR_FILE`` names another, whose message
contains ``expected`` and whose line is ``line``. Environment: ``ENVIRON`` (no other
variables are set). Registry: the ``reference`` provider only.
"""

from __future__ import annotations

ENVIRON = {"CM_KEY": "not-a-real-key"}

HEAD = "version: 1\n"
LIST = "lists:\n  - name: News\n    segments:\n"
SEG = "      - name: S\n        rules:\n"
RULE = "          - {field: email, op: contains, value: x}\n"
OK = HEAD + LIST + SEG + RULE

MalformedCase = tuple[str, dict[str, str], str, int]

MALFORMED: list[MalformedCase] = [
    (
        "syntax-error",
        {"reconciler.yaml": HEAD + "lists: [\n  - name: x\n"},
        "invalid YAML:",
        3,
    ),
    (
        "tab-indentation",
        {"reconciler.yaml": HEAD + "lists:\n\t- name: News\n"},
        "invalid YAML: found character that cannot start any token",
        3,
    ),
    (
        "unknown-top-level-key",
        {"reconciler.yaml": OK + "targts: {}\n"},
        'unknown key "targts" (did you mean "targets"?)',
        8,
    ),
    (
        "unknown-segment-key-with-hint",
        {"reconciler.yaml": HEAD + LIST + SEG + RULE + "        mach: any\n"},
        'unknown key "mach" (did you mean "match"?)',
        8,
    ),
    (
        "bad-op",
        {"reconciler.yaml": HEAD + LIST + SEG + "          - {field: email, op: like, value: x}\n"},
        '"like" is not one of: equals, not_equals',
        7,
    ),
    (
        "missing-value",
        {"reconciler.yaml": HEAD + LIST + SEG + "          - {field: email, op: contains}\n"},
        "operator 'contains' needs a value",
        7,
    ),
    (
        "value-given-to-empty",
        {
            "reconciler.yaml": HEAD
            + LIST
            + SEG
            + "          - {field: email, op: empty, value: x}\n"
        },
        "operator 'empty' takes no value",
        7,
    ),
    (
        "between-with-one-value",
        {
            "reconciler.yaml": HEAD
            + LIST
            + SEG
            + "          - {field: date_subscribed, op: between, value: [2024-01-01]}\n"
        },
        "operator 'between' needs a value of two items",
        7,
    ),
    (
        "bad-match",
        {
            "reconciler.yaml": HEAD
            + LIST
            + "      - name: S\n        match: some\n        rules:\n"
            + RULE
        },
        '"some" is not one of: all, any',
        6,
    ),
    (
        "version-2",
        {"reconciler.yaml": "version: 2\n" + LIST + SEG + RULE},
        '"version" must be 1, not 2',
        1,
    ),
    (
        "missing-version",
        {"reconciler.yaml": LIST + SEG + RULE},
        'missing required key "version"',
        1,
    ),
    (
        "include-glob-matches-nothing",
        {"reconciler.yaml": HEAD + "include:\n  - lists/news.yaml\n"},
        'include "lists/news.yaml" matches no file',
        3,
    ),
    (
        "included-file-extra-key",
        {
            "lists/a.yaml": LIST + SEG + RULE + "targets: {}\n",
            "reconciler.yaml": HEAD + "include: [lists/*.yaml]\n",
        },
        'unknown key "targets" (an included file holds only "lists")',
        7,
    ),
    (
        "missing-env-var",
        {
            "reconciler.yaml": OK
            + "targets:\n  local:\n    provider: reference\n    path: ${STATE_PATH}\n"
        },
        "environment variable STATE_PATH is not set",
        11,
    ),
    (
        "unknown-target",
        {"reconciler.yaml": HEAD + "lists:\n  - name: News\n    target: nwes\n    segments: []\n"},
        'unknown target "nwes"',
        4,
    ),
    (
        "unknown-provider",
        {"reconciler.yaml": OK + "targets:\n  local:\n    provider: refernce\n"},
        'unknown provider "refernce" (did you mean "reference"?)',
        10,
    ),
    (
        "bad-target-setting",
        {"reconciler.yaml": OK + "targets:\n  local:\n    provider: reference\n    pth: x.db\n"},
        'unknown key "pth" (did you mean "path"?)',
        11,
    ),
    (
        "duplicate-segment",
        {"reconciler.yaml": OK + SEG + RULE},
        'duplicate segment "S" in list "News"',
        8,
    ),
    (
        "duplicate-list",
        {"reconciler.yaml": OK + "  - name: News\n"},
        'duplicate list "News" in target "local"',
        8,
    ),
    (
        "unknown-custom-field-with-hint",
        {
            "reconciler.yaml": HEAD
            + "lists:\n  - name: News\n    fields: [{name: last_purchase, type: date}]\n"
            + "    segments:\n"
            + SEG
            + "          - {field: lst_purchase, op: after, value: 2024-01-01}\n"
        },
        'unknown field "lst_purchase" (did you mean "last_purchase"?)',
        8,
    ),
    (
        "rule-with-no-kind-key",
        {"reconciler.yaml": HEAD + LIST + SEG + "          - {op: contains, value: x}\n"},
        "a rule needs one of the keys 'field', 'campaign', 'list', 'native', 'any' or 'all'",
        7,
    ),
    (
        "empty-group",
        {"reconciler.yaml": HEAD + LIST + SEG + "          - any: []\n"},
        '"any" must not be empty',
        7,
    ),
    (
        "segment-with-no-rules",
        {"reconciler.yaml": HEAD + LIST + "      - name: S\n        rules: []\n"},
        '"rules" must not be empty',
        6,
    ),
    (
        "duplicate-yaml-key",
        {"reconciler.yaml": OK + "version: 1\n"},
        'duplicate key "version"',
        8,
    ),
    (
        "non-mapping-root",
        {"reconciler.yaml": "- version: 1\n"},
        "the configuration is not a mapping",
        1,
    ),
    (
        "empty-root",
        {"reconciler.yaml": "# nothing here\n"},
        "the configuration is empty",
        1,
    ),
    (
        "segment-missing-name",
        {"reconciler.yaml": HEAD + LIST + "      - rules:\n" + RULE.replace("  - {", "    - {")},
        'missing required key "name"',
        5,
    ),
    (
        "unknown-behaviour-event",
        {"reconciler.yaml": HEAD + LIST + SEG + "          - {campaign: c1, event: bounced}\n"},
        '"bounced" is not one of: opened, clicked, not_opened, not_clicked',
        7,
    ),
    (
        "value-of-wrong-type",
        {
            "reconciler.yaml": HEAD
            + LIST
            + SEG
            + "          - {field: email, op: equals, value: {a: 1}}\n"
        },
        '"value" must be text, true/false, an integer, a number or a list, not a mapping',
        7,
    ),
    (
        "unsupported-tag",
        {
            "reconciler.yaml": HEAD
            + LIST
            + SEG
            + "          - {field: email, op: equals, value: !x y}\n"
        },
        'unsupported tag "!x"',
        7,
    ),
    (
        "unknown-default-target",
        {"reconciler.yaml": OK + "defaults: {target: lcoal}\n"},
        'unknown target "lcoal" (did you mean "local"?)',
        8,
    ),
    (
        "options-on-text-field",
        {
            "reconciler.yaml": HEAD
            + "lists:\n  - name: News\n    fields: [{name: F, type: text, options: [a]}]\n"
        },
        'field "F" of type "text" cannot have options',
        4,
    ),
]

MALFORMED.append(
    (
        "infinite-value",
        {
            "reconciler.yaml": HEAD
            + LIST
            + SEG
            + "          - {field: email, op: equals, value: .inf}\n"
        },
        '"value" must be a finite number',
        7,
    )
)

ERROR_FILE = {"included-file-extra-key": "lists/a.yaml"}
"""Cases whose error is in a file other than the root."""
