"""A fan-out of handled events to the live page's open connections."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any


class Feed:
    """Each subscriber gets its own queue of JSON messages."""

    def __init__(self) -> None:
        self._subscribers: list[queue.Queue[str]] = []
        self._lock = threading.Condition()
        self.published = 0

    def publish(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, default=str)
        with self._lock:
            for subscriber in self._subscribers:
                subscriber.put(text)
            self.published += 1
            self._lock.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were published in all; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self.published >= count, timeout)

    def stream(self, keepalive: float = 15.0) -> Iterator[str]:
        """Server-Sent Events for one client, until it disconnects."""
        mine: queue.Queue[str] = queue.Queue()
        with self._lock:
            self._subscribers.append(mine)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    yield f"data: {mine.get(timeout=keepalive)}\n\n"
                except queue.Empty:
                    yield ": keepalive\n\n"
        finally:
            with self._lock:
                self._subscribers.remove(mine)


feed = Feed()
