"""Autogenerate: compare declared capture specs with the installed triggers.

Registered when ``alembic_ops`` is imported; ``env.py`` needs no change.
Trigger creates are appended after Alembic's own table operations and drops
are put before them (after an upgrade of an older installed artifact, which
comes first), so a new table and its triggers (or a dropped table and
its triggers) can share one revision. On Alembic >= 1.18 the comparison runs
at ``DispatchPriority.LAST``; a ``FIRST`` hook also hides the event schemas
from Alembic's table comparison when ``include_schemas`` is on. Older Alembic
runs "schema" comparators in registration order, after its own table
comparison (registered on import, before ours); the hiding hook is put at the
front of that list.

Filters apply per table, as Alembic applies them to tables:

- ``include_name`` sees every table name (and, for a declared table outside
  the compared schemas, its schema name);
- ``include_object`` sees the mapped ``Table``; a table the app does not map
  is passed as a bare ``Table``, with ``reflected=False`` when a listener
  declares it and ``reflected=True`` when only the database has its triggers,
  so a filter that keeps Alembic off unmapped tables keeps pgevents off them
  too;
- installed triggers are compared only in the schemas Alembic compares
  (``include_schemas``); a declared table is compared wherever it is.

Excluded tables get no ops, and an event schema whose triggers an excluded
table still uses is not uninstalled.

Consumer groups (artifact 5 on): each group a metadata declares
(``declare_group``, the app's ``PGEVENTS_GROUP``) belongs to the event schemas
of that metadata's declared specs. Where the artifact in effect after this
revision (installed, or installed or upgraded by it) has groups, a declared
group the database lacks gets a ``CreatePGEventsGroupOp`` after the installs.
``default`` never does (the artifact registers it), and no group is ever
dropped: another application may share the database and read through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import DropTableOp, UpgradeOps

from .artifacts import CURRENT_VERSION
from .core.catalog import InstalledState, read_artifacts, read_groups, read_installed
from .core.declarations import declared_groups, declared_specs, merge_specs
from .core.errors import UncapturableTableError, UnknownArtifactVersionError
from .core.names import DEFAULT_GROUP, LOG_VERSION
from .core.spec import TableKey, TriggerSpec, check_capturable
from .manifest import DRAFT_VERSIONS, drafts_allowed
from .ops import (
    CreatePGEventsGroupOp,
    CreatePGEventTriggerOp,
    DropPGEventTriggerOp,
    InstallPGEventsOp,
    UninstallPGEventsOp,
    UpgradePGEventsOp,
)

try:  # Alembic >= 1.18
    from alembic.util import DispatchPriority
except ImportError:  # pragma: no cover - exercised with older Alembic only
    DispatchPriority = None  # type: ignore[assignment,misc]


def _metadatas(autogen_context: AutogenContext) -> list[sa.MetaData]:
    metadata = autogen_context.metadata
    if metadata is None:
        return []
    if isinstance(metadata, sa.MetaData):
        return [metadata]
    return list(metadata)


def _declared(autogen_context: AutogenContext, default_schema: str | None) -> dict[TableKey, TriggerSpec]:
    """Declared specs by table; the default schema is spelled ``None``."""
    declared: dict[TableKey, TriggerSpec] = {}
    for metadata in _metadatas(autogen_context):
        for spec in declared_specs(metadata).values():
            if spec.schema is not None and spec.schema == default_schema:
                spec = dataclasses.replace(spec, schema=None)
            existing = declared.get(spec.key)
            declared[spec.key] = spec if existing is None else merge_specs(existing, spec)
    return declared


def _metadata_table(autogen_context: AutogenContext, key: TableKey) -> sa.Table | None:
    schema, name = key
    for metadata in _metadatas(autogen_context):
        table = metadata.tables.get(name if schema is None else f"{schema}.{name}")
        if table is not None:
            return table
    return None


def _included(
    autogen_context: AutogenContext,
    schemas: Iterable[str | None],
    key: TableKey,
    *,
    declared: bool,
) -> bool:
    """Honour include_schemas, include_name and include_object for one table."""
    schema, name = key
    if schema not in schemas:
        # Alembic did not reflect this schema. A declaration names its table
        # explicitly, so it is still compared unless include_name rejects the schema.
        if not declared or schema is None or not autogen_context.run_name_filters(schema, "schema", {}):
            return False
    if not autogen_context.run_name_filters(name, "table", {"schema_name": schema}):
        return False
    table = _metadata_table(autogen_context, key)
    reflected = False
    if table is None:
        # Not mapped: a declaration stands for the app's definition of the table;
        # otherwise only the database knows it, and Alembic would call the filter
        # with a reflected table.
        table = sa.Table(name, sa.MetaData(), schema=schema)
        reflected = not declared
    return autogen_context.run_object_filters(table, name, "table", reflected, None)


def _check_table(
    autogen_context: AutogenContext, key: TableKey, spec: TriggerSpec, dropped: set[TableKey]
) -> None:
    """Refuse, before a revision is written, a trigger its table cannot take.

    A mapped table is judged by the models (the revision makes the database
    match them), except that a primary key only the database has counts; an
    unmapped one by the database, unless this revision drops it.
    """
    schema, name = key
    table = _metadata_table(autogen_context, key)
    if table is None and key in dropped:
        raise UncapturableTableError(
            f"pgevents: table {spec.target!r} is not one of the app's models, so this migration would "
            "drop it: map it, or keep Alembic off tables the app does not map with an include_object "
            "filter (see docs/runtime.md, 'Declaring listeners')"
        )
    columns: list[str] | None = None
    primary_key: list[str] = []
    keys: dict[str, str] = {}
    if table is not None:
        columns = [column.name for column in table.columns]
        primary_key = [column.name for column in table.primary_key.columns]
        keys = {column.key: column.name for column in table.columns}
    if not primary_key:
        inspector = autogen_context.inspector
        if inspector.has_table(name, schema):
            primary_key = inspector.get_pk_constraint(name, schema)["constrained_columns"]
            if columns is None:
                columns = [column["name"] for column in inspector.get_columns(name, schema)]
    check_capturable(spec, columns, primary_key, keys)


def _installed(autogen_context: AutogenContext) -> InstalledState:
    connection = autogen_context.connection
    assert connection is not None
    state = read_installed(connection, connection.dialect.default_schema_name)
    for schema, version in state.artifacts.items():
        if version >= LOG_VERSION:
            state.groups[schema] = read_groups(connection, schema)
        if version in DRAFT_VERSIONS and drafts_allowed():
            continue  # a scratch database trying the draft (PGEVENTS_DRAFT_ARTIFACTS=1)
        if version > CURRENT_VERSION:
            raise UnknownArtifactVersionError(
                f"the database has pgevents artifact version {version} in schema {schema!r}, "
                f"newer than this library's {CURRENT_VERSION}; upgrade pgevents-migrate"
            )
    return state


def _declared_groups(autogen_context: AutogenContext) -> dict[str, set[str]]:
    """Declared consumer groups but ``default``, by the event schema of their metadata's specs."""
    groups: dict[str, set[str]] = {}
    for metadata in _metadatas(autogen_context):
        names = declared_groups(metadata) - {DEFAULT_GROUP}
        for spec in declared_specs(metadata).values():
            groups.setdefault(spec.pgevents_schema, set()).update(names)
    return groups


def _group_creates(
    state: InstalledState, declared: dict[str, set[str]], versions: dict[str, int]
) -> list[CreatePGEventsGroupOp]:
    """Registrations of the declared groups the database lacks, where the artifact in effect has groups.

    ``versions`` is each event schema's artifact version once this revision's
    installs and upgrades ran; an artifact installed or upgraded by them has
    no group but ``default`` yet.
    """
    creates: list[CreatePGEventsGroupOp] = []
    for schema, groups in sorted(declared.items()):
        version = versions.get(schema, 0)
        if version < LOG_VERSION:
            continue
        had_groups = state.artifacts.get(schema, 0) >= LOG_VERSION
        registered = state.groups.get(schema, frozenset()) if had_groups else frozenset()
        creates.extend(
            CreatePGEventsGroupOp(group, schema, version=version) for group in sorted(groups - registered)
        )
    return creates


def hide_event_schemas(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: set[str | None]
) -> Any:
    """Keep Alembic's table comparison out of the event schemas (runs first)."""
    connection = autogen_context.connection
    assert connection is not None
    default_schema = connection.dialect.default_schema_name
    for spec in _declared(autogen_context, default_schema).values():
        schemas.discard(spec.pgevents_schema)
    for schema in read_artifacts(connection):
        schemas.discard(schema)


def compare_pgevents(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: set[str | None]
) -> Any:
    """Emit the ops that bring installed triggers and groups in line with the declarations."""
    connection = autogen_context.connection
    assert connection is not None
    state = _installed(autogen_context)
    declared = _declared(autogen_context, connection.dialect.default_schema_name)

    dropped = {(op.schema, op.table_name) for op in upgrade_ops.ops if isinstance(op, DropTableOp)}
    drops: list[TriggerSpec] = []
    creates: list[TriggerSpec] = []
    needed: set[str] = set()
    kept_users: set[str] = set()
    for key in sorted(set(declared) | set(state.tables), key=lambda k: (k[0] or "", k[1])):
        wanted = declared.get(key)
        installed = state.tables.get(key)
        if not _included(autogen_context, schemas, key, declared=wanted is not None):
            if installed is not None:
                kept_users.add(installed.pgevents_schema)
            continue
        if wanted is not None:
            needed.add(wanted.pgevents_schema)
        have = installed.spec() if installed is not None else None
        if installed is not None and have == wanted:
            kept_users.add(installed.pgevents_schema)
            continue
        if installed is not None:
            # Triggers altered by hand are replaced; drop what is there by name.
            drops.append(
                have
                or TriggerSpec(
                    table=installed.table,
                    schema=installed.schema,
                    events=installed.events(),
                    pgevents_schema=installed.pgevents_schema,
                )
            )
        if wanted is not None:
            _check_table(autogen_context, key, wanted, dropped)
            creates.append(wanted)

    installs = [InstallPGEventsOp(schema) for schema in sorted(needed - set(state.artifacts))]
    kept = needed | kept_users
    uninstalls = [
        UninstallPGEventsOp(schema, version)
        for schema, version in sorted(state.artifacts.items())
        if schema not in kept
    ]
    # Upgrades go first, so every later op (and its reverse) meets the version it was rendered with.
    upgrades = [
        UpgradePGEventsOp(schema, from_version=version, to_version=CURRENT_VERSION)
        for schema, version in sorted(state.artifacts.items())
        if schema in kept and version < CURRENT_VERSION
    ]
    versions = {
        **state.artifacts,
        **{op.schema: op.version for op in installs},
        **{op.schema: op.to_version for op in upgrades},
    }
    groups = _group_creates(state, _declared_groups(autogen_context), versions)
    # Each trigger op is written for the version its event schema holds once the upgrades ran.
    upgrade_ops.ops[:0] = [
        *upgrades,
        *(DropPGEventTriggerOp(spec, versions[spec.pgevents_schema]) for spec in drops),
        *uninstalls,
    ]
    triggers = [CreatePGEventTriggerOp(spec, versions[spec.pgevents_schema]) for spec in creates]
    upgrade_ops.ops.extend([*installs, *groups, *triggers])


if DispatchPriority is None:  # pragma: no cover - exercised with older Alembic only
    # One list per target, run in order; Alembic's table comparison is already in it.
    comparators.dispatch_for("schema")(compare_pgevents)
    comparators._registry[("schema", "default")].insert(0, hide_event_schemas)
else:
    comparators.dispatch_for("schema", priority=DispatchPriority.FIRST)(hide_event_schemas)
    comparators.dispatch_for("schema", priority=DispatchPriority.LAST)(compare_pgevents)
