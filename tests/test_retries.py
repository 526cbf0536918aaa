"""Failing callbacks: backoff, dead letters, the failed/retry/purge/status commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import CURRENT_VERSION
from pgevents_migrate import Event, PGEvents
from tests.apps import JOB_TABLE_VERSION, NEWEST_VERSION
from tests.pg import RunOps, execute, fetch, wait_for
from tests.test_runtime import _install


class Flaky:
    """A callback that fails for row 1 while ``failing`` is set, recording each call."""

    def __init__(self) -> None:
        self.failing = True
        self.calls: list[tuple[Any, int, datetime]] = []

    def __call__(self, event: Event) -> None:
        self.calls.append((event.row_id, event.attempt, datetime.now(timezone.utc)))
        if self.failing and event.row_id == 1:
            raise ValueError(f"cannot handle row {event.row_id}")


@pytest.fixture
def setup(database_url: URL) -> Iterator[tuple[Flask, PGEvents, Flaky, list[Event]]]:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url.render_as_string(hide_password=False),
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.NullPool},
        PGEVENTS_RETRY_BACKOFF=1.0,
        PGEVENTS_MAX_ATTEMPTS=3,
    )
    db = SQLAlchemy(app)
    pgevents = PGEvents(app, db)

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    flaky = Flaky()
    steady: list[Event] = []
    pgevents.listen(Item, "insert", steady.append)
    pgevents.listen(Item, "insert", flaky)
    _install(app, db)
    yield app, pgevents, flaky, steady


def _available_at(dsn: str) -> datetime:
    """When the failed event is due again (it waits in the default group's retry table)."""
    ((value,),) = fetch(dsn, "SELECT available_at FROM pgevents.retry WHERE group_name = 'default'")
    assert isinstance(value, datetime)
    return value


def test_retry_schedule_dead_letter_and_retry_command(
    setup: tuple[Flask, PGEvents, Flaky, list[Event]], dsn: str
) -> None:
    app, pgevents, flaky, steady = setup
    execute(dsn, "INSERT INTO item VALUES (1)")
    assert pgevents.handle_events() == 1
    delays = []
    for attempt in (2, 3):
        delays.append((_available_at(dsn) - flaky.calls[-1][2]).total_seconds())
        # Other events keep flowing while this one waits for its retry.
        execute(dsn, f"INSERT INTO item VALUES ({attempt * 10})")
        assert pgevents.handle_events() == 1
        wait_for(lambda: pgevents.handle_events() == 1, timeout=10, interval=0.05)
        assert flaky.calls[-1][:2] == (1, attempt)
    assert 0.8 <= delays[0] <= 1.5 and 1.8 <= delays[1] <= 2.5, delays
    # The steady callback succeeded on the first try and was not run again.
    assert sorted(e.row_id for e in steady) == [1, 20, 30]

    # Third failure: dead-lettered with its traceback, gone from the retries, nothing pending.
    assert fetch(dsn, "SELECT count(*) FROM pgevents.retry") == [(0,)]
    assert fetch(dsn, "SELECT pgevents.pending('default')") == [(0,)]
    ((error, attempts, done),) = fetch(dsn, "SELECT error, attempts, done FROM pgevents.dead_letter")
    assert "Traceback" in error and "ValueError: cannot handle row 1" in error and attempts == 3
    assert done == ["builtins.list.append"]  # the steady listener's success is remembered

    runner = app.test_cli_runner()
    listing = runner.invoke(args=["pgevents", "failed"])
    assert listing.exit_code == 0 and "insert public.item {'id': 1}" in listing.output
    assert "ValueError: cannot handle row 1" in listing.output

    flaky.failing = False
    result = runner.invoke(
        args=["pgevents", "retry", str(fetch(dsn, "SELECT id FROM pgevents.dead_letter")[0][0])]
    )
    assert result.exit_code == 0 and "requeued 1 event(s)" in result.output
    assert pgevents.handle_events() == 1
    assert pgevents.handle_events() == 0
    assert flaky.calls[-1][:2] == (1, 1)
    assert sorted(e.row_id for e in steady) == [1, 20, 30]  # still not re-run
    assert fetch(dsn, "SELECT count(*) FROM pgevents.dead_letter") == [(0,)]


def test_retry_command_arguments(setup: tuple[Flask, PGEvents, Flaky, list[Event]], dsn: str) -> None:
    app, pgevents, flaky, _ = setup
    execute(dsn, "INSERT INTO item VALUES (1)")
    assert pgevents.handle_events() == 1  # the first attempt fails: a retry
    # The next try (the third) is the last, and it is due now.
    execute(dsn, "UPDATE pgevents.retry SET attempts = 2, available_at = clock_timestamp()")
    assert pgevents.handle_events() == 1
    assert flaky.calls[-1][:2] == (1, 3)
    assert fetch(dsn, "SELECT count(*) FROM pgevents.dead_letter") == [(1,)]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["pgevents", "retry"]).exit_code == 2
    missing = runner.invoke(args=["pgevents", "retry", "999999"])
    assert missing.exit_code == 1 and "not failed events" in missing.output
    flaky.failing = False
    assert "requeued 1 event(s)" in runner.invoke(args=["pgevents", "retry", "--all"]).output
    assert pgevents.handle_events() == 1
    assert flaky.calls[-1][:2] == (1, 1)


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_retention_keeps_handled_events_until_purged(database_url: URL, dsn: str) -> None:
    """Artifact 4's job table: handled events wait in ``processed`` until purged.

    (The log keeps handled events in its partitions: test_log_worker.py's rotation tests.)
    """
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url.render_as_string(hide_password=False),
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.NullPool},
        PGEVENTS_RETENTION=3600,
    )
    db = SQLAlchemy(app)
    pgevents = PGEvents(app, db)

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", lambda event: None)
    _install(app, db)
    execute(dsn, "INSERT INTO item SELECT generate_series(1, 50)")
    assert pgevents.handle_events() == 50
    assert fetch(dsn, "SELECT count(*) FROM pgevents.processed") == [(50,)]
    runner = app.test_cli_runner()
    assert "purged 0 handled" in runner.invoke(args=["pgevents", "purge", "--older-than", "1h"]).output
    time.sleep(0.01)  # processed_at must be strictly in the past
    result = runner.invoke(args=["pgevents", "purge", "--older-than", "0s"])
    assert result.exit_code == 0 and "purged 50 handled and 0 failed" in result.output
    assert runner.invoke(args=["pgevents", "purge", "--older-than", "soon"]).exit_code == 2


def test_status_reports_drift_and_queue(
    setup: tuple[Flask, PGEvents, Flaky, list[Event]], dsn: str, run_ops: RunOps
) -> None:
    app, _, _, _ = setup
    execute(dsn, "INSERT INTO item VALUES (1)")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["pgevents", "status"])
    assert result.exit_code == 0, result.output
    label = "current" if NEWEST_VERSION == CURRENT_VERSION else "draft"
    assert f"artifact pgevents: version {NEWEST_VERSION} ({label})" in result.output
    assert "ok         item: declared insert queue; installed insert queue" in result.output
    assert "pending 1, failed 0" in result.output
    execute(dsn, "ALTER TABLE item DISABLE TRIGGER pgevents_insert")
    result = runner.invoke(args=["pgevents", "status"])
    assert result.exit_code == 1 and "drift      item" in result.output
    execute(dsn, "ALTER TABLE item ENABLE TRIGGER pgevents_insert")
    run_ops(lambda op: op.downgrade_pgevents(from_version=NEWEST_VERSION, to_version=1))
    result = runner.invoke(args=["pgevents", "status"])
    assert result.exit_code == 1, result.output
    assert f"artifact pgevents: version 1 (this library ships version {CURRENT_VERSION})" in result.output
    assert "ok         item" in result.output and "out of date: run `flask db migrate`" in result.output
