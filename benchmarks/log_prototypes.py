"""Design A (artifact 4's job table) against a prototype of design B (a log read through cursors).

docs/design/event-log.md, sections 3 and 4. A runs the real artifact 4 SQL
(``install_sql``, ``create_trigger_sql``) and the real ``EventQueue`` claim and
acknowledgement. B is a minimal prototype of section 3, kept here and nowhere
else: a list-partitioned append-only log whose rows carry their writer's xid8,
one cursor row advanced through windows between two snapshots, reclaim by
TRUNCATE of a partition every cursor has passed.

Both readers run in this process, one connection, the same page size, the same
decoding (``EventQueue.claims_from_rows``) and the same callback: one JSON line
per event appended to a line-buffered file. Each run starts from fresh tables:
a uuid-keyed table, a backlog written in 20 transactions before the reader
starts, never ANALYZEd. A and B alternate (A B A B ...) in one run.

After the drains, the write overhead (``--only write`` for it alone): three
identical uuid-keyed tables, one without a trigger, one with A's capture
trigger (no worker, so the sleeper flag is off and no NOTIFY is sent), one
with B's; single-row INSERTs from one connection, 1000-row INSERTs and
``pgbench -c 16 -j 2`` single-row INSERTs, measured with write_overhead's
samplers (variants in turn, ratios to the same round's no-trigger table).

    PGEVENTS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.log_prototypes [--quick] [--rounds N] [--only drain|write] [--write-rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import psycopg2
import psycopg2.extensions
import psycopg2.sql as pgsql
from sqlalchemy.engine import URL

from alembic_ops.artifacts import create_trigger_sql, install_sql
from alembic_ops.core.spec import TriggerSpec
from pgevents_migrate.extension import libpq_dsn
from pgevents_migrate.queue import ClaimRow, EventQueue, by_name

from . import write_overhead as wo
from .common import Connection, Machine, connect, execute, fetch_value, progress, scratch

TABLE = "bench_uuid"
A_SCHEMA = "pgevents"
B_SCHEMA = "pglog"
PARTITIONS = 4
PAGE = 250  # the worker claims PGEVENTS_BATCH_SIZE / 2 = 250 events per round trip
WRITE_TRANSACTIONS = 20
STATS_TIMEOUT = 10.0

Q = pgsql.Identifier


# --- the benchmark table --------------------------------------------------------------


def create_bench_table(conn: Connection, table: str = TABLE) -> None:
    execute(conn, pgsql.SQL("DROP TABLE IF EXISTS {}").format(Q(table)))
    execute(
        conn,
        pgsql.SQL("CREATE TABLE {} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int)").format(Q(table)),
    )


def write_backlog(url: URL, events: int, between: Callable[[Connection, int], None] | None = None) -> None:
    """``events`` rows in ``WRITE_TRANSACTIONS`` transactions; ``between`` runs after each commit."""
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        per = events // WRITE_TRANSACTIONS
        statement = pgsql.SQL("INSERT INTO {} (n) SELECT generate_series(1, %s)").format(Q(TABLE))
        for number in range(WRITE_TRANSACTIONS):
            count = per if number < WRITE_TRANSACTIONS - 1 else events - per * (WRITE_TRANSACTIONS - 1)
            with conn.cursor() as cur:
                cur.execute(statement, (count,))
            conn.commit()
            if between is not None:
                between(conn, number + 1)
    finally:
        conn.close()  # exiting flushes this backend's statistics


# --- design A: the real artifact 4 --------------------------------------------------


def setup_a(conn: Connection) -> None:
    create_bench_table(conn)
    install_a(conn, TABLE)


def install_a(conn: Connection, table: str) -> None:
    """Artifact 4 in ``A_SCHEMA`` and its insert trigger on ``table`` (which exists)."""
    execute(conn, pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Q(A_SCHEMA)))
    execute(conn, install_sql(A_SCHEMA, 4))
    for statement in create_trigger_sql(TriggerSpec(table, schema="public", events=("insert",)), 4):
        execute(conn, statement)


class ReaderA:
    """The worker's durable loop, reduced to its SQL: claim a page, run callbacks, acknowledge it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue = EventQueue(A_SCHEMA)
        self.tables = (["public"], [TABLE])

    def page(self, deliver: Callable[[list[ClaimRow]], None]) -> int:
        rows = self.queue.claim_rows(self.conn, PAGE, 30.0, self.tables)
        if rows:
            deliver(rows)
            self.queue.acknowledge(self.conn, self.queue.claim_keys(rows), keep=False)
        return len(rows)

    def finish(self) -> None:
        """Nothing to reclaim: acknowledged rows are deleted."""


# --- design B: a prototype of section 3 ---------------------------------------------

B_INSTALL = """
CREATE SCHEMA {s};
-- CACHE 1: an id drawn after last_value was read is above it (section 5).
CREATE SEQUENCE {s}.event_id CACHE 1;
-- The partition writers append to; read once per statement with pg_sequence_last_value.
CREATE SEQUENCE {s}.generation MINVALUE 0 MAXVALUE {last} START 0 CYCLE;
SELECT setval({generation}, 0, true);
CREATE TABLE {s}.event (
    id bigint NOT NULL DEFAULT nextval({event_id}),
    gen smallint NOT NULL,
    txid xid8 DEFAULT pg_current_xact_id(),
    created_at timestamptz DEFAULT now(),
    op text,
    schema_name text,
    table_name text,
    pk jsonb,
    old jsonb,
    new jsonb,
    changed text[]
) PARTITION BY LIST (gen);
CREATE INDEX event_id_idx ON {s}.event (id);
-- One cursor per group: done snapshot D, N_D, floors of D's open xids, open
-- window O, N_O, last id handled in the window W.
CREATE TABLE {s}.cursor (
    grp text PRIMARY KEY,
    d pg_snapshot NOT NULL,
    n_d bigint NOT NULL,
    floor_xids xid8[] NOT NULL,
    floor_ids bigint[] NOT NULL,
    o pg_snapshot,
    n_o bigint,
    w bigint NOT NULL DEFAULT 0
);
-- The snapshot taken after each switch away from a partition (3.1).
CREATE TABLE {s}.switch (gen smallint PRIMARY KEY, s_sw pg_snapshot NOT NULL);
-- What artifact 4's specialised capture function does for a uuid key, into the current partition.
CREATE FUNCTION {s}.capture_insert() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    g smallint := pg_sequence_last_value({generation});
BEGIN
    INSERT INTO {s}.event (gen, op, schema_name, table_name, pk)
    SELECT g, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME, jsonb_build_object('id', r.id) FROM new_rows r;
    RETURN NULL;
END
$body$;
CREATE TRIGGER capture_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.capture_insert();
"""

B_PARTITION = "CREATE TABLE {s}.{partition} PARTITION OF {s}.event FOR VALUES IN ({gen})"

B_COLUMNS = """e.id, e.op, e.schema_name, e.table_name, e.pk::text AS pk, e.old::text AS old,
       e.new::text AS new, e.changed, e.txid::text AS txid, e.created_at, 0 AS attempts,
       NULL::text[] AS done"""

# Events of transactions finished in O and not in D, above N_D: those that took their xid after D.
B_PAGE_NEW = """SELECT {columns}
  FROM {s}.event e
 WHERE e.id > greatest(%(w)s, %(n_d)s)
   AND pg_visible_in_snapshot(e.txid, %(o)s::pg_snapshot)
   AND NOT pg_visible_in_snapshot(e.txid, %(d)s::pg_snapshot)
 ORDER BY e.id
 LIMIT %(n)s"""

# The same plus the late path: transactions open in D (ids above their floors) that O sees finished.
B_PAGE_LATE = """SELECT * FROM (
(SELECT {columns}
  FROM {s}.event e
 WHERE e.id > greatest(%(w)s, %(n_d)s)
   AND pg_visible_in_snapshot(e.txid, %(o)s::pg_snapshot)
   AND NOT pg_visible_in_snapshot(e.txid, %(d)s::pg_snapshot)
 ORDER BY e.id
 LIMIT %(n)s)
UNION ALL
(SELECT {columns}
  FROM {s}.event e
 WHERE e.id > greatest(%(w)s, %(late_floor)s) AND e.id <= %(n_d)s
   AND e.txid = ANY(%(late)s::xid8[])
 ORDER BY e.id
 LIMIT %(n)s)) page
 ORDER BY id
 LIMIT %(n)s"""


def setup_b(conn: Connection) -> None:
    create_bench_table(conn)
    install_b(conn, TABLE)


def install_b(conn: Connection, table: str) -> None:
    """The prototype in ``B_SCHEMA``, its capture trigger on ``table`` (which exists) and the cursor."""
    execute(conn, pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Q(B_SCHEMA)))
    s = Q(B_SCHEMA)
    execute(
        conn,
        pgsql.SQL(B_INSTALL).format(
            s=s,
            last=pgsql.Literal(PARTITIONS - 1),
            generation=pgsql.Literal(f"{B_SCHEMA}.generation"),
            event_id=pgsql.Literal(f"{B_SCHEMA}.event_id"),
            table=pgsql.Identifier("public", table),
        ),
    )
    for gen in range(PARTITIONS):
        partition = pgsql.SQL(B_PARTITION).format(s=s, partition=Q(f"event_{gen}"), gen=pgsql.Literal(gen))
        execute(conn, partition)
    register_cursor(conn)


def sequence_value(conn: Connection) -> int:
    value = fetch_value(conn, "SELECT coalesce(pg_sequence_last_value(%s), 0)", (f"{B_SCHEMA}.event_id",))
    return int(value)


def register_cursor(conn: Connection) -> None:
    """The group's cursor starts now: N_D read before D; floors of D's open xids unknown (0)."""
    n_d = sequence_value(conn)
    d = str(fetch_value(conn, "SELECT pg_current_snapshot()::text"))
    xips = parse_snapshot(d)[2]
    statement = pgsql.SQL(
        "INSERT INTO {}.cursor (grp, d, n_d, floor_xids, floor_ids) VALUES ('default', %s, %s, %s, %s)"
    ).format(Q(B_SCHEMA))
    execute(conn, statement, (d, n_d, xid_array(xips), int_array([0] * len(xips))))


def switch_generation(conn: Connection) -> None:
    """Rotate: writers move to the next partition; record the snapshot taken after the setval."""
    old = int(fetch_value(conn, "SELECT pg_sequence_last_value(%s)", (f"{B_SCHEMA}.generation",)))
    # The next partition is empty here (maintenance truncates before switching to it).
    fetch_value(conn, "SELECT nextval(%s)", (f"{B_SCHEMA}.generation",))
    conn.commit()
    statement = pgsql.SQL(
        "INSERT INTO {}.switch (gen, s_sw) VALUES (%s, pg_current_snapshot())"
        " ON CONFLICT (gen) DO UPDATE SET s_sw = excluded.s_sw"
    ).format(Q(B_SCHEMA))
    with conn.cursor() as cur:
        cur.execute(statement, (old,))
    conn.commit()


def parse_snapshot(text: str) -> tuple[int, int, list[int]]:
    """``xmin:xmax:xip,...`` as numbers."""
    xmin, xmax, xip = text.split(":")
    return int(xmin), int(xmax), [int(x) for x in xip.split(",") if x]


def visible(xid: int, snapshot: tuple[int, int, list[int]]) -> bool:
    """``pg_visible_in_snapshot``: finished in the snapshot."""
    xmin, xmax, xip = snapshot
    return xid < xmin or (xid < xmax and xid not in xip)


def int_array(values: Sequence[int]) -> str:
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def xid_array(values: Sequence[int]) -> str:
    return int_array(values)


@dataclass
class Window:
    d: str
    n_d: int
    floors: dict[int, int]
    o: str | None = None
    n_o: int = 0
    w: int = 0
    late: list[int] = field(default_factory=list)


class ReaderB:
    """One cursor (one group, one lease row): pages through windows ``(D, O]``, acks by moving the cursor."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        s = Q(B_SCHEMA)
        columns = pgsql.SQL(B_COLUMNS)
        self.page_new = pgsql.SQL(B_PAGE_NEW).format(columns=columns, s=s)
        self.page_late = pgsql.SQL(B_PAGE_LATE).format(columns=columns, s=s)
        self.ack = pgsql.SQL("UPDATE {}.cursor SET w = %s WHERE grp = 'default'").format(s)
        self.open_sql = pgsql.SQL(
            "UPDATE {}.cursor SET o = %s, n_o = %s, w = 0 WHERE grp = 'default'"
        ).format(s)
        self.close_sql = pgsql.SQL(
            "UPDATE {}.cursor SET d = o, n_d = n_o, floor_xids = %s, floor_ids = %s, o = NULL, n_o = NULL,"
            " w = 0 WHERE grp = 'default'"
        ).format(s)
        with conn.cursor() as cur:
            cur.execute(
                pgsql.SQL(
                    "SELECT d::text, n_d, floor_xids::text[], floor_ids, o::text, n_o, w"
                    " FROM {}.cursor WHERE grp = 'default'"
                ).format(s)
            )
            row = cur.fetchone()
        assert row is not None
        d, n_d, floor_xids, floor_ids, o, n_o, w = row
        self.window = Window(d, n_d, {int(x): int(f) for x, f in zip(floor_xids, floor_ids, strict=True)})
        if o is not None:
            self.window.o, self.window.n_o, self.window.w = o, n_o, w
            self._late()
        self.truncated: list[int] = []

    def _late(self) -> None:
        window = self.window
        assert window.o is not None
        o = parse_snapshot(window.o)
        window.late = sorted(x for x in window.floors if visible(x, o))

    def open(self) -> bool:
        """Take O (N_O read first, in its own statement); False when nothing finished since D."""
        window = self.window
        n_o = sequence_value(self.conn)
        o = str(fetch_value(self.conn, "SELECT pg_current_snapshot()::text"))
        if o == window.d:
            return False
        window.o, window.n_o, window.w = o, n_o, 0
        self._late()
        execute(self.conn, self.open_sql, (o, n_o))
        return True

    def close(self) -> None:
        """D := O; floors: kept for xids still open that were open in D, else the old N_D."""
        window = self.window
        assert window.o is not None
        xips = parse_snapshot(window.o)[2]
        floors = {x: window.floors.get(x, window.n_d) for x in xips}
        execute(self.conn, self.close_sql, (xid_array(list(floors)), int_array(list(floors.values()))))
        self.window = Window(window.o, window.n_o, floors)
        self.maintain()

    def maintain(self) -> None:
        """Reclaim: TRUNCATE each partition switched away from whose writers D sees all finished."""
        xmin = parse_snapshot(self.window.d)[0]
        current = int(
            fetch_value(self.conn, "SELECT pg_sequence_last_value(%s)", (f"{B_SCHEMA}.generation",))
        )
        with self.conn.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT gen, s_sw::text FROM {}.switch").format(Q(B_SCHEMA)))
            switches = cur.fetchall()
        for gen, s_sw in switches:
            if gen != current and xmin >= parse_snapshot(s_sw)[1]:
                execute(
                    self.conn,
                    pgsql.SQL("TRUNCATE {}.{}; DELETE FROM {}.switch WHERE gen = %s").format(
                        Q(B_SCHEMA), Q(f"event_{gen}"), Q(B_SCHEMA)
                    ),
                    (gen,),
                )
                self.truncated.append(gen)

    def page(self, deliver: Callable[[list[ClaimRow]], None]) -> int:
        window = self.window
        if window.o is None and not self.open():
            return 0
        window = self.window
        params: dict[str, Any] = {"w": window.w, "n_d": window.n_d, "o": window.o, "d": window.d, "n": PAGE}
        statement = self.page_new
        if window.late:
            statement = self.page_late
            params["late"] = xid_array(window.late)
            params["late_floor"] = min(window.floors[x] for x in window.late)
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            rows = list(map(by_name(cur, ClaimRow), cur.fetchall()))
        if rows:
            deliver(rows)
            window.w = rows[-1].id
            execute(self.conn, self.ack, (window.w,))
        if len(rows) < PAGE:
            self.close()
        return len(rows)

    def finish(self) -> None:
        """Close the last window and reclaim (part of the timed drain)."""
        if self.window.o is not None:
            self.page(lambda rows: None)

    def catch_up(self, deliver: Callable[[list[ClaimRow]], None]) -> None:
        """Deliver windows until one opened now holds nothing."""
        while True:
            if self.window.o is None and not self.open():
                return
            delivered = 0
            while self.window.o is not None:
                delivered += self.page(deliver)
            if not delivered:
                return


# --- the drain -----------------------------------------------------------------------


@dataclass
class Drain:
    seconds: float
    first: float
    ids: list[int]


def drain(url: URL, make_reader: Callable[[Connection], ReaderA | ReaderB], expect: int, out: Path) -> Drain:
    """From reader start (connect) until ``expect`` events reached the file, then ``finish``."""
    start = time.perf_counter()
    conn = connect(url)  # autocommit: each claim, page or acknowledgement is its own transaction
    reader = make_reader(conn)
    handled = 0
    first = 0.0
    ids: list[int] = []
    with out.open("w", buffering=1, encoding="utf-8") as sink:

        def deliver(rows: list[ClaimRow]) -> None:
            write(sink, rows, ids)

        while handled < expect:
            got = reader.page(deliver)
            if got and not first:
                first = time.perf_counter() - start
            handled += got
            if time.perf_counter() - start > 600:
                raise RuntimeError(f"drain stalled at {handled} of {expect}")
        reader.finish()
    seconds = time.perf_counter() - start
    conn.close()
    return Drain(seconds, first, ids)


def write(sink: IO[str], rows: list[ClaimRow], ids: list[int]) -> None:
    """The callback: one JSON line per event, after the same decoding as the worker's."""
    for claim in EventQueue.claims_from_rows(rows):
        event = claim.event
        sink.write(json.dumps({"id": event.id, "pk": event.pk}) + "\n")
        assert event.id is not None
        ids.append(event.id)


# --- statistics ------------------------------------------------------------------------


@dataclass
class TableStats:
    dead: int
    made: int
    size: int
    analyzed: bool


def table_stats(conn: Connection, schema: str, counter: str, expect: int) -> TableStats:
    """n_dead_tup, dead versions made (upd + del) and total size of ``schema``'s tables.

    Waits (``STATS_TIMEOUT``) until ``counter`` summed over them reaches
    ``expect``: other backends flush their statistics lazily.
    """
    statement = pgsql.SQL(
        "SELECT coalesce(sum(n_dead_tup), 0), coalesce(sum(n_tup_upd + n_tup_del), 0),"
        " coalesce(sum(pg_total_relation_size(relid)), 0),"
        " bool_or(last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL),"
        " coalesce(sum({}), 0) FROM pg_stat_user_tables WHERE schemaname = %s"
    ).format(Q(counter))
    deadline = time.monotonic() + STATS_TIMEOUT
    while True:
        execute(conn, "SELECT pg_stat_clear_snapshot()")
        with conn.cursor() as cur:
            cur.execute(statement, (schema,))
            row = cur.fetchone()
        assert row is not None
        if int(row[4]) >= expect or time.monotonic() > deadline:
            if int(row[4]) < expect:
                progress(f"  warning: {schema} statistics show {row[4]} {counter}, expected {expect}")
            return TableStats(int(row[0]), int(row[1]), int(row[2]), bool(row[3]))
        time.sleep(0.05)


# --- one run ---------------------------------------------------------------------------


@dataclass
class Run:
    design: str
    shape: str
    events: int
    rate: float
    first_ms: float
    stats: TableStats
    checkpoints: int


def run_once(url: URL, design: str, shape: str, events: int, hold: bool, workdir: Path) -> Run:
    admin = connect(url)
    try:
        if design == "A":
            setup_a(admin)
            write_backlog(url, events)
            make: Callable[[Connection], ReaderA | ReaderB] = ReaderA
            counter, schema = "n_tup_del", A_SCHEMA
        else:
            setup_b(admin)

            def rotate(conn: Connection, number: int) -> None:
                if number == WRITE_TRANSACTIONS // 2:
                    switch_generation(conn)

            write_backlog(url, events, rotate)
            make = ReaderB
            counter, schema = "n_tup_ins", B_SCHEMA
        # The previous run's and the backlog's dirty buffers are written now, not during the drain.
        execute(admin, "CHECKPOINT")
        holder: Connection | None = None
        if hold:
            holder = psycopg2.connect(libpq_dsn(url))
            holder.set_session(isolation_level="REPEATABLE READ")
            fetch_value(holder, "SELECT count(*) FROM pg_class")
            xmin = fetch_value(
                admin, "SELECT backend_xmin FROM pg_stat_activity WHERE pid = %s", (holder.info.backend_pid,)
            )
            assert xmin is not None, "the held transaction has no xmin"
        checkpoints = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        before = int(fetch_value(admin, checkpoints))
        result = drain(url, make, events, workdir / f"{design}-{shape}.jsonl")
        during = int(fetch_value(admin, checkpoints)) - before
        if len(set(result.ids)) != events or len(result.ids) != events:
            raise AssertionError(
                f"{design} {shape}: {len(result.ids)} delivered, {len(set(result.ids))} distinct"
            )
        stats = table_stats(admin, schema, counter, events)
        if design == "B":
            # Reclaimed by TRUNCATE inside the timed drain: the first half's partition is empty.
            left = [
                int(fetch_value(admin, pgsql.SQL("SELECT count(*) FROM {}.{}").format(Q(B_SCHEMA), Q(name))))
                for name in ("event_0", "event_1")
            ]
            assert left[0] == 0 and left[1] > 0, f"partitions 0 and 1 hold {left} rows: not reclaimed"
        if holder is not None:
            holder.rollback()
            holder.close()
        return Run(design, shape, events, events / result.seconds, result.first * 1000, stats, during)
    finally:
        admin.close()


# --- correctness of B: a transaction that commits late -------------------------------------


def late_commit_check(url: URL, workdir: Path) -> str:
    admin = connect(url)
    setup_b(admin)
    insert = pgsql.SQL("INSERT INTO {} (n) SELECT generate_series(1, %s)").format(Q(TABLE))
    late = psycopg2.connect(libpq_dsn(url))
    writer = connect(url)
    reader_conn = connect(url)
    reader = ReaderB(reader_conn)
    delivered: list[int] = []

    def deliver(rows: list[ClaimRow]) -> None:
        delivered.extend(row.id for row in rows)

    def drain_all() -> None:
        reader.catch_up(deliver)

    try:
        with late.cursor() as cur:
            cur.execute(insert, (100,))
        late_ids = set(fetch_ids(late))
        for _ in range(5):
            execute(writer, insert, (100,))
        drain_all()
        assert len(delivered) == 500, f"{len(delivered)} delivered while the late transaction is open"
        assert not late_ids & set(delivered), "an open transaction's events were delivered"
        low = min(late_ids) < min(delivered)
        late.commit()
        execute(writer, insert, (100,))
        drain_all()
        total = int(fetch_value(admin, pgsql.SQL("SELECT count(*) FROM {}.event").format(Q(B_SCHEMA))))
        assert total == 700, total
        assert len(delivered) == 700 and len(set(delivered)) == 700, "not exactly once"
        assert late_ids <= set(delivered), "the late transaction's events were skipped"
    finally:
        late.close()
        writer.close()
        reader_conn.close()
        admin.close()
    return (
        "passed: 100 events of a transaction opened first"
        f" (ids {'below' if low else 'not below'} the 500 delivered while it stayed open) arrived after its"
        " commit; 700 of 700 events delivered, each once"
    )


def fetch_ids(late: Connection) -> list[int]:
    """The ids the late transaction wrote (visible to itself only)."""
    with late.cursor() as cur:
        cur.execute(
            pgsql.SQL("SELECT id FROM {}.event WHERE txid = pg_current_xact_id()").format(Q(B_SCHEMA))
        )
        return [int(r[0]) for r in cur.fetchall()]


# --- report --------------------------------------------------------------------------------


def spread(values: Sequence[float], digits: int = 0) -> str:
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(
    runs: list[Run],
    sizes: dict[str, int],
    rounds: int,
    machine: Machine,
    load: tuple[float, float],
    check: str,
    autovacuum: str,
    order: list[str],
) -> str:
    def pick(design: str, shape: str) -> list[Run]:
        return [r for r in runs if r.design == design and r.shape == shape]

    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {rounds} rounds;"
        f" order {' '.join(order)}.",
        "",
        *machine.lines(load),
        f"- server autovacuum = {autovacuum}; page/claim size {PAGE}; one reader in the benchmark process;"
        f" backlog in {WRITE_TRANSACTIONS} transactions, never ANALYZEd"
        f" (analyzed: {any(r.stats.analyzed for r in runs)})",
        "",
        "| measurement | A: artifact 4 job table | B: log + cursor prototype | B / A |",
        "| --- | --- | --- | --- |",
    ]

    def row(label: str, shape: str, get: Callable[[Run], float], digits: int = 0) -> None:
        a = [get(r) for r in pick("A", shape)]
        b = [get(r) for r in pick("B", shape)]
        ratio = statistics.median(b) / statistics.median(a) if statistics.median(a) else float("nan")
        lines.append(f"| {label} | {spread(a, digits)} | {spread(b, digits)} | {ratio:.2f} |")

    d, t = sizes["drain"], sizes["dead"]
    row(f"drain {d:,} events, events/s from reader start", "drain", lambda r: r.rate)
    row("  time to first event, ms", "drain", lambda r: r.first_ms, 1)
    row(f"drain {d:,} under a held REPEATABLE READ, events/s", "held", lambda r: r.rate)
    for design in ("A", "B"):
        free = [r.rate for r in pick(design, "drain")]
        held = [r.rate for r in pick(design, "held")]
        pairs = [h / f for h, f in zip(held, free, strict=True)]
        lines.append(
            f"| {design}: held / free rate, per round (median) | "
            + ", ".join(f"{p:.2f}" for p in pairs)
            + f" ({statistics.median(pairs):.2f}) | | |"
        )
    row(f"n_dead_tup after draining {d:,} under the held snapshot", "held", lambda r: r.stats.dead)
    row(f"drain {t:,} events, events/s", "dead", lambda r: r.rate)
    row(f"n_dead_tup after draining {t:,}", "dead", lambda r: r.stats.dead)
    row(f"dead versions made (n_tup_upd + n_tup_del) for {t:,}", "dead", lambda r: r.stats.made)
    row(f"size of log + bookkeeping tables after {t:,}, MB", "dead", lambda r: r.stats.size / 1e6, 1)
    lines += [
        "",
        f"B late-commit check: {check}.",
        "",
        f"A CHECKPOINT precedes each drain; checkpoints during drains: {sum(r.checkpoints for r in runs)}.",
        "",
        "A's tables: pgevents.* (event, processed, dead_letter, sleeper); B's: pglog.* (4 partitions,"
        " cursor, switch). B's writers switch partition after 10 of the 20 transactions; the reader"
        " truncates the old one when its cursor passes the switch (inside the timed drain).",
    ]
    return "\n".join(lines) + "\n"


# --- write overhead -------------------------------------------------------------------

W_NONE = wo.Variant("none", "none")
W_A = wo.Variant("a", "A: artifact 4 trigger, no sleeper", event_schema=A_SCHEMA)
W_B = wo.Variant("b", "B: log prototype trigger", event_schema=B_SCHEMA)
W_VARIANTS = (W_NONE, W_A, W_B)
W_WORKLOADS = (wo.SINGLE, wo.BATCH, wo.CONCURRENT)
W_SIZES = wo.Sizes(
    single_rows=2000, statements=50, rows_per_statement=1000, pgbench_seconds=8, pgbench_runs=1
)
W_QUICK = wo.Sizes(single_rows=200, statements=5, rows_per_statement=1000, pgbench_seconds=1, pgbench_runs=1)


class WriteBench(wo.Bench):
    """write_overhead's ``Bench`` with this file's tables: TRUNCATE them and both logs, then CHECKPOINT."""

    def reset(self) -> None:
        tables = [Q(v.table) for v in self.variants] + [pgsql.Identifier(A_SCHEMA, "event")]
        tables.append(pgsql.Identifier(B_SCHEMA, "event"))
        execute(self.conn, pgsql.SQL("TRUNCATE {}").format(pgsql.SQL(", ").join(tables)))
        execute(self.conn, "CHECKPOINT")


def setup_write(conn: Connection) -> None:
    """Three identical uuid-keyed tables with write_overhead's columns; A's and B's triggers on two."""
    for variant in W_VARIANTS:
        execute(conn, pgsql.SQL("DROP TABLE IF EXISTS {}").format(Q(variant.table)))
        execute(
            conn,
            pgsql.SQL(
                "CREATE TABLE {} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL,"
                " name text NOT NULL, n int NOT NULL) WITH (autovacuum_enabled = off)"
            ).format(Q(variant.table)),
        )
    install_a(conn, W_A.table)
    install_b(conn, W_B.table)
    # Each variant captures exactly its own writes, and A has no sleeper (no wake-up NOTIFY).
    for variant in W_VARIANTS:
        execute(conn, wo.insert_statement(variant.table), ("check@example.com", "check", 0))
    logged = {
        schema: int(fetch_value(conn, pgsql.SQL("SELECT count(*) FROM {}.event").format(Q(schema))))
        for schema in (A_SCHEMA, B_SCHEMA)
    }
    sleepers = int(fetch_value(conn, pgsql.SQL("SELECT count(*) FROM {}.sleeper").format(Q(A_SCHEMA))))
    if logged != {A_SCHEMA: 1, B_SCHEMA: 1} or sleepers:
        raise RuntimeError(f"write variants not set up as intended: logged {logged}, sleepers {sleepers}")


def describe_triggers(conn: Connection) -> str:
    """Which trigger functions run on A's and B's tables."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, t.tgfoid::regproc::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relname = ANY(%s) AND NOT t.tgisinternal ORDER BY 1, 2",
            ([W_A.table, W_B.table],),
        )
        return "; ".join(f"{table}: {function}()" for table, function in cur.fetchall())


def measure_write(
    url: URL, workdir: Path, sizes: wo.Sizes, rounds: int
) -> tuple[wo.Results, str, tuple[wo.Workload, ...]]:
    """write_overhead's rounds over none, A and B; the results, the triggers measured, the workloads run."""
    pgbench = wo.find_pgbench()
    workloads = W_WORKLOADS if pgbench else tuple(w for w in W_WORKLOADS if not w.throughput)
    conn = connect(url)
    try:
        setup_write(conn)
        triggers = describe_triggers(conn)
        bench = WriteBench(url, conn, sizes, W_VARIANTS, workdir, pgbench)
        results = wo.run_rounds(bench, workloads, rounds)
    finally:
        conn.close()
    return results, f"{triggers}; pgbench: {wo.describe_pgbench(pgbench)}", workloads


def write_report(
    results: wo.Results, sizes: wo.Sizes, rounds: int, described: str, workloads: Sequence[wo.Workload]
) -> str:
    lines = [
        f"Write overhead, {rounds} rounds; {described}.",
        f"One sample: {sizes.single_rows:,} single-row autocommit INSERTs from one connection;"
        f" {sizes.statements} INSERT ... SELECT generate_series statements"
        f" of {sizes.rows_per_statement:,} rows;"
        f" {sizes.pgbench_runs} x `pgbench -n -c {sizes.pgbench_clients} -j {sizes.pgbench_threads}"
        f" -T {sizes.pgbench_seconds}` of single-row INSERTs per variant. TRUNCATE + CHECKPOINT before each"
        " sample; variants in turn statement by statement (pgbench: run by run), order reversed every other"
        " round. Ratio: variant time / none time of the same round (pgbench: none TPS / variant TPS),"
        " higher is slower.",
        "",
        "| workload | variant | value (median) | ratio median | min | max | B / A per round (median) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workload in workloads:
        for variant in W_VARIANTS:
            values = results.values[(workload.key, variant.key)]
            ratios = results.ratios[(workload.key, variant.key)]
            versus = ""
            if variant is W_B:
                pairs = [b / a for a, b in zip(results.ratios[(workload.key, W_A.key)], ratios, strict=True)]
                versus = ", ".join(f"{x:.2f}" for x in pairs) + f" ({statistics.median(pairs):.2f})"
            cells = [
                workload.label,
                variant.label,
                wo.format_value(workload, statistics.median(values)),
                f"**{statistics.median(ratios):.2f}x**",
                f"{min(ratios):.2f}x",
                f"{max(ratios):.2f}x",
                versus,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.log_prototypes", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="2,000 / 8,000 events, small writes (under 30 s)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of A B per drain shape (default 2)")
    parser.add_argument(
        "--only", choices=("drain", "write"), default=None, help="only the drains, or only the write overhead"
    )
    parser.add_argument(
        "--write-rounds", type=int, default=None, help="write-overhead rounds (default 3, 1 with --quick)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    write_rounds = wo_rounds(parser, args)
    sizes = {"drain": 2_000, "dead": 8_000} if args.quick else {"drain": 50_000, "dead": 200_000}
    given = list(sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()[0]
    out: list[str] = []
    with scratch() as (_admin_url, url, server, workdir):
        conn = connect(url)
        machine = Machine.read(conn, server, given, "python -m benchmarks.log_prototypes")
        autovacuum = str(fetch_value(conn, "SHOW autovacuum"))
        conn.close()
        if args.only != "write":
            runs: list[Run] = []
            order: list[str] = []
            for number in range(args.rounds):
                for shape, hold in (("drain", False), ("held", True), ("dead", False)):
                    events = sizes["dead" if shape == "dead" else "drain"]
                    for design in ("A", "B"):
                        run = run_once(url, design, shape, events, hold, workdir)
                        order.append(f"{design}:{shape}")
                        progress(
                            f"round {number + 1} {design} {shape}: {run.rate:,.0f} events/s,"
                            f" first {run.first_ms:.0f} ms, dead {run.stats.dead}, made {run.stats.made},"
                            f" {run.stats.size / 1e6:.1f} MB, checkpoints during the drain {run.checkpoints}"
                        )
                        runs.append(run)
            check = late_commit_check(url, workdir)
            progress(f"B late-commit check {check}")
        if args.only != "drain":
            write_sizes = W_QUICK if args.quick else W_SIZES
            results, described, workloads = measure_write(url, workdir, write_sizes, write_rounds)
    load_after = os.getloadavg()[0]
    load = (load_before, load_after)
    if args.only != "write":
        out.append(report(runs, sizes, args.rounds, machine, load, check, autovacuum, order))
    if args.only != "drain":
        if args.only == "write":
            out.append(
                "\n".join(
                    [f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "", *machine.lines(load)]
                )
                + f"\n- server autovacuum = {autovacuum}\n"
            )
        out.append(write_report(results, write_sizes, write_rounds, described, workloads))
    print("\n".join(out), end="")
    return 0


def wo_rounds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--write-rounds``, by default 3 (1 with ``--quick``)."""
    rounds: int | None = args.write_rounds
    if rounds is None:
        rounds = 1 if args.quick else 3
    if rounds < 1:
        parser.error("--write-rounds must be at least 1")
    return rounds


if __name__ == "__main__":
    raise SystemExit(main())
