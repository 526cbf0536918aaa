"""Row conditions (``when=``, artifact 5): only the row changes a condition holds for are captured."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import (
    CURRENT_VERSION,
    ArtifactVersionError,
    CreatePGEventTriggerOp,
    InvalidTriggerSpecError,
    RefusedOperationError,
    TriggerSpec,
)
from alembic_ops.core.arguments import TriggerArguments, decode
from alembic_ops.core.conditions import check_condition
from alembic_ops.core.declarations import merge_specs
from alembic_ops.render import trigger_arguments
from pgevents_migrate import Event, PGEvents
from tests.apps import flask_db, make_app, revisions
from tests.pg import Listener, RunOps, events, execute, fetch
from tests.test_autogenerate_groups import at_artifact, op_lines

STATUS_CHANGED = "new.status IS DISTINCT FROM old.status"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return tmp_path / "migrations"


@pytest.mark.parametrize(
    "condition",
    [
        "new.status <> 'a;b'",
        "new.note = E'it\\'s; ok'",
        "new.status = $x$ ; ) $x$",
        "new.status = 'x' -- trailing comment ; (\n",
        "new.n > 1 /* a ; /* nested ) */ comment */",
        '"new"."odd;name" IS NOT NULL',
        "(new.a + (new.b * 2)) > old.a",
    ],
)
def test_one_expression_passes_whatever_its_literals_and_comments_hold(condition: str) -> None:
    assert check_condition(f"  {condition}  ") == condition.strip()


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("true; DELETE FROM users", "contains ';'"),
        ("true) OR (true", "closes a parenthesis"),
        ("(new.a > 1", "'(' is not closed"),
        ("new.a = 'x", "string literal is not closed"),
        ('"new.a = 1', "quoted identifier is not closed"),
        ("new.a = $x$ y", "dollar-quoted string is not closed"),
        ("new.a /* x", "comment is not closed"),
        ("   ", "is empty"),
        ("new.a\x00", "NUL"),
        ("new.a > " + "1" * 4000, "longer than"),
    ],
)
def test_anything_but_one_expression_is_refused(condition: str, problem: str) -> None:
    with pytest.raises(InvalidTriggerSpecError, match=re.escape(problem)):
        check_condition(condition)


def test_when_takes_one_condition_for_every_event_or_one_per_event() -> None:
    both = TriggerSpec("user", events=("insert", "update"), when="new.n > 0")
    assert both.when == (("insert", "new.n > 0"), ("update", "new.n > 0"))
    by_event = TriggerSpec("user", events=("insert", "update"), when={"after_update": STATUS_CHANGED})
    assert by_event.when == (("update", STATUS_CHANGED),)
    assert by_event.condition("update") == STATUS_CHANGED and by_event.condition("insert") is None
    with pytest.raises(InvalidTriggerSpecError, match="condition for delete events, which are not captured"):
        TriggerSpec("user", events=("insert",), when={"delete": "true"})
    with pytest.raises(InvalidTriggerSpecError, match="must be SQL text"):
        TriggerSpec("user", when={"insert": 1})  # type: ignore[dict-item]


def test_listeners_of_one_event_must_agree_on_its_condition() -> None:
    insert = TriggerSpec("user", events=("insert",))
    update = TriggerSpec("user", events=("update",), when=STATUS_CHANGED)
    merged = merge_specs(insert, update)
    assert merged.events == ("insert", "update") and merged.when == (("update", STATUS_CHANGED),)
    assert merge_specs(update, update) == update
    with pytest.raises(InvalidTriggerSpecError, match=re.escape("'new.n > 1' and 'new.status IS DISTINCT")):
        merge_specs(update, TriggerSpec("user", events=("update",), when="new.n > 1"))
    with pytest.raises(InvalidTriggerSpecError, match=r"declared with 'new\..* and no condition"):
        merge_specs(TriggerSpec("user", events=("update", "delete")), update)


def test_a_conditional_trigger_carries_its_condition_after_the_keys() -> None:
    arguments = TriggerArguments("queue", True, ("a", "b"), ("c",), "new.c > 1")
    assert arguments.encode() == ("queue", "images+when", "2", "a", "b", "new.c > 1", "c")
    assert decode(arguments.encode()) == arguments
    assert decode(("queue", "keys+when", "1", "id")) is None
    assert decode(("queue", "rows+when", "1", "id", "true")) is None


def test_migrations_write_when_as_a_mapping_and_older_artifacts_refuse_it() -> None:
    spec = TriggerSpec("user", events=("update",), when=STATUS_CHANGED)
    assert trigger_arguments(spec)[-1] == f"when={{'update': {STATUS_CHANGED!r}}}"
    assert not any(a.startswith("when=") for a in trigger_arguments(TriggerSpec("user")))
    with pytest.raises(ArtifactVersionError, match="need artifact 5"):
        CreatePGEventTriggerOp(spec, version=4)


def install(run_ops: RunOps, *table_ops: Any) -> None:
    run_ops(lambda op: [op.install_pgevents(version=CURRENT_VERSION), *(f(op) for f in table_ops)])


def test_capture_keeps_only_the_changes_each_events_condition_holds_for(run_ops: RunOps, dsn: str) -> None:
    # "generation" and "new" are also names the capture function uses.
    execute(dsn, 'CREATE TABLE "user" (id int PRIMARY KEY, status text, generation int, "new" text)')
    install(
        run_ops,
        lambda op: op.create_pgevent_trigger(
            "user",
            images=True,
            when={
                "insert": "new.status <> 'draft' AND new.generation IS NOT NULL",
                "update": STATUS_CHANGED,
                "delete": "old.status LIKE 'live%'",
            },
            version=CURRENT_VERSION,
        ),
    )
    execute(
        dsn,
        """INSERT INTO "user" VALUES (1, 'draft', 1, 'x'), (2, 'live', 1, 'y'), (3, 'live', NULL, 'z')""",
        """UPDATE "user" SET generation = 2""",
        """UPDATE "user" SET status = 'live' WHERE id = 1""",
        """UPDATE "user" SET id = 10 WHERE id = 3""",
        """DELETE FROM "user" WHERE id IN (2, 10)""",
        """DELETE FROM "user" """,
    )
    captured = [(e["op"], e["pk"], e["old"], e["new"], e["changed"]) for e in events(dsn)]
    row = {"id": 1, "status": "live", "generation": 2, "new": "x"}
    assert captured == [
        ("insert", {"id": 2}, None, {"id": 2, "status": "live", "generation": 1, "new": "y"}, None),
        ("update", {"id": 1}, {**row, "status": "draft"}, row, ["status"]),
        # A changed key pairs with no old row: the condition sees old as nulls.
        ("update", {"id": 10}, None, {"id": 10, "status": "live", "generation": 2, "new": "z"},
         ["generation", "id", "new", "status"]),
        ("delete", {"id": 2}, {"id": 2, "status": "live", "generation": 2, "new": "y"}, None, None),
        ("delete", {"id": 10}, {"id": 10, "status": "live", "generation": 2, "new": "z"}, None, None),
        ("delete", {"id": 1}, row, None, None),
    ]  # fmt: skip


def test_condition_filter_and_composite_key_combine(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE pair (a int, b int, n int, note json, PRIMARY KEY (b, a))")
    install(
        run_ops,
        lambda op: op.create_pgevent_trigger(
            "pair", events=("update",), columns=["note"], when="new.n > 1", version=CURRENT_VERSION
        ),
    )
    execute(
        dsn,
        "INSERT INTO pair VALUES (1, 1, 1, '{}'), (2, 1, 5, '{}')",
        "UPDATE pair SET note = '[1]'",  # row (1, 1) fails the condition
        "UPDATE pair SET n = n + 1",  # nothing the filter watches changed
    )
    assert [(e["pk"], e["changed"]) for e in events(dsn)] == [({"b": 1, "a": 2}, ["note"])]


def test_broadcast_sends_only_the_keys_the_condition_holds_for(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, n int)")
    install(
        run_ops,
        lambda op: op.create_pgevent_trigger(
            "item", events=("insert",), delivery="broadcast", when="new.n % 2 = 0", version=CURRENT_VERSION
        ),
    )
    listener = Listener(dsn, "pgevents_broadcast")
    try:
        execute(dsn, "INSERT INTO item SELECT i, i FROM generate_series(1, 5) AS i")
        (notification,) = listener.poll(5)
        assert json.loads(notification.payload)["pks"] == [{"id": 2}, {"id": 4}]
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ("new.missing > 1", "column new.missing does not exist"),
        ("new.n", "argument of WHERE must be type boolean"),
        ("new.note = old.note", "operator does not exist: json = json"),
    ],
)
def test_invalid_sql_fails_at_creation_with_the_database_error_and_the_table(
    run_ops: RunOps, dsn: str, condition: str, error: str
) -> None:
    execute(dsn, 'CREATE TABLE "Odd Table" (id int PRIMARY KEY, n int, note json)')
    with pytest.raises(RefusedOperationError) as raised:
        install(
            run_ops,
            lambda op: op.create_pgevent_trigger(
                "Odd Table", events=("update",), when=condition, version=CURRENT_VERSION
            ),
        )
    message = str(raised.value)
    assert 'when= condition of update events on table "Odd Table" is not valid' in message
    assert error in message and condition in message
    assert fetch(dsn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = '\"Odd Table\"'::regclass") == [(0,)]


def test_downgrade_to_artifact_4_refuses_while_a_trigger_has_a_condition(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, n int)")
    install(
        run_ops,
        lambda op: op.create_pgevent_trigger(
            "item", events="insert", when="new.n > 0", version=CURRENT_VERSION
        ),
    )
    with pytest.raises(RefusedOperationError, match="artifact 4 has no row conditions, and triggers on item"):
        run_ops(lambda op: op.downgrade_pgevents(from_version=CURRENT_VERSION, to_version=4))
    run_ops(lambda op: op.drop_pgevent_trigger("item", events=("insert",), version=CURRENT_VERSION))
    run_ops(lambda op: op.downgrade_pgevents(from_version=CURRENT_VERSION, to_version=4))


def user_app(database_url: URL, migrations: Path, when: str | None, seen: list[Event]) -> Any:
    def define(db: SQLAlchemy, pgevents: PGEvents) -> None:
        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "user"
            id = sa.Column(sa.Integer, primary_key=True)
            email = sa.Column(sa.String(200))
            status = sa.Column(sa.String(20))

        pgevents.listen(User, "insert", lambda event: None)
        pgevents.listen(User, "update", seen.append, when=when)

    return make_app(database_url, migrations, define)


def test_flask_db_writes_the_condition_sees_it_drift_and_the_worker_gets_only_matching_rows(
    database_url: URL, migrations: Path, dsn: str
) -> None:
    at_artifact(CURRENT_VERSION, database_url, migrations)
    seen: list[Event] = []
    app = user_app(database_url, migrations, STATUS_CHANGED, seen)
    flask_db(app, "migrate", "-m", "status changes")
    upgrade = op_lines(revisions(migrations)[-1], "upgrade")
    assert upgrade[-1] == (
        "op.create_pgevent_trigger('user', events=('insert', 'update'), "
        f"when={{'update': {STATUS_CHANGED!r}}}, version={CURRENT_VERSION})"
    )
    flask_db(app, "upgrade")
    flask_db(app, "check")

    execute(
        dsn,
        """INSERT INTO "user" (id, email, status) VALUES (1, 'a@x', 'new'), (2, 'b@x', 'new')""",
        """UPDATE "user" SET email = 'c@x'""",
        """UPDATE "user" SET status = 'paid' WHERE id = 2""",
    )
    pgevents: PGEvents = app.extensions["pgevents"]
    with app.app_context():
        pgevents.handle_events()
    assert [(event.row_id, event.new, event.changed) for event in seen] == [(2, None, None)]

    # Another condition in the code is drift, which check reports and migrate replaces.
    changed = user_app(database_url, migrations, "new.status = 'paid'", [])
    result = flask_db(changed, "check", expect_exit=1)
    assert "pgevent_trigger" in result.output
    status = changed.test_cli_runner().invoke(args=["pgevents", "status"])
    assert status.exit_code == 1 and "drift" in status.output, status.output
    assert f"when[update]={STATUS_CHANGED!r}" in status.output
    assert "when[update]=\"new.status = 'paid'\"" in status.output
    flask_db(changed, "migrate", "-m", "paid only")
    assert [line.split("(", 1)[0] for line in op_lines(revisions(migrations)[-1], "upgrade")] == [
        "op.drop_pgevent_trigger",
        "op.create_pgevent_trigger",
    ]


def test_flask_db_upgrade_names_the_table_when_the_condition_is_invalid(
    database_url: URL, migrations: Path
) -> None:
    at_artifact(CURRENT_VERSION, database_url, migrations)
    app = user_app(database_url, migrations, "new.state = 'paid'", [])
    flask_db(app, "migrate", "-m", "a misspelt column")
    result = flask_db(app, "upgrade", expect_exit=1)
    message = result.output
    assert 'when= condition of update events on table "user" is not valid' in message
    assert "column new.state does not exist" in message
