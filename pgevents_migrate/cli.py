"""``flask pgevents``: run the worker and inspect the queue."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click
import psycopg2
from flask import current_app
from flask.cli import with_appcontext

from alembic_ops.core.catalog import InstalledState, read_installed
from alembic_ops.core.declarations import declared_specs
from alembic_ops.core.errors import PGEventsError
from alembic_ops.core.names import DEFAULT_GROUP, LOG_VERSION

from .config import WorkerConfig, parse_duration
from .log_queue import GroupCounts, LogQueue
from .queue import Connection, EventQueue, QueueCounts
from .status import DatabaseStatus, compare, describe, require_artifact

log = logging.getLogger("pgevents_migrate")


def _duration(text: str) -> float:
    """``parse_duration`` for an option: a bad value is a usage error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _extension() -> Any:
    return current_app.extensions["pgevents"]


def _bind_option(fn: Any) -> Any:
    return click.option(
        "--bind",
        "bind_key",
        default=None,
        help="Flask-SQLAlchemy bind whose database to use (default: the main one).",
    )(fn)


@contextmanager
def _connection(bind_key: str | None) -> Iterator[Connection]:
    """An autocommit connection to ``bind_key``'s database."""
    conn = psycopg2.connect(_extension().database_dsn(bind_key), application_name="pgevents-cli")
    try:
        conn.autocommit = True
        yield conn
    finally:
        conn.close()


def _installed(conn: Connection) -> tuple[InstalledState, str]:
    """What pgevents installed in the database, and its default schema."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_schema()")
        (default_schema,) = cur.fetchone()  # type: ignore[misc]
        return read_installed(cur, default_schema), default_schema


def _group_option(fn: Any) -> Any:
    return click.option(
        "--group",
        default=None,
        help="Consumer group (artifact 5 on; default: PGEVENTS_GROUP, else 'default').",
    )(fn)


def _queue_of(conn: Connection, schema: str, version: int, group: str | None) -> EventQueue | LogQueue:
    """The queue operations of the installed artifact: the log of ``group`` (5 on) or the job table."""
    if version < LOG_VERSION:
        if group is not None:
            raise PGEventsError(
                f"consumer groups need pgevents artifact {LOG_VERSION}; this database has {version}"
            )
        return EventQueue(schema)
    queue = LogQueue(schema, group or WorkerConfig.from_mapping(current_app.config).group, version)
    if not queue.group_exists(conn):
        raise queue.missing_group()
    return queue


@contextmanager
def _queue(
    bind_key: str | None, group: str | None = None
) -> Iterator[tuple[EventQueue | LogQueue, Connection]]:
    """The queue of ``bind_key``'s database and a connection to it, once the artifact is known to be there."""
    schema = _extension().schema
    with _connection(bind_key) as conn:
        version = require_artifact(_installed(conn)[0].artifacts, schema, bind_key)
        yield _queue_of(conn, schema, version, group), conn


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
@_bind_option
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
@click.option(
    "--bind", "bind_key", default=None, help="Only this Flask-SQLAlchemy bind (default: every bind)."
)
@with_appcontext
def status_command(bind_key: str | None) -> None:
    """Declared versus installed triggers, and the queue's state, per database."""
    ext = _extension()
    keys = [bind_key] if bind_key is not None else list(ext.db.metadatas)
    # Every database is checked before anything is printed: a missing artifact is one line.
    reports = [_database_report(key, explicit=bind_key is not None) for key in keys]
    exit_code = 0
    for key, status, counts in reports:
        if not _echo_status(key, status):
            exit_code = 1
        for group, group_counts in counts:
            prefix = "" if group is None else f"group {group}: "
            click.echo(f"  {prefix}{_describe_counts(group_counts)}")
            if isinstance(group_counts, GroupCounts):
                for warning in _group_warnings(group_counts):
                    click.echo(f"  WARNING: group {group}: {warning}", err=True)
    if exit_code:
        click.echo("out of date: run `flask db migrate` and `flask db upgrade`", err=True)
    raise SystemExit(exit_code)


def _database_report(
    bind_key: str | None, *, explicit: bool
) -> tuple[str | None, DatabaseStatus, list[tuple[str | None, QueueCounts | GroupCounts]]]:
    """One bind's trigger states and queue counts (per group, artifact 5 on).

    ``PGEventsError`` if it needs the artifact and lacks it.
    """
    ext = _extension()
    with _connection(bind_key) as conn:
        installed, default_schema = _installed(conn)
        tables = compare(declared_specs(ext.metadata(bind_key)), installed, default_schema)
        if explicit or any(item.declared for item in tables):
            require_artifact(installed.artifacts, ext.schema, bind_key)
        version = installed.artifacts.get(ext.schema)
        counts: list[tuple[str | None, QueueCounts | GroupCounts]] = []
        if version is not None and version >= LOG_VERSION:
            groups = LogQueue(ext.schema, DEFAULT_GROUP, version).groups(conn)
            counts = [(group, LogQueue(ext.schema, group, version).counts(conn)) for group in groups]
        elif version is not None:
            counts = [(None, EventQueue(ext.schema).counts(conn))]
    return bind_key, DatabaseStatus(installed.artifacts, tables), counts


def _describe_counts(counts: QueueCounts) -> str:
    age = "-"
    if counts.oldest_pending is not None:
        age = f"{(datetime.now(timezone.utc) - counts.oldest_pending).total_seconds():.1f}s"
    return (
        f"pending {counts.pending}, failed {counts.failed}, oldest pending age {age}, "
        f"notification queue usage {counts.notification_queue_usage:.2%}"
    )


def _ago(moment: datetime) -> str:
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 3600:.1f}h"


def _group_warnings(counts: GroupCounts) -> list[str]:
    """What an operator should know about a group: nobody reads it, or it skipped events."""
    warnings = []
    if not counts.reading and counts.pending:
        moved = "" if counts.last_read is None else f", its cursor moved {_ago(counts.last_read)} ago"
        warnings.append(
            f"no worker reads it{moved}; {counts.pending} event(s) wait and keep the log from being "
            "truncated until it runs, or lags past PGEVENTS_GROUP_MAX_LAG and skips them"
        )
    if counts.skipped_at is not None:
        warnings.append(
            f"skipped the events it had not read {_ago(counts.skipped_at)} ago (it lagged past the bound)"
        )
    return warnings


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
@_bind_option
@_group_option
@with_appcontext
def failed_command(limit: int, bind_key: str | None, group: str | None) -> None:
    """List dead-lettered events with their errors."""
    with _queue(bind_key, group) as (queue, conn):
        letters = queue.dead_letters(conn, limit)
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
@_bind_option
@_group_option
@with_appcontext
def retry_command(ids: tuple[int, ...], retry_all: bool, bind_key: str | None, group: str | None) -> None:
    """Put failed events back in the queue."""
    if bool(ids) == retry_all:
        raise click.UsageError("give event ids or --all (not both)")
    with _queue(bind_key, group) as (queue, conn):
        count = queue.retry_dead_letters(conn, None if retry_all else list(ids))
    click.echo(f"requeued {count} event(s)")
    if ids and count < len(ids):
        raise click.ClickException(f"{len(ids) - count} of the given ids are not failed events")


def _since(text: str) -> datetime:
    """``--since``: an ISO time (UTC unless it says) or a duration back from now, such as ``2h``."""
    try:
        return datetime.now(timezone.utc) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a time like 2026-12-01T09:30 nor a duration like 2h"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@pgevents_cli.command("replay")
@click.option(
    "--since", "since", default=None, help="Events written since this time (ISO) or this long ago (2h, 7d)."
)
@click.option("--from-id", "from_id", type=int, default=None, help="Events from this id on.")
@click.option("--table", default=None, help="Only this table's events (table or schema.table).")
@click.option(
    "--listener", default=None, help="Run only this listener again: its callback's module.qualname."
)
@_bind_option
@_group_option
@with_appcontext
def replay_command(
    since: str | None,
    from_id: int | None,
    table: str | None,
    listener: str | None,
    bind_key: str | None,
    group: str | None,
) -> None:
    """Deliver again handled events still kept in the log (see PGEVENTS_RETENTION), each with its id."""
    if (since is None) == (from_id is None):
        raise click.UsageError("give --since or --from-id (one of them)")
    names = [item.name for item in _extension().listeners if item.bind_key == bind_key]
    if listener is not None and listener not in names:
        raise click.UsageError(
            f"no listener named {listener!r}; this app's listeners: {', '.join(names) or 'none'}"
        )
    done = [name for name in names if listener is not None and name != listener]
    target = None
    if table is not None:
        schema, _, name = table.rpartition(".")
        target = (schema or None, name)
    with _queue(bind_key, group) as (queue, conn):
        if not isinstance(queue, LogQueue):
            raise PGEventsError(f"replay needs pgevents artifact {LOG_VERSION} (the event log)")
        count = queue.replay(
            conn, from_id=from_id, since=None if since is None else _since(since), table=target, done=done
        )
    click.echo(f"queued {count} event(s) for delivery again to group {queue.group!r}")


@pgevents_cli.command("purge")
@click.option("--older-than", "older_than", required=True, help="Age such as 7d, 12h, 30m or 90s.")
@click.option("--dead-letters", is_flag=True, help="Also purge failed events that old.")
@_bind_option
@_group_option
@with_appcontext
def purge_command(older_than: str, dead_letters: bool, bind_key: str | None, group: str | None) -> None:
    """Delete handled (and optionally failed) events older than a given age, in batches."""
    seconds = _duration(older_than)
    with _queue(bind_key, group) as (queue, conn):
        processed = queue.purge(conn, "processed", seconds)
        failed = queue.purge(conn, "dead_letter", seconds) if dead_letters else 0
    click.echo(f"purged {processed} handled and {failed} failed event(s)")
