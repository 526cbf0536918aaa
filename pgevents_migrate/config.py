"""``WorkerConfig``: the ``PGEVENTS_*`` settings the runtime reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from alembic_ops.core.identifiers import check_event_schema
from alembic_ops.core.names import DEFAULT_GROUP
from alembic_ops.core.spec import DEFAULT_EVENT_SCHEMA


@dataclass(frozen=True)
class WorkerConfig:
    """Runtime settings; each field is read from ``PGEVENTS_<NAME>``.

    ============================  =========  ==================================================
    key                           default    meaning
    ============================  =========  ==================================================
    PGEVENTS_SCHEMA               pgevents   schema of the event log and capture function
    PGEVENTS_BATCH_SIZE           500        most events held claimed at once (half per round trip)
    PGEVENTS_POLL_INTERVAL        5.0        seconds between polls when no wake-up arrives;
                                             also bounds how long a dead connection goes unseen
    PGEVENTS_QUIET_PERIOD         0.2        seconds a worker keeps polling (every 5 ms)
                                             after it last found queued events, before it asks
                                             writers to wake it with a NOTIFY; 0: at once
    PGEVENTS_LEASE                60.0       seconds a claim lasts; renewed while a callback runs
    PGEVENTS_MAX_ATTEMPTS         5          tries before an event becomes a dead letter
    PGEVENTS_RETRY_BACKOFF        1.0        first retry delay in seconds, doubled each try
    PGEVENTS_RETRY_MAX_BACKOFF    300.0      cap on the retry delay
    PGEVENTS_RETENTION            0.0        seconds to keep handled events (0: delete at once);
                                             like every time here, also "90s", "15m", "12h", "7d"
    PGEVENTS_SHUTDOWN_GRACE       30.0       seconds a running callback may finish on SIGTERM
    PGEVENTS_RECONNECT_MAX_DELAY  30.0       cap on the delay between reconnect attempts
    PGEVENTS_DATABASE_URL         None       database of the default bind (default: its engine)
    PGEVENTS_STRICT               False      refuse to start (and to reconnect) when a declared
                                             table's triggers are missing or differ, instead of
                                             logging a warning per table
    PGEVENTS_GROUP                default    consumer group whose cursor the worker reads
                                             (artifact 5 on): each group gets every event
    PGEVENTS_PARTITION_EVENTS     100000     writers move on to the log's next partition once
                                             the current one holds this many events ...
    PGEVENTS_PARTITION_AGE        600.0      ... or is this many seconds old (artifact 5 on)
    PGEVENTS_GROUP_MAX_LAG        604800.0   a group that has not read a partition left this
                                             long ago (nobody runs it) skips to now, so the
                                             log can be truncated; 0: no bound (artifact 5 on)
    ============================  =========  ==================================================
    """

    schema: str = DEFAULT_EVENT_SCHEMA
    batch_size: int = 500
    poll_interval: float = 5.0
    quiet_period: float = 0.2
    lease: float = 60.0
    max_attempts: int = 5
    retry_backoff: float = 1.0
    retry_max_backoff: float = 300.0
    retention: float = 0.0
    shutdown_grace: float = 30.0
    reconnect_max_delay: float = 30.0
    database_url: str | None = None
    strict: bool = False
    group: str = DEFAULT_GROUP
    partition_events: int = 100_000
    partition_age: float = 600.0
    group_max_lag: float = 7 * 86400.0

    def __post_init__(self) -> None:
        check_event_schema(self.schema)
        if not self.group.strip() or len(self.group) > 63 or "\x00" in self.group:
            raise ValueError(f"PGEVENTS_GROUP {self.group!r} must be a name of 1 to 63 characters")
        for name in ("batch_size", "max_attempts", "partition_events"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PGEVENTS_{name.upper()} must be at least 1")
        for name in (
            "poll_interval",
            "lease",
            "retry_backoff",
            "retry_max_backoff",
            "reconnect_max_delay",
            "partition_age",
        ):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"PGEVENTS_{name.upper()} must be positive")
        for name in ("retention", "shutdown_grace", "group_max_lag", "quiet_period"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"PGEVENTS_{name.upper()} must not be negative")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> WorkerConfig:
        """Read ``PGEVENTS_*`` keys from a Flask config (or any mapping)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = f"PGEVENTS_{field.name.upper()}"
            if key in config and config[key] is not None:
                default: Any = field.default
                convert: Any = str if default is None else _CONVERTERS.get(type(default), type(default))
                try:
                    values[field.name] = convert(config[key])
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        return float(min(self.retry_max_backoff, self.retry_backoff * 2 ** (attempt - 1)))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration such as ``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a duration like 90s, 15m, 12h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _parse_bool(value: object) -> bool:
    """A config boolean: a bool, 0 or 1, or true/false, yes/no, on/off (any case)."""
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not true or false")


#: float settings are seconds: a number or a duration such as "7d".
_CONVERTERS: dict[type, Any] = {bool: _parse_bool, float: parse_duration}
