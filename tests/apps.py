"""Small Flask apps for end-to-end migration tests, built from a model definer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops.manifest import ALL_VERSIONS
from pgevents_migrate import PGEvents

Define = Callable[[SQLAlchemy, PGEvents], None]


def make_app(
    database_url: URL,
    migrations: Path,
    define: Define,
    *,
    binds: dict[str, URL] | None = None,
    **migrate_options: Any,
) -> Flask:
    """A fresh app (its own SQLAlchemy, models and PGEvents) for one step of a test."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.render_as_string(hide_password=False)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    if binds:
        app.config["SQLALCHEMY_BINDS"] = {
            k: v.render_as_string(hide_password=False) for k, v in binds.items()
        }
    db = SQLAlchemy()
    db.init_app(app)
    pgevents = PGEvents(app, db)
    Migrate(app, db, directory=str(migrations), **migrate_options)
    define(db, pgevents)
    return app


def flask_db(app: Flask, *args: str, expect_exit: int = 0) -> Result:
    """Run ``flask db <args>`` through the real CLI and check its exit code."""
    # Flask-Migrate's env.py stores a process_revision_directives closure over
    # the first command's config in the Migrate object; a new process would
    # not have it, so drop it between in-process commands.
    app.extensions["migrate"].configure_args.pop("process_revision_directives", None)
    result = app.test_cli_runner().invoke(args=["db", *args])
    if result.exit_code != expect_exit:
        raise AssertionError(
            f"flask db {' '.join(args)} exited {result.exit_code}, expected {expect_exit}\n"
            f"output: {result.output}\n{result.exception!r}"
        ) from result.exception
    return result


def migrate_and_upgrade(app: Flask, migrations: Path, message: str) -> str:
    """``flask db migrate`` (which must write a revision), ``upgrade`` and ``check``; the revision text."""
    before = len(revisions(migrations)) if (migrations / "versions").exists() else 0
    flask_db(app, "migrate", "-m", message)
    written = revisions(migrations)
    assert len(written) == before + 1, f"{message}: expected a new revision"
    flask_db(app, "upgrade")
    flask_db(app, "check")
    return written[-1]


#: Installs this artifact version instead of the newest (``@pytest.mark.artifact(4)`` sets it).
TEST_VERSION_VARIABLE = "PGEVENTS_TEST_ARTIFACT_VERSION"
#: The newest artifact, the draft if there is one (the suite sets PGEVENTS_DRAFT_ARTIFACTS=1): what
#: the runtime tests install unless told otherwise.
NEWEST_VERSION = ALL_VERSIONS[-1]
#: The last artifact whose queue is a job table (claims, leases per event, ``processed``).
JOB_TABLE_VERSION = 4


def install_declared(connection: sa.Connection, metadata: sa.MetaData) -> None:
    """Install the artifact and the triggers ``metadata`` declares, as a migration would."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from alembic_ops import CreatePGEventTriggerOp, declared_specs

    version = int(os.environ.get(TEST_VERSION_VARIABLE, NEWEST_VERSION))
    op = Operations(MigrationContext.configure(connection))
    op.install_pgevents(version=version)
    for spec in declared_specs(metadata).values():
        op.invoke(CreatePGEventTriggerOp(spec, version=version))


def revisions(migrations: Path) -> list[str]:
    """The text of each revision file, oldest first (by down_revision chain)."""
    files = {p: p.read_text() for p in (migrations / "versions").glob("*.py")}
    by_down: dict[str | None, str] = {}
    for text in files.values():
        rev = _field(text, "revision")
        down = _field(text, "down_revision")
        by_down[down] = text
        assert rev
    ordered, current = [], None
    while current in by_down:
        text = by_down[current]
        ordered.append(text)
        current = _field(text, "revision")
    return ordered


def _field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(f"{name} = "):
            value = line.split("=", 1)[1].strip()
            return None if value == "None" else value.strip("'\"")
    raise AssertionError(f"no {name} in revision file")
