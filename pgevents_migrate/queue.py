"""``EventQueue``: the durable queue's SQL (claim, acknowledge, retry, dead letters).

The statements live, named, in ``sql/queries.sql``. Claims take row locks with
``SKIP LOCKED`` and commit at once with a lease: ``available_at`` moves into
the future and ``attempts`` grows by one. The pair ``(id, attempts)``
identifies a claim, so a worker whose lease ran out can no longer acknowledge,
renew or fail an event another worker has claimed since.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

import psycopg2.extensions
from psycopg2 import sql

from alembic_ops.core.names import flags_sequence, sleeping_sequence, wakeup_channel

from .event import Event

Connection = psycopg2.extensions.connection
Cursor = psycopg2.extensions.cursor

R = TypeVar("R")

_QUERY_NAME = re.compile(r"^-- (\w+) --$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """The queries of a ``-- name --`` file by name, without their comment lines or final ``;``."""
    parts = _QUERY_NAME.split(text)[1:]
    queries: dict[str, str] = {}
    for name, body in zip(parts[::2], parts[1::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().removesuffix(";")
    return queries


@functools.cache
def load_queries(filename: str) -> dict[str, str]:
    """The queries of ``pgevents_migrate/sql/<filename>``, by name."""
    return parse_queries(resources.files(__package__).joinpath("sql", filename).read_text(encoding="utf-8"))


#: The statements of ``sql/queries.sql`` (the job table of artifacts 1-4), by name.
QUERIES = load_queries("queries.sql")


def query(name: str, filename: str = "queries.sql", **fills: str | sql.Composable) -> sql.Composed:
    """The query ``name`` of ``sql/<filename>``, its ``{placeholders}`` filled (a str as an identifier)."""
    try:
        text = load_queries(filename)[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in pgevents_migrate/sql/{filename}") from None
    return sql.SQL(text).format(
        **{key: sql.Identifier(value) if isinstance(value, str) else value for key, value in fills.items()}
    )


def _int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: ``{1,2,3}``."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def by_name(cur: Cursor, record: type[R]) -> Callable[[Sequence[Any]], R]:
    """What builds a ``record`` (a named tuple or dataclass) from a row of ``cur``'s result.

    Each column goes to the field of its name; columns and fields must match.
    A named tuple whose fields are the columns in order is built in one C call.
    """
    if cur.description is None:
        raise ValueError("the statement returned no result to read rows from")
    columns = tuple(column.name for column in cur.description)
    if dataclasses.is_dataclass(record):
        fields = tuple(field.name for field in dataclasses.fields(record))
    else:
        fields = tuple(record._fields)  # type: ignore[attr-defined]
    if sorted(columns) != sorted(fields):
        raise ValueError(
            f"the statement returns the columns {columns}; {record.__name__} has the fields {fields}"
        )
    if columns == fields and not dataclasses.is_dataclass(record):
        make: Callable[[Sequence[Any]], R] = record._make  # type: ignore[attr-defined]
        return make
    return lambda row: record(**dict(zip(columns, row, strict=True)))


class ClaimRow(NamedTuple):
    """A row the claim query returns (the JSON columns as text)."""

    id: int
    op: str
    schema_name: str
    table_name: str
    pk: str
    old: str | None
    new: str | None
    changed: list[str] | None
    txid: str
    created_at: datetime
    attempts: int
    done: list[str] | None


_by_id = attrgetter("id")


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
        # The sequence holding the sleeper flag: flags from artifact 6 on, else sleeping.
        self._flag_sequences = (flags_sequence(schema), sleeping_sequence(schema))
        self._claim = query("claim", s=schema)
        self._extend = query("extend_leases", s=schema)
        self._delete = query("delete_claims", s=schema)
        self._archive = query("archive_claims", s=schema)
        self._release = query("release_claims", s=schema)
        self._retry_later = query("retry_later", s=schema)
        self._bury = query("bury", s=schema)
        self._resurrect = query("retry_dead_letters", s=schema)
        self._notify = query("notify")
        self._dead_letters = query("dead_letters", s=schema)
        self._purge = {
            table: query("purge", s=schema, table=table, timestamp=timestamp)
            for table, timestamp in (("processed", "processed_at"), ("dead_letter", "failed_at"))
        }
        self._counts = query("counts", s=schema)
        self._sleeper_changes = {
            change: query(change, s=schema) for change in ("sleep", "wake", "forget_stale_sleepers")
        }

    def claim_rows(
        self, conn: Connection, limit: int, lease: float, tables: tuple[list[str], list[str]]
    ) -> list[ClaimRow]:
        """Claim up to ``limit`` available events of ``tables`` (schemas, names).

        Returns the rows, oldest first; ``claims_from_rows`` makes claims of them.
        """
        with conn.cursor() as cur:
            cur.execute(self.claim_statement(cur, limit, lease, tables))
            rows = self.fetch_claim_rows(cur)
        conn.commit()
        return rows

    @staticmethod
    def fetch_claim_rows(cur: Cursor) -> list[ClaimRow]:
        """The rows a claim statement executed on ``cur`` returned, oldest first."""
        # Named tuples, one C call each: RealDictCursor would build each row in Python.
        return sorted(map(by_name(cur, ClaimRow), cur.fetchall()), key=_by_id)

    @staticmethod
    def claim_keys(rows: Sequence[ClaimRow]) -> list[tuple[int, int]]:
        """The ``(id, attempts)`` of the claims in the rows a claim statement returned."""
        return [(row.id, row.attempts) for row in rows]

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
    def claims_from_rows(rows: list[ClaimRow]) -> list[Claim]:
        """The claims of the rows a claim statement returned, in their order."""
        if not rows:
            return []
        # The JSON columns come as text (psycopg2 would call json.loads per
        # value): one decoder call for all the keys of the batch.
        pks = json.loads("[" + ",".join([row.pk for row in rows]) + "]")
        return [
            Claim(
                Event.from_fields(
                    id=row.id,
                    op=row.op,
                    schema=row.schema_name,
                    table=row.table_name,
                    pk=pk,
                    old=None if row.old is None else json.loads(row.old),
                    new=None if row.new is None else json.loads(row.new),
                    changed=None if row.changed is None else tuple(row.changed),
                    txid=int(row.txid),
                    created_at=row.created_at,
                    attempt=row.attempts,
                ),
                () if row.done is None else tuple(row.done),
            )
            for row, pk in zip(rows, pks, strict=True)
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
            letters = list(map(by_name(cur, DeadLetter), cur.fetchall()))
        conn.commit()
        return letters

    def retry_dead_letters(self, conn: Connection, ids: Sequence[int] | None) -> int:
        """Put dead letters (all when ``ids`` is None) back in the queue, with fresh attempts."""
        with conn.cursor() as cur:
            cur.execute(self._resurrect, (ids is None, list(ids or ())))
            count = cur.rowcount
            cur.execute(self._notify, (wakeup_channel(self.schema),))
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
            row = cur.fetchone()
            assert row is not None
            counts = by_name(cur, QueueCounts)(row)
        conn.commit()
        return counts

    def sleep(self, conn: Connection) -> None:
        """Ask writers to NOTIFY: this connection is about to wait (autocommit)."""
        self._change_sleepers(conn, "sleep")

    def wake(self, conn: Connection) -> None:
        """Stop asking writers to NOTIFY for this connection (autocommit)."""
        self._change_sleepers(conn, "wake")

    def forget_stale_sleepers(self, conn: Connection) -> None:
        """Drop sleeper rows of connections that no longer exist (and a flag a crash left set)."""
        self._change_sleepers(conn, "forget_stale_sleepers")

    def _change_sleepers(self, conn: Connection, change: str) -> None:
        with conn.cursor() as cur:
            cur.execute(self._sleeper_changes[change], self._flag_sequences)
