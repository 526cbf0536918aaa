"""What the capture trigger records, against a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg2
import pytest

from alembic_ops import CURRENT_VERSION
from pgevents_migrate.queue import EventQueue
from tests.apps import JOB_TABLE_VERSION
from tests.pg import Listener, RunOps, events, execute, fetch, sleeper_flag, wait_for


@pytest.fixture
def capture(run_ops: RunOps, dsn: str, request: pytest.FixtureRequest) -> Callable[..., None]:
    """Install the artifact, create a table from ``ddl``, and put triggers on it.

    The current artifact, or the one a ``@pytest.mark.artifact(version)`` names.
    """
    marker = request.node.get_closest_marker("artifact")
    version = int(marker.args[0]) if marker is not None else CURRENT_VERSION
    run_ops(lambda op: op.install_pgevents(version=version))

    def make(ddl: str, table: str, **options: Any) -> None:
        execute(dsn, ddl)
        run_ops(lambda op: op.create_pgevent_trigger(table, **options, version=version))

    return make


def test_insert_update_delete_with_integer_key(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE users (id serial PRIMARY KEY, email text, name text)", "users")
    execute(dsn, "INSERT INTO users (email, name) VALUES ('a@x', 'A'), ('b@x', 'B')")
    execute(dsn, "UPDATE users SET name = 'AA' WHERE id = 1")
    execute(dsn, "DELETE FROM users WHERE id = 2")
    got = [(e["op"], e["schema_name"], e["table_name"], e["pk"], e["changed"]) for e in events(dsn)]
    assert got == [
        ("insert", "public", "users", {"id": 1}, None),
        ("insert", "public", "users", {"id": 2}, None),
        ("update", "public", "users", {"id": 1}, None),
        ("delete", "public", "users", {"id": 2}, None),
    ]
    # Without images (or a column filter) only keys are stored: updates cost what inserts do.
    assert all(e["old"] is None and e["new"] is None for e in events(dsn))


def test_event_records_transaction_and_time(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1), (2)")
        cur.execute("SELECT pg_current_xact_id()::text")
        (txid,) = cur.fetchone()  # type: ignore[misc]
    conn.close()
    execute(dsn, "INSERT INTO t VALUES (3)")
    rows = fetch(
        dsn,
        "SELECT txid::text, created_at IS NOT NULL, tableoid::regclass::text, gen"
        " FROM pgevents.event ORDER BY id",
    )
    # Written to the partition writers append to (the first, on a fresh log).
    assert rows[0] == rows[1] == (txid, True, "pgevents.event_0", 0)
    assert rows[2][0] != txid


def test_txid_cursor_never_skips_a_late_commit(capture: Callable[..., None], dsn: str) -> None:
    """The documented stable read: (txid, id) below the oldest running transaction."""
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    stable = (
        "SELECT (pk ->> 'id')::int FROM pgevents.event"
        " WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, id"
    )
    early = psycopg2.connect(dsn)
    try:
        with early.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")  # event id 1, the older transaction
        execute(dsn, "INSERT INTO t VALUES (2)")  # event id 2, committed first
        # An id cursor would read event 2 now and skip event 1 later; the stable read waits.
        assert fetch(dsn, "SELECT count(*) FROM pgevents.event") == [(1,)]
        assert fetch(dsn, stable) == []
        early.commit()
    finally:
        early.close()
    # Transactions of other databases on a shared server can hold the horizon back a moment.
    wait_for(lambda: len(fetch(dsn, stable)) == 2, timeout=30)
    assert fetch(dsn, stable) == [(1,), (2,)]


@pytest.mark.parametrize(
    ("ddl", "insert", "expected_pk"),
    [
        (
            "CREATE TABLE t (tenant text, n int, v text, PRIMARY KEY (tenant, n))",
            "INSERT INTO t VALUES ('a', 2, 'x')",
            {"tenant": "a", "n": 2},
        ),
        (
            "CREATE TABLE t (id uuid PRIMARY KEY, v text)",
            "INSERT INTO t VALUES ('6f1c1f0e-4a0c-4e53-9a53-8d3f0b1b2c3d', 'x')",
            {"id": "6f1c1f0e-4a0c-4e53-9a53-8d3f0b1b2c3d"},
        ),
        (
            "CREATE TABLE t (code text PRIMARY KEY, v text)",
            "INSERT INTO t VALUES ('it''s', 'x')",
            {"code": "it's"},
        ),
        (
            # Key columns in a different order than the table's columns.
            "CREATE TABLE t (a int, b int, v text, PRIMARY KEY (b, a))",
            "INSERT INTO t VALUES (1, 2, 'x')",
            {"b": 2, "a": 1},
        ),
    ],
    ids=["composite", "uuid", "text", "reordered"],
)
def test_primary_key_shapes(
    capture: Callable[..., None], dsn: str, ddl: str, insert: str, expected_pk: dict[str, Any]
) -> None:
    capture(ddl, "t")
    execute(dsn, insert, "UPDATE t SET v = 'y'", "DELETE FROM t")
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [
        ("insert", expected_pk),
        ("update", expected_pk),
        ("delete", expected_pk),
    ]


@pytest.mark.parametrize(
    "key_type, value",
    [
        ("bigint", "9007199254740993"),
        ("numeric", "1.50"),
        ("uuid", "'0b5e7bd2-5a47-4c1c-9a3f-2f1ad1d0c6a1'"),
        ("text", "'a \"quoted\", é \\ key'"),
        ("timestamptz", "'2026-11-29 12:00:00.5+00'"),
        ("double precision", "1e300"),
    ],
)
def test_broadcast_and_queue_give_the_same_key_values(
    run_ops: RunOps, dsn: str, key_type: str, value: str
) -> None:
    """Generated functions write queue keys as jsonb and broadcast keys as JSON text: same values."""
    execute(dsn, f"CREATE TABLE q (k {key_type} PRIMARY KEY)", f"CREATE TABLE b (k {key_type} PRIMARY KEY)")
    run_ops(
        lambda op: (
            op.install_pgevents(version=CURRENT_VERSION),
            op.create_pgevent_trigger("q", events="insert", version=CURRENT_VERSION),
            op.create_pgevent_trigger("b", events="insert", delivery="broadcast", version=CURRENT_VERSION),
        )
    )
    listener = Listener(dsn, "pgevents_broadcast")
    try:
        execute(dsn, f"INSERT INTO q VALUES ({value})", f"INSERT INTO b VALUES ({value})")
        (notify,) = wait_for(lambda: listener.poll(0.1) and listener.received)
    finally:
        listener.close()
    (queued,) = events(dsn)
    assert json.loads(notify.payload)["pks"] == [queued["pk"]]


def test_images_and_changed_columns(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, a int, b text)", "t", images=True)
    execute(dsn, "INSERT INTO t VALUES (1, 10, 'x')")
    execute(dsn, "UPDATE t SET a = 11, b = 'x'")
    execute(dsn, "DELETE FROM t")
    ins, upd, dele = events(dsn)
    assert ins["new"] == {"id": 1, "a": 10, "b": "x"} and ins["old"] is None
    assert upd["old"] == {"id": 1, "a": 10, "b": "x"}
    assert upd["new"] == {"id": 1, "a": 11, "b": "x"}
    assert upd["changed"] == ["a"]
    assert dele["old"] == {"id": 1, "a": 11, "b": "x"} and dele["new"] is None


def test_update_that_changes_the_primary_key(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, a int)", "t", events=["update"], images=True)
    execute(dsn, "INSERT INTO t VALUES (1, 10)")
    execute(dsn, "UPDATE t SET id = 2")
    (event,) = events(dsn)
    assert event["pk"] == {"id": 2}
    assert event["changed"] == ["a", "id"]


def test_update_column_filter(capture: Callable[..., None], dsn: str) -> None:
    capture(
        "CREATE TABLE t (id int PRIMARY KEY, email text, name text)",
        "t",
        events=["insert", "update"],
        columns=["email"],
    )
    execute(dsn, "INSERT INTO t VALUES (1, 'a', 'A'), (2, 'b', 'B')")
    execute(dsn, "UPDATE t SET name = 'Z'")  # filtered out
    execute(dsn, "UPDATE t SET email = 'c' WHERE id = 2")
    execute(dsn, "UPDATE t SET email = email")  # no change: filtered out
    assert [(e["op"], e["pk"], e["changed"]) for e in events(dsn)] == [
        ("insert", {"id": 1}, None),
        ("insert", {"id": 2}, None),
        ("update", {"id": 2}, ["email"]),
    ]


def test_update_without_filter_records_no_op_updates(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, a int)", "t", events="update", images=True)
    execute(dsn, "INSERT INTO t VALUES (1, 1)", "UPDATE t SET a = a")
    assert [(e["op"], e["changed"]) for e in events(dsn)] == [("update", [])]


def test_only_declared_events_are_captured(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, a int)", "t", events=["delete"])
    execute(dsn, "INSERT INTO t VALUES (1, 1)", "UPDATE t SET a = 2", "DELETE FROM t")
    assert [e["op"] for e in events(dsn)] == ["delete"]


def test_rolled_back_transaction_and_savepoint_leave_no_events(
    capture: Callable[..., None], dsn: str
) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2)")
        cur.execute("SAVEPOINT s")
        cur.execute("INSERT INTO t VALUES (3)")
        cur.execute("ROLLBACK TO SAVEPOINT s")
    conn.commit()
    conn.close()
    assert [e["pk"] for e in events(dsn)] == [{"id": 2}]


def test_suppression_switch_is_transaction_scoped(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SET LOCAL pgevents.suppress = on")
        cur.execute("INSERT INTO t SELECT generate_series(1, 100)")
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1000)")
    conn.commit()
    conn.close()
    assert [e["pk"] for e in events(dsn)] == [{"id": 1000}]


def test_one_transaction_of_5000_rows_gives_5000_events(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for start in range(0, 5000, 500):
            cur.execute("INSERT INTO t SELECT generate_series(%s, %s)", (start + 1, start + 500))
    conn.close()
    assert fetch(dsn, "SELECT count(*), count(DISTINCT pk) FROM pgevents.event") == [(5000, 5000)]


def test_bulk_insert_of_100000_rows(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, v text)", "t")
    execute(dsn, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100000) g")
    assert fetch(
        dsn, "SELECT count(*), min((pk->>'id')::int), max((pk->>'id')::int) FROM pgevents.event"
    ) == [(100000, 1, 100000)]


@pytest.mark.parametrize("delivery", ["queue", "broadcast"])
def test_statements_of_many_rows_and_a_renamed_key(
    capture: Callable[..., None], run_ops: RunOps, dsn: str, delivery: str
) -> None:
    """Big statements are captured row for row; a key renamed behind the triggers'
    back fails the write by name (nothing is written) until they are re-created."""
    capture("CREATE TABLE t (id int PRIMARY KEY, v int)", "t", delivery=delivery)
    listener = Listener(dsn, "pgevents_broadcast")

    def captured(count: int) -> list[tuple[str, dict[str, Any]]]:
        if delivery == "queue":
            return [(e["op"], e["pk"]) for e in events(dsn)]
        payloads = [
            json.loads(n.payload)
            for n in wait_for(lambda: len(listener.poll(0.1)) >= count and listener.received)
        ]
        return [(p["op"], pk) for p in payloads for pk in p["pks"]]

    try:
        execute(dsn, "INSERT INTO t SELECT g, 0 FROM generate_series(1, 60) g")
        execute(dsn, "UPDATE t SET v = 1 WHERE id <= 55")
        execute(dsn, "DELETE FROM t WHERE id > 5")
        execute(dsn, "ALTER TABLE t RENAME COLUMN id TO ident")
        with pytest.raises(psycopg2.errors.UndefinedColumn, match="capture_t_insert"):
            execute(dsn, "INSERT INTO t SELECT g, 0 FROM generate_series(101, 160) g")
        assert fetch(dsn, "SELECT count(*) FROM t") == [(5,)]
        # What `flask db migrate` writes for the drifted key: new triggers.
        run_ops(
            lambda op: (
                op.drop_pgevent_trigger("t", delivery=delivery, version=CURRENT_VERSION),
                op.create_pgevent_trigger("t", delivery=delivery, version=CURRENT_VERSION),
            )
        )
        execute(dsn, "INSERT INTO t SELECT g, 0 FROM generate_series(101, 160) g")
        rows = captured(4)
    finally:
        listener.close()
    ids = [(op, pk.get("id", pk.get("ident"))) for op, pk in rows]
    assert sorted(ids[:60]) == [("insert", i) for i in range(1, 61)]
    assert sorted(ids[60:115]) == [("update", i) for i in range(1, 56)]
    assert sorted(ids[115:170]) == [("delete", i) for i in range(6, 61)]
    assert [pk for _, pk in rows[170:]] == [{"ident": i} for i in range(101, 161)]


def test_one_megabyte_row_with_images(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY, body text)", "t", images=True)
    execute(dsn, "INSERT INTO t VALUES (1, repeat('x', 1024 * 1024))")
    execute(dsn, "UPDATE t SET body = repeat('y', 1024 * 1024)")
    rows = fetch(dsn, "SELECT op, length(new->>'body') FROM pgevents.event ORDER BY id")
    assert rows == [("insert", 1024 * 1024), ("update", 1024 * 1024)]


def test_hostile_and_mixed_case_names(run_ops: RunOps, dsn: str) -> None:
    schema, table, column = "Billing", 'x"; DROP TABLE users; --', "it's %s :name"
    execute(dsn, "CREATE TABLE users (id int PRIMARY KEY)")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        ident = psycopg2.sql.Identifier
        cur.execute(psycopg2.sql.SQL("CREATE SCHEMA {}").format(ident(schema)))
        cur.execute(
            psycopg2.sql.SQL("CREATE TABLE {}.{} (id int PRIMARY KEY, {} int)").format(
                ident(schema), ident(table), ident(column)
            )
        )
    conn.close()
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    run_ops(
        lambda op: op.create_pgevent_trigger(table, schema=schema, columns=[column], version=CURRENT_VERSION)
    )
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        target = psycopg2.sql.SQL("{}.{}").format(
            psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(table)
        )
        cur.execute(psycopg2.sql.SQL("INSERT INTO {} VALUES (1, 1)").format(target))
        cur.execute(psycopg2.sql.SQL("UPDATE {} SET {} = 2").format(target, psycopg2.sql.Identifier(column)))
    conn.close()
    assert [(e["op"], e["schema_name"], e["table_name"], e["changed"]) for e in events(dsn)] == [
        ("insert", schema, table, None),
        ("update", schema, table, [column]),
    ]
    assert fetch(dsn, "SELECT count(*) FROM users") == [(0,)]  # still there


@pytest.mark.parametrize("delivery", ["queue", "broadcast"])
def test_hostile_key_column_in_a_generated_capture_function(run_ops: RunOps, dsn: str, delivery: str) -> None:
    """The key column and table names reach the generated function's static SQL quoted."""
    table, key = "t$body$'; --", "k\"$body$'); DROP TABLE users; --"
    ident = psycopg2.sql.Identifier
    execute(dsn, "CREATE TABLE users (id int PRIMARY KEY)")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            psycopg2.sql.SQL("CREATE TABLE {} ({} text PRIMARY KEY)").format(ident(table), ident(key))
        )
    conn.close()
    run_ops(
        lambda op: (
            op.install_pgevents(version=CURRENT_VERSION),
            op.create_pgevent_trigger(table, delivery=delivery, version=CURRENT_VERSION),
        )
    )
    assert fetch(dsn, "SELECT proname FROM pg_proc WHERE proname LIKE 'capture_%' ORDER BY 1") == [
        (f"capture_{table}_{event}",) for event in ("delete", "insert", "update")
    ]
    listener = Listener(dsn, "pgevents_broadcast")
    try:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(psycopg2.sql.SQL("INSERT INTO {} VALUES ('a''b'), ('$x$')").format(ident(table)))
        conn.close()
        if delivery == "queue":
            keys = [e["pk"] for e in events(dsn)]
        else:
            (notify,) = wait_for(lambda: listener.poll(0.1) and listener.received)
            keys = json.loads(notify.payload)["pks"]
    finally:
        listener.close()
    assert keys == [{key: "a'b"}, {key: "$x$"}]
    assert fetch(dsn, "SELECT count(*) FROM users") == [(0,)]  # still there


def test_table_without_primary_key_is_rejected_by_name(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, 'CREATE SCHEMA "Billing"', 'CREATE TABLE "Billing"."Log" (line text)')
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    with pytest.raises(Exception, match=r'pgevents: table "Billing"\."Log" has no primary key'):
        run_ops(lambda op: op.create_pgevent_trigger("Log", schema="Billing", version=CURRENT_VERSION))
    assert fetch(dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgevents%'") == [(0,)]


def test_capture_into_a_custom_event_schema(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    run_ops(lambda op: op.install_pgevents(schema="Audit_Events", version=CURRENT_VERSION))
    run_ops(
        lambda op: op.create_pgevent_trigger("t", pgevents_schema="Audit_Events", version=CURRENT_VERSION)
    )
    execute(dsn, "INSERT INTO t VALUES (7)")
    assert [e["pk"] for e in events(dsn, schema="Audit_Events")] == [{"id": 7}]
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgevents'") == [(0,)]


def _wakeups(listener: Listener, expect_any: bool) -> int:
    if expect_any:
        return len(wait_for(lambda: listener.poll(0.1)))
    # A NOTIFY is delivered at commit; give it a round trip to show up.
    return len(listener.poll(0.3))


def test_queue_wakes_a_listener_only_while_one_sleeps(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    listener = Listener(dsn, "pgevents")
    try:
        execute(dsn, "INSERT INTO t VALUES (1)")
        assert _wakeups(listener, expect_any=False) == 0  # nobody sleeps: no NOTIFY
        queue = EventQueue("pgevents")
        queue.sleep(listener.conn)  # what a worker does before it waits
        assert sleeper_flag(dsn) == 1
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO t SELECT generate_series(2, 1001)")
            cur.execute("INSERT INTO t VALUES (2000)")
        conn.close()
        # One wake-up for the whole transaction, whatever its size.
        assert _wakeups(listener, expect_any=True) == 1
        assert [n.payload for n in listener.received] == [""]
        queue.wake(listener.conn)
        assert sleeper_flag(dsn) == 0
        execute(dsn, "INSERT INTO t VALUES (3000)")
        assert _wakeups(listener, expect_any=False) == 1  # awake again: no new NOTIFY
    finally:
        listener.close()


#: docs/runtime.md's grants for a role that writes to captured tables, on artifact 4's job table
#: (none on the flag sequence).
JOB_TABLE_WRITER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT INSERT ON pgevents.event TO {role}",
    "GRANT SELECT ON pgevents.sleeper TO {role}",
)
#: The same on artifact 5's log.
LOG_WRITER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT INSERT ON pgevents.event_0, pgevents.event_1, pgevents.event_2, pgevents.event_3 TO {role}",
    "GRANT USAGE ON SEQUENCE pgevents.event_id TO {role}",
)


@pytest.mark.parametrize(
    "grants",
    [
        # Artifact 4's job table: what a writing role needed before artifact 4 still suffices.
        pytest.param(JOB_TABLE_WRITER_GRANTS, marks=pytest.mark.artifact(JOB_TABLE_VERSION), id="job_table"),
        pytest.param(LOG_WRITER_GRANTS, id="log"),
    ],
)
def test_a_writer_role_needs_no_new_privileges(
    capture: Callable[..., None], dsn: str, grants: tuple[str, ...]
) -> None:
    """A writing role with the documented grants (none on the flag sequence) writes and wakes a sleeper."""
    capture("CREATE TABLE t (id int PRIMARY KEY)", "t")
    role = f"pgevents_writer_{uuid.uuid4().hex[:8]}"
    execute(
        dsn,
        f"CREATE ROLE {role}",
        *(grant.format(role=role) for grant in grants),
        f"GRANT INSERT ON t TO {role}",
    )
    listener = Listener(dsn, "pgevents")
    try:
        for sleeping in (False, True):
            if sleeping:
                EventQueue("pgevents").sleep(listener.conn)
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(f"SET ROLE {role}")
                cur.execute("INSERT INTO t VALUES (%s)", (int(sleeping),))
            conn.close()
            # The role reads the flag (PostgreSQL 18 would read null without a grant).
            assert _wakeups(listener, expect_any=sleeping) == int(sleeping)
        assert [e["pk"] for e in events(dsn)] == [{"id": 0}, {"id": 1}]
    finally:
        listener.close()
        execute(dsn, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_broadcast_chunks_keys_under_the_payload_limit(capture: Callable[..., None], dsn: str) -> None:
    capture("CREATE TABLE t (code text PRIMARY KEY)", "t", delivery="broadcast")
    listener = Listener(dsn, "pgevents_broadcast")
    try:
        keys = [f"{uuid.uuid4()}-{i}" for i in range(3000)]
        big = "k" * 9000  # too large for any payload
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s)", [(k,) for k in keys[:10]])
            cur.execute("INSERT INTO t SELECT unnest(%s::text[])", (keys[10:],))
            cur.execute("INSERT INTO t VALUES (%s)", (big,))
        conn.close()
        # Payloads are collapsed only when identical; keys differ, so count them all.
        received = wait_for(lambda: [n for n in listener.poll(0.1) if '"overflow"' in n.payload])
        assert received
        payloads = [json.loads(n.payload) for n in listener.poll()]
    finally:
        listener.close()
    assert max(len(n.payload.encode()) for n in listener.received) <= 7500
    assert all(p["op"] == "insert" and p["schema"] == "public" and p["table"] == "t" for p in payloads)
    seen = [pk["code"] for p in payloads if p["pks"] for pk in p["pks"]]
    assert sorted(seen) == sorted(keys)
    assert [p for p in payloads if p.get("overflow")] == [
        {"op": "insert", "schema": "public", "table": "t", "pks": None, "overflow": True}
    ]
    assert fetch(dsn, "SELECT count(*) FROM pgevents.event") == [(0,)]
    assert fetch(dsn, "SELECT count(*) FROM t") == [(3001,)]


def test_broadcast_of_one_statement_with_an_oversized_and_multibyte_keys(
    capture: Callable[..., None], dsn: str
) -> None:
    capture("CREATE TABLE t (code text PRIMARY KEY)", "t", delivery="broadcast")
    keys = [f"ключ-{i:04d}-" + "é" * (i % 40) for i in range(2000)]
    listener = Listener(dsn, "pgevents_broadcast")
    try:
        execute(
            dsn, "INSERT INTO t SELECT unnest(%s::text[])", params=([*keys[:1000], "k" * 9000, *keys[1000:]],)
        )
        wait_for(lambda: [n for n in listener.poll(0.1) if '"overflow"' in n.payload])
    finally:
        listener.close()
    payloads = [json.loads(n.payload) for n in listener.received]
    assert max(len(n.payload.encode()) for n in listener.received) <= 7500
    assert [pk["code"] for p in payloads[:-1] for pk in p["pks"]] == keys  # in statement order
    assert payloads[-1] == {"op": "insert", "schema": "public", "table": "t", "pks": None, "overflow": True}
