"""The exceptions pgevents-migrate raises, one small hierarchy for both packages.

Errors that stop a migration also derive from Alembic's ``CommandError``, so
``flask db migrate`` / ``upgrade`` / ``downgrade`` (and the ``alembic``
command) print their one-line message instead of a traceback.
"""

from __future__ import annotations

from alembic.util import CommandError


class PGEventsError(Exception):
    """Base class of every error pgevents-migrate raises on purpose."""


class InvalidIdentifierError(PGEventsError, ValueError):
    """A schema, table or column name that cannot be used safely."""


class InvalidTriggerSpecError(PGEventsError, ValueError):
    """A trigger declaration with unknown events, deliveries or options."""


class UncapturableTableError(InvalidTriggerSpecError, CommandError):
    """A declared table that cannot be captured: missing, keyless, or lacking a filtered column."""


class RefusedOperationError(PGEventsError, CommandError):
    """The database refused a pgevents operation whose precondition did not hold."""


class UnknownBindError(PGEventsError, ValueError):
    """A Flask-SQLAlchemy bind key the app does not configure."""


class ArtifactVersionError(PGEventsError, ValueError):
    """Artifact versions that do not fit: unknown, or moving the wrong way."""


class UnknownArtifactVersionError(ArtifactVersionError, LookupError):
    """A migration names an artifact version this library does not ship."""


class MissingArtifactVersionError(ArtifactVersionError, CommandError):
    """A migration's op does not name the artifact version it was written for."""
