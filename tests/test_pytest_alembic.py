"""pytest-alembic's built-in tests on the fixture app's committed migrations.

``tests/fixture_app/migrations`` was written by ``flask db init`` and ``flask db
migrate``; these tests upgrade a fresh database through it, downgrade and
upgrade each revision, and check that autogenerate finds nothing left to do,
pgevents triggers included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.config import Config
from flask import Flask
from pytest_alembic import MigrationContext
from pytest_alembic.plugin.error import AlembicTestFailure
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.engine import URL

from tests.fixture_app import MIGRATIONS, PROVISIONED_SCHEMAS, create_app, db
from tests.pg import Listener, events, execute, fetch

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def app(database_url: URL) -> Iterator[Flask]:
    """The fixture app on a fresh database, with an app context around the test.

    Flask-Migrate's env.py reads ``current_app``, so the context must stay
    pushed while pytest-alembic's runner executes it.
    """
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    execute(dsn, *(f"CREATE SCHEMA {schema}" for schema in PROVISIONED_SCHEMAS))
    app = create_app(database_url.render_as_string(hide_password=False))
    with app.app_context():
        yield app
        db.engine.dispose()


@pytest.fixture
def alembic_config(app: Flask) -> Config:
    config: Config = app.extensions["migrate"].migrate.get_config(str(MIGRATIONS))
    return config


@pytest.fixture
def alembic_engine(app: Flask) -> sa.Engine:
    # env.py connects with db.engine whatever pytest-alembic passes it: use the same one.
    return db.engine


def test_history_is_what_flask_db_migrate_wrote(alembic_runner: MigrationContext) -> None:
    texts = [p.read_text() for p in sorted((MIGRATIONS / "versions").glob("*.py"))]
    assert len(texts) == len(alembic_runner.history.revisions) - 2  # base and heads
    listeners = next(t for t in texts if "op.create_pgevent_trigger(" in t)
    body = listeners.split("def upgrade", 1)[1].split("def downgrade", 1)[0]
    assert body.index("op.create_table('invoice'") < body.index("op.install_pgevents(")
    assert body.index("op.install_pgevents(") < body.index("op.create_pgevent_trigger(")


def test_upgraded_database_captures_changes(alembic_runner: MigrationContext, database_url: URL) -> None:
    alembic_runner.migrate_up_to("heads")
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    broadcasts = Listener(dsn, "pgevents_broadcast")
    try:
        execute(
            dsn,
            "INSERT INTO customer (email) VALUES ('a@example.com')",
            "UPDATE customer SET name = 'A'",  # not a filtered column: no event
            "UPDATE customer SET email = 'b@example.com'",
            "INSERT INTO order_line VALUES (7, 1, 'sku', 2)",
            "INSERT INTO billing.invoice VALUES (1, 1, 500)",
        )
        payloads = [json.loads(n.payload) for n in broadcasts.poll(timeout=5.0)]
    finally:
        broadcasts.close()
    assert [(e["op"], e["schema_name"], e["table_name"], e["pk"]) for e in events(dsn)] == [
        ("insert", "public", "customer", {"id": 1}),
        ("update", "public", "customer", {"id": 1}),
        ("insert", "billing", "invoice", {"id": 1}),
    ]
    assert payloads == [
        {"op": "insert", "schema": "public", "table": "order_line", "pks": [{"order_id": 7, "line_no": 1}]}
    ]


def test_model_definitions_catch_trigger_drift(alembic_runner: MigrationContext, database_url: URL) -> None:
    alembic_runner.migrate_up_to("heads")
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    execute(dsn, "ALTER TABLE billing.invoice DISABLE TRIGGER pgevents_insert")
    with pytest.raises(AlembicTestFailure) as failure:
        test_model_definitions_match_ddl(alembic_runner)
    rendered = str(failure.value.context)
    assert "op.drop_pgevent_trigger('invoice', schema='billing'" in rendered
    assert "op.create_pgevent_trigger('invoice', schema='billing'" in rendered


def test_downgrade_to_base_removes_everything_pgevents_installed(
    alembic_runner: MigrationContext, database_url: URL
) -> None:
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    alembic_runner.migrate_up_to("heads")
    assert fetch(dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgevents_%'") == [(5,)]
    alembic_runner.migrate_down_to("base")
    assert fetch(dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgevents_%'") == [(0,)]
    assert fetch(dsn, "SELECT nspname FROM pg_namespace WHERE nspname = 'pgevents'") == []
