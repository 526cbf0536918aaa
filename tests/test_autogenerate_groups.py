"""``flask db migrate`` registers the app's consumer group (artifact 5 on) and never drops one."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations.ops import UpgradeOps
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import (
    CURRENT_VERSION,
    ArtifactVersionError,
    CreatePGEventsGroupOp,
    DropPGEventsGroupOp,
    InvalidIdentifierError,
    MissingArtifactVersionError,
    RefusedOperationError,
)
from alembic_ops.comparator import _group_creates
from alembic_ops.core.catalog import InstalledState, read_groups
from alembic_ops.core.names import LOG_VERSION
from pgevents_migrate import PGEvents
from tests.apps import flask_db, revisions
from tests.pg import RunOps, execute, fetch, libpq_dsn

GROUPS_SQL = "SELECT name FROM pgevents.consumer_group ORDER BY name"
#: Both quotes, a statement end, a comment, the templates' dollar quote, a backslash, a newline.
HOSTILE = 'o\'clock"; DROP TABLE "user"; --$pgevents$ \\\n)'


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


def group_app(database_url: URL, migrations: Path, group: str | None = None) -> Flask:
    """A ``user`` model with one listener, its worker in ``group`` (``PGEVENTS_GROUP``; unset: ``default``).

    ``tests.apps.make_app`` sets no ``PGEVENTS_*`` key, and ``PGEvents`` reads them when it is built.
    """
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.render_as_string(hide_password=False)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    if group is not None:
        app.config["PGEVENTS_GROUP"] = group
    db = SQLAlchemy()
    db.init_app(app)
    pgevents = PGEvents(app, db)
    Migrate(app, db, directory=str(migrations))

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "user"
        id = sa.Column(sa.Integer, primary_key=True)
        email = sa.Column(sa.String(200))

    pgevents.listen(User, "insert", lambda event: None)
    return app


def at_artifact(version: int, database_url: URL, migrations: Path, group: str | None = None) -> Flask:
    """The app in ``group``, its database upgraded to a first revision (written for the default group)
    rewritten for artifact ``version``, as a project on that version is."""
    app = group_app(database_url, migrations)
    flask_db(app, "init")
    flask_db(app, "migrate", "-m", f"users, on artifact {version}")
    (first,) = (migrations / "versions").glob("*.py")
    first.write_text(first.read_text().replace(f"version={CURRENT_VERSION})", f"version={version})"))
    flask_db(app, "upgrade")
    installed = fetch(libpq_dsn(database_url), "SELECT obj_description('pgevents.capture()'::regprocedure)")
    assert installed == [(f"pgevents-migrate artifact {version}",)]
    return group_app(database_url, migrations, group)


def groups(dsn: str) -> list[str]:
    return [row[0] for row in fetch(dsn, GROUPS_SQL)]


def op_lines(revision: str, function: str) -> list[str]:
    """The ``op.`` calls of the revision's ``upgrade`` or ``downgrade``."""
    body = revision.split(f"def {function}", 1)[1]
    if function == "upgrade":
        body = body.split("def downgrade", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip().startswith("op.")]


def revision_id(revision: str) -> str:
    (line,) = [line for line in revision.splitlines() if line.startswith("revision = ")]
    return line.split("=", 1)[1].strip().strip("'\"")


def test_migrate_registers_the_apps_group_and_downgrade_drops_it(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    app = at_artifact(CURRENT_VERSION, database_url, migrations, "audit")
    assert groups(dsn) == ["default"]
    result = flask_db(app, "check", expect_exit=1)
    assert "add_pgevents_group" in result.output and "'audit'" in result.output

    flask_db(app, "migrate", "-m", "the audit group")
    text = revisions(migrations)[-1]
    assert op_lines(text, "upgrade") == [f"op.create_pgevents_group('audit', version={CURRENT_VERSION})"]
    assert op_lines(text, "downgrade") == [f"op.drop_pgevents_group('audit', version={CURRENT_VERSION})"]
    assert "import alembic_ops" in text

    flask_db(app, "upgrade")
    assert groups(dsn) == ["audit", "default"]
    flask_db(app, "check")
    assert "No changes in schema detected" in flask_db(app, "migrate", "-m", "nothing").output
    assert len(revisions(migrations)) == 2

    flask_db(app, "downgrade")
    assert groups(dsn) == ["default"]
    flask_db(app, "check", expect_exit=1)


def test_offline_upgrade_sql_registers_the_group(database_url: URL, migrations: Path, dsn: str) -> None:
    app = at_artifact(CURRENT_VERSION, database_url, migrations, "audit")
    flask_db(app, "migrate", "-m", "the audit group")
    flask_db(app, "downgrade", "base")
    sql = flask_db(app, "upgrade", "--sql").stdout
    assert "SELECT pgevents.create_group('audit', 1);" in sql
    execute(dsn, "DROP TABLE alembic_version")
    execute(dsn, sql)  # psycopg2 with no parameters: exactly the printed text
    assert groups(dsn) == ["audit", "default"]
    flask_db(app, "check")


def test_the_default_group_never_gets_an_op(database_url: URL, migrations: Path, dsn: str) -> None:
    app = at_artifact(CURRENT_VERSION, database_url, migrations)
    flask_db(app, "check")
    assert "No changes in schema detected" in flask_db(app, "migrate", "-m", "nothing").output
    # The artifact owns it: not even when someone removed it by hand.
    execute(dsn, "SELECT pgevents.drop_group('default')")
    flask_db(app, "check")


def test_a_group_another_app_registered_is_never_dropped(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    audit_app = at_artifact(CURRENT_VERSION, database_url, migrations, "audit")
    flask_db(audit_app, "migrate", "-m", "the audit group")
    flask_db(audit_app, "upgrade")

    # The same models, read by the default group only: the audit group is not this app's to drop.
    app = group_app(database_url, migrations)
    flask_db(app, "check")
    assert "No changes in schema detected" in flask_db(app, "migrate", "-m", "nothing").output
    assert groups(dsn) == ["audit", "default"]


def test_an_app_on_artifact_4_gets_the_upgrade_then_its_group(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    app = at_artifact(4, database_url, migrations, "audit")
    assert fetch(dsn, "SELECT to_regclass('pgevents.consumer_group')") == [(None,)]
    flask_db(app, "migrate", "-m", "the log and the audit group")
    assert op_lines(revisions(migrations)[-1], "upgrade") == [
        f"op.upgrade_pgevents(schema='pgevents', from_version=4, to_version={CURRENT_VERSION})",
        f"op.create_pgevents_group('audit', version={CURRENT_VERSION})",
    ]
    flask_db(app, "upgrade")
    assert groups(dsn) == ["audit", "default"]
    flask_db(app, "check")
    flask_db(app, "downgrade")
    assert fetch(dsn, "SELECT to_regclass('pgevents.consumer_group')") == [(None,)]


def test_a_hostile_group_name_round_trips(database_url: URL, migrations: Path, dsn: str) -> None:
    app = at_artifact(CURRENT_VERSION, database_url, migrations, HOSTILE)
    flask_db(app, "migrate", "-m", "a hostile group")
    text = revisions(migrations)[-1]
    assert op_lines(text, "upgrade") == [f"op.create_pgevents_group({HOSTILE!r}, version={CURRENT_VERSION})"]

    flask_db(app, "upgrade")
    assert groups(dsn) == sorted([HOSTILE, "default"])
    assert fetch(dsn, "SELECT to_regclass('public.user') IS NOT NULL") == [(True,)]
    flask_db(app, "check")
    flask_db(app, "downgrade")
    assert groups(dsn) == ["default"]

    # Offline, the printed statement registers the same name.
    sql = flask_db(app, "upgrade", "--sql", f"{revision_id(revisions(migrations)[0])}:head").stdout
    assert "create_group('o''clock" in sql
    execute(dsn, sql)
    assert groups(dsn) == sorted([HOSTILE, "default"])


def test_group_ops_refuse_bad_names_and_versions_clearly(run_ops: RunOps) -> None:
    for name in ("", "   ", "x" * 64, "a\x00b", 7):
        with pytest.raises(InvalidIdentifierError, match="consumer group name"):
            CreatePGEventsGroupOp(name, version=CURRENT_VERSION)  # type: ignore[arg-type]
    assert CreatePGEventsGroupOp("é" * 63, version=CURRENT_VERSION).group == "é" * 63  # characters, not bytes

    with pytest.raises(ArtifactVersionError, match=f"consumer groups need artifact {LOG_VERSION} or newer"):
        run_ops(lambda op: op.create_pgevents_group("audit", version=4))
    with pytest.raises(ArtifactVersionError, match=f"consumer groups need artifact {LOG_VERSION} or newer"):
        DropPGEventsGroupOp("audit", version=1)
    with pytest.raises(MissingArtifactVersionError, match=f"write version={CURRENT_VERSION}"):
        run_ops(lambda op: op.drop_pgevents_group("audit"))
    with pytest.raises(InvalidIdentifierError, match="must not be 'public'"):
        run_ops(lambda op: op.create_pgevents_group("audit", schema="public", version=CURRENT_VERSION))


def test_registering_twice_or_dropping_an_unknown_group_is_refused_in_one_line(
    run_ops: RunOps, engine: sa.Engine
) -> None:
    run_ops(lambda op: op.install_pgevents(schema="Ev_log", version=CURRENT_VERSION))
    run_ops(lambda op: op.create_pgevents_group("audit", schema="Ev_log", version=CURRENT_VERSION))
    with engine.connect() as conn:
        assert read_groups(conn, "Ev_log") == {"audit", "default"}

    with pytest.raises(RefusedOperationError) as registered:
        run_ops(lambda op: op.create_pgevents_group("audit", schema="Ev_log", version=CURRENT_VERSION))
    assert str(registered.value).startswith("pgevents: consumer group 'audit' is already registered. ")
    with pytest.raises(RefusedOperationError) as unknown:
        run_ops(lambda op: op.drop_pgevents_group("nobody", schema="Ev_log", version=CURRENT_VERSION))
    assert str(unknown.value).startswith("pgevents: consumer group 'nobody' is not registered. ")
    assert "\n" not in str(registered.value) + str(unknown.value)

    run_ops(lambda op: op.drop_pgevents_group("audit", schema="Ev_log", version=CURRENT_VERSION))
    with engine.connect() as conn:
        assert read_groups(conn, "Ev_log") == {"default"}


def test_a_hand_written_drop_of_an_unknown_group_fails_upgrade_in_one_line(
    database_url: URL, migrations: Path
) -> None:
    app = at_artifact(CURRENT_VERSION, database_url, migrations)
    flask_db(app, "revision", "-m", "by hand")
    (path,) = [p for p in (migrations / "versions").glob("*.py") if "by_hand" in p.name]
    text = path.read_text().replace(
        "def upgrade():\n    pass",
        f"def upgrade():\n    op.drop_pgevents_group('nobody', version={CURRENT_VERSION})",
    )
    path.write_text("import alembic_ops  # noqa: F401\n" + text)
    output = flask_db(app, "upgrade", expect_exit=1).output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "pgevents: " in line]
    assert len(lines) == 1 and "consumer group 'nobody' is not registered" in lines[0], output


def test_group_ops_reverse_each_other_and_name_their_schema_only_when_not_default() -> None:
    create = CreatePGEventsGroupOp("audit", "ev", version=CURRENT_VERSION)
    assert create.reverse() == DropPGEventsGroupOp("audit", "ev", version=CURRENT_VERSION)
    assert create.reverse().reverse() == create
    wide = CreatePGEventsGroupOp("wide", version=CURRENT_VERSION, lanes=4)
    assert wide.reverse().reverse() == wide
    code = render_python_code(
        UpgradeOps(
            ops=[create, CreatePGEventsGroupOp("audit", version=CURRENT_VERSION), wide, wide.reverse()]
        )
    )
    assert f"op.create_pgevents_group('wide', lanes=4, version={CURRENT_VERSION})" in code
    assert f"op.drop_pgevents_group('wide', version={CURRENT_VERSION})" in code
    for lanes in (0, 257, "2", True):
        with pytest.raises(InvalidIdentifierError, match="lanes must be an integer from 1 to 256"):
            CreatePGEventsGroupOp("wide", version=CURRENT_VERSION, lanes=lanes)  # type: ignore[arg-type]
    assert f"op.create_pgevents_group('audit', schema='ev', version={CURRENT_VERSION})" in code
    assert f"op.create_pgevents_group('audit', version={CURRENT_VERSION})" in code


def test_an_artifact_this_revision_installs_or_upgrades_to_groups_has_only_default() -> None:
    """The path ``flask db migrate`` takes once the current version has groups (not yet: 5 is a draft)."""
    state = InstalledState(
        artifacts={"pgevents": 4, "ev": CURRENT_VERSION}, groups={"ev": frozenset({"default"})}
    )
    declared = {"pgevents": {"audit"}, "fresh": {"audit"}, "ev": {"audit", "mail"}, "old": {"audit"}}
    versions = {"pgevents": CURRENT_VERSION, "fresh": CURRENT_VERSION, "ev": CURRENT_VERSION, "old": 4}
    creates = _group_creates(state, declared, versions)
    assert [(op.schema, op.group) for op in creates] == [
        ("ev", "audit"),
        ("ev", "mail"),
        ("fresh", "audit"),
        ("pgevents", "audit"),
    ]
