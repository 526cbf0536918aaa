"""``Event``: one captured row change, as callbacks receive it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    """A row change: ``op`` (``insert``/``update``/``delete``) on ``schema.table``.

    ``pk`` is the primary key as a dict; ``row_id`` its single value for
    single-column keys. ``old``/``new`` are row images (when the trigger keeps
    them), ``changed`` the columns an update changed. Queue events also carry
    their log ``id``, ``txid``, ``created_at`` and delivery ``attempt`` (1 on
    the first try); broadcast events have ``id`` None.
    """

    op: str
    schema: str
    table: str
    pk: dict[str, Any]
    delivery: str = "queue"
    id: int | None = None
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    changed: tuple[str, ...] | None = None
    txid: int | None = None
    created_at: datetime | None = None
    attempt: int = 1

    @property
    def row_id(self) -> Any:
        """The primary-key value for single-column keys, else None."""
        if len(self.pk) == 1:
            return next(iter(self.pk.values()))
        return None

    @property
    def identifier(self) -> str:
        """The trigger's ``TG_OP``: ``INSERT``, ``UPDATE`` or ``DELETE``.

        What flask-sqlalchemy-pgevents passed seed-style callbacks,
        ``fn(event_id, row_id, identifier)``, as their third argument.
        """
        return self.op.upper()

    @classmethod
    def from_fields(cls, **fields: Any) -> Event:
        """The same as ``Event(**fields)``, without its per-field checks: for the worker's hot path.

        A frozen dataclass's ``__init__`` sets each field through
        ``object.__setattr__``; filling ``__dict__`` at once makes decoding a
        page about a third cheaper. Fields left out take their defaults.
        """
        event = object.__new__(cls)
        event.__dict__.update(fields)
        return event

    @classmethod
    def from_broadcast(cls, payload: str) -> list[Event]:
        """The events in one broadcast NOTIFY payload.

        A key too large for a payload arrives as one event with ``pk == {}``:
        rows of the table changed, which ones is unknown.
        """
        data = json.loads(payload)
        keys = data["pks"] if data.get("pks") is not None else [{}]
        return [
            cls(op=data["op"], schema=data["schema"], table=data["table"], pk=pk, delivery="broadcast")
            for pk in keys
        ]
