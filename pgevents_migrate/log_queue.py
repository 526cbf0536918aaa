"""``LogQueue``: one consumer group's statements on the event log of artifact 5.

The statements live, named, in ``sql/log_queries.sql``; they call the cursor
functions the artifact installs (``fetch``, ``ack``, ``take_lane`` ...).
The connection must be in autocommit mode: ``fetch`` runs alone in its
transaction. Failed events are copied out of the log into ``retry``, where
every worker of the group claims them as the job table's claims work:
``(id, attempts)`` identifies a claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql

from alembic_ops.core.errors import PGEventsError
from alembic_ops.core.names import STATEMENT_ROWS_VERSION, wakeup_channel

from .queue import (
    Claim,
    ClaimRow,
    Connection,
    Cursor,
    DeadLetter,
    EventQueue,
    QueueCounts,
    by_name,
    load_queries,
    query,
)

_FILE = "log_queries.sql"
_LEASE_LOST = "PE001"
_NO_GROUP = "PE002"

Key = tuple[int, int]
#: A row: (schema, table, primary key as jsonb text).
RowKey = tuple[str, str, str]


def row_key(row: ClaimRow) -> RowKey:
    return (row.schema_name, row.table_name, row.pk)


@dataclass(frozen=True)
class GroupCounts(QueueCounts):
    """A group's counts, and its reader: when its cursor last moved, whether a worker holds it, skips."""

    last_read: datetime | None
    reading: bool
    skipped_at: datetime | None


class LeaseLost(Exception):
    """Another worker of the group took over reading the log."""


def log_events(schema: str, version: int) -> dict[str, sql.Composable]:
    """``{events}`` and ``{row}`` of ``sql/log_queries.sql`` for artifact ``version``'s log."""
    table = sql.Identifier(schema, "event")
    if version < STATEMENT_ROWS_VERSION:
        return {"events": sql.SQL("{} AS e").format(table), "row": sql.SQL("e")}
    expand = sql.Identifier(schema, "expand")
    return {
        "events": sql.SQL("{} AS r CROSS JOIN LATERAL {}(r) AS e").format(table, expand),
        "row": sql.SQL("r"),
    }


class LogQueue:
    """The log's operations for the group ``group`` in the event schema ``schema`` of artifact ``version``."""

    def __init__(self, schema: str, group: str, version: int) -> None:
        self.schema = schema
        self.group = group
        self.version = version
        events = log_events(schema, version)
        self._sql = {name: query(name, _FILE, s=schema, **events) for name in load_queries(_FILE)}
        self._sql["ack_then_fetch"] = sql.Composed(
            [sql.SQL("BEGIN;"), self._sql["ack"], sql.SQL(";COMMIT;"), self._sql["fetch"]]
        )

    def _execute(self, cur: Cursor, name: str, **params: Any) -> None:
        """Run query ``name`` for the group; the cursor functions' errors as ours."""
        try:
            cur.execute(self._sql[name], {"group": self.group, **params})
        except psycopg2.Error as exc:
            conn = cur.connection
            if conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR:
                conn.rollback()  # a statement of BEGIN; ack; COMMIT; fetch failed: end its block
            if exc.pgcode == _LEASE_LOST:
                raise LeaseLost(str(exc)) from exc
            if exc.pgcode == _NO_GROUP:
                raise self.missing_group() from exc
            raise

    def _run(self, conn: Connection, name: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run query ``name``; its rows (none for a statement without result)."""
        with conn.cursor() as cur:
            self._execute(cur, name, **params)
            return cur.fetchall() if cur.description is not None else []

    def _rows(self, conn: Connection, name: str, **params: Any) -> list[ClaimRow]:
        """The claim rows query ``name`` returns, oldest first."""
        with conn.cursor() as cur:
            self._execute(cur, name, **params)
            return EventQueue.fetch_claim_rows(cur)

    def missing_group(self) -> PGEventsError:
        return PGEventsError(
            f"consumer group {self.group!r} is not registered in schema {self.schema!r}: "
            f"PGEVENTS_GROUP must name a registered group (the artifact registers 'default')"
        )

    # -- the lanes' leases ---------------------------------------------------

    def groups(self, conn: Connection) -> list[str]:
        """Every registered consumer group of the schema."""
        return [row[0] for row in self._run(conn, "groups")]

    def group_exists(self, conn: Connection) -> bool:
        return bool(self._run(conn, "group_exists")[0][0])

    def take_lane(self, conn: Connection, owner: str, lease: float) -> tuple[int, int] | None:
        """One more lane (and its epoch) while ``owner`` holds fewer than its share; None otherwise."""
        rows = self._run(conn, "take_lane", owner=owner, lease=lease)
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def renew_lease(self, conn: Connection, lane: int, epoch: int, lease: float) -> bool:
        return bool(self._run(conn, "renew_lease", lane=lane, epoch=epoch, lease=lease)[0][0])

    def release_lease(self, conn: Connection, lane: int, epoch: int) -> None:
        """Give ``lane`` up and wake the workers waiting for one."""
        self._run(conn, "release_lease", lane=lane, epoch=epoch)
        self.wake(conn)

    def release_lanes(self, conn: Connection, owner: str) -> None:
        """Give up every lane ``owner`` holds and wake the workers waiting for one."""
        self._run(conn, "release_lanes", owner=owner)
        self.wake(conn)

    def wake(self, conn: Connection) -> None:
        """NOTIFY the group's workers (on the schema's wake-up channel)."""
        with conn.cursor() as cur:
            cur.execute("SELECT pg_notify(%s, '')", (wakeup_channel(self.schema),))

    def surplus(self, conn: Connection, owner: str, recent: float) -> bool:
        """Whether ``owner`` holds more lanes than its share while a worker asked for one lately."""
        return bool(self._run(conn, "surplus", owner=owner, recent=recent)[0][0])

    # -- reading the log -----------------------------------------------------

    def fetch(self, conn: Connection, lane: int, epoch: int, page: int) -> list[ClaimRow]:
        """The next ``page`` events of ``lane``; ``LeaseLost`` once another reader took it over."""
        return self._rows(conn, "fetch", lane=lane, epoch=epoch, page=page)

    def ack(self, conn: Connection, lane: int, epoch: int, handled_id: int, close: bool) -> None:
        """Acknowledge the lane's open window up to ``handled_id`` (all of it with ``close``)."""
        if not self._run(conn, "ack", lane=lane, epoch=epoch, id=handled_id, close=close)[0][0]:
            raise LeaseLost(f"group {self.group!r}: another reader took lane {lane}")

    def ack_and_fetch(
        self, conn: Connection, lane: int, epoch: int, handled_id: int, close: bool, page: int
    ) -> list[ClaimRow]:
        """``ack`` then ``fetch`` in one round trip: BEGIN and COMMIT keep ``fetch`` alone in its transaction.

        A lease lost shows as ``LeaseLost`` from the fetch.
        """
        params = {"lane": lane, "epoch": epoch, "id": handled_id, "close": close, "page": page}
        return self._rows(conn, "ack_then_fetch", **params)

    def retry_later(
        self,
        conn: Connection,
        lane: int,
        epoch: int,
        claim: Claim,
        delay: float,
        error: str,
        done: Iterable[str],
        ordered: bool = False,
    ) -> None:
        """Copy a failed event of the open window to ``retry``, due after ``delay`` seconds."""
        params = {
            "id": claim.event.id,
            "delay": delay,
            "error": error,
            "done": list(done),
            "ordered": ordered,
        }
        if not self._run(conn, "retry_later", lane=lane, epoch=epoch, **params)[0][0]:
            raise LeaseLost(f"group {self.group!r}: another reader took lane {lane}")

    def hold(self, conn: Connection, lane: int, epoch: int, claim: Claim) -> None:
        """Copy an ordered event, unattempted, behind the ordered retries of its row."""
        if not self._run(conn, "hold", lane=lane, epoch=epoch, id=claim.event.id)[0][0]:
            raise LeaseLost(f"group {self.group!r}: another reader took lane {lane}")

    def held_rows(self, conn: Connection, rows: Sequence[ClaimRow]) -> set[RowKey]:
        """The rows among those of ``rows`` whose ordered events wait in the group's retries."""
        if not rows:
            return set()
        keys = {row_key(row) for row in rows}
        schemas, tables, pks = (list(column) for column in zip(*keys, strict=True))
        return {
            (s, t, k) for s, t, k in self._run(conn, "held_rows", schemas=schemas, tables=tables, pks=pks)
        }

    def bury_event(self, conn: Connection, claim: Claim, error: str, done: Iterable[str]) -> bool:
        """Dead-letter a failed event of the log directly (its first attempt was its last).

        False when no row was copied: already a dead letter (a page read again), or the
        log is laid out as another artifact version than this queue's (a migration ran).
        """
        with conn.cursor() as cur:
            self._execute(cur, "bury_event", id=claim.event.id, error=error, done=list(done))
            return cur.rowcount > 0

    # -- retries ---------------------------------------------------------------

    def claim_retries(self, conn: Connection, limit: int, lease: float) -> list[ClaimRow]:
        return self._rows(conn, "claim_retries", limit=limit, lease=lease)

    def _for_claims(self, conn: Connection, name: str, keys: Sequence[Key], **params: Any) -> None:
        if keys:
            ids, attempts = zip(*keys, strict=True)
            self._run(conn, name, ids=list(ids), attempts=list(attempts), **params)

    def extend_retries(self, conn: Connection, keys: Sequence[Key], lease: float) -> None:
        self._for_claims(conn, "extend_retries", keys, lease=lease)

    def release_retries(self, conn: Connection, keys: Sequence[Key]) -> None:
        self._for_claims(conn, "release_retries", keys)

    def retry_done(self, conn: Connection, claim: Claim) -> None:
        self._run(conn, "retry_done", id=claim.event.id, attempts=claim.event.attempt)

    def retry_again(
        self, conn: Connection, claim: Claim, delay: float, error: str, done: Iterable[str]
    ) -> None:
        self._run(
            conn,
            "retry_again",
            id=claim.event.id,
            attempts=claim.event.attempt,
            delay=delay,
            error=error,
            done=list(done),
        )

    def bury_retry(self, conn: Connection, claim: Claim, error: str, done: Iterable[str]) -> None:
        self._run(
            conn, "bury_retry", id=claim.event.id, attempts=claim.event.attempt, error=error, done=list(done)
        )

    # -- what the CLI asks -----------------------------------------------------

    def dead_letters(self, conn: Connection, limit: int = 100) -> list[DeadLetter]:
        with conn.cursor() as cur:
            cur.execute(self._sql["dead_letters"], {"group": self.group, "limit": limit})
            return list(map(by_name(cur, DeadLetter), cur.fetchall()))

    def retry_dead_letters(self, conn: Connection, ids: Sequence[int] | None) -> int:
        """Make the group's dead letters (all when ``ids`` is None) due again, with fresh attempts."""
        with conn.cursor() as cur:
            cur.execute(
                self._sql["retry_dead_letters"],
                {"group": self.group, "all": ids is None, "ids": list(ids or ())},
            )
            count = cur.rowcount
        self.wake(conn)
        return int(count)

    def replay(
        self,
        conn: Connection,
        *,
        from_id: int | None = None,
        since: datetime | None = None,
        table: tuple[str | None, str] | None = None,
        done: Sequence[str] = (),
    ) -> int:
        """Deliver again the group's handled events still in the log from ``from_id`` / ``since``.

        ``table``: only this (schema or None, table)'s events. ``done``: the
        callbacks that must not run again. Returns how many events were queued.
        """
        schema, name = table if table is not None else (None, None)
        params = {"from_id": from_id, "since": since, "schema": schema, "table": name, "done": list(done)}
        with conn.cursor() as cur:
            cur.execute(self._sql["replay"], {"group": self.group, **params})
            count = cur.rowcount
        self.wake(conn)
        return int(count)

    def purge(self, conn: Connection, table: str, older_than: float) -> int:
        """Delete the group's dead letters older than ``older_than`` seconds.

        Handled events (``table="processed"``) leave the log when their
        partition is truncated, after ``PGEVENTS_RETENTION``: 0 here.
        """
        if table == "processed":
            return 0
        with conn.cursor() as cur:
            cur.execute(self._sql["purge_dead_letters"], {"group": self.group, "age": older_than})
            return int(cur.rowcount)

    def counts(self, conn: Connection) -> GroupCounts:
        with conn.cursor() as cur:
            cur.execute(self._sql["counts"], {"group": self.group})
            row = cur.fetchone()
            assert row is not None
            return by_name(cur, GroupCounts)(row)

    # -- maintenance -------------------------------------------------------------

    def maintain(
        self, conn: Connection, switch_events: int, switch_after: float, keep: float, max_lag: float
    ) -> str | None:
        """Rotate the log's partitions unless another worker is at it; what was done, if anything."""
        result = self._run(
            conn,
            "maintain",
            lock=f"pgevents.rotate:{self.schema}",
            switch_events=switch_events,
            switch_after=switch_after,
            keep=keep,
            max_lag=max_lag,
        )[0][0]
        return str(result) if result else None
