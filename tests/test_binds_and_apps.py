"""Every command works on any bind; a too-new artifact is named; one extension serves two apps."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import psycopg2.sql
import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import InvalidTriggerSpecError
from pgevents_migrate import Event, PGEvents
from pgevents_migrate.status import newest_supported
from tests.apps import install_declared, make_app
from tests.conftest import temporary_database
from tests.pg import events_of, execute, fetch, libpq_dsn, wait_for


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (line,) = result.output.strip().splitlines()
    return line


def _other_bind_items(db: SQLAlchemy, pgevents: PGEvents) -> None:
    class Item(db.Model):  # type: ignore[name-defined,misc]
        __bind_key__ = "other"
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", lambda event: None)  # the bind comes from __bind_key__


def _install_bind(app: Flask, bind_key: str | None) -> None:
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context():
        db.create_all(bind_key=bind_key)
        with db.engines[bind_key].begin() as conn:
            install_declared(conn, db.metadatas[bind_key])


def test_every_command_works_on_another_bind(database_url: URL, server_url: URL, tmp_path: Path) -> None:
    with temporary_database(server_url) as other:
        other_dsn = libpq_dsn(other)
        app = make_app(database_url, tmp_path / "migrations", _other_bind_items, binds={"other": other})
        # It names the default bind's database only: --bind other still reaches the other one.
        app.config["PGEVENTS_DATABASE_URL"] = database_url.render_as_string(hide_password=False)
        _install_bind(app, "other")
        execute(other_dsn, "INSERT INTO item VALUES (1), (2)")
        runner = app.test_cli_runner()

        status = runner.invoke(args=["pgevents", "status", "--bind", "other"])
        assert status.exit_code == 0, status.output
        assert "database other:" in status.output and "ok         item" in status.output
        assert "pending 2, failed 0" in status.output and "database default:" not in status.output
        everything = runner.invoke(args=["pgevents", "status"])  # the main database declares nothing
        assert everything.exit_code == 0, everything.output
        assert "database default:" in everything.output and "pending 2, failed 0" in everything.output

        # A dead letter of the default group, as a worker leaves one.
        with psycopg2.connect(other_dsn) as conn, conn.cursor() as cur:
            cur.execute(
                psycopg2.sql.SQL(
                    "INSERT INTO pgevents.dead_letter (group_name, id, op, schema_name, table_name, pk, txid,"
                    " created_at, attempts, done, error) SELECT 'default', e.id, e.op, e.schema_name,"
                    " e.table_name, e.pk, e.txid, e.created_at, 5, '{{}}', 'Traceback ...\nValueError: boom'"
                    " FROM {} WHERE e.pk->>'id' = '2'"
                ).format(events_of(cur, "pgevents"))
            )
        conn.close()
        failed = runner.invoke(args=["pgevents", "failed", "--bind", "other"])
        assert failed.exit_code == 0 and "insert public.item {'id': 2}" in failed.output, failed.output
        assert "ValueError: boom" in failed.output
        retried = runner.invoke(args=["pgevents", "retry", "--all", "--bind", "other"])
        assert retried.exit_code == 0 and "requeued 1 event(s)" in retried.output, retried.output
        assert fetch(other_dsn, "SELECT count(*) FROM pgevents.dead_letter") == [(0,)]
        assert fetch(other_dsn, "SELECT pk FROM pgevents.retry") == [({"id": 2},)]
        purged = runner.invoke(
            args=["pgevents", "purge", "--older-than", "0s", "--dead-letters", "--bind", "other"]
        )
        assert purged.exit_code == 0 and "purged 0 handled and 0 failed" in purged.output, purged.output

        # The main database has no artifact; an unknown bind is named.
        assert "not installed in schema 'pgevents' of this database" in one_line_error(
            runner.invoke(args=["pgevents", "failed"])
        )
        for command in (["status"], ["failed"], ["run"]):
            line = one_line_error(runner.invoke(args=["pgevents", *command, "--bind", "nope"]))
            assert line == "Error: unknown bind 'nope': not in SQLALCHEMY_BINDS", command


def test_a_models_bind_is_its_own(database_url: URL, tmp_path: Path) -> None:
    """``__bind_key__`` decides; naming another bind for a model is refused in one line."""
    declared: list[PGEvents] = []

    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        _other_bind_items(db, pgevents)
        declared.append(pgevents)
        item = db.Model.registry._class_registry["Item"]
        with pytest.raises(InvalidTriggerSpecError, match="belongs to bind 'other'"):
            pgevents.listen(item, "delete", lambda event: None, bind_key="main")

    make_app(database_url, tmp_path / "migrations", define, binds={"other": database_url})
    (pgevents,) = declared
    assert [(lst.spec.table, lst.bind_key) for lst in pgevents.listeners] == [("item", "other")]


def _items(db: SQLAlchemy, pgevents: PGEvents) -> None:
    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", lambda event: None)


def test_an_artifact_newer_than_the_library_asks_for_an_upgrade(
    database_url: URL, dsn: str, tmp_path: Path
) -> None:
    app = make_app(database_url, tmp_path / "migrations", _items)
    _install_bind(app, None)
    execute(dsn, "COMMENT ON FUNCTION pgevents.capture() IS 'pgevents-migrate artifact 99'")
    runner = app.test_cli_runner()
    expected = (
        "Error: schema 'pgevents' of this database holds pgevents artifact version 99, newer than the "
        f"{newest_supported()} "
        "this pgevents-migrate supports: upgrade the pgevents-migrate package"
    )
    for command in (["status"], ["failed"], ["run"], ["retry", "--all"]):
        assert one_line_error(runner.invoke(args=["pgevents", *command])) == expected, command


def test_one_extension_serves_two_apps_each_with_its_own_worker(server_url: URL) -> None:
    db = SQLAlchemy()
    pgevents = PGEvents()
    seen: list[tuple[str, int]] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    @pgevents.listens_for(Item, "insert")  # declared before any app, as in an app factory
    def record(event: Event) -> None:
        from flask import current_app

        seen.append((current_app.name, event.row_id))

    def create_app(name: str, url: URL) -> Flask:
        app = Flask(name)
        app.config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
        db.init_app(app)
        pgevents.init_app(app)
        _install_bind(app, None)
        return app

    with temporary_database(server_url) as first_url, temporary_database(server_url) as second_url:
        first, second = create_app("first", first_url), create_app("second", second_url)
        with first.app_context():
            pgevents.start()
        with second.app_context():
            pgevents.start()
        try:
            execute(libpq_dsn(first_url), "INSERT INTO item VALUES (1)")
            execute(libpq_dsn(second_url), "INSERT INTO item VALUES (2)")
            wait_for(lambda: len(seen) == 2)
            assert sorted(seen) == [("first", 1), ("second", 2)]
        finally:
            for app in (first, second):
                with app.app_context():
                    pgevents.stop(10)

        third = Flask("third")
        third.config["SQLALCHEMY_DATABASE_URI"] = first_url.render_as_string(hide_password=False)
        third.config["PGEVENTS_SCHEMA"] = "elsewhere"
        db.init_app(third)
        with pytest.raises(ValueError, match="PGEVENTS_SCHEMA is 'elsewhere' in third but 'pgevents'"):
            pgevents.init_app(third)
