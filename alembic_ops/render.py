"""How autogenerate writes the pgevents ops into a migration.

Registered with Alembic's renderers when ``alembic_ops`` is imported. A
trigger op is written from its ``TriggerSpec``'s fields: each becomes the
parameter of ``op.create_pgevent_trigger`` of the same name (positional or
keyword, as that parameter is), left out while it holds its default, except
``events``, always written. A group op names its event schema only when it
is not the default one.
"""

from __future__ import annotations

import dataclasses
import inspect

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext

from .core.spec import DEFAULT_EVENT_SCHEMA, TriggerSpec
from .ops import (
    CreatePGEventsGroupOp,
    CreatePGEventTriggerOp,
    DowngradePGEventsOp,
    DropPGEventsGroupOp,
    DropPGEventTriggerOp,
    InstallPGEventsOp,
    UninstallPGEventsOp,
    UpgradePGEventsOp,
    _ArtifactOp,
    _GroupOp,
    _TriggerOp,
    _VersionChangeOp,
)

#: ``TriggerSpec`` fields whose op parameter has another name.
OP_PARAMETERS = {"table": "table_name"}
#: Fields written even when they hold their default: a reader sees what is captured.
ALWAYS_WRITTEN = frozenset({"events"})
#: Fields held as pairs, written as the mapping a migration's author writes: ``when={"update": "..."}``.
AS_MAPPING = frozenset({"when"})

_TRIGGER_PARAMETERS = inspect.signature(_TriggerOp.for_table).parameters


def trigger_arguments(spec: TriggerSpec) -> list[str]:
    """The arguments, as source, of the ``op.create_pgevent_trigger`` call that builds ``spec``."""
    positional: list[str] = []
    keywords: list[str] = []
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        name = OP_PARAMETERS.get(field.name, field.name)
        source = repr(dict(value) if field.name in AS_MAPPING else value)
        if _TRIGGER_PARAMETERS[name].kind is not inspect.Parameter.KEYWORD_ONLY:
            positional.append(source)
        elif field.name in ALWAYS_WRITTEN or value != field.default:
            keywords.append(f"{name}={source}")
    return [*positional, *keywords]


def _add_import(autogen_context: AutogenContext) -> None:
    autogen_context.imports.add("import alembic_ops  # noqa: F401")


def _render_artifact(name: str, autogen_context: AutogenContext, op: _ArtifactOp) -> str:
    _add_import(autogen_context)
    return f"op.{name}(schema={op.schema!r}, version={op.version!r})"


def _render_version_change(name: str, autogen_context: AutogenContext, op: _VersionChangeOp) -> str:
    _add_import(autogen_context)
    return f"op.{name}(schema={op.schema!r}, from_version={op.from_version!r}, to_version={op.to_version!r})"


def _render_trigger(autogen_context: AutogenContext, op: _TriggerOp) -> str:
    _add_import(autogen_context)
    args = [*trigger_arguments(op.spec), f"version={op.version!r}"]
    return f"op.{op.name}({', '.join(args)})"


def _render_group(autogen_context: AutogenContext, op: _GroupOp) -> str:
    _add_import(autogen_context)
    schema = [] if op.schema == DEFAULT_EVENT_SCHEMA else [f"schema={op.schema!r}"]
    lanes = [f"lanes={op.lanes!r}"] if op.lanes != 1 and isinstance(op, CreatePGEventsGroupOp) else []
    args = [repr(op.group), *schema, *lanes, f"version={op.version!r}"]
    return f"op.{op.name}({', '.join(args)})"


@renderers.dispatch_for(InstallPGEventsOp)
def _render_install(autogen_context: AutogenContext, op: InstallPGEventsOp) -> str:
    return _render_artifact("install_pgevents", autogen_context, op)


@renderers.dispatch_for(UninstallPGEventsOp)
def _render_uninstall(autogen_context: AutogenContext, op: UninstallPGEventsOp) -> str:
    return _render_artifact("uninstall_pgevents", autogen_context, op)


@renderers.dispatch_for(UpgradePGEventsOp)
def _render_upgrade(autogen_context: AutogenContext, op: UpgradePGEventsOp) -> str:
    return _render_version_change("upgrade_pgevents", autogen_context, op)


@renderers.dispatch_for(DowngradePGEventsOp)
def _render_downgrade(autogen_context: AutogenContext, op: DowngradePGEventsOp) -> str:
    return _render_version_change("downgrade_pgevents", autogen_context, op)


renderers.dispatch_for(CreatePGEventTriggerOp)(_render_trigger)
renderers.dispatch_for(DropPGEventTriggerOp)(_render_trigger)
renderers.dispatch_for(CreatePGEventsGroupOp)(_render_group)
renderers.dispatch_for(DropPGEventsGroupOp)(_render_group)
