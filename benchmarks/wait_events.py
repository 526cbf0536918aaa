"""What the concurrent writers wait on: ``pg_stat_activity`` sampled while pgbench runs."""

from __future__ import annotations

import collections
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg2.extensions

Connection = psycopg2.extensions.connection

PGBENCH_APPLICATION_NAME = "pgbench"
#: How often the sampler reads ``pg_stat_activity``, in seconds.
WAIT_POLL_INTERVAL = 0.02
#: How long stopping the sampler may take before its query is cancelled, and again after.
WAIT_STOP_TIMEOUT = 5.0
#: Wait events of a backend waiting to send NOTIFY messages at commit. ``PreCommit_Notify``
#: takes a heavyweight lock on object 0 of ``pg_database``, one for the whole cluster
#: (``LockSharedObject(DatabaseRelationId, InvalidOid, 0, AccessExclusiveLock)``), and holds it
#: until the commit is done, WAL flush included, so every notifying commit waits its turn:
#: ``Lock:object``. These INSERTs take no other object lock. The LWLocks guard the notification
#: queue and its SLRU (names checked in PostgreSQL 15 and 18).
NOTIFY_WAITS = (
    "Lock:object",
    "LWLock:NotifyQueue",
    "LWLock:NotifyQueueTail",
    "LWLock:NotifySLRU",
    "LWLock:NotifyBuffer",
)
WAITS_QUERY = (
    "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = %s AND state = 'active'"
    " AND pid <> pg_backend_pid()"
)


@dataclass
class Waits:
    """What active pgbench backends were waiting on, over the polls of one sample."""

    #: Active-backend samples: one per active pgbench backend per poll.
    active: int = 0
    #: Wait events (``type:event``) of the active-backend samples that were waiting.
    events: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, waiting: Sequence[str | None]) -> None:
        """Count one poll: the wait event of each active backend (None: not waiting)."""
        self.active += len(waiting)
        self.events.update(event for event in waiting if event is not None)

    @property
    def notify_share(self) -> float | None:
        """The share of active-backend samples waiting on the NOTIFY lock; None without samples."""
        notify = sum(self.events[event] for event in NOTIFY_WAITS)
        return notify / self.active if self.active else None

    @classmethod
    def total(cls, samples: Sequence[Waits]) -> Waits:
        """All of ``samples`` counted together."""
        total = cls()
        for waits in samples:
            total.active += waits.active
            total.events.update(waits.events)
        return total


class WaitSampler:
    """A thread polling ``pg_stat_activity`` for the pgbench backends, on its own connection.

    Start it before pgbench and call ``stop`` afterwards (in a ``finally``):
    it returns what was counted, or raises if the sampler failed or hung.
    """

    def __init__(self, conn: Connection, interval: float = WAIT_POLL_INTERVAL) -> None:
        """Start polling on ``conn`` (autocommit, used by nothing else; ``stop`` closes it)."""
        self._conn = conn
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '5s'")
        self._interval = interval
        self._waits = Waits()
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="pgevents-bench-waits", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        """Count wait events until stopped; the first error ends the thread and is kept."""
        try:
            with self._conn.cursor() as cur:
                while not self._stop.is_set():
                    cur.execute(WAITS_QUERY, (PGBENCH_APPLICATION_NAME,))
                    self._waits.add([row[0] for row in cur.fetchall()])
                    self._stop.wait(self._interval)
        except Exception as exc:  # handed to stop(), which raises it in the main thread
            self._error = exc

    def stop(self) -> Waits:
        """Stop polling, close the connection and return the counts."""
        self._stop.set()
        self._thread.join(WAIT_STOP_TIMEOUT)
        if self._thread.is_alive():
            self._conn.cancel()  # a query stuck in the server: cancelling makes it raise
            self._thread.join(WAIT_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError("the wait-event sampler did not stop (its connection is left open)")
        self._conn.close()
        if self._error is not None:
            raise RuntimeError(f"the wait-event sampler failed: {self._error}") from self._error
        return self._waits


def percent(share: float) -> str:
    """``0.4123`` as ``41.2%``."""
    return f"{share * 100:.1f}%"


def notify_cell(samples: Sequence[Waits]) -> str:
    """``41.2% (38.0-45.1%)``: median share over the rounds with samples, and its range."""
    shares = [share for share in (waits.notify_share for waits in samples) if share is not None]
    if not shares:
        return "no samples"
    median = percent(statistics.median(shares))
    if len(shares) == 1:
        return median
    return f"{median} ({min(shares) * 100:.1f}-{percent(max(shares))})"


def most_common_cell(total: Waits) -> str:
    """The most common wait event over all rounds, with its share of the active-backend samples."""
    if not total.active:
        return "no samples"
    if not total.events:
        return "none (all on CPU)"
    event, count = total.events.most_common(1)[0]
    return f"{event} {percent(count / total.active)}"
