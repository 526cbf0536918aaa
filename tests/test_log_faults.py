"""Faults on the log (the newest artifact), with ``flask pgevents run`` in subprocesses.

kill -9 of the group's reader in the middle of a backlog and in the middle of
its maintenance: a standby takes the lease over once it expires, and every
event still arrives; the rotation the killed worker began rolls back whole.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy.engine import URL

from tests import runtime_app
from tests.apps import NEWEST_VERSION, TEST_VERSION_VARIABLE
from tests.pg import count_events, wait_for
from tests.workers import (
    WORKER_APP,
    WorkerPool,
    alive,
    distinct_handled,
    handled_rows,
    insert_users,
    pending,
    probe,
    query,
    scalar,
)

LEASE = 2


@pytest.fixture
def url(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    monkeypatch.setenv(TEST_VERSION_VARIABLE, str(NEWEST_VERSION))
    runtime_app.install(runtime_app.create_app(database_url.render_as_string(hide_password=False)))
    return database_url


def assert_each_row_delivered(ids: list[int], dsn: str, at_most_twice: int) -> None:
    """Every inserted row's event handled; at most ``at_most_twice`` of them twice, with the same id."""
    deliveries: dict[int, list[int]] = defaultdict(list)
    for event_id, op, row_id, _attempt, _pid in handled_rows(dsn):
        assert op == "insert"
        deliveries[row_id].append(event_id)
    assert sorted(deliveries) == sorted(ids)
    twice = {row: d for row, d in deliveries.items() if len(d) > 1}
    assert len(twice) <= at_most_twice, twice
    assert all(len(d) == 2 and d[0] == d[1] for d in twice.values()), twice


@pytest.mark.parametrize("per_statement", [200, 4000], ids=["statements of 200", "one statement"])
def test_sigkill_of_the_reader_mid_backlog_then_a_standby_delivers_the_rest(
    url: URL, dsn: str, workers: WorkerPool, per_statement: int
) -> None:
    ids = insert_users(dsn, 4000, per_transaction=per_statement)
    env = {"PGEVENTS_LEASE": LEASE, "PGEVENTS_BATCH_SIZE": 100}
    first = workers.start(url, **env)
    second = workers.start(url, **env)  # stands by: the lease is the first's
    wait_for(lambda: alive(first, second) and distinct_handled(dsn) >= 1000, timeout=60)
    first.kill()
    wait_for(lambda: alive(second) and distinct_handled(dsn) >= 4000 and pending(dsn) == 0, timeout=120)
    assert second.terminate_and_wait() == 0
    # At most the page the killed reader had not acknowledged comes twice.
    assert_each_row_delivered(ids, dsn, at_most_twice=100)
    assert "reading lane 0 of group" in second.log()


def test_sigkill_during_maintenance_rolls_the_rotation_back(url: URL, dsn: str, workers: WorkerPool) -> None:
    env = {"PGEVENTS_LEASE": LEASE, "PGEVENTS_BATCH_SIZE": 100}
    config = {"PGEVENTS_PARTITION_EVENTS": 100}
    ids = insert_users(dsn, 300, per_transaction=1)  # 300 rows of the log, whatever the artifact
    with probe(dsn) as holder:
        # A long reader of the first partition: truncating it has to wait.
        holder.autocommit = False
        with holder.cursor() as cur:
            cur.execute("SELECT count(*) FROM pgevents.event_0")
        first = workers.start(url, config=config, **env)
        waiting = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock' AND query LIKE '%%rotate%%'"
        )
        wait_for(lambda: alive(first) and query(dsn, waiting, (WORKER_APP,)) != [], timeout=60)
        first.kill()
        wait_for(lambda: query(dsn, waiting, (WORKER_APP,)) == [], timeout=30)
        # The truncation rolled back: the partition and its state are as they were.
        assert count_events(dsn, "event_0") == 300
        assert scalar(dsn, "SELECT state FROM pgevents.rotation WHERE gen = 0") == "left"
        holder.rollback()
    more = insert_users(dsn, 50, per_transaction=50)
    second = workers.start(url, config=config, **env)
    wait_for(lambda: alive(second) and distinct_handled(dsn) >= 350 and pending(dsn) == 0, timeout=60)
    wait_for(lambda: count_events(dsn, "event_0") == 0, timeout=60)
    assert second.terminate_and_wait() == 0
    assert_each_row_delivered(ids + more, dsn, at_most_twice=100)
    assert query(dsn, "SELECT count(*) FROM pgevents.rotation WHERE state = 'current'") == [(1,)]
