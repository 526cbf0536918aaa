"""Artifact 6's flags sequence: the partition writers append to and the sleeper flag, in one value.

Writers read it once per statement. rotate() sets its generation bits and
workers its sleeper bit, each under the lock on ``sleeper`` and from the value
read under it, so neither change undoes the other (setval is not
transactional). The upgrade from 5 and the downgrade back carry both parts.
"""

from __future__ import annotations

import threading
import uuid

import psycopg2
import pytest

from pgevents_migrate.queue import EventQueue
from tests.pg import RunOps, execute, fetch, sleeper_flag, wait_for, writers_generation

FLAGS = 6


@pytest.fixture
def item_dsn(dsn: str) -> str:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, a int)")
    return dsn


def partition_of(dsn: str, row: int) -> str:
    """The partition the event of ``item`` row ``row`` was written to."""
    return str(
        fetch(
            dsn, "SELECT tableoid::regclass::text FROM pgevents.event WHERE pk = %s", (f'{{"id": {row}}}',)
        )[0][0]
    )


def test_rotation_keeps_the_sleeper_flag_and_sleepers_keep_the_generation(
    run_ops: RunOps, item_dsn: str
) -> None:
    dsn = item_dsn
    run_ops(lambda op: (op.install_pgevents(version=FLAGS), op.create_pgevent_trigger("item", version=FLAGS)))
    sleeper = psycopg2.connect(dsn)
    sleeper.autocommit = True
    queue = EventQueue("pgevents")
    try:
        execute(dsn, "INSERT INTO item VALUES (1, 0)")
        queue.sleep(sleeper)
        assert (writers_generation(dsn), sleeper_flag(dsn)) == (0, 1)
        execute(dsn, "SELECT pgevents.rotate(1)")  # writers move to event_1
        assert (writers_generation(dsn), sleeper_flag(dsn)) == (1, 1)
        queue.wake(sleeper)
        assert (writers_generation(dsn), sleeper_flag(dsn)) == (1, 0)
        execute(dsn, "INSERT INTO item VALUES (2, 0)")
        assert partition_of(dsn, 1) == "pgevents.event_0"
        assert partition_of(dsn, 2) == "pgevents.event_1"
    finally:
        sleeper.close()


def test_rotation_waits_for_a_sleeper_change_in_progress(run_ops: RunOps, item_dsn: str) -> None:
    """A worker's sleeper change holds the lock on sleeper; rotate() moves the generation after it."""
    dsn = item_dsn
    run_ops(lambda op: (op.install_pgevents(version=FLAGS), op.create_pgevent_trigger("item", version=FLAGS)))
    execute(dsn, "INSERT INTO item VALUES (1, 0)")
    worker = psycopg2.connect(dsn)
    try:
        with worker.cursor() as cur:  # what EventQueue.sleep runs, held open
            cur.execute("LOCK TABLE pgevents.sleeper IN SHARE ROW EXCLUSIVE MODE")
            cur.execute("INSERT INTO pgevents.sleeper (backend_pid) VALUES (pg_backend_pid())")
        errors: list[BaseException] = []

        def rotate() -> None:
            try:
                execute(dsn, "SELECT pgevents.rotate(1)")
            except BaseException as error:  # reported by the assertion below
                errors.append(error)

        rotating = threading.Thread(target=rotate)
        rotating.start()
        wait_for(
            lambda: (
                fetch(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%%pgevents.rotate%%'",
                )
                == [(1,)]
            )
        )
        with worker.cursor() as cur:
            cur.execute(
                "SELECT setval('pgevents.flags', pg_sequence_last_value('pgevents.flags') / 2 * 2 + 1)"
            )
        worker.commit()
        rotating.join(30)
        assert not rotating.is_alive() and not errors
        assert (writers_generation(dsn), sleeper_flag(dsn)) == (1, 1)
    finally:
        worker.close()


def test_upgrade_from_5_and_back_carries_the_generation_the_flag_and_the_grants(
    run_ops: RunOps, item_dsn: str
) -> None:
    dsn = item_dsn
    run_ops(lambda op: (op.install_pgevents(version=5), op.create_pgevent_trigger("item", version=5)))
    worker = f"pgevents_worker_{uuid.uuid4().hex[:8]}"
    execute(
        dsn,
        f"CREATE ROLE {worker}",
        f"GRANT UPDATE ON SEQUENCE pgevents.generation, pgevents.sleeping TO {worker}",
    )
    try:
        for row in (1, 2):  # writers move to event_2
            execute(dsn, f"INSERT INTO item VALUES ({row}, 0)")
            execute(dsn, "SELECT pgevents.rotate(1)")
        execute(dsn, "SELECT setval('pgevents.sleeping', 1)")
        assert (writers_generation(dsn), sleeper_flag(dsn)) == (2, 1)

        run_ops(lambda op: op.upgrade_pgevents(from_version=5, to_version=FLAGS))
        assert fetch(dsn, "SELECT last_value FROM pgevents.flags") == [(5,)]
        assert fetch(dsn, "SELECT to_regclass('pgevents.generation'), to_regclass('pgevents.sleeping')") == [
            (None, None)
        ]
        privilege = "SELECT has_sequence_privilege(%s, 'pgevents.flags', %s)"
        assert fetch(dsn, privilege, (worker, "UPDATE")) == [(True,)]
        assert fetch(dsn, privilege, ("public", "SELECT")) == [(True,)]
        execute(dsn, "INSERT INTO item VALUES (3, 0)")
        assert partition_of(dsn, 3) == "pgevents.event_2"

        run_ops(lambda op: op.downgrade_pgevents(from_version=FLAGS, to_version=5))
        assert fetch(dsn, "SELECT last_value FROM pgevents.generation") == [(2,)]
        assert fetch(dsn, "SELECT last_value FROM pgevents.sleeping") == [(1,)]
        for sequence in ("pgevents.generation", "pgevents.sleeping"):
            assert fetch(dsn, "SELECT has_sequence_privilege(%s, %s, 'UPDATE')", (worker, sequence)) == [
                (True,)
            ]
        execute(dsn, "INSERT INTO item VALUES (4, 0)")
        assert partition_of(dsn, 4) == "pgevents.event_2"
    finally:
        execute(dsn, f"DROP OWNED BY {worker}", f"DROP ROLE {worker}")


def test_a_writer_reads_one_sequence_per_statement(run_ops: RunOps, item_dsn: str) -> None:
    """The generated capture function of artifact 6 reads flags once, and no other sequence but event_id."""
    run_ops(lambda op: (op.install_pgevents(version=FLAGS), op.create_pgevent_trigger("item", version=FLAGS)))
    sources = fetch(
        item_dsn,
        "SELECT p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE t.tgrelid = 'item'::regclass ORDER BY t.tgname",
    )
    assert len(sources) == 3
    for (source,) in sources:
        assert source.count("pg_sequence_last_value(") == 1
        assert "pg_sequence_last_value('pgevents.flags')" in source
