"""Wake-ups: while events keep coming, a worker polls instead of asking writers to NOTIFY it.

A NOTIFY makes PostgreSQL commit the notifying writers one at a time, so a
worker that set the sleeper flag after every event would serialize a trickle
of writes. For ``PGEVENTS_QUIET_PERIOD`` after it last found queued events a
worker polls with the flag unset; then it sleeps, and a write wakes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from pgevents_migrate import log_reader
from pgevents_migrate.config import WorkerConfig
from tests import runtime_app
from tests.pg import Listener, execute, sleeper_flag, wait_for
from tests.test_runtime import handled

INSERT = """INSERT INTO "user" (email) VALUES ('a')"""


@contextlib.contextmanager
def asleep_worker(database_url: URL, dsn: str, quiet_period: float) -> Iterator[Listener]:
    """A worker started and asleep, and a listener on the wake-up channel that has heard nothing yet.

    A 60 s poll interval: only a NOTIFY or the polling can deliver within a test.
    """
    app = runtime_app.create_app(
        database_url.render_as_string(hide_password=False),
        PGEVENTS_POLL_INTERVAL=60.0,
        PGEVENTS_QUIET_PERIOD=quiet_period,
    )
    runtime_app.install(app)
    listener = Listener(dsn, "pgevents")
    try:
        runtime_app.pgevents.start()
        wait_for(lambda: sleeper_flag(dsn) == 1)
        listener.poll(0.1)
        listener.received.clear()  # the worker's own, as it took its lane
        yield listener
    finally:
        runtime_app.pgevents.stop(10)
        listener.close()


def test_a_worker_that_keeps_finding_events_polls_and_writers_send_no_wakeups(
    database_url: URL, dsn: str
) -> None:
    with asleep_worker(database_url, dsn, quiet_period=3.0) as listener:
        execute(dsn, INSERT)
        wait_for(lambda: len(handled(dsn)) == 1)  # woken by the write's NOTIFY
        flags = set()
        for _ in range(40):
            execute(dsn, INSERT)
            flags.add(sleeper_flag(dsn))
            time.sleep(0.02)
        wait_for(lambda: len(handled(dsn)) == 41)
        assert flags == {0}  # polling: writers were not asked to NOTIFY
        assert len(listener.poll(0.2)) == 1  # the first write's, no other
        # Once the quiet period is over it sleeps, and a write wakes it again.
        wait_for(lambda: sleeper_flag(dsn) == 1, timeout=15)
        execute(dsn, INSERT)
        wait_for(lambda: len(handled(dsn)) == 42)
        assert len(listener.poll(0.2)) == 2


def test_with_no_quiet_period_a_worker_sleeps_after_every_event(database_url: URL, dsn: str) -> None:
    with asleep_worker(database_url, dsn, quiet_period=0) as listener:
        for n in range(1, 6):
            wait_for(lambda: sleeper_flag(dsn) == 1)  # asleep again at once
            execute(dsn, INSERT)
            wait_for(lambda: len(handled(dsn)) == n)  # noqa: B023 - called before the loop moves on
        assert len(listener.poll(0.2)) == 5  # every write woke it


def test_the_quiet_period_is_a_duration_not_below_zero() -> None:
    assert WorkerConfig.from_mapping({"PGEVENTS_QUIET_PERIOD": "1s"}).quiet_period == 1.0
    with pytest.raises(ValueError, match="PGEVENTS_QUIET_PERIOD must not be negative"):
        WorkerConfig(quiet_period=-0.1)


def test_a_poll_while_events_flow_costs_one_round_trip_per_lane(
    database_url: URL, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls come every few milliseconds: no look for retries or lanes each time, no second fetch.

    A poll that finds events reads until a page comes back short, then acknowledges it alone.
    """
    monkeypatch.setattr(log_reader, "POLL_CHECKS_INTERVAL", 60.0)  # however slow this machine is
    app = runtime_app.create_app(database_url.render_as_string(hide_password=False))
    runtime_app.install(app)
    calls: list[str] = []
    with app.app_context():
        worker = runtime_app.pgevents.worker()
        worker.connect()
        reader = worker._log
        assert reader is not None
        for name in ("fetch", "take_lane", "claim_retries", "ack", "ack_and_fetch"):
            method = getattr(reader.queue, name)
            monkeypatch.setattr(
                reader.queue,
                name,
                lambda *args, name=name, method=method: calls.append(name) or method(*args),
            )
        try:
            assert worker._drain() == 0  # a full look: retries, lanes, a fetch asked twice
            assert sorted(set(calls)) == ["claim_retries", "fetch", "take_lane"]
            calls.clear()
            assert worker._drain(polling=True) == 0
            assert calls == ["fetch"]
            execute(dsn, INSERT)
            calls.clear()
            wait_for(lambda: worker._drain(polling=True) == 1)  # what a poll finds, it handles
            assert len(handled(dsn)) == 1
            # A short page: the lane caught up, so it is acknowledged alone; the next poll fetches.
            assert calls.count("ack") == 1 and "ack_and_fetch" not in calls, calls
        finally:
            reader.close(worker._work)
            worker.close()
