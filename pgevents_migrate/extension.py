"""``PGEvents``: the Flask extension where application code declares listeners.

Declarations become ``TriggerSpec`` entries in the target table's
``MetaData.info`` (see ``alembic_ops.core.declarations``), where ``flask db
migrate`` finds them. Nothing here creates or alters schema objects.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy

from alembic_ops import TriggerSpec, declare, declare_group, declared_specs, normalize_events
from alembic_ops.core.errors import InvalidTriggerSpecError, PGEventsError, UnknownBindError
from alembic_ops.core.spec import (
    DEFAULT_EVENT_SCHEMA,
    When,
    check_filter_columns,
    normalize_columns,
    normalize_conditions,
)

from .cli import pgevents_cli
from .config import WorkerConfig
from .dispatch import Dispatcher, Listener, callback_name, is_seed_style
from .worker import Worker

log = logging.getLogger("pgevents_migrate")

Callback = Callable[..., Any]
C = TypeVar("C", bound=Callback)
#: A model class, a ``Table``, or ``"table"`` / ``"schema.table"``.
Target = Any


@dataclass(frozen=True)
class Declaration:
    """One ``listen``/``track`` call, kept until it can be resolved."""

    target: Target
    spec: TriggerSpec
    bind_key: str | None
    callback: Callback | None
    ordered: bool = False


@dataclass
class _AppState:
    """What one app's use of the extension holds: its in-thread and background workers."""

    local_worker: Worker | None = None
    thread: threading.Thread | None = None
    thread_worker: Worker | None = None


class PGEvents:
    """Database-level row-change events for a Flask-SQLAlchemy app.

    ``PGEvents(app, db)``, or ``PGEvents()`` then ``init_app(app)`` after
    Flask-SQLAlchemy's. Listeners may be declared before ``init_app``. Like
    Flask-SQLAlchemy, one extension may serve several apps (an app factory):
    the listeners are shared, workers are per app.
    """

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        self.db = db
        self.schema = DEFAULT_EVENT_SCHEMA
        self.listeners: list[Listener] = []
        self._pending: list[Declaration] = []
        self._initialized = False
        #: The consumer groups of the apps initialised, and the metadata their listeners' tables are in.
        self._groups: set[str] = set()
        self._listened: list[sa.MetaData] = []
        self._apps: weakref.WeakKeyDictionary[Flask, _AppState] = weakref.WeakKeyDictionary()
        self._last_app: weakref.ref[Flask] | None = None
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: Flask, db: SQLAlchemy | None = None) -> None:
        """Attach to ``app``, after Flask-SQLAlchemy.

        Reads the ``PGEVENTS_*`` keys documented on ``WorkerConfig`` (the
        worker reads them again when it starts); ``PGEVENTS_SCHEMA`` (default
        ``"pgevents"``) names the schema of the event log and capture function.
        Adds the ``flask pgevents`` commands.
        """
        extension = app.extensions.get("sqlalchemy")
        if extension is None:
            raise RuntimeError("PGEvents.init_app() needs Flask-SQLAlchemy: call db.init_app(app) first")
        config = WorkerConfig.from_mapping(app.config)
        schema = config.schema
        if self._initialized and schema != self.schema:
            raise ValueError(
                f"PGEVENTS_SCHEMA is {schema!r} in {app.name} but {self.schema!r} in an app initialised "
                "before: apps that share one PGEvents (and its declarations) share one event schema"
            )
        self.db = db or self.db or extension
        self.schema = schema
        self._apps[app] = _AppState()
        self._last_app = weakref.ref(app)
        app.extensions["pgevents"] = self
        app.cli.add_command(pgevents_cli)
        self._initialized = True
        self._groups.add(config.group)
        for metadata in self._listened:
            declare_group(metadata, config.group)
        pending, self._pending = self._pending, []
        for declaration in pending:
            # Declared before the event schema was known.
            self._apply(replace(declaration, spec=replace(declaration.spec, pgevents_schema=schema)))

    def listens_for(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        *,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        bind_key: str | None = None,
        ordered: bool = False,
        when: When = None,
    ) -> Callable[[C], C]:
        """Decorator: call the function for ``identifiers`` on ``target``.

        ``identifiers`` is ``"insert"``, ``"update"``, ``"delete"`` (or
        ``"after_insert"``...), or a collection of them. ``columns`` limits
        update events to changes of those columns. ``bind_key`` names the
        Flask-SQLAlchemy bind of a ``"schema.table"`` target; a model or
        ``Table`` brings its own. ``ordered`` (artifact 5 on, queue delivery):
        the events of one row run one at a time, in order, even when one
        fails and is retried (docs/event-log.md). ``when`` (artifact 5 on): a
        SQL condition over the ``old`` and ``new`` rows, or one per event;
        row changes it does not hold for are never captured.
        """
        if ordered and delivery != "queue":
            raise InvalidTriggerSpecError("ordered=True needs delivery='queue': broadcasts are not retried")
        schema, table = _table_key(target)
        events = normalize_events(identifiers)
        spec = TriggerSpec(
            table=table,
            schema=schema,
            events=events,
            columns=normalize_columns(columns),
            delivery=delivery,
            images=images,
            pgevents_schema=self.schema,
            when=normalize_conditions(when, events),
        )

        def decorator(fn: C) -> C:
            _check_callback(fn)
            self._declare(target, spec, bind_key, fn, ordered)
            return fn

        return decorator

    def listen(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        fn: Callback,
        *,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        bind_key: str | None = None,
        ordered: bool = False,
        when: When = None,
    ) -> None:
        """Call ``fn`` for ``identifiers`` on ``target``; see ``listens_for``."""
        _check_callback(fn)
        self.listens_for(
            target,
            identifiers,
            columns=columns,
            delivery=delivery,
            images=images,
            bind_key=bind_key,
            ordered=ordered,
            when=when,
        )(fn)

    def track(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        *,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        bind_key: str | None = None,
        when: When = None,
    ) -> None:
        """Capture ``identifiers`` on ``target`` without a callback here.

        For tables whose events another process or service consumes.
        """
        schema, table = _table_key(target)
        events = normalize_events(identifiers)
        spec = TriggerSpec(
            table=table,
            schema=schema,
            events=events,
            columns=normalize_columns(columns),
            delivery=delivery,
            images=images,
            pgevents_schema=self.schema,
            when=normalize_conditions(when, events),
        )
        self._declare(target, spec, bind_key, None)

    def _declare(
        self,
        target: Target,
        spec: TriggerSpec,
        bind_key: str | None,
        fn: Callback | None,
        ordered: bool = False,
    ) -> None:
        table = _table_of(target)
        if table is not None:
            # The model's columns are known: a misspelt filter fails here, not silently later.
            check_filter_columns(spec, [c.name for c in table.columns], _column_names(target))
            bind_key = _bind_of(table, bind_key)
        declaration = Declaration(target=target, spec=spec, bind_key=bind_key, callback=fn, ordered=ordered)
        # Before init_app, the bind's metadata and the event schema are not known yet.
        if self._initialized:
            self._apply(declaration)
        else:
            self._pending.append(declaration)

    def _apply(self, declaration: Declaration) -> None:
        table = _table_of(declaration.target)
        metadata = table.metadata if table is not None else self.metadata(declaration.bind_key)
        declare(metadata, declaration.spec)
        callback = declaration.callback
        if callback is not None:
            # The apps' consumer groups (PGEVENTS_GROUP) read this database: autogenerate registers them.
            if all(metadata is not seen for seen in self._listened):
                self._listened.append(metadata)
            for group in self._groups:
                declare_group(metadata, group)
            self.listeners.append(
                Listener(
                    spec=declaration.spec,
                    callback=callback,
                    name=callback_name(callback, (listener.name for listener in self.listeners)),
                    seed_style=is_seed_style(callback),
                    bind_key=declaration.bind_key,
                    ordered=declaration.ordered,
                )
            )

    # -- runtime -------------------------------------------------------------

    def _current_app(self) -> Flask:
        """The app in context if it uses this extension, else the last one initialised."""
        if has_app_context():
            app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
            if app in self._apps:
                return app
        last = self._last_app() if self._last_app is not None else None
        if last is None:
            raise RuntimeError("PGEvents is not initialised: call PGEvents(app, db) or init_app(app) first")
        return last

    def database_dsn(self, bind_key: str | None = None) -> str:
        """The libpq URI of the database the runtime uses for ``bind_key``.

        The bind's engine URL; for the default bind, ``PGEVENTS_DATABASE_URL``
        if set (another bind's events live in another database).
        """
        app = self._current_app()
        assert self.db is not None
        config = WorkerConfig.from_mapping(app.config)
        self.metadata(bind_key)  # a clear error for an unknown bind
        if config.database_url and bind_key is None:
            return libpq_dsn(sa.make_url(config.database_url))
        with app.app_context():
            return libpq_dsn(self.db.engines[bind_key].url)

    def worker(self, bind_key: str | None = None, *, strict: bool = False) -> Worker:
        """A new worker for the listeners of ``bind_key``'s database.

        ``strict`` (or ``PGEVENTS_STRICT``): it refuses to start when a
        declared table's triggers are missing or differ, instead of warning.
        """
        app = self._current_app()
        assert self.db is not None
        config = WorkerConfig.from_mapping(app.config)
        if strict:
            config = replace(config, strict=True)
        dispatcher = Dispatcher(app, [lst for lst in self.listeners if lst.bind_key == bind_key])
        declared = declared_specs(self.metadata(bind_key))
        return Worker(self.database_dsn(bind_key), dispatcher, config, declared=declared, bind_key=bind_key)

    def handle_events(self, timeout: float = 0.0) -> int:
        """One pass in this thread: dispatch what is available, waiting up to ``timeout`` s.

        Returns the number of events handled.
        """
        state = self._apps[self._current_app()]
        if state.local_worker is None:
            state.local_worker = self.worker()
        return state.local_worker.run_once(timeout)

    def start(self, bind_key: str | None = None) -> None:
        """Run a worker for the current app in a background thread; returns once it listens.

        Raises ``PGEventsError`` at once if the database lacks the artifact;
        if a reconnect later refuses (strict), the thread ends with one logged error.
        """
        state = self._apps[self._current_app()]
        if state.thread is not None and state.thread.is_alive():
            raise RuntimeError("the pgevents background worker of this app is already running")
        worker = self.worker(bind_key)
        worker.connect()
        state.thread_worker = worker
        state.thread = threading.Thread(target=_run_until_refused, args=(worker,), name="pgevents-worker")
        state.thread.daemon = True
        state.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the current app's background worker after its current callback."""
        state = self._apps[self._current_app()]
        if state.thread_worker is not None:
            state.thread_worker.stop()
        if state.thread is not None:
            state.thread.join(timeout)
        state.thread = state.thread_worker = None

    def metadata(self, bind_key: str | None = None) -> sa.MetaData:
        """The metadata of ``bind_key``, where its declarations are recorded."""
        assert self.db is not None
        try:
            return self.db.metadatas[bind_key]
        except KeyError:
            raise UnknownBindError(f"unknown bind {bind_key!r}: not in SQLALCHEMY_BINDS") from None


def _check_callback(fn: Callback) -> None:
    if not callable(fn):
        raise TypeError(f"listener must be callable, got {fn!r}")
    is_seed_style(fn)  # raises early for a wrong signature


def _table_key(target: Target) -> tuple[str | None, str]:
    """``(schema, name)`` of the table a model class, a ``Table`` or ``"schema.table"`` names."""
    table = _table_of(target)
    if table is not None:
        return (table.schema, table.name)
    schema, _, name = target.rpartition(".")
    return (schema or None, name)


def _table_of(target: Target) -> sa.Table | None:
    """The ``Table`` behind a model class or ``Table``; None for a name."""
    if isinstance(target, sa.Table):
        return target
    if isinstance(target, str):
        return None
    table = getattr(target, "__table__", None)
    if isinstance(table, sa.Table):
        return table
    raise TypeError(f"cannot listen to {target!r}: expected a model class, a Table or 'schema.table'")


def _run_until_refused(worker: Worker) -> None:
    """``worker.run()`` in a background thread: a refusal ends it with one logged line, not a traceback."""
    try:
        worker.run()
    except PGEventsError as exc:
        log.error("pgevents: the background worker stopped: %s", exc)


def _bind_of(table: sa.Table, given: str | None) -> str | None:
    """The bind of a model's table (Flask-SQLAlchemy notes it on the metadata), else ``given``."""
    if "bind_key" not in table.metadata.info:
        return given
    bind_key: str | None = table.metadata.info["bind_key"]
    if given is not None and given != bind_key:
        raise InvalidTriggerSpecError(
            f"listener on {table.fullname!r} names bind_key={given!r}, but the table belongs to "
            f"bind {bind_key!r}: leave bind_key out for models and Tables, it is taken from them"
        )
    return bind_key


def _column_names(target: Target) -> dict[str, str]:
    """Attribute keys of a model's (or a ``Table``'s) columns, mapped to their column names."""
    if isinstance(target, sa.Table):
        return {column.key: column.name for column in target.columns}
    return {
        attribute.key: attribute.columns[0].name
        for attribute in sa.inspect(target).column_attrs
        if isinstance(attribute.columns[0], sa.Column)
    }


def libpq_dsn(url: sa.URL) -> str:
    """A libpq connection URI for a SQLAlchemy URL of any PostgreSQL driver."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
