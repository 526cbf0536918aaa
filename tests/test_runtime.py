"""The runtime API: declaring listeners, handle_events, background workers, retries."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import uuid
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from pgevents_migrate import Event, PGEvents, PGEventsError
from pgevents_migrate.queue import EventQueue
from tests import runtime_app
from tests.apps import JOB_TABLE_VERSION, install_declared
from tests.pg import execute, fetch, libpq_dsn, sleeper_flag, wait_for


def handled(dsn: str, listener: str = "on_user") -> list[tuple[Any, ...]]:
    return fetch(dsn, "SELECT op, pk, attempt FROM handled WHERE listener = %s ORDER BY n", (listener,))


def test_queue_events_from_raw_sql_are_delivered_once(runtime: Flask, dsn: str) -> None:
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a'), ('b')""", """UPDATE "user" SET name = 'x'""")
    execute(dsn, """DELETE FROM "user" WHERE id = 1""")
    assert runtime_app.pgevents.handle_events() == 5
    assert handled(dsn) == [
        ("insert", {"id": 1}, 1),
        ("insert", {"id": 2}, 1),
        ("update", {"id": 1}, 1),
        ("update", {"id": 2}, 1),
        ("delete", {"id": 1}, 1),
    ]
    assert runtime_app.pgevents.handle_events() == 0
    assert fetch(dsn, "SELECT pgevents.pending('default')") == [(0,)]


def _app(database_url: URL) -> tuple[Flask, SQLAlchemy, PGEvents]:
    """A bare app with Flask-SQLAlchemy and PGEvents, for a test to declare models on."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.render_as_string(hide_password=False)
    db = SQLAlchemy(app)
    return app, db, PGEvents(app, db)


def test_event_fields(database_url: URL, dsn: str) -> None:
    app, db, pgevents = _app(database_url)
    received: list[Event] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        price = sa.Column(sa.Integer)

    pgevents.listen(Item, "update", received.append, images=True, columns=["price"])
    _install(app, db)
    execute(dsn, "INSERT INTO item VALUES (7, 1)", "UPDATE item SET price = 2")
    with app.app_context():
        txid = fetch(dsn, "SELECT txid::text FROM pgevents.event")[0][0]
        assert pgevents.handle_events() == 1
        db.engine.dispose()
    (event,) = received
    assert (event.op, event.schema, event.table, event.pk, event.row_id) == (
        "update",
        "public",
        "item",
        {"id": 7},
        7,
    )
    assert (event.old, event.new, event.changed) == ({"id": 7, "price": 1}, {"id": 7, "price": 2}, ("price",))
    assert event.txid == int(txid) and event.attempt == 1 and event.id is not None
    assert event.created_at is not None and event.delivery == "queue"
    assert event.identifier == "UPDATE"


def test_events_from_fields_are_events() -> None:
    """The worker's fast constructor makes the same frozen event as ``Event(...)``, defaults included."""
    fields: dict[str, Any] = {"op": "update", "schema": "public", "table": "item", "pk": {"id": 7}, "id": 3}
    fast, slow = Event.from_fields(**fields), Event(**fields)
    assert fast == slow and repr(fast) == repr(slow)
    assert (fast.delivery, fast.attempt, fast.old, fast.row_id) == ("queue", 1, None, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.op = "delete"  # type: ignore[misc]


def _install(app: Flask, db: SQLAlchemy) -> None:
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            install_declared(conn, db.metadata)
        db.engine.dispose()


def test_seed_style_callbacks_and_identifier_forms(database_url: URL, dsn: str) -> None:
    app, db, pgevents = _app(database_url)
    calls: list[tuple[Any, ...]] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    @pgevents.listens_for(Item, "after_insert")
    def old_style(event_id: int, row_id: int, identifier: str) -> None:
        calls.append((event_id is not None, row_id, identifier))

    @pgevents.listens_for(Item, ["INSERT"])
    def new_style(event: Event) -> None:
        calls.append(("new", event.row_id))

    _install(app, db)
    execute(dsn, "INSERT INTO item VALUES (3)")
    assert pgevents.handle_events() == 1
    assert calls == [(True, 3, "INSERT"), ("new", 3)]


def test_each_callback_gets_a_fresh_session(database_url: URL, dsn: str) -> None:
    """What a callback leaves in its session (a failed statement, uncommitted work) never reaches the next."""
    app, db, pgevents = _app(database_url)
    seen: list[Any] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        note = sa.Column(sa.String(20))

    @pgevents.listens_for(Item, "insert")
    def careless(event: Event) -> None:
        if event.row_id == 1:
            db.session.execute(sa.text("UPDATE item SET note = 'uncommitted'"))
        elif event.row_id == 2:
            with contextlib.suppress(sa.exc.DBAPIError):
                db.session.execute(sa.text("SELECT 1 / 0"))
        else:
            seen.append(db.session.execute(sa.text("SELECT count(note) FROM item")).scalar())

    _install(app, db)
    execute(
        dsn,
        "INSERT INTO item (id) VALUES (1)",
        "INSERT INTO item (id) VALUES (2)",
        "INSERT INTO item (id) VALUES (3)",
    )
    with app.app_context():
        assert pgevents.handle_events() == 3
        db.engine.dispose()
    assert seen == [0]
    assert fetch(dsn, "SELECT count(note) FROM item") == [(0,)]
    left_open = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle'"
    assert fetch(dsn, left_open + " AND pid <> pg_backend_pid()") == [(0,)]


def test_declaration_errors() -> None:
    pgevents = PGEvents()
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(ValueError, match="unknown event 'upsert'"):
        pgevents.listen(table, {"insert", "upsert"}, lambda event: None)
    with pytest.raises(ValueError, match="no events given"):
        pgevents.listen(table, set(), lambda event: None)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        pgevents.listen(table, "insert", lambda a, b: None)
    with pytest.raises(RuntimeError, match="not initialised"):
        pgevents.handle_events()
    with pytest.raises(RuntimeError, match="needs Flask-SQLAlchemy"):
        pgevents.init_app(Flask(__name__))


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"])
def test_any_postgresql_driver_in_the_app_url(database_url: URL, dsn: str, driver: str) -> None:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.set(drivername=driver).render_as_string(
        hide_password=False
    )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    db = SQLAlchemy(app)
    pgevents = PGEvents(app, db)
    received: list[Event] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", received.append)
    _install(app, db)
    execute(dsn, "INSERT INTO item VALUES (1)")
    assert pgevents.handle_events() == 1
    assert [e.pk for e in received] == [{"id": 1}]


def test_background_worker_receives_broadcast_and_queue_events(runtime: Flask, dsn: str) -> None:
    runtime_app.pgevents.start()
    execute(
        dsn, "INSERT INTO tag VALUES ('a', 'x'), ('b', 'y')", """INSERT INTO "user" (email) VALUES ('q')"""
    )
    wait_for(lambda: len(handled(dsn, "on_tag")) == 2 and len(handled(dsn)) == 1)
    assert sorted(pk["label"] for _, pk, _ in handled(dsn, "on_tag")) == ["x", "y"]
    runtime_app.pgevents.stop(10)
    assert fetch(dsn, "SELECT count(*) FROM pgevents.sleeper") == [(0,)]
    assert sleeper_flag(dsn) == 0


def test_sleeper_flag_follows_every_sleeper(runtime: Flask, dsn: str) -> None:
    """Two listeners sleep and wake in turn; a flag a crash left set is reset."""
    queue = EventQueue("pgevents")
    first, second = (psycopg2.connect(dsn) for _ in range(2))
    try:
        for conn in (first, second):
            conn.autocommit = True
            queue.sleep(conn)
        assert sleeper_flag(dsn) == 1
        queue.wake(first)
        assert sleeper_flag(dsn) == 1  # the second still sleeps
        queue.wake(second)
        assert sleeper_flag(dsn) == 0
        # A worker that died asleep: its row and the flag stay until the next start.
        queue.sleep(second)
        second.close()
        gone = "SELECT count(*) FROM pg_stat_activity a JOIN pgevents.sleeper s ON s.backend_pid = a.pid"
        wait_for(lambda: fetch(dsn, gone) == [(0,)])
        assert sleeper_flag(dsn) == 1
        queue.forget_stale_sleepers(first)
        assert fetch(dsn, "SELECT count(*) FROM pgevents.sleeper") == [(0,)]
        assert sleeper_flag(dsn) == 0
    finally:
        first.close()
        second.close()


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_lease_renewal_skips_claims_being_acknowledged(runtime: Flask, dsn: str) -> None:
    """The heartbeat never waits on (so never deadlocks with) an acknowledgement in flight.

    Artifact 4's job table: claims of ``pgevents.event`` rows, leased by ``available_at``.
    """
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a'), ('b')""")
    queue = EventQueue("pgevents")
    with (
        contextlib.closing(psycopg2.connect(dsn)) as conn,
        contextlib.closing(psycopg2.connect(dsn)) as acking,
    ):
        conn.autocommit = True
        rows = queue.claim_rows(conn, 10, 30.0, (["public"], ["user"]))
        keys = queue.claim_keys(rows)
        with acking.cursor() as cur:  # an acknowledgement holding the first row, not yet committed
            cur.execute("DELETE FROM pgevents.event WHERE id = %s", (keys[0][0],))
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '5s'")
        assert queue.extend(conn, keys, 60.0) == 1
        acking.commit()
    leases = fetch(dsn, "SELECT available_at - clock_timestamp() > interval '40 s' FROM pgevents.event")
    assert leases == [(True,)]


#: The grants docs/runtime.md lists for a role that writes to captured tables and for the worker's,
#: on artifact 4's job table (test_log_worker.py checks those of the log).
WRITER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT INSERT ON pgevents.event TO {role}",
    "GRANT SELECT ON pgevents.sleeper TO {role}",
)
WORKER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON pgevents.event, pgevents.dead_letter, pgevents.processed,"
    " pgevents.sleeper TO {role}",
    "GRANT UPDATE ON SEQUENCE pgevents.sleeping TO {role}",
)


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_writer_and_worker_roles_need_only_the_documented_grants(database_url: URL, dsn: str) -> None:
    """The documented grants of artifact 4's job table suffice."""
    runtime_app.install(runtime_app.create_app(database_url.render_as_string(hide_password=False)))
    suffix = uuid.uuid4().hex[:8]
    writer, worker = f"pgevents_writer_{suffix}", f"pgevents_worker_{suffix}"
    execute(
        dsn,
        f"CREATE ROLE {writer} LOGIN",
        f"CREATE ROLE {worker} LOGIN",
        *(grant.format(role=writer) for grant in WRITER_GRANTS),
        *(grant.format(role=worker) for grant in WORKER_GRANTS),
        f'GRANT INSERT ON "user" TO {writer}',
        f"GRANT SELECT, INSERT ON handled TO {worker}",  # what its callbacks write
    )
    try:
        execute(
            libpq_dsn(database_url.set(username=writer)), """INSERT INTO "user" (id, email) VALUES (1, 'a')"""
        )
        app = runtime_app.create_app(database_url.set(username=worker).render_as_string(hide_password=False))
        with app.app_context():
            assert runtime_app.pgevents.handle_events() == 1
            # Nothing left: it sleeps (sets the flag) until the timeout, then wakes.
            assert runtime_app.pgevents.handle_events(timeout=0.3) == 0
        assert handled(dsn) == [("insert", {"id": 1}, 1)]
        assert sleeper_flag(dsn) == 0
        # Without the grant on the flag, a queue worker says so before it starts.
        execute(dsn, f"REVOKE UPDATE ON SEQUENCE pgevents.sleeping FROM {worker}")
        denied = f"role {worker} may not set .* GRANT UPDATE ON SEQUENCE pgevents.sleeping TO {worker}$"
        with app.app_context(), pytest.raises(PGEventsError, match=denied):
            runtime_app.pgevents.start()
    finally:
        execute(dsn, *(f"DROP OWNED BY {role}; DROP ROLE {role}" for role in (writer, worker)))


def test_idle_worker_is_woken_by_notify_not_by_poll(database_url: URL, dsn: str) -> None:
    app = runtime_app.create_app(
        database_url.render_as_string(hide_password=False), PGEVENTS_POLL_INTERVAL=60.0
    )
    runtime_app.install(app)
    try:
        runtime_app.pgevents.start()
        wait_for(lambda: fetch(dsn, "SELECT count(*) FROM pgevents.sleeper") == [(1,)])
        assert sleeper_flag(dsn) == 1
        execute(dsn, """INSERT INTO "user" (email) VALUES ('a')""")
        # Far sooner than the 60 s poll: the writer saw the sleeper and NOTIFYed.
        wait_for(lambda: handled(dsn), timeout=10)
    finally:
        runtime_app.pgevents.stop(10)


def test_runtime_says_when_the_artifact_is_missing(database_url: URL) -> None:
    app = runtime_app.create_app(database_url.render_as_string(hide_password=False))
    with pytest.raises(Exception, match="pgevents is not installed in schema 'pgevents'"):
        runtime_app.pgevents.start()
    result = app.test_cli_runner().invoke(args=["pgevents", "run"])
    assert result.exit_code == 1 and "run `flask db migrate` and `flask db upgrade` first" in result.output


def test_broadcast_only_worker_waits_without_a_sleeper_row(database_url: URL, dsn: str) -> None:
    app, db, pgevents = _app(database_url)
    received: list[Event] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", received.append, delivery="broadcast")
    _install(app, db)
    worker = pgevents.worker()
    worker.connect()
    waiting = threading.Event()
    wait = worker._wait

    def flagged_wait(*args: Any) -> None:
        waiting.set()
        wait(*args)

    worker._wait = flagged_wait  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run_once, args=(30.0,), daemon=True)
    thread.start()
    try:
        assert waiting.wait(10)
        # Nothing asks writers to NOTIFY: their broadcasts need no wake-up.
        assert fetch(dsn, "SELECT count(*) FROM pgevents.sleeper") == [(0,)]
        execute(dsn, "INSERT INTO item VALUES (1)")
        thread.join(10)
        assert not thread.is_alive()
        assert [event.pk for event in received] == [{"id": 1}]
    finally:
        worker.stop()
        thread.join(10)
        worker.close()
        with app.app_context():
            db.engine.dispose()
