"""``LogReader``: a consumer group's events from the event log (artifact 5) to the callbacks.

One worker of a group at a time holds the group's reader lease and reads the
log through the group's cursor, page by page in id order, acknowledging each
page as it asks for the next. The other workers of the group stand by and
take the lease over once it is released (a worker stopping) or has expired
(a worker gone). A failed event is copied to the group's ``retry`` table, so
the cursor moves on; every worker of the group serves the due retries. A
heartbeat thread renews the lease and the retry claims while callbacks run.
The reader also rotates the log's partitions, at most every
``MAINTENANCE_INTERVAL`` seconds (under an advisory lock: one worker at a time).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from .config import WorkerConfig
from .dispatch import Dispatcher
from .log_queue import Key, LeaseLost, LogQueue, RowKey, row_key
from .queue import Claim, Connection, EventQueue

log = logging.getLogger("pgevents_migrate")

#: Seconds between two rotations of the log's partitions by one reader.
MAINTENANCE_INTERVAL = 5.0


class LogReader:
    """Reads ``config.group``'s events for ``dispatcher``; ``connect()`` opens the heartbeat's connection."""

    def __init__(
        self, dispatcher: Dispatcher, config: WorkerConfig, connect: Callable[[], Connection]
    ) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self.queue = LogQueue(config.schema, config.group)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        #: The epoch of the reader lease while this worker holds it.
        self.epoch: int | None = None
        self._connect = connect
        self._lost = threading.Event()
        self._closing = threading.Event()
        self._held: set[Key] = set()
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._last_maintenance = 0.0

    @property
    def reading(self) -> bool:
        """Whether this worker holds the group's reader lease."""
        return self.epoch is not None

    def drain(self, conn: Connection, stopping: threading.Event) -> int:
        """Handle the due retries, then (holding the lease, or taking it) the log; the number handled."""
        handled = self._drain_retries(conn, stopping)
        if self.epoch is None and not stopping.is_set():
            self._lost.clear()
            self.epoch = self.queue.take_lease(conn, self.owner, self.config.lease)
            if self.epoch is not None:
                log.info("pgevents: reading the log for group %r", self.config.group)
        if self.epoch is None or stopping.is_set():
            return handled
        self._ensure_heartbeat()
        try:
            self._maintain_if_due(conn)
            return handled + self._drain_log(conn, stopping)
        except LeaseLost:
            log.warning("pgevents: another worker of group %r took over reading the log", self.config.group)
            self.epoch = None
            return handled

    def _drain_log(self, conn: Connection, stopping: threading.Event) -> int:
        """Read pages until the cursor is at the end of the log (or stopping); acknowledge each page."""
        assert self.epoch is not None
        epoch, page = self.epoch, self.config.batch_size
        # An empty first answer may only have recorded where the cursor's next
        # window starts (which a later transaction can use): ask once more.
        rows = self.queue.fetch(conn, epoch, page) or self.queue.fetch(conn, epoch, page)
        handled = 0
        while rows:
            last: int | None = None
            # Rows whose ordered events wait in retry: their later ones wait behind.
            held = self.queue.held_rows(conn, rows) if self.dispatcher.has_ordered else set()
            for row, claim in zip(rows, EventQueue.claims_from_rows(rows), strict=True):
                if stopping.is_set() or self._lost.is_set():
                    break
                handled += self._handle_log_event(conn, epoch, claim, row_key(row), held)
                last = claim.event.id
            if self._lost.is_set():
                raise LeaseLost("the heartbeat could not renew the lease")
            # Fewer than a page: the window is read to its end, close it.
            close = last == rows[-1].id and len(rows) < page
            if stopping.is_set() or last != rows[-1].id:
                if last is not None:
                    self.queue.ack(conn, epoch, last, close)
                return handled
            assert last is not None
            rows = self.queue.ack_and_fetch(conn, epoch, last, close, page)
        return handled

    def _handle_log_event(
        self, conn: Connection, epoch: int, claim: Claim, key: RowKey, held: set[RowKey]
    ) -> int:
        """Run the event's callbacks, or make it wait behind its row's ordered retries; 1 if they ran."""
        ordered = self.dispatcher.ordered(claim.event)
        if ordered and key in held:
            self.queue.hold(conn, epoch, claim)
            return 0
        outcome = self.dispatcher.run(claim.event)
        if outcome.error is None:
            return 1
        if self.config.max_attempts <= 1:
            self.queue.bury_event(conn, claim, outcome.error, outcome.done)
            log.error("pgevents: event %s dead-lettered after 1 attempt", claim.event.id)
        else:
            delay = self.config.backoff(1)
            self.queue.retry_later(conn, epoch, claim, delay, outcome.error, outcome.done, ordered)
            if ordered:
                held.add(key)
        return 1

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
        """Every third of a lease: renew the reader lease and the retry claims held, until closed."""
        conn: Connection | None = None
        try:
            while not self._closing.wait(self.config.lease / 3):
                epoch = self.epoch
                with self._held_lock:
                    keys = list(self._held)
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    if epoch is not None and not self.queue.renew_lease(conn, epoch, self.config.lease):
                        self._lost.set()
                    self.queue.extend_retries(conn, keys, self.config.lease)
                except Exception as exc:
                    log.warning("pgevents: could not renew the lease (%s); retrying", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def close(self, conn: Connection | None) -> None:
        """Stop the heartbeat and give the lease up (on ``conn``, if it is still open)."""
        self._closing.set()
        epoch, self.epoch = self.epoch, None
        if epoch is not None and conn is not None and not conn.closed:
            self.queue.release_lease(conn, epoch)
