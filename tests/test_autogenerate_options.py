"""Autogenerate options end to end through ``flask db``: filters, binds, unmapped tables, check, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import CURRENT_VERSION, declared_specs
from pgevents_migrate import PGEvents
from tests.apps import Define, flask_db, make_app, migrate_and_upgrade
from tests.conftest import temporary_database
from tests.pg import events, execute, fetch

PGEVENT_OPS = ("install_pgevents", "uninstall_pgevents", "create_pgevent_trigger", "drop_pgevent_trigger")
TRIGGERS_SQL = """
SELECT n.nspname, c.relname, t.tgname, t.tgtype, t.tgenabled, encode(t.tgargs, 'escape')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal ORDER BY 1, 2, 3
"""
ARTIFACT_SQL = "SELECT nspname FROM pg_namespace WHERE nspname = 'pgevents'"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def upgrade_body(revision: str, section: str = "") -> str:
    """The body of ``upgrade()`` (or of ``upgrade_<section>()`` in a multidb revision)."""
    name = f"def upgrade_{section}():" if section or "def upgrade_():" in revision else "def upgrade():"
    return revision.split(name, 1)[1].split("def downgrade", 1)[0]


def pgevent_ops(body: str) -> list[str]:
    return [
        line.strip()
        for line in body.splitlines()
        if line.strip().startswith(tuple(f"op.{o}(" for o in PGEVENT_OPS))
    ]


def models(*listeners: Callable[[SQLAlchemy, PGEvents], None]) -> Define:
    """``user`` and ``note`` models, plus the given listener declarations."""

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)
            email = sa.Column(sa.String(200))

        class Note(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "note"
            id = sa.Column(sa.Integer, primary_key=True)

        for declare in listeners:
            declare(db, pgevents)

    return define


def on(table: str, *events_: str) -> Callable[[SQLAlchemy, PGEvents], None]:
    def declare(db: SQLAlchemy, pgevents: PGEvents) -> None:
        pgevents.listen(db.metadatas[None].tables[table], list(events_), lambda event: None)

    return declare


def _exclude_note_by_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    return not (type_ == "table" and name == "note")


def _exclude_note_by_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name == "note")


# -- (a) include_name / include_object -------------------------------------------------------


def with_note(*, mapped: bool, listeners: tuple[Callable[[SQLAlchemy, PGEvents], None], ...] = ()) -> Define:
    """A ``user`` model; ``note`` (created outside the migrations) mapped or not."""

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)

        if mapped:
            sa.Table("note", db.metadatas[None], sa.Column("id", sa.Integer, primary_key=True))
        for declare in listeners:
            declare(db, pgevents)

    return define


def note_listens(*events_: str) -> Callable[[SQLAlchemy, PGEvents], None]:
    def declare(db: SQLAlchemy, pgevents: PGEvents) -> None:
        pgevents.listen("note", list(events_), lambda event: None)

    return declare


@pytest.mark.parametrize(
    ("exclude_note", "mapped"),
    [
        ({"include_name": _exclude_note_by_name}, False),
        ({"include_object": _exclude_note_by_object}, False),
        ({"include_object": _exclude_note_by_object}, True),
    ],
    ids=["include_name", "include_object-unmapped", "include_object-mapped"],
)
def test_excluded_table_gets_no_ops_and_keeps_its_triggers(
    database_url: URL,
    migrations: Path,
    dsn: str,
    run_ops: Callable[[Callable[[Any], None]], None],
    exclude_note: dict[str, Any],
    mapped: bool,
) -> None:
    # ``note`` belongs to someone else: created, and later given triggers, outside these migrations.
    execute(dsn, "CREATE TABLE note (id integer PRIMARY KEY)")

    # A listener on the excluded table only: no pgevents ops at all, not even the install.
    app = make_app(
        database_url,
        migrations,
        with_note(mapped=mapped, listeners=(note_listens("insert"),)),
        **exclude_note,
    )
    flask_db(app, "init")
    body = upgrade_body(migrate_and_upgrade(app, migrations, "users"))
    assert "op.create_table('user'" in body and "note" not in body
    assert pgevent_ops(body) == []
    assert fetch(dsn, ARTIFACT_SQL) == []

    def install_on_note(op: Any) -> None:
        op.install_pgevents(version=CURRENT_VERSION)
        op.create_pgevent_trigger("note", events=("insert",), version=CURRENT_VERSION)

    run_ops(install_on_note)
    note_triggers = [row for row in fetch(dsn, TRIGGERS_SQL) if row[1] == "note"]
    assert len(note_triggers) == 1

    # Declared differently for note, newly for user: only user's trigger is created.
    listeners = (note_listens("delete"), on("user", "insert"))
    app = make_app(database_url, migrations, with_note(mapped=mapped, listeners=listeners), **exclude_note)
    body = upgrade_body(migrate_and_upgrade(app, migrations, "user listens"))
    assert pgevent_ops(body) == [
        f"op.create_pgevent_trigger('user', events=('insert',), version={CURRENT_VERSION})"
    ]

    # No listeners left: only user's trigger goes; note's stays, and so does the artifact it uses.
    app = make_app(database_url, migrations, with_note(mapped=mapped), **exclude_note)
    body = upgrade_body(migrate_and_upgrade(app, migrations, "nobody listens"))
    assert pgevent_ops(body) == [
        f"op.drop_pgevent_trigger('user', events=('insert',), version={CURRENT_VERSION})"
    ]
    assert [row for row in fetch(dsn, TRIGGERS_SQL) if row[1] == "note"] == note_triggers
    assert [row for row in fetch(dsn, TRIGGERS_SQL) if row[1] == "user"] == []
    execute(dsn, "INSERT INTO note VALUES (1)", 'INSERT INTO "user" (id) VALUES (1)')
    assert [(e["op"], e["table_name"]) for e in events(dsn)] == [("insert", "note")]

    # And nothing more to do.
    result = flask_db(app, "migrate", "-m", "nothing")
    assert "No changes in schema detected" in result.output


# -- (b) multiple binds ----------------------------------------------------------------------


@pytest.fixture
def other_database_url(server_url: URL) -> Iterator[URL]:
    """A second fresh database on the same server, for the ``other`` bind."""
    with temporary_database(server_url) as url:
        yield url


def two_binds(*, user_listens: bool) -> Define:
    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)

        class Audit(db.Model):  # type: ignore[name-defined,misc]
            __bind_key__ = "other"
            __tablename__ = "audit"
            id = sa.Column(sa.Integer, primary_key=True)
            what = sa.Column(sa.String(100))

        pgevents.listen(Audit, ["insert", "delete"], lambda event: None)
        if user_listens:
            pgevents.listen(User, "update", lambda event: None)

    return define


def test_multiple_binds_get_their_own_ops_and_artifacts(
    database_url: URL, other_database_url: URL, migrations: Path, dsn: str
) -> None:
    other_dsn = libpq(other_database_url)
    binds = {"other": other_database_url}
    app = make_app(database_url, migrations, two_binds(user_listens=False), binds=binds)
    flask_db(app, "init", "--multidb")
    first = migrate_and_upgrade(app, migrations, "audit listens")
    main_body, other_body = upgrade_body(first, ""), upgrade_body(first, "other")
    assert "op.create_table('user'" in main_body and pgevent_ops(main_body) == []
    assert "op.create_table('audit'" in other_body
    assert pgevent_ops(other_body) == [
        f"op.install_pgevents(schema='pgevents', version={CURRENT_VERSION})",
        f"op.create_pgevent_trigger('audit', events=('insert', 'delete'), version={CURRENT_VERSION})",
    ]
    assert other_body.index("op.create_table('audit'") < other_body.index("op.install_pgevents(")
    assert fetch(dsn, ARTIFACT_SQL) == [] and fetch(dsn, TRIGGERS_SQL) == []
    assert [row[1:3] for row in fetch(other_dsn, TRIGGERS_SQL)] == [
        ("audit", "pgevents_delete"),
        ("audit", "pgevents_insert"),
    ]
    execute(other_dsn, "INSERT INTO audit (what) VALUES ('x')")
    assert [(e["op"], e["table_name"]) for e in events(other_dsn)] == [("insert", "audit")]

    # A listener on the default bind: ops in the default section only.
    app = make_app(database_url, migrations, two_binds(user_listens=True), binds=binds)
    second = migrate_and_upgrade(app, migrations, "user listens")
    assert pgevent_ops(upgrade_body(second, "")) == [
        f"op.install_pgevents(schema='pgevents', version={CURRENT_VERSION})",
        f"op.create_pgevent_trigger('user', events=('update',), version={CURRENT_VERSION})",
    ]
    assert pgevent_ops(upgrade_body(second, "other")) == []
    assert [row[1:3] for row in fetch(dsn, TRIGGERS_SQL)] == [("user", "pgevents_update")]

    # Downgrading the first revision removes the other database's artifact, nothing else,
    # once its pending event is handled.
    refused = flask_db(app, "downgrade", "base", expect_exit=1).output
    assert "holds 1 undelivered event(s) and 0 dead letter(s)" in refused
    assert len(events(other_dsn)) == 1
    execute(other_dsn, "DELETE FROM pgevents.event")
    flask_db(app, "downgrade", "base")
    assert fetch(other_dsn, TRIGGERS_SQL) == [] and fetch(other_dsn, ARTIFACT_SQL) == []
    assert fetch(dsn, TRIGGERS_SQL) == [] and fetch(dsn, ARTIFACT_SQL) == []


# -- (c) unmapped tables and track() ----------------------------------------------------------


def _skip_unmapped_tables(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The usual filter that keeps Alembic from dropping tables the app does not map."""
    return not (type_ == "table" and reflected and compare_to is None)


@pytest.mark.parametrize("include_schemas", [False, True], ids=["default-schema-only", "include_schemas"])
def test_string_targets_and_track_produce_trigger_ops(
    database_url: URL, migrations: Path, dsn: str, include_schemas: bool
) -> None:
    options = {"include_object": _skip_unmapped_tables, "include_schemas": include_schemas}
    execute(
        dsn,
        "CREATE SCHEMA legacy",
        "CREATE TABLE legacy.audit_log (id integer PRIMARY KEY, what text)",
        "CREATE TABLE public.ledger (id integer PRIMARY KEY)",
    )
    declared: list[PGEvents] = []

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)

        pgevents.listen("legacy.audit_log", "insert", lambda event: None)
        pgevents.track("ledger", ["insert", "delete"], delivery="broadcast")
        pgevents.track(User, "delete")
        declared.append(pgevents)

    app = make_app(database_url, migrations, define, **options)
    flask_db(app, "init")
    body = upgrade_body(migrate_and_upgrade(app, migrations, "string targets"))
    assert "drop_table" not in body
    assert pgevent_ops(body) == [
        f"op.install_pgevents(schema='pgevents', version={CURRENT_VERSION})",
        "op.create_pgevent_trigger('ledger', events=('insert', 'delete'), delivery='broadcast', "
        f"version={CURRENT_VERSION})",
        f"op.create_pgevent_trigger('user', events=('delete',), version={CURRENT_VERSION})",
        "op.create_pgevent_trigger('audit_log', schema='legacy', events=('insert',), "
        f"version={CURRENT_VERSION})",
    ]
    assert body.index("op.create_table('user'") < body.index("op.create_pgevent_trigger('user'")
    assert [listener.spec.table for listener in declared[-1].listeners] == ["audit_log"]  # track(): none
    execute(
        dsn,
        "INSERT INTO legacy.audit_log VALUES (1, 'x')",
        'INSERT INTO "user" (id) VALUES (1)',
        'DELETE FROM "user"',
    )
    assert [(e["op"], e["schema_name"], e["table_name"]) for e in events(dsn)] == [
        ("insert", "legacy", "audit_log"),
        ("delete", "public", "user"),
    ]

    # Changed, dropped and kept declarations. A filter that keeps Alembic off unmapped
    # tables keeps pgevents off them too once nothing declares them: ledger's triggers stay.
    def changed(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)

        pgevents.listen("legacy.audit_log", ["insert", "update"], lambda event: None)

    ledger_triggers = [row for row in fetch(dsn, TRIGGERS_SQL) if row[1] == "ledger"]
    app = make_app(database_url, migrations, changed, **options)
    body = upgrade_body(migrate_and_upgrade(app, migrations, "changed"))
    assert pgevent_ops(body) == [
        f"op.drop_pgevent_trigger('user', events=('delete',), version={CURRENT_VERSION})",
        "op.drop_pgevent_trigger('audit_log', schema='legacy', events=('insert',), "
        f"version={CURRENT_VERSION})",
        "op.create_pgevent_trigger('audit_log', schema='legacy', events=('insert', 'update'), "
        f"version={CURRENT_VERSION})",
    ]
    assert [row[:3] for row in fetch(dsn, TRIGGERS_SQL)] == [
        ("legacy", "audit_log", "pgevents_insert"),
        ("legacy", "audit_log", "pgevents_update"),
        *(row[:3] for row in ledger_triggers),
    ]
    assert len(ledger_triggers) == 2


# -- (d) flask db check ------------------------------------------------------------------------


def test_check_prints_the_drift(database_url: URL, migrations: Path) -> None:
    app = make_app(database_url, migrations, models(on("user", "insert")))
    flask_db(app, "init")
    migrate_and_upgrade(app, migrations, "user listens")

    app = make_app(database_url, migrations, models(on("user", "insert", "delete"), on("note", "update")))
    output = flask_db(app, "check", expect_exit=1).output
    error = next(line for line in output.splitlines() if "Error:" in line)
    assert "New upgrade operations detected" in error
    assert "('remove_pgevent_trigger', TriggerSpec(table='user', schema=None, events=('insert',)" in error
    assert (
        "('add_pgevent_trigger', TriggerSpec(table='user', schema=None, events=('insert', 'delete')" in error
    )
    assert "('add_pgevent_trigger', TriggerSpec(table='note', schema=None, events=('update',)" in error

    app = make_app(database_url, migrations, models())
    output = flask_db(app, "check", expect_exit=1).output
    error = next(line for line in output.splitlines() if "Error:" in line)
    assert "('remove_pgevent_trigger', TriggerSpec(table='user'" in error
    assert f"('uninstall_pgevents', 'pgevents', {CURRENT_VERSION})" in error


# -- (e) bad declarations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifiers", "message"),
    [
        ("inserted", "unknown event 'inserted'"),
        (["insert", "truncate"], "unknown event 'truncate'"),
        ("after_upsert", "unknown event 'after_upsert'"),
        (set(), "no events given"),
        ([], "no events given"),
    ],
)
@pytest.mark.parametrize("initialized", [False, True], ids=["before-init_app", "after-init_app"])
def test_bad_identifiers_raise_value_error(
    database_url: URL, migrations: Path, identifiers: Any, message: str, initialized: bool
) -> None:
    app = make_app(database_url, migrations, models())
    db = app.extensions["sqlalchemy"]
    pgevents = app.extensions["pgevents"] if initialized else PGEvents()
    user = db.metadatas[None].tables["user"]

    def callback(event: object) -> None:
        pass

    with pytest.raises(ValueError, match=message) as listen_error:
        pgevents.listen(user, identifiers, callback)
    assert "insert, update, delete" in str(listen_error.value)
    with pytest.raises(ValueError, match=message):
        pgevents.listens_for(user, identifiers)(callback)
    with pytest.raises(ValueError, match=message):
        pgevents.track("user", identifiers)
    if not initialized:
        pgevents.init_app(app, db)
    assert declared_specs(db.metadatas[None]) == {}
    assert pgevents.listeners == []
