"""The versioned SQL artifacts: what each operation of each version renders.

Which templates a version uses is ``manifest.py``'s, reading them
``templates.py``'s. Tokens are filled here, only with quoted identifiers or
literals from ``core/identifiers.py``, the names of ``core/names.py``, the
trigger argument array of ``core/arguments.py`` (and ``@or_replace@`` with
``OR REPLACE`` or nothing).
"""

from __future__ import annotations

from .core import arguments
from .core.identifiers import (
    check_event_schema,
    check_group_name,
    check_lanes,
    qualified_table,
    quote_identifier,
    quote_literal,
    quote_text_array,
)
from .core.names import (
    CAPTURE_FUNCTION,
    DEFAULT_GROUP,
    GENERATED_MARKER,
    GENERATED_PREFIX,
    NEW_TABLE,
    OLD_TABLE,
    TRIGGER_NAMES,
    TRIGGER_PREFIX,
    artifact_marker,
    broadcast_channel,
    event_id_sequence,
    flags_sequence,
    generation_sequence,
    referencing_clause,
    sleeping_sequence,
    wakeup_channel,
)
from .core.spec import EVENTS, TriggerSpec
from .manifest import ALL_VERSIONS, CURRENT_VERSION, VERSIONS, check_version
from .templates import render

__all__ = [
    "CURRENT_VERSION",
    "VERSIONS",
    "change_version_sql",
    "check_no_events_sql",
    "check_table_sql",
    "check_version",
    "create_group_sql",
    "create_trigger_sql",
    "drop_group_sql",
    "drop_trigger_sql",
    "install_sql",
    "uninstall_sql",
]

#: Tokens that name what the SQL and the Python share; the same in every template.
_NAME_TOKENS: dict[str, str] = {
    **{f"artifact_{version}": quote_literal(artifact_marker(version)) for version in ALL_VERSIONS},
    "generated_marker": quote_literal(GENERATED_MARKER),
    "capture_function": quote_identifier(CAPTURE_FUNCTION),
    "capture_name": quote_literal(CAPTURE_FUNCTION),
    "generated_prefix": quote_literal(GENERATED_PREFIX),
    "trigger_prefix": quote_literal(TRIGGER_PREFIX),
    "trigger_names": ", ".join(quote_literal(TRIGGER_NAMES[event]) for event in EVENTS),
    # Where the event starts in a trigger's name (SQL's substr counts from 1).
    "event_start": str(len(TRIGGER_PREFIX) + 1),
    "old_table": quote_identifier(OLD_TABLE),
    "new_table": quote_identifier(NEW_TABLE),
    "old_table_name": quote_literal(OLD_TABLE),
    "new_table_name": quote_literal(NEW_TABLE),
    **{f"referencing_{event}": quote_literal(referencing_clause(event)) for event in EVENTS},
}


def _artifact_tokens(pgevents_schema: str) -> dict[str, str]:
    """The tokens of every template, for an artifact in ``pgevents_schema``."""
    schema = quote_identifier(check_event_schema(pgevents_schema))
    return {
        **_NAME_TOKENS,
        "generation": quote_literal(generation_sequence(pgevents_schema)),
        "flags": quote_literal(flags_sequence(pgevents_schema)),
        "event_id": quote_literal(event_id_sequence(pgevents_schema)),
        "default_group": quote_literal(DEFAULT_GROUP),
        "schema": schema,
        "schema_name": quote_literal(pgevents_schema),
        "capture": f"{schema}.{_NAME_TOKENS['capture_function']}",
        "sleeping": quote_literal(sleeping_sequence(pgevents_schema)),
        "wakeup_channel": quote_literal(wakeup_channel(pgevents_schema)),
        "broadcast_channel": quote_literal(broadcast_channel(pgevents_schema)),
    }


def install_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Create the event schema's tables and the capture function."""
    return render(version, "install", {**_artifact_tokens(pgevents_schema), "or_replace": ""})


def uninstall_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Drop what ``install_sql`` created; the schema only if left empty."""
    return render(version, "uninstall", _artifact_tokens(pgevents_schema))


def check_no_events_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Fail, naming the counts, while the event log holds undelivered events or dead letters."""
    return render(version, "check_no_events", _artifact_tokens(pgevents_schema))


def change_version_sql(pgevents_schema: str, from_version: int, to_version: int) -> list[str]:
    """Move an installed artifact from one version to another, one step at a time.

    Going up runs the ``upgrade`` of each newer version; going down runs the
    ``downgrade`` of each version from the installed one back. Each step first
    checks that the database holds the version it starts from.
    """
    check_version(from_version)
    check_version(to_version)

    def step(version: int, operation: str, starts_at: int) -> str:
        tokens = {**_artifact_tokens(pgevents_schema), "or_replace": "OR REPLACE "}
        return render(version, operation, {**tokens, "expected": quote_literal(artifact_marker(starts_at))})

    if from_version < to_version:
        return [step(v, "upgrade", v - 1) for v in ALL_VERSIONS if from_version < v <= to_version]
    return [step(v, "downgrade", v) for v in reversed(ALL_VERSIONS) if to_version < v <= from_version]


def check_table_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> str:
    """Fail with one short message unless the table exists and has a primary key and the filtered columns."""
    return render(
        version,
        "check_table",
        {
            "table_literal": quote_literal(qualified_table(spec.table, spec.schema)),
            "filter_columns": quote_text_array(spec.columns),
        },
    )


def create_trigger_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> list[str]:
    """The statement that installs ``spec``'s triggers, one per event.

    It resolves the table's primary key when it runs (failing, with the
    table's name, if there is none) and passes it to the capture function in
    the trigger arguments of ``core/arguments.py``.
    """
    head, update_tail = arguments.array_sql(spec)
    tokens = {
        **_artifact_tokens(spec.pgevents_schema),
        "table_literal": quote_literal(qualified_table(spec.table, spec.schema)),
        "events": quote_text_array(spec.events),
        "trigger_arguments": head,
        "filter_arguments": update_tail,
    }
    return [render(version, "create_triggers", tokens)]


def drop_trigger_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> list[str]:
    """Statements that remove ``spec``'s triggers."""
    tokens = {
        "table": qualified_table(spec.table, spec.schema),
        "schema": quote_identifier(spec.pgevents_schema),
    }
    return [
        render(version, "drop_trigger", {**tokens, "trigger": quote_identifier(TRIGGER_NAMES[event])})
        for event in spec.events
    ]


def create_group_sql(pgevents_schema: str, group: str, version: int, lanes: int = 1) -> str:
    """Register the consumer group ``group`` with ``lanes`` lanes (5 on); refused if registered already."""
    tokens = {**_group_tokens(pgevents_schema, group), "lanes": str(check_lanes(lanes))}
    return render(version, "create_group", tokens)


def drop_group_sql(pgevents_schema: str, group: str, version: int) -> str:
    """Remove the consumer group ``group``, its retries and dead letters; refused if it is not registered."""
    return render(version, "drop_group", _group_tokens(pgevents_schema, group))


def _group_tokens(pgevents_schema: str, group: str) -> dict[str, str]:
    return {
        "schema": quote_identifier(check_event_schema(pgevents_schema)),
        "group": quote_literal(check_group_name(group)),
    }
