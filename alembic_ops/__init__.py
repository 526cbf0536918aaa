"""Alembic operations that ship pgevents capture triggers as migrations.

``import alembic_ops`` registers ``op.install_pgevents``,
``op.uninstall_pgevents``, ``op.upgrade_pgevents``, ``op.downgrade_pgevents``,
``op.create_pgevent_trigger`` and ``op.drop_pgevent_trigger``, and the
autogenerate comparator that writes them into migrations from the specs
``declare()`` records in ``MetaData.info``. This package never imports Flask.
"""

from __future__ import annotations

from . import comparator as comparator
from . import render as render
from .artifacts import CURRENT_VERSION, VERSIONS
from .core.declarations import declare, declare_group, declared_groups, declared_specs, merge_specs
from .core.errors import (
    ArtifactVersionError,
    InvalidIdentifierError,
    InvalidTriggerSpecError,
    MissingArtifactVersionError,
    PGEventsError,
    RefusedOperationError,
    UncapturableTableError,
    UnknownArtifactVersionError,
)
from .core.names import TRIGGER_NAMES, broadcast_channel, wakeup_channel
from .core.spec import DELIVERIES, EVENTS, TriggerSpec, normalize_events
from .ops import (
    CreatePGEventTriggerOp,
    DowngradePGEventsOp,
    DropPGEventTriggerOp,
    InstallPGEventsOp,
    UninstallPGEventsOp,
    UpgradePGEventsOp,
)

__all__ = [
    "CURRENT_VERSION",
    "DELIVERIES",
    "EVENTS",
    "TRIGGER_NAMES",
    "VERSIONS",
    "ArtifactVersionError",
    "CreatePGEventTriggerOp",
    "DowngradePGEventsOp",
    "DropPGEventTriggerOp",
    "InstallPGEventsOp",
    "InvalidIdentifierError",
    "InvalidTriggerSpecError",
    "MissingArtifactVersionError",
    "PGEventsError",
    "RefusedOperationError",
    "TriggerSpec",
    "UncapturableTableError",
    "UninstallPGEventsOp",
    "UnknownArtifactVersionError",
    "UpgradePGEventsOp",
    "broadcast_channel",
    "declare",
    "declare_group",
    "declared_groups",
    "declared_specs",
    "merge_specs",
    "normalize_events",
    "wakeup_channel",
]
