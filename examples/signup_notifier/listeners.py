"""The example's listeners: one per delivery mode."""

from __future__ import annotations

from pgevents_migrate import Event, PGEvents

from .feed import feed
from .models import Subscription, User, db

pgevents = PGEvents()


@pgevents.listens_for(User, "insert")
def send_welcome_email(event: Event) -> None:
    """Queue delivery: exactly one worker sends each welcome email, even after a crash."""
    user = db.session.get(User, event.row_id)
    to = user.email if user is not None else "(user already deleted)"
    line = f"[queue] new user {event.pk}: welcome email sent to {to}"
    print(line, flush=True)
    feed.publish({"delivery": "queue", "op": event.op, "table": event.table, "pk": event.pk, "text": line})


@pgevents.listens_for(Subscription, {"insert", "delete"}, delivery="broadcast")
def push_to_browsers(event: Event) -> None:
    """Broadcast delivery: every running web process refreshes its live page."""
    line = f"[broadcast] {event.op} subscription {event.pk}"
    print(line, flush=True)
    feed.publish(
        {"delivery": "broadcast", "op": event.op, "table": event.table, "pk": event.pk, "text": line}
    )
