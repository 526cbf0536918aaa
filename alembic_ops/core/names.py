"""Every name the SQL artifacts and the Python code must agree on, defined once.

Templates get these through tokens (see ``artifacts.py``); the catalog reader,
the comparator and the runtime import them from here.
"""

from __future__ import annotations

from .identifiers import LONGEST_CHANNEL_SUFFIX, check_event_schema, quote_identifier
from .spec import EVENTS

#: The generic capture function every artifact creates in the event schema.
CAPTURE_FUNCTION = "capture"
#: Generated capture functions are named ``capture_<table>_<event>`` (artifact 3 on).
GENERATED_PREFIX = "capture_"

#: The per-table triggers are named ``pgevents_<event>``.
TRIGGER_PREFIX = "pgevents_"
#: The names of the per-table triggers, one per event.
TRIGGER_NAMES: dict[str, str] = {event: f"{TRIGGER_PREFIX}{event}" for event in EVENTS}

#: The transition tables the triggers declare and the capture functions read.
OLD_TABLE = "pgevents_old"
NEW_TABLE = "pgevents_new"
#: Per event: the (old, new) transition tables its trigger declares.
TRANSITION_TABLES: dict[str, tuple[str | None, str | None]] = {
    "insert": (None, NEW_TABLE),
    "update": (OLD_TABLE, NEW_TABLE),
    "delete": (OLD_TABLE, None),
}

#: The comment on the capture function that names the installed version.
ARTIFACT_MARKER = "pgevents-migrate artifact "
#: The comment on a capture function generated for one trigger (artifact 3).
GENERATED_MARKER = "pgevents-migrate capture of "

_BROADCAST_SUFFIX = "_broadcast"
assert len(_BROADCAST_SUFFIX) <= len(LONGEST_CHANNEL_SUFFIX)
# Templates also write these names inside string literals: they must need no quoting.
assert all(quote_identifier(name) == name for name in (CAPTURE_FUNCTION, OLD_TABLE, NEW_TABLE))


def artifact_marker(version: int) -> str:
    """The comment the capture function of artifact ``version`` carries."""
    return f"{ARTIFACT_MARKER}{version}"


def referencing_clause(event: str) -> str:
    """`` REFERENCING ...``: the transition tables of the trigger for ``event``."""
    old, new = TRANSITION_TABLES[event]
    declared = (("OLD", old), ("NEW", new))
    tables = [f"{kind} TABLE AS {quote_identifier(name)}" for kind, name in declared if name]
    return " REFERENCING " + " ".join(tables)


def wakeup_channel(event_schema: str) -> str:
    """The channel writers NOTIFY when a queue listener sleeps."""
    return check_event_schema(event_schema)


def sleeping_sequence(event_schema: str) -> str:
    """The quoted name of the sequence that flags a sleeping listener (artifacts 4 and 5)."""
    return quote_identifier(check_event_schema(event_schema)) + ".sleeping"


def broadcast_channel(event_schema: str) -> str:
    """The channel that carries broadcast (notify-only) events."""
    return check_event_schema(event_schema) + _BROADCAST_SUFFIX


#: The first artifact version whose event log is read through cursors (a log, not a job table).
LOG_VERSION = 5
#: The first artifact version whose log rows may stand for many events (statement rows, ids * 1024).
STATEMENT_ROWS_VERSION = 7
#: The event log's partitions (artifact 5 on), reused in turn: ``event_0`` ... ``event_3``.
LOG_PARTITIONS = 4
#: The consumer group the install and the upgrade to artifact 5 register.
DEFAULT_GROUP = "default"


def generation_sequence(event_schema: str) -> str:
    """The quoted name of the sequence naming the partition writers append to (artifact 5)."""
    return quote_identifier(check_event_schema(event_schema)) + ".generation"


def flags_sequence(event_schema: str) -> str:
    """The quoted name of the sequence writers read from artifact 6 on: generation * 2 + sleeping."""
    return quote_identifier(check_event_schema(event_schema)) + ".flags"


def event_id_sequence(event_schema: str) -> str:
    """The quoted name of the sequence event ids are drawn from (artifact 5 on)."""
    return quote_identifier(check_event_schema(event_schema)) + ".event_id"
