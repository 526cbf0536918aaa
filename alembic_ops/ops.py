"""Alembic operations for pgevents: the shared artifact and per-table triggers.

Importing this module (``import alembic_ops`` does) registers::

    op.install_pgevents(schema="pgevents", version=4)
    op.uninstall_pgevents(schema="pgevents", version=4)
    op.upgrade_pgevents(schema="pgevents", from_version=3, to_version=4)
    op.downgrade_pgevents(schema="pgevents", from_version=4, to_version=3)
    op.create_pgevent_trigger("user", schema=None, events=("insert",), ..., version=4)
    op.create_pgevent_trigger("user", events=("update",), when={"update": "..."}, version=5)
    op.drop_pgevent_trigger("user", schema=None, events=("insert",), ..., version=4)
    op.create_pgevents_group("audit", schema="pgevents", version=5)
    op.drop_pgevents_group("audit", schema="pgevents", version=5)

Each op keeps the artifact version it was rendered with, so the SQL it runs
never changes after the migration is written. In a migration, ``version=`` is
required: without it, a migration would run other SQL once the library is
upgraded. The op classes, which autogenerate builds, default to the current
version. ``render.py`` writes them into migrations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from alembic.operations import MigrateOperation, Operations

from . import artifacts
from .artifacts import CURRENT_VERSION, check_version
from .core.errors import ArtifactVersionError, MissingArtifactVersionError
from .core.identifiers import check_event_schema, check_group_name, check_lanes
from .core.names import LOG_VERSION
from .core.spec import (
    DEFAULT_EVENT_SCHEMA,
    EVENTS,
    TriggerSpec,
    When,
    normalize_columns,
    normalize_conditions,
    normalize_events,
)
from .statements import execute_all


class _PGEventsOp(MigrateOperation):
    """Ops compare equal when they are of one type with the same arguments."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]


def frozen_version(version: int | None, call: str, written_now: int = CURRENT_VERSION) -> int:
    """The ``version=`` a migration's op names; a one-line error saying why it is needed if none.

    ``written_now`` is the version the message suggests: the one a migration written today names.
    """
    if version is None:
        raise MissingArtifactVersionError(
            f"pgevents: op.{call} needs version=: the artifact version the migration was written for, "
            "so that it runs the same SQL after pgevents-migrate is upgraded; in a migration written "
            f"now, write version={written_now} (flask db migrate always writes it)"
        )
    return version


class _ArtifactOp(_PGEventsOp):
    """Base of the ops that install or remove the shared artifact."""

    def __init__(self, schema: str = DEFAULT_EVENT_SCHEMA, version: int = CURRENT_VERSION) -> None:
        self.schema = check_event_schema(schema)
        self.version = check_version(version)


@Operations.register_operation("install_pgevents")
class InstallPGEventsOp(_ArtifactOp):
    """Create the event schema's log tables and the capture function."""

    @classmethod
    def install_pgevents(
        cls, operations: Operations, schema: str = DEFAULT_EVENT_SCHEMA, version: int | None = None
    ) -> None:
        """Install the pgevents artifact (event log and capture function); ``version`` is required."""
        operations.invoke(cls(schema, frozen_version(version, f"install_pgevents(schema={schema!r})")))

    def reverse(self) -> UninstallPGEventsOp:
        return UninstallPGEventsOp(self.schema, self.version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("install_pgevents", self.schema, self.version)


@Operations.register_operation("uninstall_pgevents")
class UninstallPGEventsOp(_ArtifactOp):
    """Drop the capture function and log tables (all triggers must be gone).

    Refuses while the event log holds undelivered events or dead letters,
    unless ``discard_events`` is true (autogenerate never writes it).
    """

    def __init__(
        self, schema: str = DEFAULT_EVENT_SCHEMA, version: int = CURRENT_VERSION, discard_events: bool = False
    ) -> None:
        super().__init__(schema, version)
        self.discard_events = bool(discard_events)

    @classmethod
    def uninstall_pgevents(
        cls,
        operations: Operations,
        schema: str = DEFAULT_EVENT_SCHEMA,
        version: int | None = None,
        discard_events: bool = False,
    ) -> None:
        """Remove the pgevents artifact; fails while triggers still use it or events are pending."""
        call = f"uninstall_pgevents(schema={schema!r})"
        operations.invoke(cls(schema, frozen_version(version, call), discard_events))

    def reverse(self) -> InstallPGEventsOp:
        return InstallPGEventsOp(self.schema, self.version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("uninstall_pgevents", self.schema, self.version)


class _VersionChangeOp(_PGEventsOp):
    """Base of the ops that move an installed artifact between versions."""

    #: True when ``to_version`` must be newer than ``from_version``.
    upward: bool

    def __init__(self, schema: str = DEFAULT_EVENT_SCHEMA, *, from_version: int, to_version: int) -> None:
        self.schema = check_event_schema(schema)
        self.from_version = check_version(from_version)
        self.to_version = check_version(to_version)
        if (from_version < to_version) is not self.upward or from_version == to_version:
            direction = "newer" if self.upward else "older"
            raise ArtifactVersionError(
                f"{type(self).__name__}: to_version ({to_version}) must be {direction} "
                f"than from_version ({from_version})"
            )


@Operations.register_operation("upgrade_pgevents")
class UpgradePGEventsOp(_VersionChangeOp):
    """Move the installed artifact to a newer version, keeping its events and triggers."""

    upward = True

    @classmethod
    def upgrade_pgevents(
        cls,
        operations: Operations,
        schema: str = DEFAULT_EVENT_SCHEMA,
        *,
        from_version: int,
        to_version: int = CURRENT_VERSION,
    ) -> None:
        """Upgrade the pgevents artifact in ``schema``; fails unless it is at ``from_version``."""
        operations.invoke(cls(schema, from_version=from_version, to_version=to_version))

    def reverse(self) -> DowngradePGEventsOp:
        return DowngradePGEventsOp(self.schema, from_version=self.to_version, to_version=self.from_version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("upgrade_pgevents", self.schema, self.from_version, self.to_version)


@Operations.register_operation("downgrade_pgevents")
class DowngradePGEventsOp(_VersionChangeOp):
    """Move the installed artifact back to an older version."""

    upward = False

    @classmethod
    def downgrade_pgevents(
        cls, operations: Operations, schema: str = DEFAULT_EVENT_SCHEMA, *, from_version: int, to_version: int
    ) -> None:
        """Downgrade the pgevents artifact in ``schema``; fails unless it is at ``from_version``."""
        operations.invoke(cls(schema, from_version=from_version, to_version=to_version))

    def reverse(self) -> UpgradePGEventsOp:
        return UpgradePGEventsOp(self.schema, from_version=self.to_version, to_version=self.from_version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("downgrade_pgevents", self.schema, self.from_version, self.to_version)


class _TriggerOp(_PGEventsOp):
    """Base of the ops that create or drop one table's pgevents triggers."""

    #: The ``op.<name>`` a migration calls.
    name: ClassVar[str]

    def __init__(self, spec: TriggerSpec, version: int = CURRENT_VERSION) -> None:
        self.spec = spec
        self.version = check_version(version)
        if spec.when and version < LOG_VERSION:
            raise ArtifactVersionError(
                f"pgevents: row conditions (when=) on {spec.target} need artifact {LOG_VERSION} or newer; "
                f"this op names version {version}"
            )

    @classmethod
    def for_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        events: str | Iterable[str] = EVENTS,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        pgevents_schema: str = DEFAULT_EVENT_SCHEMA,
        when: When = (),
        version: int | None = None,
    ) -> None:
        """The triggers of ``table_name`` that capture ``events``; ``version`` is required.

        ``columns`` limits update events to changes of those columns;
        ``images`` keeps the old and new rows; ``when`` (one condition, or
        one per event) captures only the row changes it holds for; see
        ``TriggerSpec``.
        """
        events = normalize_events(events)
        spec = TriggerSpec(
            table=table_name,
            schema=schema,
            events=events,
            columns=normalize_columns(columns),
            delivery=delivery,
            images=images,
            pgevents_schema=pgevents_schema,
            when=normalize_conditions(when, events),
        )
        operations.invoke(cls(spec, frozen_version(version, f"{cls.name}({table_name!r})")))


@Operations.register_operation("create_pgevent_trigger", "for_table")
class CreatePGEventTriggerOp(_TriggerOp):
    """Install a table's pgevents triggers (one per captured event)."""

    name = "create_pgevent_trigger"

    def reverse(self) -> DropPGEventTriggerOp:
        return DropPGEventTriggerOp(self.spec, self.version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_pgevent_trigger", self.spec)


@Operations.register_operation("drop_pgevent_trigger", "for_table")
class DropPGEventTriggerOp(_TriggerOp):
    """Remove a table's pgevents triggers."""

    name = "drop_pgevent_trigger"

    def reverse(self) -> CreatePGEventTriggerOp:
        return CreatePGEventTriggerOp(self.spec, self.version)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("remove_pgevent_trigger", self.spec)


def group_version(version: int) -> int:
    """``version`` if its artifact has consumer groups (``LOG_VERSION`` on), else a clear error."""
    if check_version(version) < LOG_VERSION:
        raise ArtifactVersionError(
            f"pgevents: consumer groups need artifact {LOG_VERSION} or newer (the event log); "
            f"artifact {version} has none"
        )
    return version


class _GroupOp(_PGEventsOp):
    """Base of the ops that register or remove one consumer group (artifact 5 on)."""

    #: The ``op.<name>`` a migration calls.
    name: ClassVar[str]

    def __init__(
        self, group: str, schema: str = DEFAULT_EVENT_SCHEMA, *, version: int, lanes: int = 1
    ) -> None:
        self.group = check_group_name(group)
        self.schema = check_event_schema(schema)
        self.version = group_version(version)
        self.lanes = check_lanes(lanes)

    @classmethod
    def for_group(
        cls,
        operations: Operations,
        name: str,
        schema: str = DEFAULT_EVENT_SCHEMA,
        version: int | None = None,
        lanes: int = 1,
    ) -> None:
        """The consumer group ``name`` of the event log in ``schema``; ``version`` (5 on) is required.

        ``lanes`` (creating): how many workers may read the group's log at
        once; all events of one row go to one lane.
        """
        version = frozen_version(version, f"{cls.name}({name!r})", max(CURRENT_VERSION, LOG_VERSION))
        operations.invoke(cls(name, schema, version=version, lanes=lanes))


@Operations.register_operation("create_pgevents_group", "for_group")
class CreatePGEventsGroupOp(_GroupOp):
    """Register a consumer group: from now on it gets every event, read by its own workers.

    ``flask db migrate`` writes this op for each group an app declares
    (``PGEVENTS_GROUP``) that the database lacks, except ``default``, which the
    artifact registers itself. It never writes ``drop_pgevents_group``: another
    application may share the database and read through the group. Dropping a
    group (with its retries and dead letters) is a migration you write by hand.
    """

    name = "create_pgevents_group"

    def reverse(self) -> DropPGEventsGroupOp:
        return DropPGEventsGroupOp(self.group, self.schema, version=self.version, lanes=self.lanes)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_pgevents_group", self.schema, self.group)


@Operations.register_operation("drop_pgevents_group", "for_group")
class DropPGEventsGroupOp(_GroupOp):
    """Remove a consumer group with its cursor, retries and dead letters.

    Autogenerate never writes it (see ``CreatePGEventsGroupOp``): write it by
    hand once no application reads through the group any more.
    """

    name = "drop_pgevents_group"

    def reverse(self) -> CreatePGEventsGroupOp:
        return CreatePGEventsGroupOp(self.group, self.schema, version=self.version, lanes=self.lanes)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("remove_pgevents_group", self.schema, self.group)


@Operations.implementation_for(InstallPGEventsOp)
def _install(operations: Operations, op: InstallPGEventsOp) -> None:
    execute_all(operations, [artifacts.install_sql(op.schema, op.version)])


@Operations.implementation_for(UninstallPGEventsOp)
def _uninstall(operations: Operations, op: UninstallPGEventsOp) -> None:
    check = [] if op.discard_events else [artifacts.check_no_events_sql(op.schema, op.version)]
    execute_all(operations, [*check, artifacts.uninstall_sql(op.schema, op.version)])


@Operations.implementation_for(UpgradePGEventsOp)
@Operations.implementation_for(DowngradePGEventsOp)
def _change_version(operations: Operations, op: _VersionChangeOp) -> None:
    execute_all(operations, artifacts.change_version_sql(op.schema, op.from_version, op.to_version))


@Operations.implementation_for(CreatePGEventTriggerOp)
def _create_trigger(operations: Operations, op: CreatePGEventTriggerOp) -> None:
    check = artifacts.check_table_sql(op.spec, op.version)
    execute_all(operations, [check, *artifacts.create_trigger_sql(op.spec, op.version)])


@Operations.implementation_for(DropPGEventTriggerOp)
def _drop_trigger(operations: Operations, op: DropPGEventTriggerOp) -> None:
    execute_all(operations, artifacts.drop_trigger_sql(op.spec, op.version))


@Operations.implementation_for(CreatePGEventsGroupOp)
def _create_group(operations: Operations, op: CreatePGEventsGroupOp) -> None:
    execute_all(operations, [artifacts.create_group_sql(op.schema, op.group, op.version, op.lanes)])


@Operations.implementation_for(DropPGEventsGroupOp)
def _drop_group(operations: Operations, op: DropPGEventsGroupOp) -> None:
    execute_all(operations, [artifacts.drop_group_sql(op.schema, op.group, op.version)])
