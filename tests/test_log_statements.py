"""Statements of many rows on the log: what a reader must keep, whatever one event row holds.

Artifact 7 (a draft) writes one event row per multi-row statement
(docs/design/bulk-capture.md, section 6): a row of up to 1024 keys standing for
events with consecutive ids.
The first tests hold on artifact 6's log as well and pin what statement rows
must keep: a statement larger than a row, a page boundary inside a statement,
a retry and a dead letter of one key in its middle, lanes splitting its keys,
and a replay that starts inside it. They read events through callbacks, the
CLI and ``tests.pg.events`` (which expands statement rows), never the event
table's rows, so they mean the same on either layout. The last two cross the
step between 6 and 7: a worker running through the upgrade, and the downgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import URL

from alembic_ops.core.names import STATEMENT_ROWS_VERSION
from pgevents_migrate import Event, PGEvents
from tests.apps import TEST_VERSION_VARIABLE
from tests.pg import RunOps, events, execute, fetch, wait_for
from tests.test_log_worker import LOG, drain, make_app, on_the_log

pytestmark = pytest.mark.usefixtures(on_the_log.__name__)


@dataclass
class Seen:
    """One callback call: the event's id, operation, row and attempt."""

    id: int
    op: str
    row: int
    attempt: int


@dataclass
class Calls:
    """A callback that records every call and fails for the rows in ``failing``."""

    seen: list[Seen] = field(default_factory=list)
    failing: set[int] = field(default_factory=set)

    def __call__(self, event: Event) -> None:
        assert event.id is not None
        self.seen.append(Seen(event.id, event.op, event.row_id, event.attempt))
        if event.row_id in self.failing:
            raise ValueError(f"cannot handle row {event.row_id}")

    def ids(self) -> list[int]:
        return [s.id for s in self.seen]

    def rows(self, op: str) -> list[int]:
        return [s.row for s in self.seen if s.op == op]


@pytest.fixture
def calls() -> Calls:
    return Calls()


def start(database_url: URL, calls: Calls, **config: Any) -> tuple[Flask, PGEvents]:
    """An app on the log whose listener on ``item`` records into ``calls``, installed."""
    from tests.test_runtime import _install

    app, pgevents, db = make_app(database_url, calls, **config)
    _install(app, db)
    return app, pgevents


@pytest.fixture
def log_app(database_url: URL, calls: Calls) -> Iterator[tuple[Flask, PGEvents]]:
    app, pgevents = start(database_url, calls, PGEVENTS_BATCH_SIZE=300)
    yield app, pgevents
    with app.app_context():
        pgevents.stop(10)


def test_a_statement_of_5000_rows_arrives_once_in_order_between_single_rows(
    log_app: tuple[Flask, PGEvents], calls: Calls, dsn: str
) -> None:
    app, pgevents = log_app
    execute(dsn, "INSERT INTO item VALUES (0, 0)")
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5000) i")
    execute(dsn, "INSERT INTO item VALUES (5001, 0)")
    execute(dsn, "UPDATE item SET a = 1 WHERE id BETWEEN 1 AND 2000")
    # Pages of 300 end inside the statement, and not where a row of 1024 keys would.
    assert drain(app, pgevents) == 5002 + 2000
    ids = calls.ids()
    assert ids == sorted(set(ids)), "each event once, in id order"
    assert calls.rows("insert") == list(range(5002))  # the statement's rows in its order
    assert sorted(calls.rows("update")) == list(range(1, 2001))
    assert [s.op for s in calls.seen[-2000:]] == ["update"] * 2000
    assert drain(app, pgevents) == 0
    assert fetch(dsn, "SELECT pgevents.pending('default')") == [(0,)]


def test_a_key_in_the_middle_of_a_statement_is_retried_then_dead_lettered_alone(
    log_app: tuple[Flask, PGEvents], calls: Calls, dsn: str
) -> None:
    app, pgevents = log_app
    app.config["PGEVENTS_MAX_ATTEMPTS"] = 2
    calls.failing = {1500}
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 3000) i")
    assert drain(app, pgevents) == 3000  # the cursor passes the failed key
    failed = [s for s in calls.seen if s.row == 1500]
    assert [s.attempt for s in failed] == [1]
    assert fetch(dsn, "SELECT pk, attempts FROM pgevents.retry") == [({"id": 1500}, 1)]
    wait_for(lambda: drain(app, pgevents) == 1 and len(calls.seen) == 3001, timeout=10)
    buried = fetch(dsn, "SELECT id, pk, attempts FROM pgevents.dead_letter")
    assert buried == [(failed[0].id, {"id": 1500}, 2)]
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["pgevents", "failed"])
    assert listing.exit_code == 0 and "cannot handle row 1500" in listing.output, listing.output

    calls.failing = set()
    assert "requeued 1 event(s)" in runner.invoke(args=["pgevents", "retry", "--all"]).output
    wait_for(lambda: drain(app, pgevents) == 1, timeout=10)
    assert calls.seen[-1] == Seen(failed[0].id, "insert", 1500, 1)  # the same event, fresh attempts
    assert sorted(s.row for s in calls.seen) == sorted([*range(1, 3001), 1500, 1500])
    left = "SELECT (SELECT count(*) FROM pgevents.retry), (SELECT count(*) FROM pgevents.dead_letter)"
    assert fetch(dsn, left) == [(0, 0)]


def test_lanes_split_one_statements_keys_and_keep_each_rows_order(
    database_url: URL, calls: Calls, dsn: str, run_ops: RunOps
) -> None:
    app, pgevents = start(database_url, calls, PGEVENTS_GROUP="par", PGEVENTS_BATCH_SIZE=250)
    run_ops(lambda op: op.create_pgevents_group("par", lanes=3, version=LOG))
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 3000) i")
    execute(dsn, "UPDATE item SET a = 1")
    try:
        wait_for(lambda: drain(app, pgevents) == 0 and len(calls.seen) >= 6000, timeout=60)
    finally:
        with app.app_context():
            pgevents.stop(10)
    ids = calls.ids()
    assert len(ids) == len(set(ids)) == 6000
    for row in (1, 1024, 1025, 2999, 3000):
        ops = [(s.id, s.op) for s in calls.seen if s.row == row]
        assert [op for _, op in ops] == ["insert", "update"] and ops[0][0] < ops[1][0]
    lanes = fetch(
        dsn,
        "SELECT count(DISTINCT pgevents.lane_of('public', 'item', jsonb_build_object('id', i), 3))"
        " FROM generate_series(1, 3000) i",
    )
    assert lanes == [(3,)]  # the statement's keys do fall in every lane
    assert fetch(dsn, "SELECT pgevents.pending('par')") == [(0,)]


def test_replay_from_an_id_inside_a_statement_delivers_its_rest_with_the_same_ids(
    database_url: URL, calls: Calls, dsn: str
) -> None:
    app, pgevents = start(database_url, calls, PGEVENTS_RETENTION="7d")
    try:
        execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 100) i")
        assert drain(app, pgevents) == 100
        first = {s.row: s.id for s in calls.seen}
        result = app.test_cli_runner().invoke(args=["pgevents", "replay", "--from-id", str(first[60])])
        assert result.exit_code == 0 and "queued 41 event(s)" in result.output, result.output
        wait_for(lambda: drain(app, pgevents) == 41, timeout=10)
    finally:
        with app.app_context():
            pgevents.stop(10)
    again = calls.seen[100:]
    assert sorted(s.row for s in again) == list(range(60, 101))
    assert all(s.id == first[s.row] for s in again)


def test_a_worker_running_through_the_upgrade_to_statement_rows_dead_letters_their_events(
    database_url: URL, calls: Calls, dsn: str, run_ops: RunOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = STATEMENT_ROWS_VERSION - 1
    monkeypatch.setenv(TEST_VERSION_VARIABLE, str(before))
    app, pgevents = start(database_url, calls, PGEVENTS_MAX_ATTEMPTS=1)
    calls.failing = {11}
    with app.app_context():
        worker = pgevents.worker()
    try:
        execute(dsn, "INSERT INTO item VALUES (1, 0)")
        wait_for(lambda: worker.run_once() >= 0 and len(calls.seen) == 1)  # connected, reading artifact 6
        run_ops(lambda op: op.upgrade_pgevents(from_version=before, to_version=STATEMENT_ROWS_VERSION))
        execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(10, 12) i")  # one statement row
        wait_for(lambda: worker.run_once() >= 0 and len(calls.seen) == 4)
    finally:
        worker.close()
    failed = [s for s in calls.seen if s.row == 11]
    buried = fetch(dsn, "SELECT id, pk, attempts FROM pgevents.dead_letter")
    assert buried == [(failed[0].id, {"id": 11}, 1)]  # found in its statement row, not lost


def test_the_downgrade_to_6_turns_pending_statement_rows_into_their_events(
    database_url: URL, calls: Calls, dsn: str, run_ops: RunOps
) -> None:
    app, pgevents = start(database_url, calls)
    execute(dsn, "INSERT INTO item SELECT i, 0 FROM generate_series(1, 5) i")
    execute(dsn, "INSERT INTO item VALUES (6, 0)")
    pending = [(e["id"], e["pk"]) for e in events(dsn)]
    before = STATEMENT_ROWS_VERSION - 1
    run_ops(lambda op: op.downgrade_pgevents(from_version=STATEMENT_ROWS_VERSION, to_version=before))
    assert [(e["id"], e["pk"]) for e in events(dsn)] == pending  # a row each, the same ids
    execute(dsn, "INSERT INTO item VALUES (7, 0)")
    try:
        assert drain(app, pgevents) == 7
    finally:
        with app.app_context():
            pgevents.stop(10)
    assert [(s.id, s.row) for s in calls.seen[:6]] == [(i, pk["id"]) for i, pk in pending]
    assert calls.seen[6].row == 7 and calls.seen[6].id > pending[-1][0]  # ids go on above every one drawn
