"""Validation and quoting of every name that reaches SQL.

Quoting goes through SQLAlchemy's PostgreSQL identifier preparer and literal
processor, never through string formatting. The dialect used here has a
``named`` paramstyle, so ``%`` stays a single ``%`` in rendered SQL; doubling
for pyformat drivers happens once, at execution (see ``statements.py``).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .errors import InvalidIdentifierError

#: PostgreSQL truncates longer names silently (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63

#: The event schema name also names two NOTIFY channels (``<schema>`` and
#: ``<schema>_broadcast``) and appears inside the capture function's dynamic
#: SQL, so it is held to plain letters, digits and underscores.
_EVENT_SCHEMA_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BROADCAST_SUFFIX = "_broadcast"

_DIALECT = postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
_PREPARER = _DIALECT.identifier_preparer
_STRING_LITERAL = sa.String().literal_processor(_DIALECT)  # type: ignore[no-untyped-call]


def check_identifier(name: object, what: str = "identifier") -> str:
    """Return ``name`` if PostgreSQL can store it unchanged, else raise."""
    if not isinstance(name, str):
        raise InvalidIdentifierError(f"{what} must be a string, got {name!r}")
    if not name:
        raise InvalidIdentifierError(f"{what} must not be empty")
    if "\x00" in name:
        raise InvalidIdentifierError(f"{what} {name!r} contains a NUL character")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifierError(
            f"{what} {name!r} is {size} bytes long; PostgreSQL would truncate it "
            f"to {MAX_IDENTIFIER_BYTES} bytes and could confuse it with another name"
        )
    return name


def check_event_schema(name: object) -> str:
    """Validate the name of the schema that holds the event log."""
    name = check_identifier(name, "pgevents schema name")
    if not _EVENT_SCHEMA_PATTERN.fullmatch(name):
        raise InvalidIdentifierError(
            f"pgevents schema name {name!r} must consist of letters, digits and "
            "underscores and must not start with a digit"
        )
    if len(name) + len(_BROADCAST_SUFFIX) > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifierError(
            f"pgevents schema name {name!r} is too long: at most "
            f"{MAX_IDENTIFIER_BYTES - len(_BROADCAST_SUFFIX)} characters, because "
            "it also names the NOTIFY channels"
        )
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    """Quote ``name`` as a PostgreSQL identifier where it needs quoting."""
    return str(_PREPARER.quote(check_identifier(name, what)))


def quote_literal(value: str) -> str:
    """Quote ``value`` as a PostgreSQL string literal."""
    assert _STRING_LITERAL is not None
    return str(_STRING_LITERAL(value))


def qualified_table(table: str, schema: str | None) -> str:
    """The quoted, schema-qualified name of a table."""
    quoted = quote_identifier(table, "table name")
    if schema is None:
        return quoted
    return f"{quote_identifier(schema, 'schema name')}.{quoted}"


def wakeup_channel(event_schema: str) -> str:
    """The channel writers NOTIFY when a queue listener sleeps."""
    return check_event_schema(event_schema)


def broadcast_channel(event_schema: str) -> str:
    """The channel that carries broadcast (notify-only) events."""
    return check_event_schema(event_schema) + _BROADCAST_SUFFIX
