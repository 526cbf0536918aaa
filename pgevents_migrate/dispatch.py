"""``Dispatcher``: finds the callbacks an event is for and runs them in an app context."""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask

from alembic_ops.core.spec import TriggerSpec

from .event import Event

log = logging.getLogger("pgevents_migrate")


@dataclass(frozen=True)
class Listener:
    """A callback and the table changes it wants: those its declaration's ``spec`` captures.

    ``spec.schema`` None means the connection's default schema. ``name`` is
    stable across processes and restarts; it records which callbacks already
    succeeded for an event that is being retried.
    """

    spec: TriggerSpec
    callback: Callable[..., Any]
    name: str
    seed_style: bool = False
    bind_key: str | None = None
    #: Events of one row run one at a time, in order (artifact 5 on).
    ordered: bool = False

    def wants(self, event: Event, default_schema: str) -> bool:
        spec = self.spec
        if event.table != spec.table or event.op not in spec.events:
            return False
        if event.schema != (spec.schema or default_schema):
            return False
        if spec.columns is None or event.op != "update" or event.changed is None:
            return True
        return any(column in event.changed for column in spec.columns)


def is_seed_style(callback: Callable[..., Any]) -> bool:
    """True for flask-sqlalchemy-pgevents callbacks: ``fn(event_id, row_id, identifier)``."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) == 3:
        return True
    if len(positional) > 1:
        raise TypeError(
            f"listener {callback!r} takes {len(positional)} arguments: expected fn(event) "
            "or the older fn(event_id, row_id, identifier)"
        )
    return False


def callback_name(callback: Callable[..., Any], taken: Iterable[str]) -> str:
    """``module.qualname``, suffixed with ``#N`` when that name is already taken."""
    qualname = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    base = f"{getattr(callback, '__module__', None) or type(callback).__module__}.{qualname}"
    taken = set(taken)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}#{n}"
    return name


@dataclass
class Outcome:
    """What running an event's callbacks gave: who succeeded, and the first error."""

    done: list[str]
    error: str | None = None


class Dispatcher:
    """Runs the callbacks of ``listeners`` that want an event."""

    def __init__(self, app: Flask, listeners: Sequence[Listener]) -> None:
        self.app = app
        self.listeners = list(listeners)
        self.default_schema = "public"
        self.has_ordered = any(listener.ordered for listener in self.listeners)

    def tables(self, delivery: str | None = None) -> set[tuple[str, str]]:
        """``(schema, table)`` of every table some listener (of ``delivery``, if given) wants."""
        specs = [listener.spec for listener in self.listeners]
        return {
            (spec.schema or self.default_schema, spec.table)
            for spec in specs
            if delivery is None or spec.delivery == delivery
        }

    def ordered(self, event: Event) -> bool:
        """Whether a listener with ``ordered=True`` wants ``event``."""
        return self.has_ordered and any(
            listener.ordered and listener.wants(event, self.default_schema) for listener in self.listeners
        )

    def run(self, event: Event, done: Iterable[str] = ()) -> Outcome:
        """Call each wanting callback not yet in ``done``; keep going after a failure."""
        outcome = Outcome(done=list(done))
        for listener in self.listeners:
            if listener.name in outcome.done or not listener.wants(event, self.default_schema):
                continue
            try:
                # Flask-SQLAlchemy's teardown removes the session (rolling back
                # whatever the callback left open) when the context pops.
                with self.app.app_context():
                    if listener.seed_style:
                        listener.callback(event.id, event.row_id, event.identifier)
                    else:
                        listener.callback(event)
            except Exception:
                error = traceback.format_exc()
                log.error(
                    "pgevents: %s failed on %s %s.%s %s\n%s",
                    listener.name,
                    event.op,
                    event.schema,
                    event.table,
                    event.pk,
                    error,
                )
                outcome.error = outcome.error or f"{listener.name}: {error}"
            else:
                outcome.done.append(listener.name)
        return outcome
