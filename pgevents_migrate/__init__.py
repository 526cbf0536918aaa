"""pgevents-migrate: PostgreSQL row-change events for Flask applications.

Importing this package imports ``alembic_ops``, which registers the Alembic
operations (``op.create_pgevent_trigger`` and friends).
"""

from __future__ import annotations

import alembic_ops
from alembic_ops import (
    InvalidIdentifierError,
    InvalidTriggerSpecError,
    PGEventsError,
    TriggerSpec,
    UnknownArtifactVersionError,
)

__version__ = "0.1.0"

__all__ = [
    "InvalidIdentifierError",
    "InvalidTriggerSpecError",
    "PGEventsError",
    "TriggerSpec",
    "UnknownArtifactVersionError",
    "alembic_ops",
]
