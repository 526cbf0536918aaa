"""Declared capture specs and consumer groups, stored in ``MetaData.info`` for the comparator.

``declare()`` merges every declaration for one table into a single
``TriggerSpec``; ``declared_specs()`` reads them back. ``declare_group()``
records a consumer group whose workers read this metadata's database
(artifact 5 on); ``declared_groups()`` reads them back. All work on plain
SQLAlchemy metadata, so Alembic without Flask can use them too.
"""

from __future__ import annotations

import sqlalchemy as sa

from .errors import InvalidTriggerSpecError
from .spec import EVENTS, TableKey, TriggerSpec

INFO_KEY = "pgevents"
GROUPS_KEY = "pgevents_groups"


def merge_specs(first: TriggerSpec, second: TriggerSpec) -> TriggerSpec:
    """One spec that captures everything ``first`` and ``second`` capture.

    Events are united; the table is durable (``queue``) if either is; row
    images are kept if either wants them; an update column filter survives
    only while every update declaration has one (their columns united); an
    event's row condition must be the same in both, or in neither.
    """
    if first.key != second.key:
        raise InvalidTriggerSpecError(f"cannot merge specs of {first.target} and {second.target}")
    if first.pgevents_schema != second.pgevents_schema:
        raise InvalidTriggerSpecError(
            f"{first.target} is declared with two pgevents schemas: "
            f"{first.pgevents_schema!r} and {second.pgevents_schema!r}"
        )
    for event in EVENTS:
        conditions = {spec.condition(event) for spec in (first, second) if event in spec.events}
        if len(conditions) > 1:
            described = " and ".join(sorted("no condition" if c is None else repr(c) for c in conditions))
            raise InvalidTriggerSpecError(
                f"{first.target} {event} events are declared with {described}: its trigger applies one "
                f"condition, so give every {event} listener of the table the same one (or none)"
            )
    update_filters = [s.columns for s in (first, second) if "update" in s.events]
    columns: tuple[str, ...] | None = None
    if update_filters and all(f is not None for f in update_filters):
        columns = tuple(c for f in update_filters for c in f or ())
    return TriggerSpec(
        table=first.table,
        schema=first.schema,
        events=tuple(e for e in EVENTS if e in first.events or e in second.events),
        columns=columns,
        delivery="queue" if "queue" in (first.delivery, second.delivery) else "broadcast",
        images=first.images or second.images,
        pgevents_schema=first.pgevents_schema,
        when=(*first.when, *second.when),
    )


def declare(metadata: sa.MetaData, spec: TriggerSpec) -> TriggerSpec:
    """Record ``spec`` in ``metadata``, merged with earlier declarations."""
    specs: dict[TableKey, TriggerSpec] = metadata.info.setdefault(INFO_KEY, {})
    existing = specs.get(spec.key)
    merged = spec if existing is None else merge_specs(existing, spec)
    specs[spec.key] = merged
    return merged


def declared_specs(metadata: sa.MetaData) -> dict[TableKey, TriggerSpec]:
    """The merged specs declared on ``metadata``, by ``(schema, table)``."""
    return dict(metadata.info.get(INFO_KEY, {}))


def declare_group(metadata: sa.MetaData, name: str) -> None:
    """Record that a consumer group ``name`` reads the events of ``metadata``'s database."""
    groups: set[str] = metadata.info.setdefault(GROUPS_KEY, set())
    groups.add(name)


def declared_groups(metadata: sa.MetaData) -> set[str]:
    """The consumer groups declared on ``metadata``."""
    return set(metadata.info.get(GROUPS_KEY, set()))
