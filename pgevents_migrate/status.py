"""Declared versus installed triggers, for ``flask pgevents status`` and the worker's start."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from alembic_ops.artifacts import CURRENT_VERSION
from alembic_ops.core.catalog import InstalledState
from alembic_ops.core.errors import PGEventsError, UnknownArtifactVersionError
from alembic_ops.core.spec import TableKey, TriggerSpec
from alembic_ops.manifest import ALL_VERSIONS, drafts_allowed


@dataclass(frozen=True)
class TableStatus:
    """One table's capture state: ``ok``, ``missing``, ``drift`` or ``undeclared``."""

    target: str
    state: str
    declared: TriggerSpec | None
    installed: TriggerSpec | None

    def uncaptured(self) -> str:
        """What of the declaration the database does not capture (``missing`` or ``drift``)."""
        assert self.declared is not None
        if self.installed is None:
            if self.state == "missing":
                return f"its {', '.join(self.declared.events)} events will not be captured"
            return "its triggers were altered, disabled or keyed on an old primary key: changes may be missed"
        lost = [event for event in self.declared.events if event not in self.installed.events]
        if lost:
            return f"its {', '.join(lost)} events will not be captured"
        return f"its events are captured as {describe(self.installed)}, not as declared"


def describe(spec: TriggerSpec | None) -> str:
    """A short human description of a spec."""
    if spec is None:
        return "-"
    text = f"{','.join(spec.events)} {spec.delivery}"
    if spec.columns:
        text += f" columns={','.join(spec.columns)}"
    if spec.images:
        text += " images"
    for event, condition in spec.when:
        text += f" when[{event}]={condition!r}"
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
            # A draft (allowed by PGEVENTS_DRAFT_ARTIFACTS) counts as current.
            current = CURRENT_VERSION <= version <= newest_supported()
            note = "draft" if version > CURRENT_VERSION else "current"
            if not current:
                note = f"this library ships version {CURRENT_VERSION}"
            lines.append((f"artifact {schema}: version {version} ({note})", current))
        return lines


def newest_supported() -> int:
    """The newest artifact version the runtime works with: the current one, or the draft if allowed."""
    return ALL_VERSIONS[-1] if drafts_allowed() else CURRENT_VERSION


def require_artifact(artifacts: Mapping[str, int], schema: str, bind_key: str | None) -> int:
    """The artifact version in ``schema``, if this library can work with it; else one line saying why not.

    Not installed: run the migrations. Newer than this library: upgrade it.
    Older ones work.
    """
    where = "this database" if bind_key is None else f"the database of bind {bind_key!r}"
    version = artifacts.get(schema)
    if version is None:
        raise PGEventsError(
            f"pgevents is not installed in schema {schema!r} of {where}: "
            "run `flask db migrate` and `flask db upgrade` first"
        )
    newest = newest_supported()
    if version > newest:
        raise UnknownArtifactVersionError(
            f"schema {schema!r} of {where} holds pgevents artifact version {version}, newer than the "
            f"{newest} this pgevents-migrate supports: upgrade the pgevents-migrate package"
        )
    return version


def compare(
    declared: Mapping[TableKey, TriggerSpec], installed: InstalledState, default_schema: str | None
) -> list[TableStatus]:
    """Each table's state, declared (``declared_specs``) against installed (``read_installed``)."""
    wanted_by_key: dict[TableKey, TriggerSpec] = {}
    for spec in declared.values():
        if spec.schema == default_schema:
            spec = dataclasses.replace(spec, schema=None)
        wanted_by_key[spec.key] = spec
    statuses = []
    for key in sorted(set(wanted_by_key) | set(installed.tables), key=lambda k: (k[0] or "", k[1])):
        wanted = wanted_by_key.get(key)
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
    return statuses
