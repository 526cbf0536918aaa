"""``pgevents_migrate.testing`` used as an app's own tests use it: fixtures, migrations, ``drain``."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from sqlalchemy.engine import URL

from pgevents_migrate import PGEventsError
from pgevents_migrate.testing import (
    SERVER_ENV,
    ListenerError,
    drain,
    flask_db,
    migrated_database,
    temporary_database,
    throwaway_server,
)
from tests.pg import execute, fetch, libpq_dsn

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
#: Events the app's consumer group has not handled yet (the log's cursor, and retries).
PENDING = "SELECT pgevents.pending('default')"

#: A user's app, as the README's example imports it: its listener sends a
#: welcome to each new customer (into ``outbox``) and cannot deliver to bounces.
SHOP = """
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from pgevents_migrate import Event, PGEvents

db = SQLAlchemy()
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"))
pgevents = PGEvents()
outbox = []


class Customer(db.Model):
    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(200), nullable=False)


@pgevents.listens_for(Customer, "insert")
def welcome(event: Event) -> None:
    email = db.session.get(Customer, event.row_id).email
    if email.endswith("@bounce.example"):
        raise ValueError(f"cannot deliver to {email}")
    outbox.append(email)


def create_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    migrate.init_app(app, db)
    pgevents.init_app(app, db)
    return app
"""


@pytest.fixture(scope="module")
def shop(pgevents_server_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The ``SHOP`` module, its migrations written once by the real ``flask db init`` and ``migrate``."""
    folder = tmp_path_factory.mktemp("shop")
    (folder / "shop.py").write_text(SHOP)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(folder)
        module = importlib.import_module("shop")
    try:
        with temporary_database(pgevents_server_url) as url:
            app = module.create_app(SQLALCHEMY_DATABASE_URI=url)
            flask_db(app, "init")
            flask_db(app, "migrate", "-m", "customers")
        yield module
    finally:
        del sys.modules["shop"]


@pytest.fixture
def app(shop: ModuleType, pgevents_database_url: URL) -> Flask:
    shop.outbox.clear()
    app: Flask = shop.create_app(SQLALCHEMY_DATABASE_URI=pgevents_database_url)
    migrated_database(app)
    return app


def test_migrated_database_runs_the_apps_migrations(app: Flask, pgevents_database_url: URL) -> None:
    assert migrated_database(app) == pgevents_database_url  # again: already at head
    flask_db(app, "check")  # fails unless the database has the app's tables and triggers


def test_drain_runs_the_listener_of_a_row_written_with_raw_sql(
    app: Flask, shop: ModuleType, pgevents_database_url: URL
) -> None:
    dsn = libpq_dsn(pgevents_database_url)
    execute(dsn, "INSERT INTO customer (id, email) VALUES (7, 'ada@example.com')")
    events = drain(app)
    assert [(event.table, event.op, event.pk) for event in events] == [("customer", "insert", {"id": 7})]
    assert shop.outbox == ["ada@example.com"]
    assert fetch(dsn, PENDING) == [(0,)]  # acknowledged, as by a worker


def test_drain_on_an_empty_queue_returns_nothing(app: Flask) -> None:
    assert drain(app) == []
    assert drain(app, timeout=0.1) == []


def test_a_failing_listener_raises_once_the_queue_is_drained(
    app: Flask, shop: ModuleType, pgevents_database_url: URL
) -> None:
    dsn = libpq_dsn(pgevents_database_url)
    execute(dsn, "INSERT INTO customer (id, email) VALUES (1, 'x@bounce.example'), (2, 'ada@example.com')")
    with pytest.raises(ListenerError, match="1 of 2 drained events failed") as raised:
        drain(app)
    assert [event.row_id for event in raised.value.events] == [1, 2]
    [(event, error)] = raised.value.failures
    assert event.row_id == 1
    assert "ValueError: cannot deliver to x@bounce.example" in error
    assert shop.outbox == ["ada@example.com"]
    # Kept for a retry after the backoff, as a worker keeps it.
    assert fetch(dsn, "SELECT pk, attempts, last_error IS NOT NULL FROM pgevents.retry") == [
        ({"id": 1}, 1, True)
    ]
    assert fetch(dsn, PENDING) == [(1,)]


def test_a_listener_that_fails_its_last_attempt_leaves_a_dead_letter(
    shop: ModuleType, pgevents_database_url: URL
) -> None:
    app = shop.create_app(SQLALCHEMY_DATABASE_URI=pgevents_database_url, PGEVENTS_MAX_ATTEMPTS=1)
    dsn = libpq_dsn(migrated_database(app))
    execute(dsn, "INSERT INTO customer (id, email) VALUES (1, 'x@bounce.example')")
    with pytest.raises(ListenerError, match="1 of 1 drained events failed"):
        drain(app)
    assert fetch(dsn, "SELECT pk FROM pgevents.dead_letter") == [({"id": 1},)]
    assert fetch(dsn, PENDING) == [(0,)]


def test_a_named_server_that_cannot_be_reached_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_ENV, "postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(PGEventsError, match=f"{SERVER_ENV} names a server that cannot be reached"):
        with throwaway_server():
            pass


def readme_example() -> str:
    """The Python block after ``<!-- testing-example -->`` in the README."""
    found = re.findall(r"^<!-- testing-example -->\n```python\n(.*?)^```$", README.read_text(), re.M | re.S)
    assert len(found) == 1, "want one ```python block right after <!-- testing-example -->"
    return str(found[0])


def test_the_readme_example_passes_through_the_entry_point(
    pytester: pytest.Pytester, shop: ModuleType
) -> None:
    pytester.makepyfile(shop=SHOP, test_listeners=readme_example())
    shutil.copytree(Path(shop.__file__).parent / "migrations", pytester.path / "migrations")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_plugin_is_inert_until_a_fixture_is_asked_for(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, "postgresql://postgres@127.0.0.1:1/postgres")  # never reached
    pytester.makepyfile(
        """
        def test_plain(request):
            assert request.config.pluginmanager.has_plugin("pgevents_migrate")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
