"""The event log (artifact 5 on) read through a group's cursor, on a real server.

The cursor protocol is SQL (alembic_ops/sql/v5/log_functions.sql); these tests
call it as a worker will: ``fetch`` pages, ``ack`` closes windows.
"""

from __future__ import annotations

import psycopg2
import pytest

from tests.apps import NEWEST_VERSION
from tests.pg import RunOps, count_events, execute, fetch

LOG = NEWEST_VERSION


def read_all(dsn: str, group: str = "default", page: int = 50) -> list[int]:
    """Every event id the group's cursor delivers now, acknowledging as it goes."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    ids: list[int] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM pgevents.take_lane(%s, 'test', 60)", (group,))
            row = cur.fetchone()
            assert row is not None and row[0] == 0
            epoch = row[1]
            empty = 0
            while empty < 3:
                cur.execute("SELECT id FROM pgevents.fetch(%s, 0, %s, %s, '0')", (group, epoch, page))
                got = [r[0] for r in cur.fetchall()]
                ids += got
                if got:
                    empty = 0
                    cur.execute(
                        "SELECT pgevents.ack(%s, 0, %s, %s, %s)", (group, epoch, got[-1], len(got) < page)
                    )
                    assert cur.fetchone() == (True,)
                else:
                    empty += 1
            # Give the lane back, so that the next reader (or this helper again) takes it at once.
            cur.execute("UPDATE pgevents.group_cursor SET owner = NULL WHERE owner = 'test'")
    finally:
        conn.close()
    return ids


def first_page(cur: psycopg2.extensions.cursor, size: int) -> tuple[int, list[int]]:
    """Take the default group's lane as 'test' and fetch its first page: the epoch and the ids."""
    cur.execute("SELECT taken_epoch FROM pgevents.take_lane('default', 'test', 60)")
    row = cur.fetchone()
    assert row is not None
    page: list[int] = []
    while not page:  # the first fetch may only record where the window starts
        cur.execute("SELECT id FROM pgevents.fetch('default', 0, %s, %s, '0')", (row[0], size))
        page = [r[0] for r in cur.fetchall()]
    return row[0], page


@pytest.fixture
def log_dsn(run_ops: RunOps, dsn: str) -> str:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, a int)")
    run_ops(lambda op: (op.install_pgevents(version=LOG), op.create_pgevent_trigger("item", version=LOG)))
    return dsn


def test_a_transaction_that_commits_late_is_delivered_once(log_dsn: str) -> None:
    late = psycopg2.connect(log_dsn)
    try:
        with late.cursor() as cur:
            cur.execute("INSERT INTO item SELECT i, 0 FROM generate_series(1, 10) i")  # the lowest ids
        execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(11, 60) i")
        first = read_all(log_dsn)
        assert len(first) == 50 and min(first) > 10
        late.commit()
    finally:
        late.close()
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(61, 70) i")
    second = read_all(log_dsn)
    assert sorted(first + second) == sorted({*first, *second}) and len(first + second) == 70
    assert read_all(log_dsn) == []


def test_two_groups_each_get_every_event(run_ops: RunOps, log_dsn: str) -> None:
    execute(log_dsn, "SELECT pgevents.create_group('audit')")
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 30) i")
    assert len(read_all(log_dsn)) == 30
    execute(log_dsn, "UPDATE item SET a = 1")
    assert len(read_all(log_dsn)) == 30
    assert len(read_all(log_dsn, "audit")) == 60
    assert fetch(log_dsn, "SELECT pgevents.pending('default'), pgevents.pending('audit')") == [(0, 0)]


def test_rotation_truncates_only_what_every_group_passed(log_dsn: str) -> None:
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 20) i")
    execute(log_dsn, "SELECT pgevents.rotate(1)")  # writers move to event_1
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(21, 25) i")
    execute(log_dsn, "SELECT pgevents.rotate(1000)")  # records who wrote event_0; nobody read it yet
    assert count_events(log_dsn, "event_0") == 20
    assert len(read_all(log_dsn)) == 25
    execute(log_dsn, "SELECT pgevents.rotate(1000)")
    assert count_events(log_dsn, "event_0") == 0
    assert fetch(log_dsn, "SELECT gen, state FROM pgevents.rotation ORDER BY gen")[:2] == [
        (0, "empty"),
        (1, "current"),
    ]


def test_a_partition_a_reader_is_in_the_middle_of_is_not_truncated(log_dsn: str) -> None:
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 20) i")
    execute(log_dsn, "SELECT pgevents.rotate(1)")  # writers move to event_1
    conn = psycopg2.connect(log_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            epoch, page = first_page(cur, 5)
            assert len(page) == 5  # mid-batch: a window of 20 is open, 5 handled
            for _ in range(3):
                execute(log_dsn, "SELECT pgevents.rotate(1000)")
            assert count_events(log_dsn, "event_0") == 20
            cur.execute("SELECT pgevents.ack('default', 0, %s, %s, false)", (epoch, page[-1]))
            execute(log_dsn, "SELECT pgevents.rotate(1000)")
            assert count_events(log_dsn, "event_0") == 20
            cur.execute("UPDATE pgevents.group_cursor SET owner = NULL WHERE owner = 'test'")
    finally:
        conn.close()
    assert len(read_all(log_dsn)) == 15  # a new reader goes on after the acknowledged five
    execute(log_dsn, "SELECT pgevents.rotate(1000)")
    assert count_events(log_dsn, "event_0") == 0


def test_a_failed_event_copied_twice_and_a_reader_lagging_while_it_reads(log_dsn: str) -> None:
    execute(log_dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5) i")
    execute(log_dsn, "SELECT pgevents.rotate(1)")  # writers move to event_1
    conn = psycopg2.connect(log_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            epoch, page = first_page(cur, 50)
            # A page read again after a crash copies its failure again: not a lost lease.
            for _ in range(2):
                cur.execute(
                    "SELECT pgevents.retry_later('default', 0, %s, %s, 1, 'boom', '{}')", (epoch, page[0])
                )
                assert cur.fetchone() == (True,)
            cur.execute(
                "SELECT pgevents.retry_later('default', 0, %s, %s, 1, 'boom', '{}')", (epoch + 1, page[0])
            )
            assert cur.fetchone() == (False,)
            # A group a worker reads is never skipped, however far behind.
            execute(log_dsn, "SELECT pgevents.rotate(1000, max_lag => '0')")
            cur.execute("SELECT pgevents.rotate(1000, max_lag => '0')")
            assert fetch(log_dsn, "SELECT skipped_at FROM pgevents.consumer_group") == [(None,)]
            assert fetch(log_dsn, "SELECT count(*) FROM pgevents.retry") == [(1,)]
    finally:
        conn.close()


def test_upgrade_from_4_carries_pending_events(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, a int)")
    run_ops(lambda op: (op.install_pgevents(version=4), op.create_pgevent_trigger("item", version=4)))
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5) i")
    run_ops(lambda op: op.upgrade_pgevents(from_version=4, to_version=LOG))
    assert fetch(dsn, "SELECT count(*) FROM pgevents.retry WHERE group_name = 'default'") == [(5,)]
    execute(dsn, "INSERT INTO item VALUES (6, 0)")
    new = read_all(dsn)
    assert len(new) == 1 and new[0] > 5
    run_ops(lambda op: op.downgrade_pgevents(from_version=LOG, to_version=4))
    assert count_events(dsn) == 5
