"""pgevents-migrate: PostgreSQL row-change events for Flask applications.

Importing this package imports ``alembic_ops``, which registers the Alembic
operations (``op.create_pgevent_trigger`` and friends) and the autogenerate
comparator.
"""

from __future__ import annotations

import alembic_ops
from alembic_ops import (
    InvalidIdentifierError,
    InvalidTriggerSpecError,
    MissingArtifactVersionError,
    PGEventsError,
    RefusedOperationError,
    TriggerSpec,
    UncapturableTableError,
    UnknownArtifactVersionError,
)

from .config import WorkerConfig
from .event import Event
from .extension import PGEvents

__version__ = "0.1.0"

__all__ = [
    "Event",
    "InvalidIdentifierError",
    "InvalidTriggerSpecError",
    "MissingArtifactVersionError",
    "PGEvents",
    "PGEventsError",
    "RefusedOperationError",
    "TriggerSpec",
    "UncapturableTableError",
    "UnknownArtifactVersionError",
    "WorkerConfig",
    "alembic_ops",
]
