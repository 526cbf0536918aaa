"""``LogReader``: a consumer group's events from the event log (artifact 5) to the callbacks.

A group's events are split by row into lanes (``op.create_pgevents_group``'s
``lanes``, 1 by default); each lane has its own cursor and reader lease. A
worker takes lanes while it holds fewer than its share (the lanes over the
live workers of the group) and reads each through its cursor, page by page in
id order and the lanes in turns, acknowledging a page as it asks for the next.
A worker that finds no lane to take says so (``take_lane``), and one holding
more than its share then gives a lane up at a page boundary; a lane of a
worker gone is taken once its lease has expired. A failed event is copied to
the group's ``retry`` table, so the cursor moves on; every worker of the
group serves the due retries. A heartbeat thread renews the leases and the
retry claims while callbacks run. A reader also rotates the log's
partitions, at most every ``MAINTENANCE_INTERVAL`` seconds (under an advisory
lock: one worker at a time).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from alembic_ops.core.catalog import read_artifacts
from alembic_ops.core.names import LOG_VERSION

from .config import WorkerConfig
from .dispatch import Dispatcher
from .heartbeat import HeartbeatConnection
from .log_queue import Key, LeaseLost, LogQueue, RowKey, row_key
from .queue import Claim, ClaimRow, Connection, EventQueue

log = logging.getLogger("pgevents_migrate")

#: Seconds between two rotations of the log's partitions by one reader.
MAINTENANCE_INTERVAL = 5.0
#: While a worker polls (events flowed a moment ago): seconds between its looks for due
#: retries and for lanes to take, which a drain otherwise makes every time.
POLL_CHECKS_INTERVAL = 0.1


class LogReader:
    """Reads ``config.group``'s events for ``dispatcher``; ``connect()`` opens the heartbeat's connection."""

    def __init__(
        self, dispatcher: Dispatcher, config: WorkerConfig, connect: Callable[[], Connection], version: int
    ) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self.queue = LogQueue(config.schema, config.group, version)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        #: The lanes this worker reads: lane -> the epoch of its lease.
        self.lanes: dict[int, int] = {}
        self._connect = connect
        #: Leases (lane, epoch) the heartbeat found taken over.
        self._lost: set[tuple[int, int]] = set()
        self._closing = threading.Event()
        self._held: set[Key] = set()
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._last_maintenance = 0.0
        self._last_balance = 0.0
        self._last_retries = 0.0
        self._last_checks = 0.0

    @property
    def reading(self) -> bool:
        """Whether this worker reads at least one lane of its group."""
        return bool(self.lanes)

    def reset(self, conn: Connection, version: int) -> None:
        """Forget the lanes held (after a reconnect) and give them up, to take them again at once.

        ``version`` is the artifact installed now: the log is read as that version lays it out.
        """
        with self._held_lock:
            self.lanes.clear()
            self._lost.clear()
        self._use_version(version)
        self.queue.release_lanes(conn, self.owner)

    def _use_version(self, version: int) -> bool:
        """Read the log as artifact ``version`` lays it out; whether that changed."""
        if version == self.queue.version:
            return False
        log.info("pgevents: reading the log of artifact %s (was %s)", version, self.queue.version)
        self.queue = LogQueue(self.config.schema, self.config.group, version)
        return True

    def _follow_version(self, conn: Connection) -> bool:
        """Whether a migration changed the artifact since the queue was made (then it is remade)."""
        with conn.cursor() as cur:
            version = read_artifacts(cur).get(self.config.schema)
        return version is not None and version >= LOG_VERSION and self._use_version(version)

    def drain(self, conn: Connection, stopping: threading.Event, polling: bool = False) -> int:
        """Handle the due retries, then the lanes held (taking more up to a share); the number handled.

        ``polling``: a look a few milliseconds after the last, while events
        flow. It reads the lanes held with one fetch each (the next look asks
        again), and looks for due retries and lanes to take only every
        ``POLL_CHECKS_INTERVAL``: each of those is a round trip, and polls
        come hundreds of times a second.
        """
        handled = 0
        if not polling or time.monotonic() - self._last_checks >= POLL_CHECKS_INTERVAL:
            self._last_checks = time.monotonic()
            handled = self._drain_retries(conn, stopping)
            if stopping.is_set():
                return handled
            self._take_lanes(conn)
        if not self.lanes:
            return handled
        self._ensure_heartbeat()
        self._maintain_if_due(conn)
        return handled + self._drain_lanes(conn, stopping, ask_again=not polling)

    def _take_lanes(self, conn: Connection) -> None:
        while (taken := self.queue.take_lane(conn, self.owner, self.config.lease)) is not None:
            lane, epoch = taken
            with self._held_lock:
                self.lanes[lane] = epoch
            log.info("pgevents: reading lane %s of group %r", lane, self.config.group)

    def _drop(self, lane: int, why: str) -> None:
        with self._held_lock:
            self.lanes.pop(lane, None)
        log.info("pgevents: no longer reading lane %s of group %r: %s", lane, self.config.group, why)

    def _drain_lanes(self, conn: Connection, stopping: threading.Event, ask_again: bool = True) -> int:
        """Read the lanes held, a page of each in turn, until every one is at the end (or stopping)."""
        handled = 0
        page = self.config.batch_size
        pages: dict[int, list[ClaimRow]] = {}
        for lane in list(self.lanes):
            try:
                # An empty first answer may only have recorded where the cursor's
                # next window starts (which a later transaction can use): ask again.
                epoch = self.lanes[lane]
                pages[lane] = self.queue.fetch(conn, lane, epoch, page)
                if not pages[lane] and ask_again:
                    pages[lane] = self.queue.fetch(conn, lane, epoch, page)
            except LeaseLost:
                self._drop(lane, "another worker took it over")
        while pages and not stopping.is_set():
            for lane in list(pages):
                rows = pages.pop(lane)
                if not rows or lane not in self.lanes:
                    continue
                try:
                    count, rows = self._read_page(conn, lane, rows, stopping)
                except LeaseLost:
                    self._drop(lane, "another worker took it over")
                    continue
                handled += count
                handled += self._between_pages(conn, stopping)
                if rows and self._give_up_surplus(conn, lane):
                    continue  # its next page is left for the worker that takes it
                if rows:
                    pages[lane] = rows
        if not stopping.is_set():
            self._give_up_surplus(conn, None)
        return handled

    def _read_page(
        self, conn: Connection, lane: int, rows: list[ClaimRow], stopping: threading.Event
    ) -> tuple[int, list[ClaimRow]]:
        """Handle a page of ``lane``, acknowledge it, fetch the next (none when stopping or at the end)."""
        epoch, page = self.lanes[lane], self.config.batch_size
        handled = 0
        last: int | None = None
        # Rows whose ordered events wait in retry: their later ones wait behind.
        held = self.queue.held_rows(conn, rows) if self.dispatcher.has_ordered else set()
        for row, claim in zip(rows, EventQueue.claims_from_rows(rows), strict=True):
            if stopping.is_set() or (lane, epoch) in self._lost:
                break
            handled += self._handle_log_event(conn, lane, epoch, claim, row_key(row), held)
            last = claim.event.id
        if (lane, epoch) in self._lost:
            raise LeaseLost("the heartbeat could not renew the lease")
        # Fewer than a page: the window is read to its end, close it. The lane
        # has caught up, so the next page is left to the next look: fetched
        # now, it would hold the few events written during this one.
        close = last == rows[-1].id and len(rows) < page
        if stopping.is_set() or last != rows[-1].id or close:
            if last is not None:
                self.queue.ack(conn, lane, epoch, last, close)
            return handled, []
        assert last is not None
        return handled, self.queue.ack_and_fetch(conn, lane, epoch, last, close, page)

    def _handle_log_event(
        self, conn: Connection, lane: int, epoch: int, claim: Claim, key: RowKey, held: set[RowKey]
    ) -> int:
        """Run the event's callbacks, or make it wait behind its row's ordered retries; 1 if they ran."""
        ordered = self.dispatcher.ordered(claim.event)
        if ordered and key in held:
            self.queue.hold(conn, lane, epoch, claim)
            return 0
        outcome = self.dispatcher.run(claim.event)
        if outcome.error is None:
            return 1
        if self.config.max_attempts <= 1:
            buried = self.queue.bury_event(conn, claim, outcome.error, outcome.done)
            if not buried and self._follow_version(conn):
                self.queue.bury_event(conn, claim, outcome.error, outcome.done)
            log.error("pgevents: event %s dead-lettered after 1 attempt", claim.event.id)
        else:
            delay = self.config.backoff(1)
            self.queue.retry_later(conn, lane, epoch, claim, delay, outcome.error, outcome.done, ordered)
            if ordered:
                held.add(key)
        return 1

    def _between_pages(self, conn: Connection, stopping: threading.Event) -> int:
        """While a backlog is read: the due retries and the maintenance, at most every poll interval."""
        if time.monotonic() - self._last_retries < self.config.poll_interval:
            return 0
        self._last_retries = time.monotonic()
        self._maintain_if_due(conn)
        return self._drain_retries(conn, stopping)

    def _give_up_surplus(self, conn: Connection, lane: int | None) -> bool:
        """At most every poll interval: give up ``lane`` (else the highest held) if more than a share is held.

        Only at a page boundary: the lane's handled events are acknowledged.
        """
        if len(self.lanes) < 2 or time.monotonic() - self._last_balance < self.config.poll_interval:
            return False
        self._last_balance = time.monotonic()
        if not self.queue.surplus(conn, self.owner, 3 * self.config.poll_interval):
            return False
        lane = max(self.lanes) if lane is None else lane
        self.queue.release_lease(conn, lane, self.lanes[lane])
        self._drop(lane, "another worker of the group waits for a lane")
        return True

    def _drain_retries(self, conn: Connection, stopping: threading.Event) -> int:
        """Claim and handle the group's due retries until none is due."""
        handled = 0
        while not stopping.is_set():
            claims = EventQueue.claims_from_rows(
                self.queue.claim_retries(conn, self.config.batch_size, self.config.lease)
            )
            if not claims:
                return handled
            with self._held_lock:
                self._held.update(claim.key for claim in claims)
            self._ensure_heartbeat()
            try:
                for claim in claims:
                    if stopping.is_set():
                        break
                    self._handle_retry(conn, claim)
                    handled += 1
                    with self._held_lock:
                        self._held.discard(claim.key)
            finally:
                with self._held_lock:
                    unstarted, self._held = list(self._held), set()
                self.queue.release_retries(conn, unstarted)
        return handled

    def _handle_retry(self, conn: Connection, claim: Claim) -> None:
        outcome = self.dispatcher.run(claim.event, claim.done)
        attempt = claim.event.attempt
        if outcome.error is None:
            self.queue.retry_done(conn, claim)
        elif attempt >= self.config.max_attempts:
            self.queue.bury_retry(conn, claim, outcome.error, outcome.done)
            log.error("pgevents: event %s dead-lettered after %s attempts", claim.event.id, attempt)
        else:
            self.queue.retry_again(conn, claim, self.config.backoff(attempt), outcome.error, outcome.done)

    def _maintain_if_due(self, conn: Connection) -> None:
        if time.monotonic() - self._last_maintenance < MAINTENANCE_INTERVAL:
            return
        self._last_maintenance = time.monotonic()
        self._follow_version(conn)
        config = self.config
        done = self.queue.maintain(
            conn, config.partition_events, config.partition_age, config.retention, config.group_max_lag
        )
        if done and "skipped" in done:
            log.error("pgevents: log maintenance: %s", done)
        elif done:
            log.info("pgevents: log maintenance: %s", done)

    # -- the heartbeat -----------------------------------------------------------

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._closing.clear()
            self._heartbeat = threading.Thread(target=self._renew, name="pgevents-heartbeat", daemon=True)
            self._heartbeat.start()

    def _renew(self) -> None:
        """Every third of a lease: renew the lanes' leases and the retry claims held, until closed."""
        heartbeat = HeartbeatConnection(self._connect, "the leases")

        def renew(conn: Connection) -> None:
            with self._held_lock:
                lanes = dict(self.lanes)
                keys = list(self._held)
            for lane, epoch in lanes.items():
                if not self.queue.renew_lease(conn, lane, epoch, self.config.lease):
                    with self._held_lock:
                        self._lost.add((lane, epoch))
            self.queue.extend_retries(conn, keys, self.config.lease)

        try:
            while not self._closing.wait(self.config.lease / 3):
                heartbeat.run(renew)
        finally:
            heartbeat.close()

    def close(self, conn: Connection | None) -> None:
        """Stop the heartbeat and give the lanes up (on ``conn``, if it is still open)."""
        self._closing.set()
        with self._held_lock:
            held = bool(self.lanes)
            self.lanes.clear()
        if held and conn is not None and not conn.closed:
            self.queue.release_lanes(conn, self.owner)
