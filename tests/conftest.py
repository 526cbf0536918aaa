"""The suite's fixtures, on the helpers users get from ``pgevents_migrate.testing``.

``PGEVENTS_TEST_DATABASE_URL`` names a server (any database on it; tests
create and drop their own databases). Without it, the session starts an
embedded server in a temporary folder. If neither works, tests fail loudly.
``server_url`` and ``database_url`` are the plugin's ``pgevents_server_url``
and ``pgevents_database_url`` under the names the suite uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask import Flask
from sqlalchemy.engine import URL

from pgevents_migrate.testing import kept_logging
from pgevents_migrate.testing import temporary_database as temporary_database
from tests import runtime_app
from tests.apps import TEST_VERSION_VARIABLE
from tests.pg import libpq_dsn
from tests.workers import WorkerPool

# The suite also tests the artifact version under construction (alembic_ops/manifest.py).
os.environ["PGEVENTS_DRAFT_ARTIFACTS"] = "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "artifact(version): install this artifact version where the test installs the declared "
        "triggers (tests.apps.install_declared), e.g. 4 for a test of the job table",
    )


@pytest.fixture(autouse=True)
def artifact_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``@pytest.mark.artifact(4)``: the test's runtime runs on that artifact version (the job table)."""
    marker = request.node.get_closest_marker("artifact")
    if marker is not None:
        monkeypatch.setenv(TEST_VERSION_VARIABLE, str(marker.args[0]))


@pytest.fixture(scope="session")
def server_url(pgevents_server_url: URL) -> URL:
    """Admin URL (database ``postgres``) of the server the suite uses."""
    return pgevents_server_url


@pytest.fixture
def database_url(pgevents_database_url: URL) -> URL:
    """A fresh, empty database for one test, dropped afterwards."""
    return pgevents_database_url


@pytest.fixture
def engine(database_url: URL) -> Iterator[sa.Engine]:
    eng = sa.create_engine(database_url, poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def dsn(database_url: URL) -> str:
    return libpq_dsn(database_url)


@pytest.fixture
def run_ops(engine: sa.Engine) -> Callable[[Callable[[Operations], None]], None]:
    """Run Alembic operations online, in one transaction, against the test database."""

    def run(body: Callable[[Operations], None]) -> None:
        with engine.begin() as conn:
            body(Operations(MigrationContext.configure(conn)))

    return run


@pytest.fixture
def runtime(database_url: URL) -> Iterator[Flask]:
    """``tests/runtime_app.py`` on the test database, installed as its migrations would; stopped after."""
    app = runtime_app.create_app(database_url.render_as_string(hide_password=False))
    runtime_app.install(app)
    yield app
    runtime_app.pgevents.stop(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerPool]:
    """Worker subprocesses, each killed when the test ends."""
    pool = WorkerPool(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(autouse=True)
def keep_loggers_enabled() -> Iterator[None]:
    """Undo what Flask-Migrate's env.py does to logging (``fileConfig`` disables loggers)."""
    with kept_logging():
        yield
