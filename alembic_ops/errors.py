"""The exceptions pgevents-migrate raises, one small hierarchy for both packages."""

from __future__ import annotations


class PGEventsError(Exception):
    """Base class of every error pgevents-migrate raises on purpose."""


class InvalidIdentifierError(PGEventsError, ValueError):
    """A schema, table or column name that cannot be used safely."""


class InvalidTriggerSpecError(PGEventsError, ValueError):
    """A trigger declaration with unknown events, deliveries or options."""


class ArtifactVersionError(PGEventsError, ValueError):
    """Artifact versions that do not fit: unknown, or moving the wrong way."""


class UnknownArtifactVersionError(ArtifactVersionError, LookupError):
    """A migration names an artifact version this library does not ship."""
