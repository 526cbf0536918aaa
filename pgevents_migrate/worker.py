"""``Worker``: listens, claims and dispatches; reconnects; shuts down gracefully.

Three connections, all autocommit: ``listen`` holds the LISTENs and the
sleeper flag; ``work`` claims the first batch of a drain and records failures;
``ahead``, asynchronous, acknowledges handled events and claims the next ones
in one round trip that the server works on while callbacks run, so that server
and Python work overlap; a receiver thread holds the claims it returns as soon
as they arrive. At most ``batch_size`` claims are held at a time. A heartbeat
thread with its own connection renews the leases of every claim held
(prefetched ones included) while callbacks run.

That is the job table of artifacts 1-4. On artifact 5 the ``work``
connection reads the event log through ``LogReader`` (``log_reader.py``)
instead; listening, broadcasts, the sleeper flag and reconnects stay here.

Wake-ups: a worker with nothing to do sets the sleeper flag, so that writers
NOTIFY it, and waits. But a NOTIFY makes PostgreSQL commit writers one at a
time, so while queued events keep coming (within ``PGEVENTS_QUIET_PERIOD`` of
the last) it polls every few milliseconds instead, with the flag unset.
"""

from __future__ import annotations

import functools
import logging
import select
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from alembic_ops.core.catalog import Cursor as CatalogCursor
from alembic_ops.core.catalog import InstalledState, read_installed
from alembic_ops.core.errors import PGEventsError
from alembic_ops.core.names import (
    LOG_VERSION,
    broadcast_channel,
    flags_sequence,
    sleeping_sequence,
    wakeup_channel,
)
from alembic_ops.core.spec import TableKey, TriggerSpec

from .config import WorkerConfig
from .dispatch import Dispatcher
from .event import Event
from .heartbeat import HeartbeatConnection
from .log_reader import LogReader
from .queue import Claim, ClaimRow, Connection, Cursor, EventQueue, by_name
from .status import TableStatus, compare, describe, require_artifact

log = logging.getLogger("pgevents_migrate")

Key = tuple[int, int]
Row = ClaimRow

#: The application_name of the worker's connections (pg_stat_activity shows it).
APPLICATION_NAME = "pgevents-worker"

#: Errors that mean the connection is gone (server restart, terminated backend, network).
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)

#: Seconds between polls while events flow: a poll gathers what writers wrote meanwhile,
#: instead of a round trip for every few events.
POLL_DELAY = 0.005

#: The session's default schema and role, the sleeper flag's sequence (flags from artifact 6 on,
#: else sleeping), and whether the role may not set it.
_SESSION_QUERY = (
    "SELECT current_schema() AS default_schema, quote_ident(current_user) AS role, flag::text,"
    " NOT has_sequence_privilege(flag, 'UPDATE') AS flag_denied"
    " FROM (SELECT coalesce(to_regclass(%s), to_regclass(%s)) AS flag) AS flags"
)


class _Session(NamedTuple):
    """What ``_SESSION_QUERY`` returns."""

    default_schema: str
    role: str
    flag: str | None
    flag_denied: bool | None


_FIX = (
    "run `flask db migrate` and `flask db upgrade` to install what the app declares"
    " (`flask pgevents status` shows every difference)"
)


def connect(dsn: str, *, autocommit: bool, config: WorkerConfig, wait: bool = True) -> Connection:
    """A connection that notices a dead peer within about ``poll_interval`` seconds.

    ``wait=False``: an asynchronous connection (always autocommit), whose
    ``execute`` returns at once; ``psycopg2.extras.wait_select`` waits for it.
    """
    timeout_ms = int(max(config.poll_interval, 1.0) * 2000)
    conn = psycopg2.connect(
        dsn,
        application_name=APPLICATION_NAME,
        connect_timeout=10,
        keepalives=1,
        keepalives_idle=max(1, int(config.poll_interval)),
        keepalives_interval=max(1, int(config.poll_interval / 2)),
        keepalives_count=3,
        tcp_user_timeout=timeout_ms,
        async_=not wait,
    )
    if wait:
        conn.autocommit = autocommit
    else:
        psycopg2.extras.wait_select(conn)
    return conn


class Worker:
    """Delivers events to ``dispatcher``'s callbacks from one database.

    ``declared``: the capture specs the app declares for this database (bind
    ``bind_key``), checked against the installed triggers at every connect.
    """

    def __init__(
        self,
        dsn: str,
        dispatcher: Dispatcher,
        config: WorkerConfig,
        *,
        declared: Mapping[TableKey, TriggerSpec] | None = None,
        bind_key: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.dispatcher = dispatcher
        self.config = config
        self.declared = dict(declared or {})
        self.bind_key = bind_key
        self.queue = EventQueue(config.schema)
        self.stopping = threading.Event()
        self._listen: Connection | None = None
        self._work: Connection | None = None
        self._ahead: Connection | None = None
        #: The prefetch sent on ``_ahead``: its result, the keys it acknowledges, its limit.
        self._ahead_job: tuple[Future[list[Row]], list[Key], int] | None = None
        self._receiver: ThreadPoolExecutor | None = None
        self._held: set[Key] = set()
        self._held_lock = threading.Lock()
        #: Handled, still held, not acknowledged yet (or their acknowledgement failed).
        self._unacknowledged: list[Key] = []
        self._tables: tuple[list[str], list[str]] = ([], [])
        self._heartbeat: threading.Thread | None = None
        self._last_purge = 0.0
        #: When a drain last handled queued events (monotonic seconds).
        self._events_at = float("-inf")
        #: Reads the log of artifact 5 on; None for the job table of artifacts 1-4.
        self._log: LogReader | None = None

    # -- connections -------------------------------------------------------

    def connect(self) -> None:
        """Open both connections, check the database, LISTEN; also on every reconnect.

        ``PGEventsError`` if the artifact is missing or a queue worker may not
        set the sleeper flag. Declared tables whose triggers are missing or
        differ are logged, one warning each, or refused with ``strict``.
        """
        self.close()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        # Autocommit: every queue operation is a single statement, so it is its
        # own transaction and needs no BEGIN and COMMIT round trips.
        work = connect(self.dsn, autocommit=True, config=self.config)
        self._work = work
        with work.cursor() as cur:
            schema = self.config.schema
            cur.execute(_SESSION_QUERY, (flags_sequence(schema), sleeping_sequence(schema)))
            row = cur.fetchone()
            assert row is not None
            session = by_name(cur, _Session)(row)
            installed = self.installed(cur, session.default_schema)
        version = installed.artifacts[self.config.schema]
        if version >= LOG_VERSION:
            if self._log is None:
                self._log = LogReader(self.dispatcher, self.config, self._heartbeat_connection, version)
            # Lanes held before a reconnect are taken again by the next drain, on the log of the
            # version installed now (a migration may have changed it meanwhile).
            self._log.reset(work, version)
            if not self._log.queue.group_exists(work):
                raise self._log.queue.missing_group()
        elif self.dispatcher.has_ordered:
            raise PGEventsError(
                f"listeners with ordered=True need pgevents artifact {LOG_VERSION} (the event log); "
                f"schema {self.config.schema!r} holds version {version}"
            )
        else:
            self._log = None
        self.dispatcher.default_schema = session.default_schema
        tables = self.dispatcher.tables()
        queued = sorted(self.dispatcher.tables("queue"))
        self._tables = ([s for s, _ in queued], [t for _, t in queued])
        if queued and session.flag_denied:
            raise PGEventsError(
                f"role {session.role} may not set the sleeper flag {session.flag}, which a worker with queue "
                f"listeners sets before it waits: GRANT UPDATE ON SEQUENCE {session.flag} TO {session.role}"
            )
        self._check_triggers(compare(self.declared, installed, session.default_schema))
        listen = connect(self.dsn, autocommit=True, config=self.config)
        self._listen = listen
        with listen.cursor() as cur:
            for channel in (wakeup_channel(self.config.schema), broadcast_channel(self.config.schema)):
                cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.queue.forget_stale_sleepers(listen)
        log.info("pgevents: listening on schema %r for %d table(s)", self.config.schema, len(tables))

    def _heartbeat_connection(self) -> Connection:
        return connect(self.dsn, autocommit=True, config=self.config)

    def installed(self, cur: CatalogCursor, default_schema: str | None = None) -> InstalledState:
        """What pgevents has installed in the database; ``PGEventsError`` without the artifact."""
        installed = read_installed(cur, default_schema)
        require_artifact(installed.artifacts, self.config.schema, self.bind_key)
        return installed

    def _check_triggers(self, tables: list[TableStatus]) -> None:
        """One warning per declared table not captured as declared; with ``strict``, refuse."""
        gaps = [table for table in tables if table.state in ("missing", "drift")]
        if gaps and self.config.strict:
            details = "; ".join(f"{table.target}: {table.uncaptured()}" for table in gaps)
            raise PGEventsError(f"refusing to run (strict): {details}; {_FIX}")
        for table in gaps:
            log.warning(
                "pgevents: table %s (declared %s, installed %s): %s; %s",
                table.target,
                describe(table.declared),
                describe(table.installed),
                table.uncaptured(),
                _FIX,
            )

    def close(self) -> None:
        """Close the connections (no prefetch is in flight here)."""
        if self._receiver is not None:
            self._receiver.shutdown()
            self._receiver = None
        for conn in (self._listen, self._work, self._ahead):
            if conn is not None and not conn.closed:
                conn.close()
        self._listen = self._work = self._ahead = None

    # -- one pass ----------------------------------------------------------

    def run_once(self, timeout: float = 0.0) -> int:
        """Handle what is available; if nothing is, wait up to ``timeout`` for more.

        Returns the number of events handled. Unlike a pass of ``run()``, it
        gives up the log's lanes it took before it returns (artifact 5 on), so
        that they are not held between calls (``handle_events``, ``drain``).
        """
        try:
            return self._run_once(timeout)
        finally:
            if self._log is not None:
                try:
                    self._log.close(self._work)
                except CONNECTION_ERRORS:
                    pass  # the lanes' leases expire

    def _run_once(self, timeout: float) -> int:
        if self._work is None:
            self.connect()
        self._acknowledge_leftovers()
        # While events flow, every look is a paced poll (below), not a drain now.
        handled = 0 if timeout > 0 and self._flowing() else self._drain()
        if handled or timeout <= 0 or self.stopping.is_set():
            return handled
        deadline = time.monotonic() + timeout
        listen = self._listening()
        if self._tables[0] and (self._log is None or self._log.reading):
            handled = self._poll_while_events_flow(listen, deadline)
            if handled:
                self._purge_if_due()
                return handled
            if deadline > time.monotonic():
                handled = self._sleep(listen, deadline - time.monotonic())
        else:
            # Broadcasts only, or standing by for a lane of the log: no
            # sleeper flag, so writers do not NOTIFY for nothing.
            self._wait(listen, timeout)
        self._purge_if_due()
        return handled + self._drain()

    def _drain(self, polling: bool = False) -> int:
        """Handle the broadcasts received and the queued events; note when queued ones came.

        ``polling``: a quick look while events flow (``LogReader.drain``).
        """
        broadcasts = self._drain_broadcasts()
        queued = self._drain_queue(polling)
        if queued:
            self._events_at = time.monotonic()
        return broadcasts + queued

    def _flowing(self) -> bool:
        """Whether queued events were found within the quiet period."""
        return time.monotonic() - self._events_at < self.config.quiet_period

    def _poll_while_events_flow(self, listen: Connection, deadline: float) -> int:
        """Poll without the sleeper flag until the quiet period after the last queued events ends.

        Returns the events handled by the first poll that found any; 0 once
        the quiet period (or ``deadline``) has passed without any.
        """
        while not self.stopping.is_set():
            now = time.monotonic()
            wait = min(POLL_DELAY, deadline - now, self._events_at + self.config.quiet_period - now)
            if wait <= 0:
                break
            self._wait(listen, wait)  # a broadcast ends it early
            handled = self._drain(polling=True)
            if handled:
                return handled
        return 0

    def _sleep(self, listen: Connection, timeout: float) -> int:
        """Set the sleeper flag, then wait for a wake-up unless the queue had events after all."""
        self.queue.sleep(listen)
        try:
            # A writer that committed before the flag was visible did not
            # NOTIFY: look once more now that it is set.
            handled = self._drain()
            if not handled:
                self._wait(listen, timeout)
            return handled
        finally:
            self.queue.wake(listen)

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

    def _drain_queue(self, polling: bool = False) -> int:
        """Claim and handle events until the queue is drained, claiming ahead meanwhile.

        The whole first batch is claimed at once and handled in two halves.
        While one half's callbacks run, the ``ahead`` connection acknowledges the
        half handled before and claims as many events as that freed: never
        more than ``batch_size`` claims are held, handled or not. On return or
        error nothing is in flight, no claim is held, and only acknowledgements
        that failed are left in ``_unacknowledged``. ``polling``: a quick look
        while events flow (``LogReader.drain``; a job table's claim is one round
        trip anyway).
        """
        if not self._tables[0]:
            return 0
        if self._log is not None:
            return self._log.drain(self._working(), self.stopping, polling)
        handled = 0
        try:
            batch = self.config.batch_size
            rows = self._hold(self.queue.claim_rows(self._working(), batch, self.config.lease, self._tables))
            more = len(rows) == batch
            half = (len(rows) + 1) // 2
            chunks = deque(chunk for chunk in (rows[:half], rows[half:]) if chunk)
            while chunks and not self.stopping.is_set():
                if more:
                    self._prefetch()
                # Built once the prefetch is on its way: the server works meanwhile.
                handled += self._handle(self.queue.claims_from_rows(chunks.popleft()))
                if more and not chunks and self._ahead_job is None:
                    self._prefetch()  # a batch of one: nothing to overlap with
                fetched, more = self._collect_prefetch(more)
                if fetched:
                    chunks.append(fetched)
        finally:
            self._finish_drain()
        return handled

    def _hold(self, rows: list[Row]) -> list[Row]:
        """From now on the heartbeat renews the leases of these claims (rows of a claim)."""
        with self._held_lock:
            self._held.update(self.queue.claim_keys(rows))
        return rows

    def _prefetch(self) -> None:
        """Send, without waiting, the acknowledgement of the handled events and a claim of as many."""
        with self._held_lock:
            limit = self.config.batch_size - len(self._held) + len(self._unacknowledged)
        if limit <= 0 or self.stopping.is_set():
            return
        if self._ahead is None or self._ahead.closed:
            self._ahead = connect(self.dsn, autocommit=True, config=self.config, wait=False)
        cur = self._ahead.cursor()
        statement = self.queue.claim_statement(cur, limit, self.config.lease, self._tables)
        acknowledged, self._unacknowledged = self._unacknowledged, []
        if acknowledged:
            # One transaction: the handled events go as the new claims come.
            keep = self.config.retention > 0
            statement = self.queue.acknowledge_statement(cur, acknowledged, keep) + b";" + statement
        try:
            cur.execute(statement)
        except BaseException:
            self._unacknowledged.extend(acknowledged)
            raise
        if self._receiver is None:
            self._receiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgevents-receiver")
        self._ahead_job = (self._receiver.submit(self._receive, cur), acknowledged, limit)

    def _receive(self, cur: Cursor) -> list[Row]:
        """In the receiver thread: read the prefetched claims and hold them as soon as they arrive.

        So their leases are renewed even while a long callback runs.
        """
        psycopg2.extras.wait_select(cur.connection)
        return self._hold(self.queue.fetch_claim_rows(cur))

    def _collect_prefetch(self, more: bool) -> tuple[list[Row], bool]:
        """Hold the claims prefetched (their rows); also says whether the queue may have more."""
        if self._ahead_job is None:
            return [], more
        future, acknowledged, limit = self._ahead_job
        try:
            rows = future.result()
        except BaseException:
            if not future.done():
                raise  # interrupted while waiting: still in flight
            self._ahead_job = None
            # Perhaps not acknowledged: again after the reconnect (a no-op if it was).
            self._unacknowledged.extend(acknowledged)
            raise
        self._ahead_job = None
        self._unhold(acknowledged)
        return rows, len(rows) == limit

    def _finish_drain(self) -> None:
        """Wait for the prefetch, acknowledge what was handled, release every other claim."""
        try:
            if self._ahead_job is not None:
                try:
                    self._collect_prefetch(False)
                except CONNECTION_ERRORS:
                    pass  # an error is already on its way up, or the next pass reconnects
            self._acknowledge_leftovers()
        finally:
            # Even when the connection is gone: claims left in _held would
            # have their leases renewed by the heartbeat for ever.
            self._unhold(self._unacknowledged)
            self._release_unstarted()

    def _handle(self, claims: list[Claim]) -> int:
        """Run the callbacks of ``claims`` until done or stopping; record failures."""
        self._ensure_heartbeat()
        handled = 0
        for claim in claims:
            if self.stopping.is_set():
                break
            outcome = self.dispatcher.run(claim.event, claim.done)
            handled += 1
            if outcome.error is None:
                # Stays held, its lease renewed, until acknowledged.
                self._unacknowledged.append(claim.key)
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
            self._unhold([claim.key])
        return handled

    def _unhold(self, keys: list[Key]) -> None:
        with self._held_lock:
            for key in keys:
                self._held.discard(key)

    def _acknowledge_leftovers(self) -> None:
        """Acknowledge handled events (again after a reconnect if it failed before)."""
        if self._unacknowledged and self._work is not None:
            self.queue.acknowledge(self._work, self._unacknowledged, keep=self.config.retention > 0)
            self._unhold(self._unacknowledged)
            self._unacknowledged.clear()

    def _release_unstarted(self) -> None:
        """Give back every claim still held: unstarted, or prefetched and never handled."""
        with self._held_lock:
            unstarted, self._held = list(self._held), set()
        if not unstarted or self._work is None:
            return
        released = self.queue.release(self._work, unstarted)
        if released:
            reason = "on shutdown" if self.stopping.is_set() else "after an error in their batch"
            log.info("pgevents: released %s claimed events %s", released, reason)

    def _purge_if_due(self) -> None:
        if self._log is not None:
            return  # the log reader rotates partitions as it reads
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
        heartbeat = HeartbeatConnection(self._heartbeat_connection, "leases")
        try:
            while True:
                time.sleep(self.config.lease / 3)
                with self._held_lock:
                    keys = list(self._held)
                if not keys:
                    if self.stopping.is_set():
                        return
                    continue
                heartbeat.run(functools.partial(self.queue.extend, keys=keys, lease=self.config.lease))
        finally:
            heartbeat.close()

    # -- the loop ----------------------------------------------------------

    def run(self) -> None:
        """Deliver events until ``stop()``; reconnect with backoff when the database goes away."""
        delay = 0.5
        try:
            while not self.stopping.is_set():
                try:
                    if self._work is None:
                        self.connect()
                    self._run_once(self.config.poll_interval)
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
                if self._log is not None:
                    self._log.close(self._work)
            except CONNECTION_ERRORS:
                pass
            self.close()

    def stop(self) -> None:
        """Ask ``run()`` to return after the callback in progress."""
        self.stopping.set()
