"""Small psycopg2 helpers for tests: run SQL, read the event log, wait on a condition."""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.sql
from alembic.operations import Operations

from pgevents_migrate.extension import libpq_dsn as libpq_dsn

T = TypeVar("T")
#: The ``run_ops`` fixture: runs Alembic operations online against the test database.
RunOps = Callable[[Callable[[Operations], None]], None]


def execute(dsn: str, *statements: str, params: Sequence[Any] | None = None) -> None:
    """Run ``statements`` in one committed transaction."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql, params)
    conn.close()


def fetch(dsn: str, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def sleeper_flag(dsn: str, schema: str = "pgevents") -> int:
    """The sleeper flag writers read: the low bit of flags (artifact 6 on), else sleeping (4 and 5)."""
    rows = fetch(
        dsn,
        "SELECT pg_sequence_last_value(coalesce(to_regclass(%s), to_regclass(%s))) %% 2",
        (f"{schema}.flags", f"{schema}.sleeping"),
    )
    return int(rows[0][0])


def writers_generation(dsn: str, schema: str = "pgevents") -> int:
    """The partition writers append to: flags / 2 (artifact 6 on), else the generation sequence (5)."""
    rows = fetch(
        dsn,
        "SELECT coalesce(pg_sequence_last_value(to_regclass(%s)) / 2,"
        " pg_sequence_last_value(to_regclass(%s)))",
        (f"{schema}.flags", f"{schema}.generation"),
    )
    return int(rows[0][0])


def events_of(cur: psycopg2.extensions.cursor, schema: str, relation: str = "event") -> psycopg2.sql.Composed:
    """``relation``'s events as ``e``: its rows, or the events they stand for once the log has
    statement rows (artifact 7 on: ``expand``)."""
    cur.execute("SELECT to_regprocedure(format('%%1$I.expand(%%1$I.event)', %s)) IS NOT NULL", (schema,))
    row = cur.fetchone()
    table = psycopg2.sql.Identifier(schema, relation)
    if row is None or not row[0]:
        return psycopg2.sql.SQL("{} AS e").format(table)
    expand = psycopg2.sql.Identifier(schema, "expand")
    return psycopg2.sql.SQL("{} AS r CROSS JOIN LATERAL {}(r) AS e").format(table, expand)


def events(dsn: str, schema: str = "pgevents") -> list[dict[str, Any]]:
    """Every event of the log (or job table), oldest first, as dicts."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            psycopg2.sql.SQL(
                "SELECT e.id, e.op, e.schema_name, e.table_name, e.pk, e.old, e.new, e.changed, e.txid::text"
                " FROM {} ORDER BY e.id"
            ).format(events_of(cur, schema))
        )
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.close()
    return rows


def count_events(dsn: str, relation: str = "event", schema: str = "pgevents") -> int:
    """How many events the log's ``relation`` (``event`` or a partition) holds."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(psycopg2.sql.SQL("SELECT count(*) FROM {}").format(events_of(cur, schema, relation)))
        row = cur.fetchone()
    conn.close()
    assert row is not None
    return int(row[0])


def insert_items(dsn: str, ids: Sequence[int]) -> None:
    """INSERT each of ``ids`` into ``item`` by a statement of its own, all in one transaction: one row of
    the log per event on every artifact (a statement row holds a whole statement's events)."""
    execute(dsn, *(f"INSERT INTO item VALUES ({int(i)}, 0)" for i in ids))


class Listener:
    """A LISTENing connection that collects notifications."""

    def __init__(self, dsn: str, channel: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with self.conn.cursor() as cur:
            cur.execute(psycopg2.sql.SQL("LISTEN {}").format(psycopg2.sql.Identifier(channel)))
        self.received: list[psycopg2.extensions.Notify] = []

    def poll(self, timeout: float = 0.0) -> list[psycopg2.extensions.Notify]:
        """Collect what has arrived, waiting up to ``timeout`` for anything new."""
        if not self.conn.notifies:
            select.select([self.conn], [], [], timeout)
        self.conn.poll()
        self.received.extend(self.conn.notifies)
        self.conn.notifies.clear()
        return self.received

    def close(self) -> None:
        self.conn.close()


def wait_for(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Return ``condition()`` once it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)
