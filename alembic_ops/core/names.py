"""Every name the SQL artifacts and the Python code must agree on, defined once.

Templates get these through tokens (see ``artifacts.py``); the catalog reader,
the comparator and the runtime import them from here.
"""

from __future__ import annotations

from .identifiers import LONGEST_CHANNEL_SUFFIX, check_event_schema, quote_identifier
from .spec import EVENTS

#: The names of the per-table triggers, one per event.
TRIGGER_NAMES: dict[str, str] = {event: f"pgevents_{event}" for event in EVENTS}

#: The comment on the capture function that names the installed version.
ARTIFACT_MARKER = "pgevents-migrate artifact "
#: The comment on a capture function generated for one trigger (artifact 3).
GENERATED_MARKER = "pgevents-migrate capture of "

_BROADCAST_SUFFIX = "_broadcast"
assert len(_BROADCAST_SUFFIX) <= len(LONGEST_CHANNEL_SUFFIX)


def artifact_marker(version: int) -> str:
    """The comment the capture function of artifact ``version`` carries."""
    return f"{ARTIFACT_MARKER}{version}"


def wakeup_channel(event_schema: str) -> str:
    """The channel writers NOTIFY when a queue listener sleeps."""
    return check_event_schema(event_schema)


def sleeping_sequence(event_schema: str) -> str:
    """The quoted name of the sequence that flags a sleeping listener (artifact 4 on)."""
    return quote_identifier(check_event_schema(event_schema)) + ".sleeping"


def broadcast_channel(event_schema: str) -> str:
    """The channel that carries broadcast (notify-only) events."""
    return check_event_schema(event_schema) + _BROADCAST_SUFFIX
