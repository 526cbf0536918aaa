"""A "legacy" writer: changes rows with raw SQL through psycopg2, never SQLAlchemy.

Run it alone with ``python -m examples.signup_notifier.legacy_writer DSN``.
"""

from __future__ import annotations

import sys
import time
import uuid

import psycopg2

NAMES = ["Ada", "Grace", "Linus"]
TOPICS = ["releases", "security"]

#: What one run produces: 3 user inserts (queue) and 3 subscription changes (broadcast).
EXPECTED_EVENTS = len(NAMES) + len(TOPICS) + 1


def run(dsn: str, pause: float = 0.3) -> None:
    """Insert users and subscriptions, then drop one subscription, one transaction each."""
    run_id = uuid.uuid4().hex[:6]  # fresh rows on every run, so every run makes events
    emails = [f"{name.lower()}.{run_id}@example.com" for name in NAMES]
    conn = psycopg2.connect(dsn, application_name="legacy-writer")
    try:
        with conn.cursor() as cur:
            for email, name in zip(emails, NAMES, strict=True):
                cur.execute('INSERT INTO "user" (email, name) VALUES (%s, %s)', (email, name))
                conn.commit()
                time.sleep(pause)
            for topic, email in zip(TOPICS, emails, strict=False):
                cur.execute("INSERT INTO subscription (topic, email) VALUES (%s, %s)", (topic, email))
                conn.commit()
                time.sleep(pause)
            cur.execute("DELETE FROM subscription WHERE topic = %s AND email = %s", (TOPICS[0], emails[0]))
            conn.commit()
    finally:
        conn.close()


if __name__ == "__main__":
    run(sys.argv[1])
