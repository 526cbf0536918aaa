"""The app the delivery benchmark's worker subprocesses run, and the original listening loop.

``python -m flask --app benchmarks.bench_app pgevents run`` runs a worker of
``create_app()``, which reads its settings from the environment:

- ``PGEVENTS_BENCH_APP_URL``: the database;
- ``PGEVENTS_BENCH_LISTEN``: ``queue`` or ``broadcast``, the table whose
  inserts get the callback (the other one is only tracked, so the worker
  neither claims nor dispatches its events);
- ``PGEVENTS_BENCH_MODE``: what the callback does, kept as cheap as possible:

  - ``noop``: nothing;
  - ``count``: counts in-process and appends ``"<count> <time.time()>"`` to
    ``PGEVENTS_BENCH_OUT`` each time the count reaches a multiple of
    ``PGEVENTS_BENCH_EXPECT`` (one small write per burst);
  - ``latency``: appends ``"<row id> <time.time()>"`` to ``PGEVENTS_BENCH_OUT``
    for every event and flushes (a few microseconds, at 500 events/s);

- ``PGEVENTS_BATCH_SIZE``, ``PGEVENTS_POLL_INTERVAL``: passed on to the worker
  when set (otherwise the library defaults, 500 and 5 s).

``python -m benchmarks.bench_app original`` runs the psycopg2-pgevents 0.2.2
listening loop (``register_event_channel``, then ``poll(connection)`` forever)
with the ``count`` callback, for the broadcast comparison; it needs that
package on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import psycopg2
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from pgevents_migrate import PGEvents
from pgevents_migrate.extension import libpq_dsn

URL_ENV = "PGEVENTS_BENCH_APP_URL"
LISTEN_ENV = "PGEVENTS_BENCH_LISTEN"
MODE_ENV = "PGEVENTS_BENCH_MODE"
OUT_ENV = "PGEVENTS_BENCH_OUT"
EXPECT_ENV = "PGEVENTS_BENCH_EXPECT"

QUEUE_TABLE = "bench_queue"
BROADCAST_TABLE = "bench_broadcast"
ORIGINAL_TABLE = "bench_original"
MODES = ("noop", "count", "latency")
#: What a worker or the original loop prints once it listens.
READY = "listening"

Callback = Callable[[Any], None]


def _output() -> TextIO:
    """The file named by ``PGEVENTS_BENCH_OUT``, opened for appending (line-buffered)."""
    return open(os.environ[OUT_ENV], "a", buffering=1, encoding="utf-8")  # open for the life of the process


def make_callback(mode: str) -> Callback:
    """The callback for ``mode`` (see the module docstring)."""
    if mode == "noop":

        def noop(event: Any) -> None:
            pass

        return noop
    if mode == "count":
        out = _output()
        expect = int(os.environ[EXPECT_ENV])
        seen = 0

        def count(event: Any) -> None:
            nonlocal seen
            seen += 1
            if seen % expect == 0:
                out.write(f"{seen} {time.time()!r}\n")

        return count
    if mode == "latency":
        out = _output()

        def latency(event: Any) -> None:
            out.write(f"{event.row_id} {time.time()!r}\n")

        return latency
    raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, not {mode!r}")


def create_app(database_url: str | None = None, listen: str | None = None, mode: str | None = None) -> Flask:
    """The benchmark app; arguments default to the environment variables above."""
    listen = listen or os.environ.get(LISTEN_ENV, "queue")
    if listen not in ("queue", "broadcast"):
        raise ValueError(f"{LISTEN_ENV} must be 'queue' or 'broadcast', not {listen!r}")
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ[URL_ENV]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    for key in ("PGEVENTS_BATCH_SIZE", "PGEVENTS_POLL_INTERVAL"):
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    db = SQLAlchemy()
    db.init_app(app)
    pgevents = PGEvents(app, db)
    tables = {
        name: sa.Table(
            name,
            db.metadata,
            sa.Column("id", sa.BigInteger, primary_key=True),
            sa.Column("n", sa.Integer, nullable=False),
        )
        for name in (QUEUE_TABLE, BROADCAST_TABLE)
    }
    callback = make_callback(mode or os.environ.get(MODE_ENV, "noop"))
    for name, delivery in ((QUEUE_TABLE, "queue"), (BROADCAST_TABLE, "broadcast")):
        if delivery == listen:
            pgevents.listen(tables[name], "insert", callback, delivery=delivery)
        else:
            pgevents.track(tables[name], "insert", delivery=delivery)
    return app


#: The delivery benchmark measures artifact 4's job table (its drain waits for an empty
#: ``pgevents.event``); ``benchmarks.log_drain`` measures the log of artifact 5 against it.
DELIVERY_VERSION = 4


def install(app: Flask) -> None:
    """Create the tables, the artifact and the triggers, as the app's migrations would."""
    # Imported here: worker processes never need them, and they take a while to import.
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from alembic_ops import CreatePGEventTriggerOp, declared_specs

    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            op = Operations(MigrationContext.configure(conn))
            op.install_pgevents(version=DELIVERY_VERSION)  # type: ignore[attr-defined]
            for spec in declared_specs(db.metadata).values():
                op.invoke(CreatePGEventTriggerOp(spec, version=DELIVERY_VERSION))
        db.engine.dispose()


def original_listener() -> int:
    """The psycopg2-pgevents 0.2.2 loop, counting events like the ``count`` mode; runs until killed."""
    module = importlib.import_module("psycopg2_pgevents")
    callback = make_callback("count")
    conn = psycopg2.connect(libpq_dsn(sa.make_url(os.environ[URL_ENV])))
    conn.autocommit = True
    try:
        module.register_event_channel(conn)
        print(READY, flush=True)
        while True:
            for event in module.poll(conn):
                callback(event)
    finally:
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:] != ["original"]:
        sys.exit("usage: python -m benchmarks.bench_app original")
    raise SystemExit(original_listener())
