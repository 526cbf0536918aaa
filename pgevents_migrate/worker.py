"""``Worker``: listens, claims and dispatches; reconnects; shuts down gracefully.

Two connections: ``listen`` (autocommit) holds the LISTENs and the sleeper
flag; ``work`` claims and acknowledges. A heartbeat thread with its own
connection renews the leases of claimed events while callbacks run.
"""

from __future__ import annotations

import logging
import select
import threading
import time

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from alembic_ops.artifacts import ARTIFACT_MARKER
from alembic_ops.errors import PGEventsError
from alembic_ops.identifiers import broadcast_channel, wakeup_channel

from .config import WorkerConfig
from .dispatch import Dispatcher
from .event import Event
from .queue import Claim, Connection, EventQueue

log = logging.getLogger("pgevents_migrate")

#: Errors that mean the connection is gone (server restart, terminated backend, network).
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def connect(dsn: str, *, autocommit: bool, config: WorkerConfig) -> Connection:
    """A connection that notices a dead peer within about ``poll_interval`` seconds."""
    timeout_ms = int(max(config.poll_interval, 1.0) * 2000)
    conn = psycopg2.connect(
        dsn,
        application_name="pgevents-worker",
        connect_timeout=10,
        keepalives=1,
        keepalives_idle=max(1, int(config.poll_interval)),
        keepalives_interval=max(1, int(config.poll_interval / 2)),
        keepalives_count=3,
        tcp_user_timeout=timeout_ms,
    )
    conn.autocommit = autocommit
    return conn


class Worker:
    """Delivers events to ``dispatcher``'s callbacks from one database."""

    def __init__(self, dsn: str, dispatcher: Dispatcher, config: WorkerConfig) -> None:
        self.dsn = dsn
        self.dispatcher = dispatcher
        self.config = config
        self.queue = EventQueue(config.schema)
        self.stopping = threading.Event()
        self._listen: Connection | None = None
        self._work: Connection | None = None
        self._held: dict[tuple[int, int], Claim] = {}
        self._held_lock = threading.Lock()
        self._unacknowledged: list[tuple[int, int]] = []
        self._tables: tuple[list[str], list[str]] = ([], [])
        self._heartbeat: threading.Thread | None = None
        self._last_purge = 0.0

    # -- connections -------------------------------------------------------

    def connect(self) -> None:
        """Open both connections, LISTEN, and check the artifact is installed."""
        self.close()
        # Autocommit: every queue operation is a single statement, so it is its
        # own transaction and needs no BEGIN and COMMIT round trips.
        work = connect(self.dsn, autocommit=True, config=self.config)
        self._work = work
        with work.cursor() as cur:
            cur.execute(
                "SELECT current_schema(), EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = 'capture'"
                " AND starts_with(obj_description(p.oid, 'pg_proc'), %s))",
                (self.config.schema, ARTIFACT_MARKER),
            )
            default_schema, installed = cur.fetchone()  # type: ignore[misc]
        work.commit()
        if not installed:
            raise PGEventsError(
                f"pgevents is not installed in schema {self.config.schema!r} of this database: "
                "run `flask db migrate` and `flask db upgrade` first"
            )
        self.dispatcher.default_schema = default_schema
        tables = sorted(self.dispatcher.tables())
        self._tables = ([s for s, _ in tables], [t for _, t in tables])
        listen = connect(self.dsn, autocommit=True, config=self.config)
        self._listen = listen
        with listen.cursor() as cur:
            for channel in (wakeup_channel(self.config.schema), broadcast_channel(self.config.schema)):
                cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.queue.forget_stale_sleepers(listen)
        log.info("pgevents: listening on schema %r for %d table(s)", self.config.schema, len(tables))

    def close(self) -> None:
        for conn in (self._listen, self._work):
            if conn is not None and not conn.closed:
                conn.close()
        self._listen = self._work = None

    # -- one pass ----------------------------------------------------------

    def run_once(self, timeout: float = 0.0) -> int:
        """Handle what is available; if nothing is, wait up to ``timeout`` for more.

        Returns the number of events handled.
        """
        if self._work is None:
            self.connect()
        self._acknowledge_leftovers()
        handled = self._drain_broadcasts() + self._drain_queue()
        if handled or timeout <= 0 or self.stopping.is_set():
            return handled
        listen = self._listening()
        self.queue.sleep(listen)
        try:
            # A writer that committed before the flag was visible did not
            # NOTIFY: look once more now that it is set.
            handled = self._drain_queue()
            if not handled:
                self._wait(listen, timeout)
        finally:
            self.queue.wake(listen)
        self._purge_if_due()
        return handled + self._drain_broadcasts() + self._drain_queue()

    def _listening(self) -> Connection:
        assert self._listen is not None
        return self._listen

    def _working(self) -> Connection:
        assert self._work is not None
        return self._work

    def _wait(self, listen: Connection, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not listen.notifies and not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Wake at least once a second to notice stop().
            ready, _, _ = select.select([listen], [], [], min(remaining, 1.0))
            if ready:
                listen.poll()

    def _drain_broadcasts(self) -> int:
        if self._listen is None:
            return 0
        self._listen.poll()
        notifies, self._listen.notifies[:] = list(self._listen.notifies), []
        handled = 0
        channel = broadcast_channel(self.config.schema)
        for notify in notifies:
            if notify.channel != channel:
                continue  # a queue wake-up: the drain that follows handles it
            for event in Event.from_broadcast(notify.payload):
                self.dispatcher.run(event)
                handled += 1
        return handled

    def _drain_queue(self) -> int:
        handled = 0
        if not self._tables[0]:
            return 0
        while not self.stopping.is_set():
            claims = self.queue.claim(
                self._working(), self.config.batch_size, self.config.lease, self._tables
            )
            if not claims:
                break
            handled += self._handle(claims)
            if len(claims) < self.config.batch_size:
                break
        return handled

    def _handle(self, claims: list[Claim]) -> int:
        with self._held_lock:
            self._held.update((claim.key, claim) for claim in claims)
        self._ensure_heartbeat()
        succeeded: list[tuple[int, int]] = []
        handled = 0
        try:
            for claim in claims:
                if self.stopping.is_set():
                    break
                outcome = self.dispatcher.run(claim.event, claim.done)
                handled += 1
                if outcome.error is None:
                    # Stays held, its lease renewed, until acknowledged below.
                    succeeded.append(claim.key)
                    continue
                if claim.event.attempt >= self.config.max_attempts:
                    self.queue.bury(self._working(), claim, outcome.error, outcome.done)
                    log.error(
                        "pgevents: event %s dead-lettered after %s attempts",
                        claim.event.id,
                        claim.event.attempt,
                    )
                else:
                    delay = self.config.backoff(claim.event.attempt)
                    self.queue.retry_later(self._working(), claim, delay, outcome.error, outcome.done)
                with self._held_lock:
                    self._held.pop(claim.key, None)
        finally:
            self._unacknowledged.extend(succeeded)
            try:
                self._acknowledge_leftovers()
            finally:
                # Even when the connection is gone: claims left in _held would
                # have their leases renewed by the heartbeat for ever.
                with self._held_lock:
                    for key in succeeded:
                        self._held.pop(key, None)
                self._release_unstarted()
        return handled

    def _acknowledge_leftovers(self) -> None:
        """Acknowledge handled events (again after a reconnect if it failed before)."""
        if self._unacknowledged and self._work is not None:
            self.queue.acknowledge(self._work, self._unacknowledged, keep=self.config.retention > 0)
            self._unacknowledged.clear()

    def _release_unstarted(self) -> None:
        with self._held_lock:
            unstarted, self._held = list(self._held), {}
        if unstarted and self._work is not None:
            released = self.queue.release(self._work, unstarted)
            log.info("pgevents: released %s claimed events on shutdown", released)

    def _purge_if_due(self) -> None:
        if self.config.retention <= 0 or time.monotonic() - self._last_purge < self.config.poll_interval * 12:
            return
        self._last_purge = time.monotonic()
        self.queue.purge(self._working(), "processed", self.config.retention)

    # -- leases ------------------------------------------------------------

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._heartbeat = threading.Thread(
                target=self._renew_leases, name="pgevents-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _renew_leases(self) -> None:
        """Extend the leases of held claims every third of a lease, while any are held.

        Keeps going after ``stop()`` until the callback in flight has finished
        and the batch is acknowledged or released.
        """
        conn: Connection | None = None
        try:
            while True:
                time.sleep(self.config.lease / 3)
                with self._held_lock:
                    keys = list(self._held)
                if not keys:
                    if self.stopping.is_set():
                        return
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.dsn, autocommit=True, config=self.config)
                    self.queue.extend(conn, keys, self.config.lease)
                except CONNECTION_ERRORS as exc:
                    log.warning("pgevents: could not renew leases (%s); retrying", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    # -- the loop ----------------------------------------------------------

    def run(self) -> None:
        """Deliver events until ``stop()``; reconnect with backoff when the database goes away."""
        delay = 0.5
        try:
            while not self.stopping.is_set():
                try:
                    if self._work is None:
                        self.connect()
                    self.run_once(self.config.poll_interval)
                    delay = 0.5
                except CONNECTION_ERRORS as exc:
                    log.warning(
                        "pgevents: database connection lost (%s); reconnecting in %.1fs",
                        str(exc).strip() or type(exc).__name__,
                        delay,
                    )
                    self.close()
                    self.stopping.wait(delay)
                    delay = min(delay * 2, self.config.reconnect_max_delay)
        finally:
            try:
                self._release_unstarted()
            except CONNECTION_ERRORS:
                pass
            self.close()

    def stop(self) -> None:
        """Ask ``run()`` to return after the callback in progress."""
        self.stopping.set()
