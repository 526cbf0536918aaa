"""``TriggerSpec``: what one table's pgevents triggers capture, normalised."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from .conditions import check_condition
from .errors import InvalidTriggerSpecError, UncapturableTableError
from .identifiers import check_event_schema, check_identifier

#: The row operations a trigger can capture, in the order they are emitted.
EVENTS: tuple[str, ...] = ("insert", "update", "delete")
#: ``queue``: persisted in the event log; ``broadcast``: NOTIFY only.
DELIVERIES: tuple[str, ...] = ("queue", "broadcast")
DEFAULT_EVENT_SCHEMA = "pgevents"

#: ``(schema, table)``; schema ``None`` means the connection's default schema.
TableKey = tuple[str | None, str]
#: Row conditions as a ``TriggerSpec`` holds them: ``(event, condition)`` pairs in event order.
Conditions = tuple[tuple[str, str], ...]
#: Row conditions as callers give them: one for every event, or by event.
When = str | Mapping[str, str] | Iterable[tuple[str, str]] | None


def normalize_event(name: object) -> str:
    """Map ``"insert"``, ``"after_insert"``, ``"INSERT"``... to ``"insert"``."""
    if isinstance(name, str):
        event = name.strip().lower()
        event = event.removeprefix("after_")
        if event in EVENTS:
            return event
    raise InvalidTriggerSpecError(
        f"unknown event {name!r}: expected one of {', '.join(EVENTS)} (optionally prefixed with 'after_')"
    )


def normalize_events(names: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise one event name or several into canonical order."""
    given = [names] if isinstance(names, str) else list(names)
    found = {normalize_event(name) for name in given}
    if not found:
        raise InvalidTriggerSpecError(
            f"no events given ({names!r}): expected at least one of insert, update, delete"
        )
    return tuple(event for event in EVENTS if event in found)


def normalize_columns(columns: Iterable[str] | None) -> tuple[str, ...] | None:
    """Validate an update filter's column names; sorted, without repeats."""
    if columns is None:
        return None
    if isinstance(columns, str):
        raise InvalidTriggerSpecError(f"columns must be a list of column names, not the string {columns!r}")
    normalized = tuple(sorted({check_identifier(c, "column name") for c in columns}))
    if not normalized:
        raise InvalidTriggerSpecError("columns must name at least one column, or be None")
    return normalized


def normalize_conditions(when: When, events: Iterable[str]) -> Conditions:
    """``when=`` as ``(event, condition)`` pairs for ``events``.

    A string applies to every event; a mapping names events (``"update"``,
    ``"after_update"``...), each one that ``events`` holds.
    """
    events = tuple(events)
    if when is None:
        return ()
    if isinstance(when, str):
        condition = check_condition(when)
        return tuple((event, condition) for event in events)
    found: dict[str, str] = {}
    for name, condition in when.items() if isinstance(when, Mapping) else when:
        event = normalize_event(name)
        if event not in events:
            raise InvalidTriggerSpecError(
                f"when= gives a condition for {event} events, which are not captured "
                f"(only {', '.join(events)} are)"
            )
        found[event] = check_condition(condition, f"when= for {event}")
    return tuple((event, found[event]) for event in EVENTS if event in found)


@dataclass(frozen=True)
class TriggerSpec:
    """The pgevents triggers of one table.

    ``columns`` restricts update events to updates that change one of those
    columns; ``images`` records the old and new rows as JSON; ``when`` holds
    row conditions by event (artifact 5 on): SQL over ``old`` and ``new``
    that a row change must meet to be captured.
    """

    table: str
    schema: str | None = None
    events: tuple[str, ...] = EVENTS
    columns: tuple[str, ...] | None = None
    delivery: str = "queue"
    images: bool = False
    pgevents_schema: str = DEFAULT_EVENT_SCHEMA
    when: Conditions = ()

    def __post_init__(self) -> None:
        check_identifier(self.table, "table name")
        if self.schema is not None:
            check_identifier(self.schema, "schema name")
        check_event_schema(self.pgevents_schema)
        object.__setattr__(self, "events", normalize_events(self.events))
        if self.delivery not in DELIVERIES:
            raise InvalidTriggerSpecError(
                f"unknown delivery {self.delivery!r}: expected one of {', '.join(DELIVERIES)}"
            )
        columns = normalize_columns(self.columns)
        if columns is not None and "update" not in self.events:
            raise InvalidTriggerSpecError(
                f"columns {list(columns)} filter update events, but {self.target} does not capture updates"
            )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "images", bool(self.images))
        object.__setattr__(self, "when", normalize_conditions(self.when, self.events))

    def condition(self, event: str) -> str | None:
        """The row condition of ``event``, if any."""
        return dict(self.when).get(event)

    @property
    def key(self) -> TableKey:
        """``(schema, table)``, the identity of the table this spec is for."""
        return (self.schema, self.table)

    @property
    def target(self) -> str:
        """``schema.table`` (or ``table``) for messages."""
        return self.table if self.schema is None else f"{self.schema}.{self.table}"


def check_filter_columns(
    spec: TriggerSpec, table_columns: Collection[str], keys: Mapping[str, str] | None = None
) -> None:
    """Raise ``UncapturableTableError`` if the update filter names a column the table lacks.

    ``keys`` maps attribute keys of mapped columns to their column names, for a hint.
    """
    for column in spec.columns or ():
        if column in table_columns:
            continue
        hint = f"its columns: {', '.join(sorted(table_columns))}"
        if keys and keys.get(column, column) != column:
            hint = f"the attribute {column!r} maps to the column {keys[column]!r}: name that one"
        raise UncapturableTableError(
            f"pgevents: the update filter on table {spec.target!r} names column {column!r}, "
            f"which the table does not have ({hint})"
        )


def check_capturable(
    spec: TriggerSpec,
    table_columns: Collection[str] | None,
    primary_key: Collection[str],
    keys: Mapping[str, str] | None = None,
) -> None:
    """Raise ``UncapturableTableError`` unless ``spec``'s table can be captured.

    ``table_columns`` None means the table exists neither in the models nor in
    the database.
    """
    if table_columns is None:
        raise UncapturableTableError(
            f"pgevents: table {spec.target!r} is neither one of the app's models nor in the database: "
            "create it in a migration first, or fix the listener's target"
        )
    if not primary_key:
        raise UncapturableTableError(
            f"pgevents: table {spec.target!r} has no primary key, and events identify rows by it: "
            "add one (in this migration or an earlier one), or remove the listener"
        )
    check_filter_columns(spec, table_columns, keys)
