"""What the ``flask pgevents`` commands and a starting worker say about the database.

Seed-style callbacks get the trigger's ``TG_OP``; every command on a database
without the artifact prints one line; a worker warns about (or, strict,
refuses) declared tables whose triggers are missing or differ.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from pgevents_migrate import PGEvents
from pgevents_migrate.config import WorkerConfig
from tests import runtime_app
from tests.apps import flask_db, make_app
from tests.conftest import temporary_database
from tests.pg import execute, wait_for
from tests.test_runtime import _app, _install
from tests.workers import WorkerPool, WorkerProcess, alive, terminate_foreign_backends

COMMANDS = (
    ["run"],
    ["status"],
    ["failed"],
    ["retry", "--all"],
    ["purge", "--older-than", "7d"],
)
NOT_INSTALLED = (
    "Error: pgevents is not installed in schema 'pgevents' of {where}: "
    "run `flask db migrate` and `flask db upgrade` first"
)
FIX = (
    "run `flask db migrate` and `flask db upgrade` to install what the app declares"
    " (`flask pgevents status` shows every difference)"
)
USER_WARNING = (
    "pgevents: table user (declared insert,update,delete queue, installed update,delete queue):"
    f" its insert events will not be captured; {FIX}"
)
STRICT_ERROR = f"Error: refusing to run (strict): user: its insert events will not be captured; {FIX}"


def one_line_error(result: Result) -> str:
    """The single line a failed command printed; fails on a traceback or another exit code."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


# -- 5: seed-style callbacks --------------------------------------------------------


def test_seed_style_callbacks_receive_the_trigger_operation(database_url: URL, dsn: str) -> None:
    app, db, pgevents = _app(database_url)
    calls: list[tuple[Any, Any, str]] = []

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        label = sa.Column(sa.String(20))

    @pgevents.listens_for(Item, {"after_insert", "after_update", "after_delete"})
    def seed_style(event_id: int, row_id: int, identifier: str) -> None:
        calls.append((event_id, row_id, identifier))

    _install(app, db)
    execute(dsn, "INSERT INTO item VALUES (4, 'a')", "UPDATE item SET label = 'b'", "DELETE FROM item")
    assert pgevents.handle_events() == 3
    assert [(row_id, identifier) for _, row_id, identifier in calls] == [
        (4, "INSERT"),
        (4, "UPDATE"),
        (4, "DELETE"),
    ]
    assert all(isinstance(event_id, int) for event_id, _, _ in calls)


# -- 6: commands on a database without the artifact -----------------------------------


def _items(db: SQLAlchemy, pgevents: PGEvents) -> None:
    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", lambda event: None)


def test_every_command_says_to_upgrade_before_the_first_upgrade_and_after_a_downgrade(
    database_url: URL, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    app = make_app(database_url, migrations, _items)
    flask_db(app, "init")
    flask_db(app, "migrate", "-m", "items")
    runner = app.test_cli_runner()
    expected = NOT_INSTALLED.format(where="this database")
    for command in COMMANDS:
        assert one_line_error(runner.invoke(args=["pgevents", *command])) == expected, command
    flask_db(app, "upgrade")
    result = runner.invoke(args=["pgevents", "status"])
    assert result.exit_code == 0 and "ok         item" in result.output, result.output
    flask_db(app, "downgrade", "base")
    for command in COMMANDS:
        assert one_line_error(runner.invoke(args=["pgevents", *command])) == expected, command


def _other_bind_items(db: SQLAlchemy, pgevents: PGEvents) -> None:
    class Item(db.Model):  # type: ignore[name-defined,misc]
        __bind_key__ = "other"
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.listen(Item, "insert", lambda event: None)


def test_the_message_names_a_bind_that_lacks_the_artifact(
    database_url: URL, server_url: URL, tmp_path: Path
) -> None:
    with temporary_database(server_url) as other:
        app = make_app(database_url, tmp_path / "migrations", _other_bind_items, binds={"other": other})
        runner = app.test_cli_runner()
        expected = NOT_INSTALLED.format(where="the database of bind 'other'")
        assert one_line_error(runner.invoke(args=["pgevents", "status"])) == expected
        assert one_line_error(runner.invoke(args=["pgevents", "run", "--bind", "other"])) == expected


@pytest.mark.parametrize("driver", ["postgresql+psycopg2", "postgresql+psycopg"])
def test_status_reads_the_catalog_with_either_driver(database_url: URL, tmp_path: Path, driver: str) -> None:
    app = make_app(database_url.set(drivername=driver), tmp_path / "migrations", _items)
    flask_db(app, "init")
    flask_db(app, "migrate", "-m", "items")
    flask_db(app, "upgrade")
    result = app.test_cli_runner().invoke(args=["pgevents", "status"])
    assert result.exit_code == 0, result.output
    assert "ok         item: declared insert queue; installed insert queue" in result.output


# -- 7: a starting worker checks the declared triggers ----------------------------------


def _connect_twice(app: Flask, caplog: pytest.LogCaptureFixture) -> list[list[str]]:
    """Start a worker and connect it again as a reconnect does; the warnings of each connect."""
    warnings = []
    with app.app_context():
        worker = runtime_app.pgevents.worker()
    try:
        for _ in range(2):
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="pgevents_migrate"):
                worker.connect()
            warnings.append([r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING])
    finally:
        worker.close()
    return warnings


def test_a_correctly_installed_app_starts_without_warnings(
    runtime: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    assert _connect_twice(runtime, caplog) == [[], []]
    with runtime.app_context():
        strict = runtime_app.pgevents.worker(strict=True)
    strict.connect()
    strict.close()


@pytest.mark.parametrize(
    ("sql", "warning"),
    [
        ('DROP TRIGGER pgevents_insert ON "user"', USER_WARNING),
        (
            'DROP TRIGGER pgevents_insert ON "user"; DROP TRIGGER pgevents_update ON "user";'
            ' DROP TRIGGER pgevents_delete ON "user"',
            "pgevents: table user (declared insert,update,delete queue, installed -):"
            f" its insert, update, delete events will not be captured; {FIX}",
        ),
        (
            'ALTER TABLE "user" DISABLE TRIGGER pgevents_update',
            "pgevents: table user (declared insert,update,delete queue, installed -): its triggers"
            f" were altered, disabled or keyed on an old primary key: changes may be missed; {FIX}",
        ),
    ],
    ids=["one-dropped", "all-dropped", "disabled"],
)
def test_a_table_not_captured_as_declared_is_warned_about_at_every_connect(
    runtime: Flask, dsn: str, caplog: pytest.LogCaptureFixture, sql: str, warning: str
) -> None:
    execute(dsn, sql)
    assert _connect_twice(runtime, caplog) == [[warning], [warning]]


def test_run_strict_refuses_to_start(runtime: Flask, dsn: str) -> None:
    execute(dsn, 'DROP TRIGGER pgevents_insert ON "user"')
    runner = runtime.test_cli_runner()
    assert one_line_error(runner.invoke(args=["pgevents", "run", "--strict"])) == STRICT_ERROR


def test_a_background_worker_refusing_at_reconnect_stops_with_one_logged_line(
    runtime: Flask, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime.config["PGEVENTS_STRICT"] = True
    with runtime.app_context(), caplog.at_level(logging.INFO, logger="pgevents_migrate"):
        runtime_app.pgevents.start()
        thread = runtime_app.pgevents._apps[runtime].thread
        assert thread is not None and thread.is_alive()
        execute(dsn, 'DROP TRIGGER pgevents_insert ON "user"')
        terminate_foreign_backends(dsn)
        thread.join(30)
        assert not thread.is_alive()
        runtime_app.pgevents.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"pgevents: the background worker stopped: {STRICT_ERROR.removeprefix('Error: ')}"]
    assert all(r.exc_info is None for r in caplog.records)


def test_config_strict_parses_booleans() -> None:
    assert WorkerConfig.from_mapping({"PGEVENTS_STRICT": "false"}).strict is False
    assert WorkerConfig.from_mapping({"PGEVENTS_STRICT": "0"}).strict is False
    assert WorkerConfig.from_mapping({"PGEVENTS_STRICT": "True"}).strict is True
    assert WorkerConfig.from_mapping({"PGEVENTS_STRICT": True}).strict is True
    with pytest.raises(ValueError, match="PGEVENTS_STRICT: 'maybe' is not true or false"):
        WorkerConfig.from_mapping({"PGEVENTS_STRICT": "maybe"})


def _table_warnings(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.log().splitlines() if " WARNING pgevents: table " in line]


def test_flask_pgevents_run_warns_at_start_and_after_a_reconnect(
    runtime: Flask, database_url: URL, dsn: str, workers: WorkerPool
) -> None:
    execute(dsn, 'DROP TRIGGER pgevents_insert ON "user"')
    worker = workers.start(database_url, config={"PGEVENTS_STRICT": "false"})
    worker.wait_ready()
    assert [line.split(" WARNING ", 1)[1] for line in _table_warnings(worker)] == [USER_WARNING]
    terminate_foreign_backends(dsn)
    wait_for(lambda: alive(worker) and worker.log().count("listening") == 2, timeout=30)
    assert len(_table_warnings(worker)) == 2
    assert worker.terminate_and_wait() == 0


def test_pgevents_strict_config_refuses_to_start(
    runtime: Flask, database_url: URL, dsn: str, workers: WorkerPool
) -> None:
    execute(dsn, 'DROP TRIGGER pgevents_insert ON "user"')
    worker = workers.start(database_url, config={"PGEVENTS_STRICT": "true"})
    assert worker.process.wait(30) == 1
    assert worker.log().strip().splitlines() == [STRICT_ERROR]
