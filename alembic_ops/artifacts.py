"""The versioned SQL artifacts, rendered from the templates in ``sql/v<N>/``.

Every released version's templates stay in the package unchanged, so a
migration rendered with version N replays byte-identically after the library
is upgraded. A version's folder holds only the templates that changed (the
others come from the newest older version that has them), and a line
``-- #include v1/tables.sql`` pastes in another template; without a version
folder (``-- #include wakeup_check.sql``) the template comes from the version
being built, the same way (for a downgrade, the version it goes back to).
Tokens look like ``@name@`` and are filled only with quoted identifiers or
quoted literals from ``identifiers.py`` (and ``@or_replace@`` with ``OR
REPLACE`` or nothing).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from .core.errors import UnknownArtifactVersionError
from .core.identifiers import check_event_schema, qualified_table, quote_identifier, quote_literal
from .core.names import ARTIFACT_MARKER, TRIGGER_NAMES, broadcast_channel, sleeping_sequence, wakeup_channel
from .core.spec import TriggerSpec

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: Artifact versions this library ships, oldest first.
VERSIONS: tuple[int, ...] = (1, 2, 3, 4)
CURRENT_VERSION: int = VERSIONS[-1]

_TOKEN = re.compile(r"@([a-z_]+)@")
_INCLUDE = re.compile(r"^-- #include ((?:v[0-9]+/)?[a-z_]+)\.sql\n", re.MULTILINE)


def check_version(version: object) -> int:
    """Return ``version`` if this library ships it, else raise."""
    if isinstance(version, bool) or not isinstance(version, int) or version not in VERSIONS:
        raise UnknownArtifactVersionError(
            f"pgevents artifact version {version!r} is not shipped by this library "
            f"(known: {', '.join(map(str, VERSIONS))}); upgrade pgevents-migrate"
        )
    return version


def _sql_file(path: str) -> Traversable:
    return resources.files(__package__).joinpath("sql", *path.split("/"))


def _template_path(version: int, name: str, *, inherit: bool) -> str:
    """``v<N>/<name>.sql``; with ``inherit``, from the newest version <= N that has one."""
    candidates = [v for v in VERSIONS if v <= check_version(version)] if inherit else [version]
    for path in (f"v{candidate}/{name}.sql" for candidate in reversed(candidates)):
        if _sql_file(path).is_file():
            return path
    raise UnknownArtifactVersionError(f"pgevents artifact version {version} has no {name}.sql")


@cache
def _read(path: str, built: int) -> str:
    """A template file with its include lines expanded for version ``built``."""

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        return _read(f"{name}.sql" if "/" in name else _template_path(built, name, inherit=True), built)

    return _INCLUDE.sub(include, _sql_file(path).read_text(encoding="utf-8"))


def _render(
    version: int, name: str, tokens: dict[str, str], *, inherit: bool = True, built: int | None = None
) -> str:
    def fill(match: re.Match[str]) -> str:
        return tokens[match.group(1)]

    text = _read(_template_path(version, name, inherit=inherit), version if built is None else built)
    # Alembic adds the statement terminator itself.
    return _TOKEN.sub(fill, text).strip().removesuffix(";")


def _artifact_tokens(pgevents_schema: str) -> dict[str, str]:
    return {
        "schema": quote_identifier(check_event_schema(pgevents_schema)),
        "schema_name": quote_literal(pgevents_schema),
        "sleeping": quote_literal(sleeping_sequence(pgevents_schema)),
        "wakeup_channel": quote_literal(wakeup_channel(pgevents_schema)),
        "broadcast_channel": quote_literal(broadcast_channel(pgevents_schema)),
    }


def install_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Create the event schema's tables and the capture function."""
    return _render(version, "install", {**_artifact_tokens(pgevents_schema), "or_replace": ""})


def uninstall_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Drop what ``install_sql`` created; the schema only if left empty."""
    return _render(version, "uninstall", _artifact_tokens(pgevents_schema))


def check_no_events_sql(pgevents_schema: str, version: int = CURRENT_VERSION) -> str:
    """Fail, naming the counts, while the event log holds undelivered events or dead letters."""
    return _render(version, "check_no_events", _artifact_tokens(pgevents_schema))


def change_version_sql(pgevents_schema: str, from_version: int, to_version: int) -> list[str]:
    """Move an installed artifact from one version to another, one step at a time.

    Going up runs ``v<N>/upgrade.sql`` for each newer version; going down runs
    ``v<N>/downgrade.sql`` from the installed version back. Each step first
    checks that the database holds the version it starts from.
    """
    check_version(from_version)
    check_version(to_version)
    tokens = {**_artifact_tokens(pgevents_schema), "or_replace": "OR REPLACE "}

    def step(version: int, name: str, starts_at: int, built: int) -> str:
        expected = quote_literal(f"{ARTIFACT_MARKER}{starts_at}")
        return _render(version, name, {**tokens, "expected": expected}, inherit=False, built=built)

    if from_version < to_version:
        return [step(v, "upgrade", v - 1, v) for v in VERSIONS if from_version < v <= to_version]
    return [step(v, "downgrade", v, v - 1) for v in reversed(VERSIONS) if to_version < v <= from_version]


def _text_array(values: tuple[str, ...] | None) -> str:
    if not values:
        return "'{}'"
    return "ARRAY[" + ", ".join(quote_literal(v) for v in values) + "]"


def check_table_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> str:
    """Fail with one short message unless the table exists and has a primary key and the filtered columns."""
    return _render(
        version,
        "check_table",
        {
            "table_literal": quote_literal(qualified_table(spec.table, spec.schema)),
            "filter_columns": _text_array(spec.columns),
        },
    )


def create_trigger_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> list[str]:
    """The statement that installs ``spec``'s triggers, one per event.

    It resolves the table's primary key when it runs (failing, with the
    table's name, if there is none) and passes it to the capture function as
    trigger arguments: delivery, images, key count, key columns, filter columns.
    """
    return [
        _render(
            version,
            "create_triggers",
            {
                "table_literal": quote_literal(qualified_table(spec.table, spec.schema)),
                "events": _text_array(spec.events),
                "schema": quote_identifier(spec.pgevents_schema),
                "delivery": quote_literal(spec.delivery),
                "images": quote_literal("images" if spec.images else "keys"),
                "filter_columns": _text_array(spec.columns),
            },
        )
    ]


def drop_trigger_sql(spec: TriggerSpec, version: int = CURRENT_VERSION) -> list[str]:
    """Statements that remove ``spec``'s triggers."""
    table = qualified_table(spec.table, spec.schema)
    return [
        _render(
            version,
            "drop_trigger",
            {
                "trigger": TRIGGER_NAMES[event],
                "table": table,
                "schema": quote_identifier(spec.pgevents_schema),
            },
        )
        for event in spec.events
    ]
