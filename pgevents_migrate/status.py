"""Declared versus installed triggers, for ``flask pgevents status``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sqlalchemy as sa

from alembic_ops.artifacts import CURRENT_VERSION
from alembic_ops.catalog import read_installed
from alembic_ops.declarations import declared_specs
from alembic_ops.spec import TriggerSpec


@dataclass(frozen=True)
class TableStatus:
    """One table's capture state: ``ok``, ``missing``, ``drift`` or ``undeclared``."""

    target: str
    state: str
    declared: TriggerSpec | None
    installed: TriggerSpec | None


def describe(spec: TriggerSpec | None) -> str:
    """A short human description of a spec."""
    if spec is None:
        return "-"
    text = f"{','.join(spec.events)} {spec.delivery}"
    if spec.columns:
        text += f" columns={','.join(spec.columns)}"
    if spec.images:
        text += " images"
    return text


@dataclass(frozen=True)
class DatabaseStatus:
    """Installed artifact versions (event schema -> version) and each table's state."""

    artifacts: dict[str, int]
    tables: list[TableStatus]

    def artifact_lines(self) -> list[tuple[str, bool]]:
        """One line per event schema, and whether it is current."""
        lines = []
        for schema, version in sorted(self.artifacts.items()):
            current = version == CURRENT_VERSION
            note = "current" if current else f"this library ships version {CURRENT_VERSION}"
            lines.append((f"artifact {schema}: version {version} ({note})", current))
        return lines


def database_status(connection: sa.Connection, metadata: sa.MetaData) -> DatabaseStatus:
    """Compare ``metadata``'s declarations with what ``connection``'s database has installed."""
    default_schema = connection.dialect.default_schema_name
    installed = read_installed(connection, default_schema)
    declared: dict[tuple[str | None, str], TriggerSpec] = {}
    for spec in declared_specs(metadata).values():
        if spec.schema == default_schema:
            spec = dataclasses.replace(spec, schema=None)
        declared[spec.key] = spec
    statuses = []
    for key in sorted(set(declared) | set(installed.tables), key=lambda k: (k[0] or "", k[1])):
        wanted = declared.get(key)
        table = installed.tables.get(key)
        have = table.spec() if table is not None else None
        if wanted is None:
            state = "undeclared"
        elif table is None:
            state = "missing"
        else:
            state = "ok" if have == wanted else "drift"
        target = key[1] if key[0] is None else f"{key[0]}.{key[1]}"
        statuses.append(TableStatus(target, state, wanted, have))
    return DatabaseStatus(installed.artifacts, statuses)
