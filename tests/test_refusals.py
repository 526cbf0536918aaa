"""Declarations a table cannot take are refused early, in one line; so is a downgrade that would lose events.

A misspelt update filter fails when the listener is declared (model targets),
at ``flask db migrate`` (string targets) and at ``flask db upgrade`` (the
backstop, for hand-written migrations). A missing or keyless table fails at
``migrate`` and ``upgrade``. Uninstalling refuses while events are pending or
dead-lettered, unless the migration says ``discard_events=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import CURRENT_VERSION
from pgevents_migrate import Event, PGEvents, UncapturableTableError
from tests.apps import Define, flask_db, make_app, migrate_and_upgrade, revisions
from tests.pg import events, execute, fetch

TRIGGERS_SQL = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


def docs(listen: Callable[[PGEvents, Any], None]) -> Define:
    """A ``Doc`` model (its ``title`` attribute is the column ``doc_title``); ``listen(pgevents, Doc)``."""

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class Doc(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "doc"
            id = sa.Column(sa.Integer, primary_key=True)
            title = sa.Column("doc_title", sa.String(200))
            body = sa.Column(sa.Text)

        listen(pgevents, Doc)

    return define


def skip_unmapped_tables(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The usual filter that keeps Alembic from dropping tables the app does not map."""
    return not (type_ == "table" and reflected and compare_to is None)


def nothing(db: SQLAlchemy, pgevents: PGEvents) -> None:
    """No listener."""


def refusal(output: str) -> str:
    """The one line that explains a refusal; no traceback around it."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "pgevents: " in line]
    assert len(lines) == 1, output
    return lines[0]


def test_a_misspelt_filter_column_fails_when_the_model_listener_is_declared(
    database_url: URL, migrations: Path
) -> None:
    def misspelt(pgevents: PGEvents, doc: Any) -> None:
        pgevents.listen(doc, "update", lambda event: None, columns=["titel"])

    with pytest.raises(UncapturableTableError, match=r"table 'doc' names column 'titel'.*doc_title"):
        make_app(database_url, migrations, docs(misspelt))

    def attribute_key(pgevents: PGEvents, doc: Any) -> None:
        pgevents.listen(doc, "update", lambda event: None, columns=["title"])

    with pytest.raises(UncapturableTableError, match="attribute 'title' maps to the column 'doc_title'"):
        make_app(database_url, migrations, docs(attribute_key))

    pending = PGEvents()  # declared before init_app: checked all the same

    class Base(sa.orm.DeclarativeBase):
        pass

    class Note(Base):
        __tablename__ = "note"
        id = sa.Column(sa.Integer, primary_key=True)

    with pytest.raises(UncapturableTableError, match="table 'note' names column 'text'"):
        pending.listen(Note, "update", lambda event: None, columns=["text"])


@pytest.mark.parametrize(
    ("setup", "target", "columns", "message"),
    [
        (
            "CREATE TABLE doc (id int PRIMARY KEY, title text)",
            "doc",
            ["titel"],
            "the update filter on table 'doc' names column 'titel', which the table does not have "
            "(its columns: id, title)",
        ),
        (
            "CREATE TABLE keyless (a int)",
            "keyless",
            None,
            "table 'keyless' has no primary key, and events identify rows by it",
        ),
        (
            "CREATE SCHEMA billing",
            "billing.invoce",
            None,
            "table 'billing.invoce' is neither one of the app's models nor in the database",
        ),
    ],
    ids=["unknown-column", "no-primary-key", "no-table"],
)
def test_migrate_refuses_a_table_the_trigger_cannot_take(
    database_url: URL,
    migrations: Path,
    dsn: str,
    setup: str,
    target: str,
    columns: list[str] | None,
    message: str,
) -> None:
    execute(dsn, setup)

    def listen(db: SQLAlchemy, pgevents: PGEvents) -> None:
        pgevents.listen(target, "update", lambda event: None, columns=columns)

    app = make_app(database_url, migrations, listen, include_object=skip_unmapped_tables)
    flask_db(app, "init")
    line = refusal(flask_db(app, "migrate", "-m", "refused", expect_exit=1).output)
    assert message in line and "Error: pgevents: " in line
    assert revisions(migrations) == []
    assert fetch(dsn, TRIGGERS_SQL) == []


def test_migrate_refuses_to_drop_an_unmapped_table_it_would_capture(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    execute(dsn, "CREATE TABLE legacy (id int PRIMARY KEY)")

    def listen(db: SQLAlchemy, pgevents: PGEvents) -> None:
        pgevents.listen("legacy", "insert", lambda event: None)

    app = make_app(database_url, migrations, listen)  # no include_object: Alembic would drop legacy
    flask_db(app, "init")
    line = refusal(flask_db(app, "migrate", "-m", "refused", expect_exit=1).output)
    assert "table 'legacy' is not one of the app's models, so this migration would drop it" in line
    assert "include_object" in line
    assert revisions(migrations) == []

    app = make_app(database_url, migrations, listen, include_object=skip_unmapped_tables)
    body = migrate_and_upgrade(app, migrations, "legacy listens")
    assert "drop_table" not in body and "op.create_pgevent_trigger('legacy'" in body


def test_migrate_refuses_a_mapped_table_without_a_primary_key(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    def listen(db: SQLAlchemy, pgevents: PGEvents) -> None:
        log = sa.Table("log", db.metadatas[None], sa.Column("line", sa.Text, nullable=False))
        pgevents.track(log, "insert")

    app = make_app(database_url, migrations, listen)
    flask_db(app, "init")
    line = refusal(flask_db(app, "migrate", "-m", "refused", expect_exit=1).output)
    assert (
        "table 'log' has no primary key" in line and "add one (in this migration or an earlier one)" in line
    )
    assert revisions(migrations) == []

    # A key the database has (added by hand, which autogenerate does not compare) is enough.
    execute(dsn, "CREATE TABLE log (line text PRIMARY KEY)")
    body = migrate_and_upgrade(app, migrations, "log listens")
    assert f"op.create_pgevent_trigger('log', events=('insert',), version={CURRENT_VERSION})" in body
    execute(dsn, "INSERT INTO log VALUES ('x')")
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [("insert", {"line": "x"})]


@pytest.mark.parametrize(
    ("setup", "call", "message"),
    [
        (
            "CREATE TABLE doc (id int PRIMARY KEY, title text)",
            "op.create_pgevent_trigger('doc', events=('update',), columns=('titel',), "
            f"version={CURRENT_VERSION})",
            "pgevents: table doc has no column titel, which the update filter names. "
            "Fix the columns= of its listeners",
        ),
        (
            "CREATE TABLE keyless (a int)",
            f"op.create_pgevent_trigger('keyless', version={CURRENT_VERSION})",
            "pgevents: table keyless has no primary key. Events identify rows by their primary key",
        ),
        (
            "SELECT 1",
            f"op.create_pgevent_trigger('ghost', version={CURRENT_VERSION})",
            "pgevents: table ghost does not exist. Create it in this migration or an earlier one",
        ),
        (
            "CREATE TABLE doc (id int PRIMARY KEY)",
            "op.create_pgevent_trigger('doc')",
            "pgevents: op.create_pgevent_trigger('doc') needs version=: the artifact version the migration "
            "was written for, so that it runs the same SQL after pgevents-migrate is upgraded; "
            f"in a migration written now, write version={CURRENT_VERSION}",
        ),
    ],
    ids=["unknown-column", "no-primary-key", "no-table", "no-version"],
)
def test_upgrade_refuses_a_hand_written_trigger_in_one_line(
    database_url: URL, migrations: Path, dsn: str, setup: str, call: str, message: str
) -> None:
    execute(dsn, setup)
    app = make_app(database_url, migrations, nothing)
    flask_db(app, "init")
    flask_db(app, "revision", "-m", "by hand")
    (path,) = (migrations / "versions").glob("*.py")
    text = path.read_text()
    text = text.replace(
        "def upgrade():\n    pass",
        f"def upgrade():\n    op.install_pgevents(version={CURRENT_VERSION})\n    {call}",
    )
    path.write_text("import alembic_ops  # noqa: F401\n" + text)
    output = flask_db(app, "upgrade", expect_exit=1).output
    assert message in refusal(output)
    assert len(output.splitlines()) < 10, output
    # The whole migration rolled back.
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgevents'") == [(0,)]


def test_downgrade_refuses_to_drop_pending_events_and_dead_letters(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    def fail_for_3(event: Event) -> None:
        if event.row_id == 3:
            raise ValueError("boom")

    def listen(pgevents: PGEvents, doc: Any) -> None:
        pgevents.listen(doc.__table__, "insert", fail_for_3)

    app = make_app(database_url, migrations, docs(listen))
    flask_db(app, "init")
    revision = migrate_and_upgrade(app, migrations, "doc listens")
    assert f"op.uninstall_pgevents(schema='pgevents', version={CURRENT_VERSION})" in revision
    assert "discard_events" not in revision
    execute(dsn, "INSERT INTO doc (id) VALUES (1), (2), (3)")

    line = refusal(flask_db(app, "downgrade", "base", expect_exit=1).output)
    assert "schema pgevents holds 3 undelivered event(s) and 0 dead letter(s)" in line
    assert "discard_events=True" in line
    assert len(events(dsn)) == 3 and fetch(dsn, TRIGGERS_SQL) == [("pgevents_insert",)]

    # Two handled, one dead-lettered (its only attempt failed): still refused, for the dead letter.
    app.config["PGEVENTS_MAX_ATTEMPTS"] = 1
    with app.app_context():
        assert app.extensions["pgevents"].handle_events() == 3
    line = refusal(flask_db(app, "downgrade", "base", expect_exit=1).output)
    assert "holds 0 undelivered event(s) and 1 dead letter(s)" in line
    ((pk, error),) = fetch(dsn, "SELECT pk, error FROM pgevents.dead_letter")
    assert pk == {"id": 3} and "ValueError: boom" in error

    # Said explicitly in the migration: the log goes, with its dead letter.
    (path,) = (migrations / "versions").glob("*.py")
    path.write_text(
        path.read_text().replace(
            f"op.uninstall_pgevents(schema='pgevents', version={CURRENT_VERSION})",
            f"op.uninstall_pgevents(schema='pgevents', version={CURRENT_VERSION}, discard_events=True)",
        )
    )
    flask_db(app, "downgrade", "base")
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgevents'") == [(0,)]
    assert fetch(dsn, TRIGGERS_SQL) == []
