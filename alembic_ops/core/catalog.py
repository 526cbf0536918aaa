"""What pgevents has installed in a database, read in one catalog query.

Ownership is structural: a trigger is ours when it calls a function named
``capture`` whose comment is ``pgevents-migrate artifact <N>``, or (artifact 3)
a capture function generated for it in the same schema, whose comment starts
with ``pgevents-migrate capture of``. Internal, partition-clone and foreign
triggers are never reported. Nothing here parses ``pg_get_triggerdef`` text, so
results do not depend on the server version or ``search_path``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from .arguments import TriggerArguments, decode
from .errors import PGEventsError
from .names import ARTIFACT_MARKER, CAPTURE_FUNCTION, GENERATED_MARKER, TRANSITION_TABLES, TRIGGER_NAMES
from .spec import EVENTS, TableKey, TriggerSpec

# pg_trigger.tgtype bits of a statement-level AFTER trigger (catalog/pg_trigger.h).
_EVENT_BITS = {"insert": 4, "update": 16, "delete": 8}

# In the DB-API's pyformat style, so psycopg2 and psycopg 3 run them as they are.
#: The artifacts' capture functions: ``p`` in ``pg_proc``, ``fn_ns`` its namespace.
_CAPTURE_FUNCTIONS = """
  FROM pg_proc p
  JOIN pg_namespace fn_ns ON fn_ns.oid = p.pronamespace
"""
_IS_CAPTURE_FUNCTION = """
 WHERE p.proname = %(capture)s
   AND p.pronargs = 0
   AND starts_with(obj_description(p.oid, 'pg_proc'), %(marker)s)
"""
_ARTIFACT_COLUMNS = """
SELECT fn_ns.nspname AS pgevents_schema,
       substr(obj_description(p.oid, 'pg_proc'), length(%(marker)s) + 1) AS version
"""
_ARTIFACTS_QUERY = _ARTIFACT_COLUMNS + _CAPTURE_FUNCTIONS + _IS_CAPTURE_FUNCTION
_QUERY = (
    _ARTIFACT_COLUMNS
    + """,
       tbl_ns.nspname AS table_schema,
       c.relname AS table_name,
       t.tgname AS trigger_name,
       t.tgtype AS trigger_type,
       t.tgenabled AS enabled,
       t.tgattr::int2[] AS trigger_columns,
       t.tgoldtable AS old_table,
       t.tgnewtable AS new_table,
       t.tgqual IS NOT NULL AS has_when,
       t.tgargs AS arguments,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM pg_index i
          CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary) AS primary_key
"""
    + _CAPTURE_FUNCTIONS
    + """
  LEFT JOIN pg_trigger t
         ON (t.tgfoid = p.oid
             OR t.tgfoid IN (SELECT g.oid FROM pg_proc g
                              WHERE g.pronamespace = p.pronamespace
                                AND starts_with(obj_description(g.oid, 'pg_proc'), %(generated)s)))
        AND NOT t.tgisinternal AND t.tgparentid = 0
  LEFT JOIN pg_class c ON c.oid = t.tgrelid
  LEFT JOIN pg_namespace tbl_ns ON tbl_ns.oid = c.relnamespace
"""
    + _IS_CAPTURE_FUNCTION
    + " ORDER BY 1, 3, 4, 5"
)
_PARAMETERS = {"marker": ARTIFACT_MARKER, "generated": GENERATED_MARKER, "capture": CAPTURE_FUNCTION}


class Cursor(Protocol):
    """The part of a DB-API cursor (psycopg2, psycopg 3) that ``read_installed`` uses."""

    @property
    def description(self) -> Any: ...

    def execute(self, query: str, params: Mapping[str, Any], /) -> Any: ...

    def fetchall(self) -> Any: ...


@dataclass(frozen=True)
class InstalledTrigger:
    """One pgevents trigger as the catalogs describe it."""

    name: str
    type_bits: int
    enabled: str
    columns: tuple[int, ...]
    old_table: str | None
    new_table: str | None
    has_when: bool
    arguments: tuple[str, ...]

    def event(self) -> str | None:
        """The event this trigger captures, if it is exactly as we create them."""
        for event in EVENTS:
            expected = (
                TRIGGER_NAMES[event],
                _EVENT_BITS[event],
                "O",
                (),
                *TRANSITION_TABLES[event],
                False,
            )
            actual = (
                self.name,
                self.type_bits,
                self.enabled,
                self.columns,
                self.old_table,
                self.new_table,
                self.has_when,
            )
            if actual == expected:
                return event
        return None


@dataclass
class InstalledTable:
    """A table's pgevents triggers, and the table's primary key now."""

    schema: str | None
    table: str
    pgevents_schema: str
    primary_key: tuple[str, ...]
    triggers: list[InstalledTrigger] = field(default_factory=list)

    def spec(self) -> TriggerSpec | None:
        """The spec these triggers implement, or None if they drifted.

        Drift: altered or disabled by hand, inconsistent with each other, or
        keyed on columns that are no longer the table's primary key.
        """
        decoded: dict[str, TriggerArguments] = {}
        for trigger in self.triggers:
            event = trigger.event()
            arguments = decode(trigger.arguments)
            if event is None or event in decoded or arguments is None:
                return None
            decoded[event] = arguments
        settings = {(a.delivery, a.images, a.key_columns) for a in decoded.values()}
        filters = {event: a.filter_columns for event, a in decoded.items() if a.filter_columns}
        conditions = tuple((event, a.condition) for event, a in decoded.items() if a.condition is not None)
        if len(settings) != 1 or set(filters) - {"update"}:
            return None
        delivery, images, keys = settings.pop()
        if keys != self.primary_key:
            return None
        try:
            spec = TriggerSpec(
                table=self.table,
                schema=self.schema,
                events=tuple(decoded),
                columns=filters.get("update"),
                delivery=delivery,
                images=images,
                pgevents_schema=self.pgevents_schema,
                when=conditions,
            )
        except PGEventsError:
            return None
        # Hand-edited arguments that merely normalise to ours are still drift.
        return spec if (spec.columns, spec.when) == (filters.get("update"), conditions) else None

    def events(self) -> tuple[str, ...]:
        """Events whose trigger names exist on the table (drop targets)."""
        names = {t.name for t in self.triggers}
        return tuple(e for e in EVENTS if TRIGGER_NAMES[e] in names)


@dataclass
class InstalledState:
    """Artifacts (event schema -> version) and tables with pgevents triggers."""

    artifacts: dict[str, int] = field(default_factory=dict)
    tables: dict[TableKey, InstalledTable] = field(default_factory=dict)
    #: Consumer groups by event schema (artifact 5 on), where the comparator read them (``read_groups``).
    groups: dict[str, frozenset[str]] = field(default_factory=dict)


def read_installed(source: sa.Connection | Cursor, default_schema: str | None = None) -> InstalledState:
    """Read every pgevents artifact and trigger in the database in one query.

    ``source`` is a SQLAlchemy connection or a DB-API cursor. Tables in
    ``default_schema`` are keyed with schema ``None``.
    """
    state = InstalledState()
    for row in _rows(source):
        state.artifacts[row["pgevents_schema"]] = int(row["version"])
        if row["trigger_name"] is None:
            continue
        schema = None if row["table_schema"] == default_schema else row["table_schema"]
        key = (schema, row["table_name"])
        table = state.tables.setdefault(
            key,
            InstalledTable(
                schema, row["table_name"], row["pgevents_schema"], tuple(row["primary_key"] or ())
            ),
        )
        table.triggers.append(_trigger(row))
    return state


def read_groups(connection: sa.Connection, pgevents_schema: str) -> frozenset[str]:
    """The consumer groups registered in the event schema ``pgevents_schema`` (artifact 5 on)."""
    table = sa.table("consumer_group", sa.column("name"), schema=pgevents_schema)
    return frozenset(connection.execute(sa.select(table.c.name)).scalars())


def read_artifacts(source: sa.Connection | Cursor) -> dict[str, int]:
    """The installed artifacts (event schema -> version), without their triggers."""
    return {row["pgevents_schema"]: int(row["version"]) for row in _rows(source, _ARTIFACTS_QUERY)}


def _rows(source: sa.Connection | Cursor, query: str = _QUERY) -> Iterable[Mapping[Any, Any]]:
    """A catalog query's rows, by column name."""
    if isinstance(source, sa.Connection):
        return source.exec_driver_sql(query, _PARAMETERS).mappings()
    source.execute(query, _PARAMETERS)
    names = [column[0] for column in source.description]
    return [dict(zip(names, row, strict=True)) for row in source.fetchall()]


def _trigger(row: Mapping[Any, Any]) -> InstalledTrigger:
    raw_args = bytes(row["arguments"])
    return InstalledTrigger(
        name=row["trigger_name"],
        type_bits=row["trigger_type"],
        enabled=row["enabled"],
        columns=tuple(row["trigger_columns"] or ()),
        old_table=row["old_table"],
        new_table=row["new_table"],
        has_when=row["has_when"],
        arguments=tuple(a.decode() for a in raw_args.split(b"\x00")[:-1]),
    )
