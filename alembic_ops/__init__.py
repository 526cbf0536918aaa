"""Alembic operations that ship pgevents capture triggers as migrations.

``import alembic_ops`` registers ``op.install_pgevents``,
``op.uninstall_pgevents``, ``op.upgrade_pgevents``, ``op.downgrade_pgevents``,
``op.create_pgevent_trigger``, ``op.drop_pgevent_trigger``,
``op.create_pgevents_group`` and ``op.drop_pgevents_group``, and the
autogenerate comparator that writes them into migrations from the specs and
groups ``declare()`` and ``declare_group()`` record in ``MetaData.info``. This package never imports Flask.
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
    CreatePGEventsGroupOp,
    CreatePGEventTriggerOp,
    DowngradePGEventsOp,
    DropPGEventsGroupOp,
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
    "CreatePGEventsGroupOp",
    "DowngradePGEventsOp",
    "DropPGEventTriggerOp",
    "DropPGEventsGroupOp",
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
