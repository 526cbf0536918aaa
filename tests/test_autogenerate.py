"""``flask db migrate`` writes the trigger ops; ``check`` sees drift; downgrades restore."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import CURRENT_VERSION
from pgevents_migrate import PGEvents
from tests.apps import Define, flask_db, make_app, migrate_and_upgrade, revisions
from tests.pg import events, execute, fetch

TRIGGERS_SQL = """
SELECT n.nspname, c.relname, t.tgname, t.tgtype, t.tgenabled, encode(t.tgargs, 'escape')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal ORDER BY 1, 2, 3
"""
CATALOG_SQL = """
SELECT 'proc', n.nspname || '.' || p.proname || ':' || md5(p.prosrc) || ':'
       || coalesce(obj_description(p.oid), '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname || ':' || t.tgtype || ':' || t.tgenabled::text || ':'
       || encode(t.tgargs, 'escape')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
ORDER BY 1, 2
"""


def users(with_listener: Define | None = None) -> Define:
    """A ``user`` model, plus whatever listeners ``with_listener`` declares."""

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)
            email = sa.Column(sa.String(200))
            name = sa.Column(sa.String(200))

        if with_listener is not None:
            with_listener(db, pgevents)

    return define


def on_user(*events_: str, **options: object) -> Define:
    def declare(db: SQLAlchemy, pgevents: PGEvents) -> None:
        user = db.metadatas[None].tables["user"]
        pgevents.listen(user, set(events_), lambda event: None, **options)  # type: ignore[arg-type]

    return declare


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


def step(database_url: URL, migrations: Path, define: Define, message: str, **options: object) -> str:
    """Build the app for ``define``, autogenerate a revision, upgrade; return its text."""
    app = make_app(database_url, migrations, define, **options)
    if not migrations.exists():
        flask_db(app, "init")
    return migrate_and_upgrade(app, migrations, message)


def upgrade_body(revision: str) -> str:
    return revision.split("def upgrade", 1)[1].split("def downgrade", 1)[0]


def test_new_table_and_listener_in_one_revision(database_url: URL, migrations: Path, dsn: str) -> None:
    text = step(database_url, migrations, users(on_user("insert")), "users")
    body = upgrade_body(text)
    assert "import alembic_ops" in text
    assert body.index("op.create_table('user'") < body.index("op.install_pgevents(")
    assert body.index("op.install_pgevents(") < body.index("op.create_pgevent_trigger(")
    assert f"op.create_pgevent_trigger('user', events=('insert',), version={CURRENT_VERSION})" in body
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a@x')""")
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [("insert", {"id": 1})]

    # In sync: no new revision, check passes.
    app = make_app(database_url, migrations, users(on_user("insert")))
    result = flask_db(app, "migrate", "-m", "nothing")
    assert "No changes in schema detected" in result.output
    assert len(revisions(migrations)) == 1


def test_listener_added_changed_removed_and_downgraded(database_url: URL, migrations: Path, dsn: str) -> None:
    step(database_url, migrations, users(), "users")
    states = [fetch(dsn, CATALOG_SQL)]
    steps: list[tuple[Define, list[str]]] = [
        (
            users(on_user("insert")),
            [
                f"op.install_pgevents(schema='pgevents', version={CURRENT_VERSION})",
                f"op.create_pgevent_trigger('user', events=('insert',), version={CURRENT_VERSION})",
            ],
        ),
        (
            users(on_user("insert", "update", columns=["email"])),
            [
                f"op.drop_pgevent_trigger('user', events=('insert',), version={CURRENT_VERSION})",
                "op.create_pgevent_trigger('user', events=('insert', 'update'), columns=('email',), "
                f"version={CURRENT_VERSION})",
            ],
        ),
        (
            users(on_user("update", "delete", images=True)),
            [
                "op.drop_pgevent_trigger('user', events=('insert', 'update'), columns=('email',), "
                f"version={CURRENT_VERSION})",
                "op.create_pgevent_trigger('user', events=('update', 'delete'), images=True, "
                f"version={CURRENT_VERSION})",
            ],
        ),
        (
            users(),
            [
                "op.drop_pgevent_trigger('user', events=('update', 'delete'), images=True, "
                f"version={CURRENT_VERSION})",
                f"op.uninstall_pgevents(schema='pgevents', version={CURRENT_VERSION})",
            ],
        ),
    ]
    for number, (define, expected) in enumerate(steps):
        body = upgrade_body(step(database_url, migrations, define, f"step {number}"))
        positions = [body.index(line) for line in expected]
        assert positions == sorted(positions), body
        states.append(fetch(dsn, CATALOG_SQL))
    assert states[1] != states[0] and states[2] != states[1]

    # Each downgrade restores exactly the catalog state before its upgrade.
    app = make_app(database_url, migrations, users())
    for expected_state in reversed(states[:-1]):
        flask_db(app, "downgrade")
        assert fetch(dsn, CATALOG_SQL) == expected_state
    # And up again lands on the same state as the first time.
    flask_db(app, "upgrade")
    assert fetch(dsn, CATALOG_SQL) == states[-1]


def test_dropping_a_model_drops_its_trigger_first(database_url: URL, migrations: Path, dsn: str) -> None:
    def both(db: SQLAlchemy, pgevents: PGEvents) -> None:
        users(on_user("insert"))(db, pgevents)

        class Note(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "note"
            id = sa.Column(sa.Integer, primary_key=True)

        pgevents.listen(Note, "delete", lambda event: None)

    step(database_url, migrations, both, "both")
    with_note = fetch(dsn, CATALOG_SQL)
    body = upgrade_body(step(database_url, migrations, users(on_user("insert")), "drop note"))
    assert body.index(
        f"op.drop_pgevent_trigger('note', events=('delete',), version={CURRENT_VERSION})"
    ) < body.index("op.drop_table('note')")
    assert "uninstall_pgevents" not in body  # user still listens
    flask_db(make_app(database_url, migrations, users()), "downgrade")
    assert fetch(dsn, CATALOG_SQL) == with_note


def test_mixed_case_schemas_and_same_table_name_twice(database_url: URL, migrations: Path, dsn: str) -> None:
    execute(dsn, 'CREATE SCHEMA "Billing"', "CREATE SCHEMA archive")

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class Order(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "Order"
            __table_args__ = ({"schema": "Billing"},)
            id = sa.Column(sa.Integer, primary_key=True)

        class ArchivedOrder(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "Order"
            __table_args__ = ({"schema": "archive"},)
            id = sa.Column(sa.Integer, primary_key=True)

        pgevents.listen(Order, "insert", lambda event: None)
        pgevents.listen(ArchivedOrder, ["insert", "delete"], lambda event: None, delivery="broadcast")

    body = upgrade_body(step(database_url, migrations, define, "orders", include_schemas=True))
    assert (
        f"op.create_pgevent_trigger('Order', schema='Billing', events=('insert',), version={CURRENT_VERSION})"
        in body
    )
    assert (
        "op.create_pgevent_trigger('Order', schema='archive', events=('insert', 'delete'), "
        f"delivery='broadcast', version={CURRENT_VERSION})"
    ) in body
    # include_schemas=True must not make Alembic want to drop the event log tables.
    assert "pgevents" not in body.split("op.install_pgevents", 1)[0]
    execute(dsn, 'INSERT INTO "Billing"."Order" VALUES (1)', 'INSERT INTO archive."Order" VALUES (1)')
    assert [(e["schema_name"], e["table_name"]) for e in events(dsn)] == [("Billing", "Order")]


def test_unmanaged_trigger_is_left_alone_and_edits_are_drift(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    step(database_url, migrations, users(on_user("insert")), "users")
    execute(
        dsn,
        "CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        'CREATE TRIGGER audit AFTER INSERT ON "user" FOR EACH ROW EXECUTE FUNCTION public.audit()',
    )
    app = make_app(database_url, migrations, users(on_user("insert")))
    flask_db(app, "check")  # the user's own trigger is not ours to report

    execute(dsn, 'ALTER TABLE "user" DISABLE TRIGGER pgevents_insert')
    result = flask_db(app, "check", expect_exit=1)
    assert "remove_pgevent_trigger" in result.output and "add_pgevent_trigger" in result.output
    flask_db(app, "migrate", "-m", "re-enable")
    flask_db(app, "upgrade")
    flask_db(app, "check")
    assert ("public", "user", "audit") in [row[:3] for row in fetch(dsn, TRIGGERS_SQL)]
    assert [row[4] for row in fetch(dsn, TRIGGERS_SQL) if row[2] == "pgevents_insert"] == ["O"]


def test_offline_upgrade_sql_runs(database_url: URL, migrations: Path, dsn: str) -> None:
    app = make_app(database_url, migrations, users(on_user("insert", "update", columns=["email"])))
    flask_db(app, "init")
    flask_db(app, "migrate", "-m", "users")
    sql = flask_db(app, "upgrade", "--sql").stdout
    assert "PERFORM pgevents.create_trigger(" in sql and "ARRAY['insert', 'update']" in sql
    assert "%%" not in sql
    execute(dsn, "DROP TABLE IF EXISTS alembic_version")  # autogenerate may have created it
    execute(dsn, sql)  # psycopg2 with no parameters: exactly the printed text
    flask_db(app, "check")
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a')""", """UPDATE "user" SET email = 'b'""")
    assert [e["op"] for e in events(dsn)] == ["insert", "update"]


def test_catalog_queries_do_not_grow_with_tables(database_url: URL, migrations: Path) -> None:
    def many(count: int) -> Define:
        def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
            for i in range(count):
                table = sa.Table(f"t{i}", db.metadatas[None], sa.Column("id", sa.Integer, primary_key=True))
                pgevents.listen(table, "insert", lambda event: None)

        return define

    counts = []
    for count in (5, 200):
        app = make_app(database_url, migrations, many(count))
        if not migrations.exists():
            flask_db(app, "init")
        statements: list[str] = []

        def record(*args: object, into: list[str] = statements) -> None:
            into.append(str(args[2]))

        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
            sa.event.listen(engine, "before_cursor_execute", record)
            flask_db(app, "migrate", "-m", f"{count} tables")
            sa.event.remove(engine, "before_cursor_execute", record)
            flask_db(app, "upgrade")
        counts.append(sum("pg_trigger" in s for s in statements))
    assert counts == [1, 1]
    assert upgrade_body(revisions(migrations)[-1]).count("op.create_pgevent_trigger(") == 195


def test_a_changed_primary_key_is_drift(database_url: URL, migrations: Path, dsn: str) -> None:
    """Triggers carry the key columns they were created for; a new key means new triggers."""
    step(database_url, migrations, users(on_user("insert")), "users")
    execute(
        dsn, 'ALTER TABLE "user" DROP CONSTRAINT user_pkey, ADD CONSTRAINT user_pkey PRIMARY KEY (id, name)'
    )
    app = make_app(database_url, migrations, users(on_user("insert")))
    result = flask_db(app, "check", expect_exit=1)
    assert "remove_pgevent_trigger" in result.output and "add_pgevent_trigger" in result.output
    execute(
        dsn,
        'ALTER TABLE "user" DROP CONSTRAINT user_pkey, ADD CONSTRAINT user_pkey PRIMARY KEY (id),'
        " ALTER COLUMN name DROP NOT NULL",
    )
    flask_db(app, "check")


def test_an_older_installed_artifact_gets_an_upgrade_revision(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    """A project whose migrations an older release wrote: migrate adds only the upgrade."""
    app = make_app(database_url, migrations, users(on_user("insert")))
    flask_db(app, "init")
    flask_db(app, "migrate", "-m", "users, as an artifact-1 release wrote it")
    (first,) = (migrations / "versions").glob("*.py")
    first.write_text(first.read_text().replace(f"version={CURRENT_VERSION})", "version=1)"))
    flask_db(app, "upgrade")
    at_v1 = fetch(dsn, CATALOG_SQL)
    assert fetch(dsn, "SELECT obj_description('pgevents.capture()'::regprocedure)") == [
        ("pgevents-migrate artifact 1",)
    ]
    result = flask_db(app, "check", expect_exit=1)
    assert "upgrade_pgevents" in result.output

    text = migrate_and_upgrade(app, migrations, f"pgevents artifact {CURRENT_VERSION}")
    assert pgevent_lines(upgrade_body(text)) == [
        f"op.upgrade_pgevents(schema='pgevents', from_version=1, to_version={CURRENT_VERSION})"
    ]
    assert pgevent_lines(text.split("def downgrade", 1)[1]) == [
        f"op.downgrade_pgevents(schema='pgevents', from_version={CURRENT_VERSION}, to_version=1)"
    ]
    assert fetch(dsn, "SELECT obj_description('pgevents.capture()'::regprocedure)") == [
        (f"pgevents-migrate artifact {CURRENT_VERSION}",)
    ]
    assert fetch(dsn, TRIGGERS_SQL) and [r for r in fetch(dsn, CATALOG_SQL) if r[0] == "trigger"] == [
        r for r in at_v1 if r[0] == "trigger"
    ]
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a@x')""")
    assert [e["op"] for e in events(dsn)] == ["insert"]

    flask_db(app, "downgrade")
    assert fetch(dsn, CATALOG_SQL) == at_v1
    assert len(events(dsn)) == 1


def pgevent_lines(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if "pgevents" in line and "op." in line]
