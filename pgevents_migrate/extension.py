"""``PGEvents``: the Flask extension where application code declares listeners.

Declarations become ``TriggerSpec`` entries in the target table's
``MetaData.info`` (see ``alembic_ops.declarations``), where ``flask db
migrate`` finds them. Nothing here creates or alters schema objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from alembic_ops import TriggerSpec, declare, normalize_events
from alembic_ops.spec import DEFAULT_EVENT_SCHEMA, normalize_columns

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


@dataclass(frozen=True)
class Listener:
    """A callback and the table changes it wants."""

    spec: TriggerSpec
    callback: Callback


class PGEvents:
    """Database-level row-change events for a Flask-SQLAlchemy app.

    ``PGEvents(app, db)``, or ``PGEvents()`` then ``init_app(app)`` after
    Flask-SQLAlchemy's. Listeners may be declared before ``init_app``.
    """

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        self.db = db
        self.schema = DEFAULT_EVENT_SCHEMA
        self.listeners: list[Listener] = []
        self._pending: list[Declaration] = []
        self._initialized = False
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: Flask, db: SQLAlchemy | None = None) -> None:
        """Attach to ``app``, after Flask-SQLAlchemy.

        Reads ``PGEVENTS_SCHEMA`` (default ``"pgevents"``): the schema that
        holds the event log and capture function.
        """
        extension = app.extensions.get("sqlalchemy")
        if extension is None:
            raise RuntimeError("PGEvents.init_app() needs Flask-SQLAlchemy: call db.init_app(app) first")
        self.db = db or self.db or extension
        self.schema = app.config.setdefault("PGEVENTS_SCHEMA", DEFAULT_EVENT_SCHEMA)
        app.extensions["pgevents"] = self
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
        if fn is not None and not callable(fn):
            raise TypeError(f"listener must be callable, got {fn!r}")
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
        if declaration.callback is not None:
            self.listeners.append(Listener(spec, declaration.callback))

    def _spec(self, declaration: Declaration, table: sa.Table | None) -> TriggerSpec:
        if table is not None:
            schema, name = table.schema, table.name
        else:
            schema, name = _split_target(declaration.target)
        return TriggerSpec(
            table=name,
            schema=schema,
            events=declaration.events,
            columns=declaration.columns,
            delivery=declaration.delivery,
            images=declaration.images,
            pgevents_schema=self.schema,
        )

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


def _split_target(target: str) -> tuple[str | None, str]:
    schema, _, name = target.rpartition(".")
    return (schema or None, name)
