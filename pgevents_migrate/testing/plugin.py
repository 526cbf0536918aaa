"""pgevents-migrate's pytest fixtures, loaded through the ``pytest11`` entry point.

Inert until a test asks for one: ``pgevents_server_url`` (one per session)
then checks ``PGEVENTS_TEST_DATABASE_URL``'s server or starts an embedded
one, and ``pgevents_database_url`` gives the test a fresh database on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from . import temporary_database, throwaway_server


@pytest.fixture(scope="session")
def pgevents_server_url() -> Iterator[URL]:
    """Admin URL of the PostgreSQL server the session tests against."""
    with throwaway_server() as url:
        yield url


@pytest.fixture
def pgevents_database_url(pgevents_server_url: URL) -> Iterator[URL]:
    """A fresh, empty database on that server, dropped after the test."""
    with temporary_database(pgevents_server_url) as url:
        yield url
