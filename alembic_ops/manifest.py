"""The artifact versions this library ships: for each, a summary and its templates.

A version's ``templates`` map every template name its operations use to a
file under ``sql/`` (without ``.sql``; a file lives in the folder of the
version that first shipped it). The operations are ``OPERATIONS``, plus, from
version 2 on, ``upgrade`` (from the version before) and ``downgrade`` (back to
it), and, from version 5 (``LOG_VERSION``) on, ``GROUP_OPERATIONS``; the other
names are what templates include.

The include rule: a line ``-- #include <name>`` is replaced by the template
``<name>`` of the version being built, the one installed or upgraded to; a
downgrade builds the older version, and may also include the newer version's
templates that the older one has no name for (see ``build_templates``).

A *draft* version is the next one under construction: its SQL may still
change, nothing pins it, ``CURRENT_VERSION`` stays the newest released
version, and operations refuse it unless ``PGEVENTS_DRAFT_ARTIFACTS=1`` is set
(the test suite sets it; never set it in production).

Released versions render the same SQL forever, because old migrations replay
it. tests/released_sql.json (see tests/test_ops.py) pins a digest of everything each
version renders for several argument sets, and those pins, not the "Released:
never edit" lines in the templates, are what enforce it: template files may be
reworked (tokens, includes) as long as what they render stays the same. Their
comments are part of what they render, so those old headers stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .core.errors import UnknownArtifactVersionError
from .core.names import LOG_VERSION

#: The operations every version renders.
OPERATIONS = ("install", "uninstall", "check_no_events", "check_table", "create_triggers", "drop_trigger")
#: The version steps every version but the first renders.
STEPS = ("upgrade", "downgrade")
#: The consumer-group operations every version from ``LOG_VERSION`` on renders.
GROUP_OPERATIONS = ("create_group", "drop_group")


@dataclass(frozen=True)
class Version:
    """One artifact version: what changed, and the template behind every name it uses."""

    number: int
    summary: str
    templates: Mapping[str, str]
    draft: bool = False


MANIFEST: tuple[Version, ...] = (
    Version(
        1,
        "event log, dead letters, processed log, sleeper flags, capture()",
        {
            "install": "v1/install",
            "uninstall": "v1/uninstall",
            "drop_schema": "v1/drop_schema",
            "check_no_events": "v1/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v1/create_triggers",
            "drop_trigger": "v1/drop_trigger",
            "tables": "v1/tables",
            "create_schema": "v1/create_schema",
            "job_tables": "v1/job_tables",
            "sleeper": "v1/sleeper",
            "capture": "v1/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
        },
    ),
    Version(
        2,
        "a cheaper capture() (same trigger arguments, same tables)",
        {
            "install": "v2/install",
            "uninstall": "v1/uninstall",
            "drop_schema": "v1/drop_schema",
            "check_no_events": "v1/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v1/create_triggers",
            "drop_trigger": "v1/drop_trigger",
            "upgrade": "v2/upgrade",
            "downgrade": "v2/downgrade",
            "expect": "v2/expect",
            "tables": "v1/tables",
            "create_schema": "v1/create_schema",
            "job_tables": "v1/job_tables",
            "sleeper": "v1/sleeper",
            "capture": "v2/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
        },
    ),
    Version(
        3,
        "a capture function generated per trigger for single-column keys without images or a filter",
        {
            "install": "v3/install",
            "uninstall": "v3/uninstall",
            "check_no_events": "v1/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v3/create_triggers",
            "drop_trigger": "v3/drop_trigger",
            "upgrade": "v3/upgrade",
            "downgrade": "v3/downgrade",
            "expect": "v2/expect",
            "tables": "v1/tables",
            "create_schema": "v1/create_schema",
            "job_tables": "v1/job_tables",
            "sleeper": "v1/sleeper",
            "capture": "v2/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
            "trigger_functions": "v3/trigger_functions",
            "broadcast_function": "v3/broadcast_function",
            "create_trigger": "v3/create_trigger",
            "trigger_maintenance": "v3/trigger_maintenance",
            "attach_trigger": "v3/attach_trigger",
            "wakeup_check": "v3/wakeup_check",
            "drop_trigger_functions": "v3/drop_trigger_functions",
            "uninstall_tables": "v1/uninstall",
            "drop_schema": "v1/drop_schema",
        },
    ),
    Version(
        4,
        "a sequence as the sleeper flag generated functions read; no NOT NULL checks on new event rows",
        {
            "install": "v4/install",
            "uninstall": "v4/uninstall",
            "check_no_events": "v1/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v3/create_triggers",
            "drop_trigger": "v3/drop_trigger",
            "upgrade": "v4/upgrade",
            "downgrade": "v4/downgrade",
            "expect": "v2/expect",
            "tables": "v1/tables",
            "create_schema": "v1/create_schema",
            "job_tables": "v1/job_tables",
            "sleeper": "v1/sleeper",
            "sleeping": "v4/sleeping",
            "nullable_event_columns": "v4/nullable_event_columns",
            "capture": "v2/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
            "trigger_functions": "v3/trigger_functions",
            "broadcast_function": "v3/broadcast_function",
            "create_trigger": "v3/create_trigger",
            "trigger_maintenance": "v3/trigger_maintenance",
            "attach_trigger": "v3/attach_trigger",
            "wakeup_check": "v4/wakeup_check",
            "drop_trigger_functions": "v3/drop_trigger_functions",
            "uninstall_functions": "v3/uninstall",
            "uninstall_tables": "v1/uninstall",
            "drop_schema": "v1/drop_schema",
        },
    ),
    Version(
        5,
        "an append-only log in rotating partitions, read by consumer groups through cursors",
        {
            "install": "v5/install",
            "uninstall": "v4/uninstall",
            "check_no_events": "v5/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v3/create_triggers",
            "drop_trigger": "v3/drop_trigger",
            "upgrade": "v5/upgrade",
            "downgrade": "v5/downgrade",
            "expect": "v2/expect",
            "create_schema": "v1/create_schema",
            "log_tables": "v5/log_tables",
            "sleeper": "v1/sleeper",
            "sleeping": "v4/sleeping",
            "capture": "v5/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
            "trigger_functions": "v3/trigger_functions",
            "broadcast_function": "v3/broadcast_function",
            "create_trigger": "v5/create_trigger",
            "trigger_maintenance": "v3/trigger_maintenance",
            "attach_trigger": "v3/attach_trigger",
            "wakeup_check": "v4/wakeup_check",
            "log_functions": "v5/log_functions",
            "window_events": "v5/window_events",
            "retry_later": "v5/retry_later",
            "failed_event": "v5/failed_event",
            "pending": "v5/pending",
            "read_floor": "v5/read_floor",
            "drop_log_functions": "v5/drop_log_functions",
            "drop_log_tables": "v5/drop_log_tables",
            "drop_trigger_functions": "v3/drop_trigger_functions",
            "uninstall_functions": "v3/uninstall",
            "uninstall_tables": "v5/uninstall_tables",
            "drop_schema": "v1/drop_schema",
            "create_group": "v5/create_group",
            "drop_group": "v5/drop_group",
            "log_capture_body": "v5/log_capture_body",
            "event_columns": "v5/event_columns",
            "read_generation": "v5/read_generation",
            "move_writers": "v5/move_writers",
            "generation_sequence": "v5/generation_sequence",
            "drop_generation_sequence": "v5/drop_generation_sequence",
        },
    ),
    Version(
        6,
        "one sequence, flags, that writers read once per statement (the partition and the sleeper flag)",
        {
            "install": "v6/install",
            "uninstall": "v3/uninstall",
            "check_no_events": "v5/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v3/create_triggers",
            "drop_trigger": "v3/drop_trigger",
            "upgrade": "v6/upgrade",
            "downgrade": "v6/downgrade",
            "expect": "v2/expect",
            "create_schema": "v1/create_schema",
            "log_tables": "v5/log_tables",
            "sleeper": "v1/sleeper",
            "capture": "v5/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
            "trigger_functions": "v3/trigger_functions",
            "broadcast_function": "v3/broadcast_function",
            "create_trigger": "v5/create_trigger",
            "trigger_maintenance": "v3/trigger_maintenance",
            "attach_trigger": "v3/attach_trigger",
            "log_functions": "v5/log_functions",
            "window_events": "v5/window_events",
            "retry_later": "v5/retry_later",
            "failed_event": "v5/failed_event",
            "pending": "v5/pending",
            "read_floor": "v5/read_floor",
            "drop_log_functions": "v5/drop_log_functions",
            "drop_log_tables": "v5/drop_log_tables",
            "drop_trigger_functions": "v3/drop_trigger_functions",
            "uninstall_functions": "v3/uninstall",
            "uninstall_tables": "v5/uninstall_tables",
            "drop_schema": "v1/drop_schema",
            "create_group": "v5/create_group",
            "drop_group": "v5/drop_group",
            "log_capture_body": "v6/log_capture_body",
            "capture_function_body": "v6/capture_function_body",
            "event_columns": "v5/event_columns",
            "read_generation": "v6/read_generation",
            "move_writers": "v6/move_writers",
            "generation_sequence": "v6/flags_sequence",
            "drop_generation_sequence": "v6/drop_flags_sequence",
        },
    ),
    Version(
        7,
        "statement rows: one log row per statement (per 1024 rows) for events with a single-column key",
        {
            "install": "v7/install",
            "uninstall": "v3/uninstall",
            "check_no_events": "v5/check_no_events",
            "check_table": "v1/check_table",
            "create_triggers": "v3/create_triggers",
            "drop_trigger": "v3/drop_trigger",
            "upgrade": "v7/upgrade",
            "downgrade": "v7/downgrade",
            "expect": "v2/expect",
            "create_schema": "v1/create_schema",
            "log_tables": "v5/log_tables",
            "sleeper": "v1/sleeper",
            "capture": "v5/capture",
            "create_triggers_begin": "v1/create_triggers_begin",
            "trigger_functions": "v3/trigger_functions",
            "broadcast_function": "v3/broadcast_function",
            "create_trigger": "v5/create_trigger",
            "trigger_maintenance": "v3/trigger_maintenance",
            "attach_trigger": "v3/attach_trigger",
            "log_functions": "v5/log_functions",
            "window_events": "v7/window_events",
            "retry_later": "v5/retry_later",
            "failed_event": "v7/failed_event",
            "pending": "v7/pending",
            "read_floor": "v7/read_floor",
            "drop_log_functions": "v7/drop_log_functions",
            "drop_cursor_functions": "v5/drop_log_functions",
            "drop_log_tables": "v5/drop_log_tables",
            "drop_trigger_functions": "v3/drop_trigger_functions",
            "uninstall_functions": "v3/uninstall",
            "uninstall_tables": "v5/uninstall_tables",
            "drop_schema": "v1/drop_schema",
            "create_group": "v5/create_group",
            "drop_group": "v5/drop_group",
            "log_capture_body": "v7/log_capture_body",
            "capture_function_body": "v6/capture_function_body",
            "statement_rows": "v7/statement_rows",
            "event_columns": "v5/event_columns",
            "read_generation": "v6/read_generation",
            "move_writers": "v6/move_writers",
            "generation_sequence": "v6/flags_sequence",
            "drop_generation_sequence": "v6/drop_flags_sequence",
        },
        draft=True,
    ),
)

#: Released artifact versions, oldest first.
VERSIONS: tuple[int, ...] = tuple(version.number for version in MANIFEST if not version.draft)
CURRENT_VERSION: int = VERSIONS[-1]
#: The version under construction, if any (see the module docstring).
DRAFT_VERSIONS: tuple[int, ...] = tuple(version.number for version in MANIFEST if version.draft)
#: Every version the manifest holds, drafts included.
ALL_VERSIONS: tuple[int, ...] = VERSIONS + DRAFT_VERSIONS
#: The environment variable that lets operations use a draft version.
DRAFT_VARIABLE = "PGEVENTS_DRAFT_ARTIFACTS"

assert ALL_VERSIONS == tuple(range(1, len(MANIFEST) + 1)), "versions are numbered 1, 2, 3..."
assert len(DRAFT_VERSIONS) <= 1, "at most one draft, the newest version"
assert all(set(OPERATIONS) <= set(v.templates) for v in MANIFEST), "every version renders every operation"
assert all(set(STEPS) <= set(v.templates) for v in MANIFEST[1:]), "every version but 1 has its steps"
assert all(set(GROUP_OPERATIONS) <= set(v.templates) for v in MANIFEST[LOG_VERSION - 1 :]), (
    "every version with consumer groups renders their operations"
)


def drafts_allowed() -> bool:
    """Whether ``PGEVENTS_DRAFT_ARTIFACTS=1`` lets operations use a draft version."""
    return os.environ.get(DRAFT_VARIABLE) == "1"


def check_version(version: object) -> int:
    """Return ``version`` if this library ships it (or it is the draft and drafts are allowed), else raise."""
    if isinstance(version, bool) or not isinstance(version, int) or version not in ALL_VERSIONS:
        raise UnknownArtifactVersionError(
            f"pgevents artifact version {version!r} is not shipped by this library "
            f"(known: {', '.join(map(str, VERSIONS))}); upgrade pgevents-migrate"
        )
    if version in DRAFT_VERSIONS and not drafts_allowed():
        raise UnknownArtifactVersionError(
            f"pgevents artifact version {version} is a draft: its SQL may still change, so no "
            f"migration may use it yet (set {DRAFT_VARIABLE}=1 to try it on a scratch database)"
        )
    return version


def build_templates(version: int, operation: str) -> Mapping[str, str]:
    """The templates ``operation`` of ``version`` resolves its includes through.

    Those of the version being built: ``version`` itself, except that its
    downgrade builds ``version - 1`` (whose templates win), with the newer
    version's templates filling in the names the older one lacks (the
    version-change guard of version 2, the drops of version 3's functions).
    """
    templates = MANIFEST[check_version(version) - 1].templates
    if operation != "downgrade":
        return templates
    return {**templates, **MANIFEST[version - 2].templates}
