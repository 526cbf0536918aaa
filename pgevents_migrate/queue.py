"""``EventQueue``: the durable queue's SQL (claim, acknowledge, retry, dead letters).

Claims take row locks with ``SKIP LOCKED`` and commit at once with a lease:
``available_at`` moves into the future and ``attempts`` grows by one. The pair
``(id, attempts)`` identifies a claim, so a worker whose lease ran out can no
longer acknowledge, renew or fail an event another worker has claimed since.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2.extensions
from psycopg2 import sql

from alembic_ops.identifiers import sleeping_sequence

from .event import Event

Connection = psycopg2.extensions.connection
Cursor = psycopg2.extensions.cursor

_EVENT_COLUMNS = "id, op, schema_name, table_name, pk, old, new, changed, txid, created_at"


def _int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: ``{1,2,3}``."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


@dataclass(frozen=True)
class Claim:
    """A claimed event and the callbacks that already succeeded for it."""

    event: Event
    done: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        assert self.event.id is not None
        return (self.event.id, self.event.attempt)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    op: str
    schema: str
    table: str
    pk: dict[str, Any]
    attempts: int
    error: str
    failed_at: datetime


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    failed: int
    oldest_pending: datetime | None
    notification_queue_usage: float


class EventQueue:
    """The queue operations on the tables of one event schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._flag = sleeping_sequence(schema)
        s = sql.Identifier(schema)
        self._claim = sql.SQL(
            """
            WITH claimed AS (
                SELECT id FROM {s}.event
                 WHERE (available_at IS NULL OR available_at <= clock_timestamp())
                   AND (schema_name, table_name) IN
                       (SELECT * FROM unnest(%(schemas)s::text[], %(tables)s::text[]))
                 ORDER BY id
                 LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED
            )
            UPDATE {s}.event e
               SET attempts = e.attempts + 1,
                   available_at = clock_timestamp() + make_interval(secs => %(lease)s)
             WHERE e.id = ANY(ARRAY(SELECT id FROM claimed))
            RETURNING e.id, e.op, e.schema_name, e.table_name, e.pk::text, e.old::text, e.new::text,
                      e.changed, e.txid::text AS txid, e.created_at, e.attempts,
                      NULLIF(e.done, '{{}}')
            """
        ).format(s=s)
        # ``e.id = ANY(ids)`` lets the planner reach the claimed rows through the
        # primary key: joined to ``unnest`` alone it picks a hash join over a
        # sequential scan of the whole log, once per batch.
        claims = "unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)"
        match = " WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = c.id AND e.attempts = c.attempts"
        # Renewals skip rows another statement has locked (the worker's own
        # acknowledgement deleting them): they never wait on it, so the two
        # cannot deadlock by locking overlapping claims in different orders.
        self._extend = sql.SQL(
            "UPDATE {s}.event SET available_at = clock_timestamp() + make_interval(secs => %(lease)s)"
            " WHERE id = ANY(ARRAY(SELECT e.id FROM {s}.event e, "
            + claims
            + match
            + " FOR UPDATE OF e SKIP LOCKED))"
        ).format(s=s)
        self._delete = sql.SQL("DELETE FROM {s}.event e USING " + claims + match).format(s=s)
        self._archive = sql.SQL(
            "WITH done AS (DELETE FROM {s}.event e USING " + claims + match + " RETURNING e.*)"
            " INSERT INTO {s}.processed (" + _EVENT_COLUMNS + ", attempts)"
            " SELECT " + _EVENT_COLUMNS + ", attempts FROM done"
        ).format(s=s)
        self._release = sql.SQL(
            "UPDATE {s}.event e SET attempts = e.attempts - 1, available_at = NULL FROM " + claims + match
        ).format(s=s)
        self._retry_later = sql.SQL(
            "UPDATE {s}.event SET available_at = clock_timestamp() + make_interval(secs => %s),"
            " last_error = %s, done = %s WHERE id = %s AND attempts = %s"
        ).format(s=s)
        self._bury = sql.SQL(
            "WITH d AS (DELETE FROM {s}.event WHERE id = %s AND attempts = %s RETURNING *)"
            " INSERT INTO {s}.dead_letter (" + _EVENT_COLUMNS + ", attempts, done, error)"
            " SELECT " + _EVENT_COLUMNS + ", attempts, %s, %s FROM d"
        ).format(s=s)
        self._resurrect = sql.SQL(
            "WITH d AS (DELETE FROM {s}.dead_letter WHERE %s OR id = ANY(%s) RETURNING *)"
            " INSERT INTO {s}.event (" + _EVENT_COLUMNS + ", attempts, done, last_error)"
            " OVERRIDING SYSTEM VALUE"
            " SELECT " + _EVENT_COLUMNS + ", 0, done, error FROM d"
        ).format(s=s)
        self._dead_letters = sql.SQL(
            "SELECT id, op, schema_name, table_name, pk, attempts, error, failed_at"
            " FROM {s}.dead_letter ORDER BY id LIMIT %s"
        ).format(s=s)
        self._purge = {
            table: sql.SQL(
                "DELETE FROM {s}.{t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {s}.{t}"
                " WHERE {c} < clock_timestamp() - make_interval(secs => %s) LIMIT %s))"
            ).format(
                s=s,
                t=sql.Identifier(table),
                c=sql.Identifier("processed_at" if table == "processed" else "failed_at"),
            )
            for table in ("processed", "dead_letter")
        }
        self._counts = sql.SQL(
            "SELECT (SELECT count(*) FROM {s}.event), (SELECT count(*) FROM {s}.dead_letter),"
            " (SELECT min(created_at) FROM {s}.event), pg_notification_queue_usage()"
        ).format(s=s)
        # Each change of the sleeper rows also sets the flag sequence (artifact
        # 4 on) from them, in one implicit transaction under a lock that
        # serializes the changes: every statement of it sees the ones before.
        self._sleeper_changes = {
            change: sql.SQL(
                "LOCK TABLE {s}.sleeper IN SHARE ROW EXCLUSIVE MODE; " + statement + "; SELECT"
                " setval(flag, (EXISTS (SELECT FROM {s}.sleeper))::integer)"
                " FROM to_regclass(%s) AS flag WHERE flag IS NOT NULL"
            ).format(s=s)
            for change, statement in {
                "sleep": "INSERT INTO {s}.sleeper (backend_pid) VALUES (pg_backend_pid())"
                " ON CONFLICT DO NOTHING",
                "wake": "DELETE FROM {s}.sleeper WHERE backend_pid = pg_backend_pid()",
                "forget_stale": "DELETE FROM {s}.sleeper WHERE backend_pid NOT IN"
                " (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)",
            }.items()
        }

    def claim_rows(
        self, conn: Connection, limit: int, lease: float, tables: tuple[list[str], list[str]]
    ) -> list[tuple[Any, ...]]:
        """Claim up to ``limit`` available events of ``tables`` (schemas, names).

        Returns the rows, oldest first; ``claims_from_rows`` makes claims of them.
        """
        # Plain tuples: RealDictCursor builds each row in Python, column by column.
        with conn.cursor() as cur:
            cur.execute(self.claim_statement(cur, limit, lease, tables))
            rows = cur.fetchall()
        conn.commit()
        rows.sort(key=lambda row: row[0])
        return rows

    @staticmethod
    def claim_keys(rows: Sequence[tuple[Any, ...]]) -> list[tuple[int, int]]:
        """The ``(id, attempts)`` of the claims in the rows a claim statement returned."""
        return [(row[0], row[10]) for row in rows]

    def claim_statement(
        self, cur: Cursor, limit: int, lease: float, tables: tuple[list[str], list[str]]
    ) -> bytes:
        """The claim, with its parameters bound (to send along with other statements)."""
        params = {"schemas": tables[0], "tables": tables[1], "limit": limit, "lease": lease}
        return cur.mogrify(self._claim, params)

    def acknowledge_statement(self, cur: Cursor, keys: Sequence[tuple[int, int]], keep: bool) -> bytes:
        """``acknowledge``'s statement, with its parameters bound."""
        ids, attempts = zip(*keys, strict=True)
        statement = self._archive if keep else self._delete
        # Array literals of integers: far cheaper than adapting lists item by item.
        return cur.mogrify(statement, {"ids": _int_array(ids), "attempts": _int_array(attempts)})

    @staticmethod
    def claims_from_rows(rows: list[tuple[Any, ...]]) -> list[Claim]:
        """The claims of the rows a claim statement returned, in their order."""
        if not rows:
            return []
        # The JSON columns come as text (psycopg2 would call json.loads per
        # value): one decoder call for all the keys of the batch.
        pks = json.loads("[" + ",".join([row[4] for row in rows]) + "]")
        return [
            Claim(
                Event(
                    id=event_id,
                    op=op,
                    schema=schema,
                    table=table,
                    pk=pk,
                    old=None if old is None else json.loads(old),
                    new=None if new is None else json.loads(new),
                    changed=None if changed is None else tuple(changed),
                    txid=int(txid),
                    created_at=created_at,
                    attempt=attempts,
                ),
                () if done is None else tuple(done),
            )
            for (event_id, op, schema, table, _, old, new, changed, txid, created_at, attempts, done), pk in (
                zip(rows, pks, strict=True)
            )
        ]

    def _for_claims(
        self, conn: Connection, statement: sql.Composed, keys: Sequence[tuple[int, int]], **params: Any
    ) -> int:
        if not keys:
            return 0
        ids, attempts = zip(*keys, strict=True)
        with conn.cursor() as cur:
            cur.execute(statement, {**params, "ids": list(ids), "attempts": list(attempts)})
            count = cur.rowcount
        conn.commit()
        return int(count)

    def extend(self, conn: Connection, keys: Sequence[tuple[int, int]], lease: float) -> int:
        """Renew the lease of claims still held and not locked by another statement; returns how many."""
        return self._for_claims(conn, self._extend, keys, lease=lease)

    def acknowledge(self, conn: Connection, keys: Sequence[tuple[int, int]], keep: bool) -> int:
        """Remove handled events (into ``processed`` when ``keep``)."""
        return self._for_claims(conn, self._archive if keep else self._delete, keys)

    def release(self, conn: Connection, keys: Sequence[tuple[int, int]]) -> int:
        """Give back claims whose callbacks never started."""
        return self._for_claims(conn, self._release, keys)

    def retry_later(
        self, conn: Connection, claim: Claim, delay: float, error: str, done: Iterable[str]
    ) -> None:
        """Make a failed event available again after ``delay`` seconds."""
        event_id, attempts = claim.key
        with conn.cursor() as cur:
            cur.execute(self._retry_later, (delay, error, list(done), event_id, attempts))
        conn.commit()

    def bury(self, conn: Connection, claim: Claim, error: str, done: Iterable[str]) -> None:
        """Move an event that used up its attempts to the dead letters."""
        event_id, attempts = claim.key
        with conn.cursor() as cur:
            cur.execute(self._bury, (event_id, attempts, list(done), error))
        conn.commit()

    def dead_letters(self, conn: Connection, limit: int = 100) -> list[DeadLetter]:
        with conn.cursor() as cur:
            cur.execute(self._dead_letters, (limit,))
            rows = cur.fetchall()
        conn.commit()
        return [DeadLetter(*row) for row in rows]

    def retry_dead_letters(self, conn: Connection, ids: Sequence[int] | None) -> int:
        """Put dead letters (all when ``ids`` is None) back in the queue, with fresh attempts."""
        with conn.cursor() as cur:
            cur.execute(self._resurrect, (ids is None, list(ids or ())))
            count = cur.rowcount
            cur.execute("SELECT pg_notify(%s, '')", (self.schema,))
        conn.commit()
        return int(count)

    def purge(self, conn: Connection, table: str, older_than: float, batch: int = 5000) -> int:
        """Delete rows of ``processed`` or ``dead_letter`` older than ``older_than`` seconds, in batches."""
        total = 0
        while True:
            with conn.cursor() as cur:
                cur.execute(self._purge[table], (older_than, batch))
                deleted = cur.rowcount
            conn.commit()
            total += deleted
            if deleted < batch:
                return total

    def counts(self, conn: Connection) -> QueueCounts:
        with conn.cursor() as cur:
            cur.execute(self._counts)
            pending, failed, oldest, usage = cur.fetchone()  # type: ignore[misc]
        conn.commit()
        return QueueCounts(pending, failed, oldest, float(usage))

    def sleep(self, conn: Connection) -> None:
        """Ask writers to NOTIFY: this connection is about to wait (autocommit)."""
        self._change_sleepers(conn, "sleep")

    def wake(self, conn: Connection) -> None:
        """Stop asking writers to NOTIFY for this connection (autocommit)."""
        self._change_sleepers(conn, "wake")

    def forget_stale_sleepers(self, conn: Connection) -> None:
        """Drop sleeper rows of connections that no longer exist (and a flag a crash left set)."""
        self._change_sleepers(conn, "forget_stale")

    def _change_sleepers(self, conn: Connection, change: str) -> None:
        with conn.cursor() as cur:
            cur.execute(self._sleeper_changes[change], (self._flag,))
