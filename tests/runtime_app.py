"""The app the runtime tests (and their worker subprocesses) use.

``create_app()`` reads ``DATABASE_URL``. Its listeners record every call in
the ``handled`` table through the app's own session, so tests can count
deliveries across processes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from pgevents_migrate import Event, PGEvents
from tests.apps import install_declared

db = SQLAlchemy()
pgevents = PGEvents()


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"
    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(200))
    name = sa.Column(sa.String(200))


class Tag(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "tag"
    tenant = sa.Column(sa.String(20), primary_key=True)
    label = sa.Column(sa.String(50), primary_key=True)


handled = sa.Table(
    "handled",
    db.metadata,
    sa.Column("n", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("listener", sa.String(50), nullable=False),
    sa.Column("event_id", sa.BigInteger),
    sa.Column("op", sa.String(10), nullable=False),
    sa.Column("pk", sa.JSON, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)


def record(listener: str, event: Event) -> None:
    db.session.execute(
        handled.insert().values(
            listener=listener,
            event_id=event.id,
            op=event.op,
            pk=event.pk,
            attempt=event.attempt,
            pid=os.getpid(),
        )
    )
    db.session.commit()


@pgevents.listens_for(User, {"insert", "update", "delete"})
def on_user(event: Event) -> None:
    delay = float(os.environ.get("PGEVENTS_TEST_CALLBACK_DELAY", "0"))
    if delay:
        time.sleep(delay)
    record("on_user", event)


@pgevents.listens_for(Tag, "after_insert", delivery="broadcast")
def on_tag(event: Event) -> None:
    record("on_tag", event)


def create_app(database_url: str | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ["DATABASE_URL"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    app.config.update(
        PGEVENTS_POLL_INTERVAL=float(os.environ.get("PGEVENTS_POLL_INTERVAL", "1.0")),
        PGEVENTS_LEASE=float(os.environ.get("PGEVENTS_LEASE", "30")),
        PGEVENTS_BATCH_SIZE=int(os.environ.get("PGEVENTS_BATCH_SIZE", "200")),
    )
    app.config.update(config)
    db.init_app(app)
    pgevents.init_app(app)
    return app


def install(app: Flask) -> None:
    """Create the tables and capture triggers the way a migration would."""
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            install_declared(conn, db.metadata)
