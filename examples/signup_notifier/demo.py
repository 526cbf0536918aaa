"""The two-command demo: ``python -m examples.signup_notifier``.

Starts an embedded PostgreSQL when ``DATABASE_URL`` is unset (data kept in
``.pgevents-demo/`` and reused next time), applies the migrations, starts a
worker and the live page, runs the legacy writer, and prints each handled event.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.sql
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.serving import make_server

from pgevents_migrate.embedded import EmbeddedServer

from . import create_app
from .feed import feed
from .legacy_writer import EXPECTED_EVENTS
from .legacy_writer import run as run_legacy_writer
from .listeners import pgevents

DEMO_DATABASE = "signup_notifier"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.signup_notifier", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="exit once the writer's events are handled")
    mode.add_argument("--for", dest="duration", type=float, help="run this many seconds, then exit")
    parser.add_argument("--port", type=int, default=5050, help="port of the live page (default 5050)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(".pgevents-demo"),
        help="folder of the embedded server's data (default .pgevents-demo)",
    )
    return parser.parse_args(argv)


def embedded_database(data: Path) -> tuple[EmbeddedServer, str]:
    """Start (or reuse) the embedded server and make sure the demo database exists."""
    print(f"starting an embedded PostgreSQL (data in {data}/) ...", flush=True)
    server = EmbeddedServer(data.resolve() / "pgdata")
    admin = server.url("postgres").set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,))
        if cur.fetchone() is None:
            cur.execute(psycopg2.sql.SQL("CREATE DATABASE {}").format(psycopg2.sql.Identifier(DEMO_DATABASE)))
    conn.close()
    return server, server.url(DEMO_DATABASE).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    server: EmbeddedServer | None = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        server, url = embedded_database(args.data)
    http: Any = None
    try:
        app = create_app(url)
        with app.app_context():
            print("applying migrations (flask db upgrade) ...", flush=True)
            upgrade()
        pgevents.start()
        http = make_server("127.0.0.1", args.port, app, threaded=True)
        threading.Thread(target=http.serve_forever, name="live-page", daemon=True).start()
        print(f"live page: http://127.0.0.1:{args.port}/  (Ctrl-C stops everything)", flush=True)
        print("legacy writer: changing rows with raw SQL (psycopg2, no SQLAlchemy) ...", flush=True)
        before = feed.published
        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        run_legacy_writer(dsn)
        if args.once:
            if not feed.wait_for(before + EXPECTED_EVENTS, timeout=60):
                print(f"only {feed.published - before} of {EXPECTED_EVENTS} events arrived", file=sys.stderr)
                return 1
            print(f"all {EXPECTED_EVENTS} events handled", flush=True)
        elif args.duration is not None:
            time.sleep(args.duration)
        else:
            print("waiting for more row changes: try psql and insert a row", flush=True)
            threading.Event().wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping ...", flush=True)
        pgevents.stop(10)
        if http is not None:
            http.shutdown()
        if server is not None:
            server.stop()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
