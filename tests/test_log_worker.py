"""The worker on artifact 5 (draft): a consumer group's cursor over the log, on a real server.

The suite's runtime tests also run on the log with
``PGEVENTS_TEST_ARTIFACT_VERSION=5``; these cover what only the log has:
groups, the reader lease, late commits, retries copied out of the log, and
rotation by the worker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from pgevents_migrate import Event, PGEvents
from pgevents_migrate import log_reader as log_reader_module
from pgevents_migrate.extension import libpq_dsn
from tests.apps import NEWEST_VERSION, TEST_VERSION_VARIABLE
from tests.pg import RunOps, count_events, events, execute, fetch, insert_items, wait_for, writers_generation

LOG = NEWEST_VERSION


class Recorder:
    """A callback that records (row, attempt) and fails for the rows in ``failing``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, int]] = []
        self.failing: set[int] = set()

    def __call__(self, event: Event) -> None:
        self.calls.append((event.row_id, event.attempt))
        if event.row_id in self.failing:
            raise ValueError(f"cannot handle row {event.row_id}")

    def rows(self) -> list[Any]:
        return [row for row, _ in self.calls]


def make_app(
    database_url: URL, recorder: Callable[[Event], None], ordered: bool = False, **config: Any
) -> tuple[Flask, PGEvents, SQLAlchemy]:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url.render_as_string(hide_password=False),
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.NullPool},
        PGEVENTS_POLL_INTERVAL=0.2,
        PGEVENTS_RETRY_BACKOFF=0.2,
        PGEVENTS_BATCH_SIZE=20,
    )
    app.config.update(config)
    db = SQLAlchemy(app)
    pgevents = PGEvents(app, db)

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        a = sa.Column(sa.Integer)

    pgevents.listen(Item, {"insert", "update"}, recorder, ordered=ordered)
    return app, pgevents, db


@pytest.fixture(autouse=True)
def on_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_VERSION_VARIABLE, str(LOG))


@pytest.fixture
def setup(database_url: URL) -> Iterator[tuple[Flask, PGEvents, Recorder]]:
    from tests.test_runtime import _install

    recorder = Recorder()
    app, pgevents, db = make_app(database_url, recorder)
    _install(app, db)
    yield app, pgevents, recorder
    with app.app_context():
        pgevents.stop(10)


def drain(app: Flask, pgevents: PGEvents) -> int:
    with app.app_context():
        return pgevents.handle_events()


def test_events_arrive_once_in_commit_order_of_each_row(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str
) -> None:
    app, pgevents, recorder = setup
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 45) i")
    execute(dsn, "UPDATE item SET a = 1 WHERE id <= 5")
    assert drain(app, pgevents) == 50  # pages of 20: two windows
    assert sorted(recorder.rows()) == sorted([*range(1, 46), *range(1, 6)])
    assert recorder.rows()[-5:] == [1, 2, 3, 4, 5]  # the updates after the inserts
    assert drain(app, pgevents) == 0
    assert fetch(dsn, "SELECT pgevents.pending('default')") == [(0,)]
    # Nothing on the hot path deletes or updates a row of the log.
    assert count_events(dsn) == 50


def test_a_transaction_that_commits_late_still_reaches_the_worker(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str
) -> None:
    app, pgevents, recorder = setup
    late = psycopg2.connect(dsn)
    try:
        with late.cursor() as cur:
            cur.execute("INSERT INTO item VALUES (1, 0)")  # the lowest event id
        execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(2, 30) i")
        assert drain(app, pgevents) == 29
        late.commit()
    finally:
        late.close()
    assert drain(app, pgevents) == 1
    assert sorted(recorder.rows()) == list(range(1, 31))


def test_a_failed_event_is_retried_out_of_the_log_while_others_flow(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str
) -> None:
    app, pgevents, recorder = setup
    recorder.failing = {3}
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5) i")
    assert drain(app, pgevents) == 5
    assert fetch(dsn, "SELECT id IS NOT NULL, attempts FROM pgevents.retry") == [(True, 1)]
    execute(dsn, "INSERT INTO item VALUES (6, 0)")
    assert drain(app, pgevents) == 1  # the cursor moved past the failure
    recorder.failing = set()
    wait_for(lambda: drain(app, pgevents) == 1, timeout=10)
    assert recorder.calls.count((3, 1)) == 1 and recorder.calls.count((3, 2)) == 1
    assert fetch(dsn, "SELECT count(*) FROM pgevents.retry") == [(0,)]


def test_dead_letters_per_group_and_the_cli(setup: tuple[Flask, PGEvents, Recorder], dsn: str) -> None:
    app, pgevents, recorder = setup
    app.config["PGEVENTS_MAX_ATTEMPTS"] = 2
    pgevents.stop()
    recorder.failing = {1}
    execute(dsn, "INSERT INTO item VALUES (1, 0)")
    with app.app_context():
        worker = pgevents.worker()
    buried = "SELECT group_name, attempts FROM pgevents.dead_letter"
    wait_for(lambda: worker.run_once() >= 0 and fetch(dsn, buried) == [("default", 2)])
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["pgevents", "failed"])
    assert listing.exit_code == 0 and "attempts=2" in listing.output
    assert "cannot handle row 1" in listing.output
    other = runner.invoke(args=["pgevents", "failed", "--group", "nobody"])
    assert other.exit_code == 1 and "consumer group 'nobody' is not registered" in other.output
    recorder.failing = set()
    assert "requeued 1 event(s)" in runner.invoke(args=["pgevents", "retry", "--all"]).output
    wait_for(lambda: worker.run_once() == 1)
    assert recorder.calls[-1] == (1, 1)  # fresh attempts
    status = runner.invoke(args=["pgevents", "status"])
    assert "group default: pending 0, failed 0" in status.output, status.output
    worker.close()


def test_two_groups_each_get_every_event_and_one_catches_up(database_url: URL, dsn: str) -> None:
    from tests.test_runtime import _install

    main, audit = Recorder(), Recorder()
    app, pgevents, db = make_app(database_url, main)
    _install(app, db)
    execute(dsn, "SELECT pgevents.create_group('audit')")
    audit_app, audit_events, _ = make_app(database_url, audit, PGEVENTS_GROUP="audit")
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 10) i")
    assert drain(app, pgevents) == 10
    execute(dsn, "UPDATE item SET a = 2")  # while audit is stopped
    assert drain(app, pgevents) == 10
    assert drain(audit_app, audit_events) == 20
    assert sorted(main.rows()) == sorted(audit.rows()) == sorted([*range(1, 11)] * 2)
    status = app.test_cli_runner().invoke(args=["pgevents", "status"])
    assert "group audit: pending 0" in status.output and "group default: pending 0" in status.output


def test_one_reader_per_group_and_a_standby_takes_over(database_url: URL, dsn: str) -> None:
    from tests.test_runtime import _install

    first, second = Recorder(), Recorder()
    app, pgevents, db = make_app(database_url, first)
    _install(app, db)
    other_app, other_events, _ = make_app(database_url, second)
    with app.app_context():
        reader = pgevents.worker()
    with other_app.app_context():
        standby = other_events.worker()
    reading = threading.Thread(target=reader.run)
    reading.start()
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 10) i")
    try:
        wait_for(lambda: len(first.calls) == 10)
        owner = fetch(dsn, "SELECT owner FROM pgevents.group_cursor")[0][0]
        assert owner is not None and owner == reader._log.owner  # type: ignore[union-attr]
        assert standby.run_once() == 0  # the lane is the reader's
    finally:
        reader.stop()
        reading.join(10)
    # The reader gave its lane up on stopping (and woke the standby's LISTEN).
    assert fetch(dsn, "SELECT owner FROM pgevents.group_cursor") == [(None,)]
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(11, 20) i")
    thread = threading.Thread(target=standby.run)
    thread.start()
    try:
        wait_for(lambda: len(second.calls) == 10)
        execute(dsn, "INSERT INTO item VALUES (21, 0)")
        wait_for(lambda: len(second.calls) == 11)
    finally:
        standby.stop()
        thread.join(10)
    assert sorted(first.rows() + second.rows()) == list(range(1, 22))


def test_handle_events_gives_the_lanes_up_between_calls(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str
) -> None:
    app, pgevents, _ = setup
    execute(dsn, "INSERT INTO item VALUES (1, 0)")
    assert drain(app, pgevents) == 1
    # Not held between calls: a worker of the group (e.g. `flask pgevents run`) can read at once.
    assert fetch(dsn, "SELECT owner FROM pgevents.group_cursor") == [(None,)]


def test_the_reader_rotates_the_log_and_loses_nothing(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, pgevents, recorder = setup
    monkeypatch.setattr(log_reader_module, "MAINTENANCE_INTERVAL", 0.0)
    app.config["PGEVENTS_PARTITION_EVENTS"] = 10  # read by the worker the first drain makes
    for start in range(1, 61, 10):
        insert_items(dsn, range(start, start + 10))  # ten rows of the log
        drain(app, pgevents)
        drain(app, pgevents)
    assert sorted(recorder.rows()) == list(range(1, 61))
    assert writers_generation(dsn) != 0  # writers moved on
    assert count_events(dsn) < 60  # left partitions truncated


def test_a_partition_an_open_writer_wrote_is_kept_until_its_events_are_handled(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, pgevents, recorder = setup
    monkeypatch.setattr(log_reader_module, "MAINTENANCE_INTERVAL", 0.0)
    app.config["PGEVENTS_PARTITION_EVENTS"] = 10
    writer = psycopg2.connect(dsn)
    try:
        with writer.cursor() as cur:
            cur.execute("INSERT INTO item VALUES (1000, 0)")  # into event_0, not committed
        insert_items(dsn, range(1, 21))
        drain(app, pgevents)  # writers move to event_1
        for start in (21, 31, 41):
            insert_items(dsn, range(start, start + 10))
            drain(app, pgevents)
        assert fetch(dsn, "SELECT state FROM pgevents.rotation WHERE gen = 0") == [("left",)]
        assert count_events(dsn, "event_0") == 20  # kept for the open writer
        writer.commit()
    finally:
        writer.close()

    def truncated() -> bool:
        execute(dsn, "INSERT INTO item VALUES (nextval(pg_get_serial_sequence('item', 'id')) + 2000, 0)")
        drain(app, pgevents)
        return count_events(dsn, "event_0") == 0

    wait_for(truncated, timeout=20, interval=0.1)
    assert 1000 in recorder.rows()
    rows = [row for row in recorder.rows() if row < 1000]
    assert sorted(rows) == list(range(1, 51))
    assert len(recorder.rows()) == len(set(recorder.rows()))


#: docs/runtime.md, "Roles and privileges", artifact 5.
LOG_WRITER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT INSERT ON pgevents.event_0, pgevents.event_1, pgevents.event_2, pgevents.event_3 TO {role}",
    "GRANT USAGE ON SEQUENCE pgevents.event_id TO {role}",
)
LOG_WORKER_GRANTS = (
    "GRANT USAGE ON SCHEMA pgevents TO {role}",
    "GRANT SELECT ON pgevents.event, pgevents.consumer_group TO {role}",
    "GRANT SELECT, UPDATE ON pgevents.group_cursor, pgevents.rotation TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON pgevents.retry, pgevents.dead_letter, pgevents.sleeper"
    " TO {role}",
    "GRANT TRUNCATE ON pgevents.event_0, pgevents.event_1, pgevents.event_2, pgevents.event_3 TO {role}",
    "GRANT SELECT ON SEQUENCE pgevents.event_id TO {role}",
    "GRANT UPDATE ON SEQUENCE pgevents.flags TO {role}",
)


def test_writer_and_worker_roles_need_only_the_documented_grants(
    database_url: URL, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_runtime import _install

    monkeypatch.setattr(log_reader_module, "MAINTENANCE_INTERVAL", 0.0)
    installer, _, db = make_app(database_url, Recorder())
    _install(installer, db)
    suffix = uuid.uuid4().hex[:8]
    writer, worker = f"pgevents_writer_{suffix}", f"pgevents_worker_{suffix}"
    execute(
        dsn,
        f"CREATE ROLE {writer} LOGIN",
        f"CREATE ROLE {worker} LOGIN",
        *(grant.format(role=writer) for grant in LOG_WRITER_GRANTS),
        *(grant.format(role=worker) for grant in LOG_WORKER_GRANTS),
        f"GRANT INSERT ON item TO {writer}",
    )
    recorder = Recorder()
    recorder.failing = {3}
    app, pgevents, _ = make_app(database_url.set(username=worker), recorder, PGEVENTS_PARTITION_EVENTS=5)
    writer_dsn = libpq_dsn(database_url.set(username=writer))
    try:
        insert_items(writer_dsn, range(1, 11))
        assert drain(app, pgevents) == 10  # and writers move on
        execute(writer_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(11, 20) i")
        recorder.failing = set()
        wait_for(lambda: drain(app, pgevents) >= 0 and sorted(set(recorder.rows())) == list(range(1, 21)))
        # Rotation, with the worker's grants only, truncates the partition every group passed.
        wait_for(lambda: drain(app, pgevents) >= 0 and count_events(dsn, "event_0") == 0)
    finally:
        with app.app_context():
            pgevents.stop()
        execute(dsn, f"DROP OWNED BY {writer}, {worker}", f"DROP ROLE {writer}", f"DROP ROLE {worker}")


def test_replay_delivers_retained_events_again_with_their_ids(database_url: URL, dsn: str) -> None:
    from tests.test_runtime import _install

    recorder, other = Recorder(), Recorder()
    app, pgevents, db = make_app(database_url, recorder, PGEVENTS_RETENTION="7d")
    pgevents.listen("item", "insert", other)
    _install(app, db)
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5) i")
    execute(dsn, "CREATE TABLE other_item (id int PRIMARY KEY)")
    assert drain(app, pgevents) == 5
    ids = [event["id"] for event in events(dsn)]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["pgevents", "replay"]).exit_code == 2  # --since or --from-id
    unknown = runner.invoke(args=["pgevents", "replay", "--from-id", "1", "--listener", "nope"])
    assert unknown.exit_code == 2 and "no listener named 'nope'" in unknown.output

    result = runner.invoke(args=["pgevents", "replay", "--from-id", str(ids[3])])
    assert result.exit_code == 0 and "queued 2 event(s)" in result.output, result.output
    wait_for(lambda: drain(app, pgevents) == 2)
    assert recorder.rows() == [1, 2, 3, 4, 5, 4, 5] and other.rows() == [1, 2, 3, 4, 5, 4, 5]

    name = f"{Recorder.__module__}.{Recorder.__qualname__}"
    only = runner.invoke(
        args=["pgevents", "replay", "--since", "1h", "--table", "item", "--listener", f"{name}#2"]
    )
    assert "queued 5 event(s)" in only.output, only.output
    wait_for(lambda: drain(app, pgevents) == 5)
    assert len(recorder.calls) == 7 and other.rows()[-5:] == [1, 2, 3, 4, 5]  # only the second listener ran
    none = runner.invoke(args=["pgevents", "replay", "--since", "1h", "--table", "public.other_item"])
    assert "queued 0 event(s)" in none.output
    # Retention in the config as a duration: the worker keeps left partitions that long.
    with app.app_context():
        assert pgevents.worker().config.retention == 7 * 86400


class OrderedRecorder:
    """Records successful calls per row, fails row 1's second event twice, notes overlapping calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handled: dict[int, list[int]] = {}
        self.in_flight: set[int] = set()
        self.overlaps: list[int] = []
        self.failures = 0
        self.row_1_done_at: float | None = None
        self.others_done_at: list[float] = []

    def __call__(self, event: Event) -> None:
        row = event.row_id
        with self.lock:
            if row in self.in_flight:
                self.overlaps.append(row)
            self.in_flight.add(row)
        try:
            time.sleep(0.002)
            with self.lock:
                if row == 1 and len(self.handled.get(1, [])) == 1 and self.failures < 2:
                    self.failures += 1
                    raise ValueError("row 1's second event fails twice")
                assert event.id is not None
                self.handled.setdefault(row, []).append(event.id)
                if row == 1 and len(self.handled[1]) == 2:
                    self.row_1_done_at = time.monotonic()
                elif row != 1:
                    self.others_done_at.append(time.monotonic())
        finally:
            with self.lock:
                self.in_flight.discard(row)


def test_ordered_rows_run_one_at_a_time_in_order_across_three_workers(database_url: URL, dsn: str) -> None:
    from tests.test_runtime import _install

    recorder = OrderedRecorder()
    apps = []
    for _ in range(3):
        apps.append(
            make_app(database_url, recorder, ordered=True, PGEVENTS_RETRY_BACKOFF=0.3, PGEVENTS_BATCH_SIZE=7)
        )
    _install(apps[0][0], apps[0][2])
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 6) i")
    for n in range(1, 5):  # each row changes four times, one transaction each
        execute(dsn, f"UPDATE item SET a = {n}")
    workers = []
    for app, pgevents, _ in apps:
        with app.app_context():
            workers.append(pgevents.worker())
    threads = [threading.Thread(target=worker.run) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(map(len, recorder.handled.values())) == 30, timeout=30)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(10)
    ids = {row: [event["id"] for event in events(dsn) if event["pk"] == {"id": row}] for row in range(1, 7)}
    assert recorder.handled == ids  # every event once, each row's in order
    assert recorder.failures == 2 and recorder.overlaps == []
    # The other rows went on while row 1 waited for its retries.
    assert recorder.row_1_done_at is not None
    assert sum(1 for at in recorder.others_done_at if at < recorder.row_1_done_at) >= 20
    assert fetch(dsn, "SELECT count(*) FROM pgevents.retry") == [(0,)]


def test_ordered_needs_queue_delivery_and_the_log(
    database_url: URL, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic_ops import InvalidTriggerSpecError
    from alembic_ops.core.errors import PGEventsError
    from tests.test_runtime import _install

    app, pgevents, db = make_app(database_url, Recorder())
    with pytest.raises(InvalidTriggerSpecError, match="ordered=True needs delivery='queue'"):
        pgevents.listen("item", "insert", Recorder(), delivery="broadcast", ordered=True)
    pgevents.listen("item", "update", Recorder(), ordered=True)
    monkeypatch.setenv(TEST_VERSION_VARIABLE, "4")
    _install(app, db)
    with app.app_context(), pytest.raises(PGEventsError, match="ordered=True need pgevents artifact 5"):
        pgevents.worker().connect()


def test_a_group_nobody_runs_is_reported_then_skipped_past_the_bound(
    setup: tuple[Flask, PGEvents, Recorder], dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, pgevents, recorder = setup
    monkeypatch.setattr(log_reader_module, "MAINTENANCE_INTERVAL", 0.0)
    execute(dsn, "SELECT pgevents.create_group('idle')")
    app.config.update(PGEVENTS_PARTITION_EVENTS=5, PGEVENTS_GROUP_MAX_LAG=3600)
    for start in (1, 11, 21):
        insert_items(dsn, range(start, start + 10))
        drain(app, pgevents)
    assert sorted(recorder.rows()) == list(range(1, 31))
    status = app.test_cli_runner().invoke(args=["pgevents", "status"])
    assert "group idle: pending 30" in status.output
    assert "WARNING: group idle: no worker reads it" in status.output
    # Within the bound, the partition the idle group has not read stays.
    assert count_events(dsn, "event_0") == 10
    assert fetch(dsn, "SELECT skipped_at FROM pgevents.consumer_group WHERE name = 'idle'") == [(None,)]

    app.config["PGEVENTS_GROUP_MAX_LAG"] = 0.001
    with app.app_context():
        worker = pgevents.worker()

    def truncated() -> bool:
        worker.run_once()
        return count_events(dsn, "event_0") == 0

    wait_for(truncated, timeout=10)
    worker.close()
    skipped = fetch(
        dsn,
        "SELECT skipped_at IS NOT NULL, pgevents.pending('idle') FROM pgevents.consumer_group"
        " WHERE name = 'idle'",
    )
    assert skipped == [(True, 0)]
    status = app.test_cli_runner().invoke(args=["pgevents", "status"])
    assert "WARNING: group idle: skipped the events it had not read" in status.output
    # It gets what is written from now on.
    execute(dsn, "INSERT INTO item VALUES (100, 0)")
    assert fetch(dsn, "SELECT pgevents.pending('idle')") == [(1,)]


class SharedRecorder:
    """Records (row, event id, worker thread) per call; each call takes 10 ms."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, event: Event) -> None:
        time.sleep(0.01)
        assert event.id is not None
        with self.lock:
            self.calls.append((event.row_id, event.id, threading.current_thread().name))


def test_three_workers_share_a_group_of_three_lanes_and_keep_each_rows_order(
    database_url: URL, dsn: str, run_ops: RunOps
) -> None:
    from tests.test_runtime import _install

    recorder = SharedRecorder()
    apps = []
    for _ in range(3):
        apps.append(make_app(database_url, recorder, PGEVENTS_GROUP="par", PGEVENTS_BATCH_SIZE=10))
    _install(apps[0][0], apps[0][2])
    run_ops(lambda op: op.create_pgevents_group("par", lanes=3, version=LOG))
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 30) i")
    for n in range(1, 10):
        execute(dsn, f"UPDATE item SET a = {n}")
    workers = []
    for app, pgevents, _ in apps:
        with app.app_context():
            workers.append(pgevents.worker())
    threads = [threading.Thread(target=w.run, name=f"worker-{n}") for n, w in enumerate(workers)]
    threads[0].start()
    wait_for(lambda: len(recorder.calls) >= 20, timeout=10)  # the first one reads all three lanes
    for thread in threads[1:]:
        thread.start()
    try:
        wait_for(lambda: len(recorder.calls) >= 300, timeout=60)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(10)
    ids = [event_id for _, event_id, _ in recorder.calls]
    assert len(ids) == len(set(ids)) == 300  # each event once
    for row in range(1, 31):
        row_ids = [event_id for r, event_id, _ in recorder.calls if r == row]
        assert row_ids == sorted(row_ids)  # a row's events in order: one lane, one reader
    by_worker = {name for _, _, name in recorder.calls}
    assert by_worker == {"worker-0", "worker-1", "worker-2"}, by_worker
    owners = fetch(dsn, "SELECT count(DISTINCT owner) FROM pgevents.group_cursor WHERE group_name = 'par'")
    assert owners == [(0,)]  # each gave its lanes up on stopping
