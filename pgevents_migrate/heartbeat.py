"""``HeartbeatConnection``: the connection a lease-renewing thread uses, reopened after errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg2

from .queue import Connection

log = logging.getLogger("pgevents_migrate")


class HeartbeatConnection:
    """Opened when first needed; after a database error it is dropped and the next call reopens it."""

    def __init__(self, connect: Callable[[], Connection], renews: str) -> None:
        self._connect = connect
        self._renews = renews
        self._conn: Connection | None = None

    def run(self, renew: Callable[[Connection], Any]) -> None:
        """Call ``renew`` with the connection; log a failure and retry on the next call."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            renew(self._conn)
        except psycopg2.Error as exc:
            log.warning("pgevents: could not renew %s (%s); retrying", self._renews, exc)
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
