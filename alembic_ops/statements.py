"""``SQLStatement``: run rendered SQL verbatim, online and offline.

Alembic compiles plain strings as ``text()``: that doubles ``%`` in offline
``--sql`` output and treats ``:name`` as a bind parameter. A DDL element whose
compiler returns the SQL as it is avoids both; ``%`` is doubled only when the
statement goes to a pyformat driver (psycopg2, psycopg) for execution.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.ddl import ExecutableDDLElement

from .core.errors import RefusedOperationError

#: Every error our SQL raises on purpose starts with this.
MESSAGE_PREFIX = "pgevents: "


class SQLStatement(ExecutableDDLElement):
    """One rendered SQL statement (or script) to execute unchanged."""

    inherit_cache = False

    def __init__(self, sql: str, *, for_execution: bool) -> None:
        self.sql = sql
        self.for_execution = for_execution


@compiles(SQLStatement)
def _compile_statement(element: SQLStatement, compiler: DDLCompiler, **kw: Any) -> str:
    if element.for_execution and compiler.preparer._double_percents:
        return element.sql.replace("%", "%%")
    return element.sql


def execute_all(operations: Operations, statements: list[str]) -> None:
    """Execute ``statements`` in order through ``operations.execute``.

    An error our SQL raises on purpose becomes a one-line ``RefusedOperationError``.
    """
    for_execution = not operations.migration_context.as_sql
    for sql in statements:
        try:
            operations.execute(SQLStatement(sql, for_execution=for_execution))
        except sa.exc.DBAPIError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc


def _refusal(exc: sa.exc.DBAPIError) -> RefusedOperationError | None:
    """Our message and hint on one line, if the database error is one of ours."""
    diag = getattr(exc.orig, "diag", None)
    message = getattr(diag, "message_primary", None)
    if not isinstance(message, str) or not message.startswith(MESSAGE_PREFIX):
        return None
    hint = getattr(diag, "message_hint", None)
    return RefusedOperationError(f"{message}. {hint}" if hint else message)
