"""``PGEvents``: the Flask extension where application code declares listeners.

Declarations become ``TriggerSpec`` entries in the target table's
``MetaData.info`` (see ``alembic_ops.declarations``), where ``flask db
migrate`` finds them. Nothing here creates or alters schema objects.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy

from alembic_ops import TriggerSpec, declare, declared_specs, normalize_events
from alembic_ops.spec import DEFAULT_EVENT_SCHEMA, check_filter_columns, normalize_columns

from .cli import pgevents_cli
from .config import WorkerConfig
from .dispatch import Dispatcher, Listener, callback_name, is_seed_style
from .worker import Worker

Callback = Callable[..., Any]
C = TypeVar("C", bound=Callback)
#: A model class, a ``Table``, or ``"table"`` / ``"schema.table"``.
Target = Any


@dataclass(frozen=True)
class Declaration:
    """One ``listen``/``track`` call, kept until it can be resolved."""

    target: Target
    events: tuple[str, ...]
    columns: tuple[str, ...] | None
    delivery: str
    images: bool
    bind_key: str | None
    callback: Callback | None


class PGEvents:
    """Database-level row-change events for a Flask-SQLAlchemy app.

    ``PGEvents(app, db)``, or ``PGEvents()`` then ``init_app(app)`` after
    Flask-SQLAlchemy's. Listeners may be declared before ``init_app``.
    """

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        self.db = db
        self.app: Flask | None = None
        self.schema = DEFAULT_EVENT_SCHEMA
        self.listeners: list[Listener] = []
        self._pending: list[Declaration] = []
        self._initialized = False
        self._local_workers: weakref.WeakKeyDictionary[Flask, Worker] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._thread_worker: Worker | None = None
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
        self.db = db or self.db or extension
        self.app = app
        self.schema = WorkerConfig.from_mapping(app.config).schema
        app.extensions["pgevents"] = self
        app.cli.add_command(pgevents_cli)
        self._initialized = True
        pending, self._pending = self._pending, []
        for declaration in pending:
            self._apply(declaration)

    def listens_for(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        *,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        bind_key: str | None = None,
    ) -> Callable[[C], C]:
        """Decorator: call the function for ``identifiers`` on ``target``.

        ``identifiers`` is ``"insert"``, ``"update"``, ``"delete"`` (or
        ``"after_insert"``...), or a collection of them. ``columns`` limits
        update events to changes of those columns.
        """

        def decorator(fn: C) -> C:
            self.listen(
                target, identifiers, fn, columns=columns, delivery=delivery, images=images, bind_key=bind_key
            )
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
    ) -> None:
        """Call ``fn`` for ``identifiers`` on ``target``; see ``listens_for``."""
        self._declare(target, identifiers, fn, columns, delivery, images, bind_key)

    def track(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        *,
        columns: Iterable[str] | None = None,
        delivery: str = "queue",
        images: bool = False,
        bind_key: str | None = None,
    ) -> None:
        """Capture ``identifiers`` on ``target`` without a callback here.

        For tables whose events another process or service consumes.
        """
        self._declare(target, identifiers, None, columns, delivery, images, bind_key)

    def _declare(
        self,
        target: Target,
        identifiers: str | Iterable[str],
        fn: Callback | None,
        columns: Iterable[str] | None,
        delivery: str,
        images: bool,
        bind_key: str | None,
    ) -> None:
        if fn is not None:
            if not callable(fn):
                raise TypeError(f"listener must be callable, got {fn!r}")
            is_seed_style(fn)  # raises early for a wrong signature
        declaration = Declaration(
            target=target,
            events=normalize_events(identifiers),
            columns=normalize_columns(columns),
            delivery=delivery,
            images=images,
            bind_key=bind_key,
            callback=fn,
        )
        # Validate what can be validated now; strings wait for the database.
        if self._initialized:
            self._apply(declaration)
        else:
            self._spec(declaration, _table_of(declaration.target))
            self._pending.append(declaration)

    def _apply(self, declaration: Declaration) -> None:
        table = _table_of(declaration.target)
        metadata = table.metadata if table is not None else self._metadata(declaration.bind_key)
        spec = self._spec(declaration, table)
        declare(metadata, spec)
        callback = declaration.callback
        if callback is not None:
            self.listeners.append(
                Listener(
                    schema=spec.schema,
                    table=spec.table,
                    events=spec.events,
                    columns=spec.columns,
                    delivery=spec.delivery,
                    callback=callback,
                    name=callback_name(callback, (listener.name for listener in self.listeners)),
                    seed_style=is_seed_style(callback),
                    bind_key=declaration.bind_key,
                )
            )

    def _spec(self, declaration: Declaration, table: sa.Table | None) -> TriggerSpec:
        if table is not None:
            schema, name = table.schema, table.name
        else:
            schema, name = _split_target(declaration.target)
        spec = TriggerSpec(
            table=name,
            schema=schema,
            events=declaration.events,
            columns=declaration.columns,
            delivery=declaration.delivery,
            images=declaration.images,
            pgevents_schema=self.schema,
        )
        if table is not None:
            # The model's columns are known: a misspelt filter fails here, not silently later.
            check_filter_columns(spec, [c.name for c in table.columns], _column_names(declaration.target))
        return spec

    # -- runtime -------------------------------------------------------------

    def _current_app(self) -> Flask:
        """The app in context if it uses this extension, else the last one initialised."""
        if has_app_context() and current_app.extensions.get("pgevents") is self:
            return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
        if self.app is None:
            raise RuntimeError("PGEvents is not initialised: call PGEvents(app, db) or init_app(app) first")
        return self.app

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
        if config.database_url:
            url = sa.make_url(config.database_url)
        else:
            with app.app_context():
                url = self.db.engines[bind_key].url
        dispatcher = Dispatcher(
            app, [lst for lst in self.listeners if lst.bind_key == bind_key], self.db.session.remove
        )
        declared = declared_specs(self._metadata(bind_key))
        return Worker(libpq_dsn(url), dispatcher, config, declared=declared, bind_key=bind_key)

    def handle_events(self, timeout: float = 0.0) -> int:
        """One pass in this thread: dispatch what is available, waiting up to ``timeout`` s.

        Returns the number of events handled.
        """
        app = self._current_app()
        worker = self._local_workers.get(app)
        if worker is None:
            worker = self._local_workers[app] = self.worker()
        return worker.run_once(timeout)

    def start(self, bind_key: str | None = None) -> None:
        """Run a worker in a background thread; returns once it listens.

        Raises ``PGEventsError`` at once if the database lacks the artifact.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the pgevents background worker is already running")
        worker = self.worker(bind_key)
        worker.connect()
        self._thread_worker = worker
        self._thread = threading.Thread(target=worker.run, name="pgevents-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background worker after its current callback."""
        if self._thread_worker is not None:
            self._thread_worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = self._thread_worker = None

    def _metadata(self, bind_key: str | None) -> sa.MetaData:
        assert self.db is not None
        try:
            return self.db.metadatas[bind_key]
        except KeyError:
            raise ValueError(f"unknown bind_key {bind_key!r}: not in SQLALCHEMY_BINDS") from None


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


def _split_target(target: str) -> tuple[str | None, str]:
    schema, _, name = target.rpartition(".")
    return (schema or None, name)
