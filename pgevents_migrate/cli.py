"""``flask pgevents``: run the worker and inspect the queue."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from datetime import datetime, timezone
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from alembic_ops.errors import PGEventsError

from .queue import EventQueue
from .status import DatabaseStatus, database_status, describe, require_artifact

log = logging.getLogger("pgevents_migrate")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"`` -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 12h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _extension() -> Any:
    return current_app.extensions["pgevents"]


def _queue_connection(bind_key: str | None) -> tuple[EventQueue, Any]:
    """The queue and a connection to its database, once it is known to have the artifact."""
    import psycopg2

    worker = _extension().worker(bind_key)
    conn = psycopg2.connect(worker.dsn, application_name="pgevents-cli")
    try:
        with conn.cursor() as cur:
            worker.installed(cur)
        conn.commit()
    except BaseException:
        conn.close()
        raise
    return worker.queue, conn


class _Group(click.Group):
    """Shows a ``PGEventsError`` as a one-line error (exit status 1), not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PGEventsError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("pgevents", cls=_Group)
def pgevents_cli() -> None:
    """Database-level row-change events (pgevents-migrate)."""


@pgevents_cli.command("run")
@click.option("--bind", "bind_key", default=None, help="Flask-SQLAlchemy bind whose database to listen on.")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to start if a declared table's triggers are missing or differ (default: warn).",
)
@with_appcontext
def run_command(bind_key: str | None, strict: bool) -> None:
    """Listen and dispatch events until SIGTERM or SIGINT."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    worker = _extension().worker(bind_key, strict=strict)

    def shut_down(signum: int, frame: Any) -> None:
        if worker.stopping.is_set():
            return
        log.info(
            "pgevents: %s received; finishing the current event (grace %.0fs)",
            signal.Signals(signum).name,
            worker.config.shutdown_grace,
        )
        worker.stop()
        timer = threading.Timer(worker.config.shutdown_grace, _give_up)
        timer.daemon = True
        timer.start()

    worker.connect()
    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    worker.run()
    log.info("pgevents: stopped")


def _give_up() -> None:
    log.error("pgevents: callback still running after the shutdown grace period; exiting now")
    logging.shutdown()
    os._exit(1)


@pgevents_cli.command("status")
@with_appcontext
def status_command() -> None:
    """Declared versus installed triggers, and the queue's state."""
    statuses = _database_statuses()
    queue, conn = _queue_connection(None)
    try:
        counts = queue.counts(conn)
    finally:
        conn.close()
    exit_code = 0
    for bind_key, status in statuses.items():
        if not _echo_status(bind_key, status):
            exit_code = 1
    age = "-"
    if counts.oldest_pending is not None:
        age = f"{(datetime.now(timezone.utc) - counts.oldest_pending).total_seconds():.1f}s"
    click.echo(
        f"pending {counts.pending}, failed {counts.failed}, oldest pending age {age}, "
        f"notification queue usage {counts.notification_queue_usage:.2%}"
    )
    if exit_code:
        click.echo("out of date: run `flask db migrate` and `flask db upgrade`", err=True)
    raise SystemExit(exit_code)


def _database_statuses() -> dict[str | None, DatabaseStatus]:
    """Each bind's status; ``PGEventsError`` if one declares triggers but lacks the artifact."""
    ext = _extension()
    statuses = {}
    for bind_key, metadata in ext.db.metadatas.items():
        with ext.db.engines[bind_key].connect() as connection:
            statuses[bind_key] = status = database_status(connection, metadata)
        if any(item.declared for item in status.tables):
            require_artifact(status.artifacts, ext.schema, bind_key)
    return statuses


def _echo_status(bind_key: str | None, status: DatabaseStatus) -> bool:
    """Print one bind's artifact and tables; True if all are current."""
    ok = True
    click.echo(f"database {bind_key or 'default'}:")
    for line, current in status.artifact_lines():
        click.echo(f"  {line}")
        ok = ok and current
    if not status.tables:
        click.echo("  no pgevents triggers declared or installed")
    for item in status.tables:
        click.echo(
            f"  {item.state:<10} {item.target}: declared {describe(item.declared)};"
            f" installed {describe(item.installed)}"
        )
        ok = ok and item.state == "ok"
    return ok


@pgevents_cli.command("failed")
@click.option("--limit", default=100, show_default=True)
@with_appcontext
def failed_command(limit: int) -> None:
    """List dead-lettered events with their errors."""
    queue, conn = _queue_connection(None)
    try:
        letters = queue.dead_letters(conn, limit)
    finally:
        conn.close()
    if not letters:
        click.echo("no failed events")
    for letter in letters:
        last_line = letter.error.strip().splitlines()[-1] if letter.error.strip() else ""
        click.echo(
            f"{letter.id}  {letter.op} {letter.schema}.{letter.table} {letter.pk}"
            f"  attempts={letter.attempts}  failed_at={letter.failed_at:%Y-%m-%d %H:%M:%S}"
            f"  {last_line}"
        )


@pgevents_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed event.")
@with_appcontext
def retry_command(ids: tuple[int, ...], retry_all: bool) -> None:
    """Put failed events back in the queue."""
    if bool(ids) == retry_all:
        raise click.UsageError("give event ids or --all (not both)")
    queue, conn = _queue_connection(None)
    try:
        count = queue.retry_dead_letters(conn, None if retry_all else list(ids))
    finally:
        conn.close()
    click.echo(f"requeued {count} event(s)")
    if ids and count < len(ids):
        raise click.ClickException(f"{len(ids) - count} of the given ids are not failed events")


@pgevents_cli.command("purge")
@click.option("--older-than", "older_than", required=True, help="Age such as 7d, 12h, 30m or 90s.")
@click.option("--dead-letters", is_flag=True, help="Also purge failed events that old.")
@with_appcontext
def purge_command(older_than: str, dead_letters: bool) -> None:
    """Delete handled (and optionally failed) events older than a given age, in batches."""
    seconds = parse_duration(older_than)
    queue, conn = _queue_connection(None)
    try:
        processed = queue.purge(conn, "processed", seconds)
        failed = queue.purge(conn, "dead_letter", seconds) if dead_letters else 0
    finally:
        conn.close()
    click.echo(f"purged {processed} handled and {failed} failed event(s)")
