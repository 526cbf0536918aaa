"""One ``TriggerSpec`` carries a trigger's options: declaration, listener, rendered op, invoked op."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import render_op_text
from alembic.migration import MigrationContext
from alembic.operations import MigrateOperation, Operations
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from alembic_ops import (
    CURRENT_VERSION,
    CreatePGEventTriggerOp,
    DropPGEventTriggerOp,
    TriggerSpec,
    declared_specs,
)
from alembic_ops.render import OP_PARAMETERS
from pgevents_migrate import Event, PGEvents
from pgevents_migrate.queue import DeadLetter, EventQueue, QueueCounts, by_name
from tests.apps import JOB_TABLE_VERSION, install_declared
from tests.pg import execute

SPECS = [
    TriggerSpec("user"),
    TriggerSpec("order", schema="sales"),
    TriggerSpec('Odd "name"; DROP TABLE x; --', schema="Weird Schema"),
    TriggerSpec("doc", events=("update",), columns=("title", "body")),
    TriggerSpec("feed", delivery="broadcast"),
    TriggerSpec("audit", images=True),
    TriggerSpec("user", pgevents_schema="events_elsewhere"),
    TriggerSpec("item", events=("insert", "delete")),
    TriggerSpec(
        "all_options",
        schema="s",
        events=("delete", "update"),
        columns=("a",),
        delivery="broadcast",
        images=True,
        pgevents_schema="ev",
    ),
]


class RecordingOperations(Operations):
    """Real Alembic operations (offline: SQL to a buffer) that keep every op invoked."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        context = MigrationContext.configure(
            dialect_name="postgresql", opts={"as_sql": True, "output_buffer": self.buffer}
        )
        super().__init__(context)
        self.invoked: list[MigrateOperation] = []

    def invoke(self, operation: Any) -> Any:
        self.invoked.append(operation)
        return super().invoke(operation)


def run_rendered(text: str) -> RecordingOperations:
    """Execute one rendered ``op.<name>(...)`` line as a migration would."""
    operations = RecordingOperations()
    exec(text, {"op": operations})
    return operations


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.target}-{spec.pgevents_schema}")
@pytest.mark.parametrize("op_class", [CreatePGEventTriggerOp, DropPGEventTriggerOp])
def test_rendered_trigger_ops_invoke_the_same_spec(spec: TriggerSpec, op_class: type[Any]) -> None:
    rendered = op_class(spec, CURRENT_VERSION)
    text = render_op_text(AutogenContext(MigrationContext.configure(dialect_name="postgresql")), rendered)
    assert text.startswith(f"op.{op_class.name}({spec.table!r}, ")
    operations = run_rendered(text)
    # The op, then the statements its implementation runs through op.execute.
    invoked, *statements = operations.invoked
    assert statements and not any(isinstance(op, op_class) for op in statements)
    assert type(invoked) is op_class
    assert invoked.spec == spec
    assert invoked.version == CURRENT_VERSION
    assert invoked == rendered
    # The real implementation ran: it wrote the trigger SQL for this table.
    assert spec.table.replace('"', '""') in operations.buffer.getvalue()


def test_default_options_are_left_out_but_events_are_written() -> None:
    context = AutogenContext(MigrationContext.configure(dialect_name="postgresql"))
    text = render_op_text(context, CreatePGEventTriggerOp(TriggerSpec("user"), 3))
    assert text == "op.create_pgevent_trigger('user', events=('insert', 'update', 'delete'), version=3)"


def test_every_spec_field_is_a_parameter_of_the_trigger_ops() -> None:
    for op_class in (CreatePGEventTriggerOp, DropPGEventTriggerOp):
        parameters = inspect.signature(op_class.for_table).parameters
        for field in dataclasses.fields(TriggerSpec):
            name = OP_PARAMETERS.get(field.name, field.name)
            assert name in parameters, f"{op_class.name} has no parameter for TriggerSpec.{field.name}"
            if parameters[name].kind is inspect.Parameter.KEYWORD_ONLY:
                assert parameters[name].default == field.default, name


def _app(database_url: URL, **config: Any) -> tuple[Flask, SQLAlchemy]:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.render_as_string(hide_password=False)
    app.config.update(config)
    return app, SQLAlchemy(app)


@pytest.mark.parametrize("before_init", [False, True], ids=["after-init_app", "before-init_app"])
def test_a_listener_carries_the_spec_its_declaration_recorded(database_url: URL, before_init: bool) -> None:
    app, db = _app(database_url, PGEVENTS_SCHEMA="carrier_events")
    pgevents = PGEvents() if before_init else PGEvents(app, db)

    class Doc(db.Model):  # type: ignore[name-defined,misc]
        __table_args__ = ({"schema": "public"},)
        id = sa.Column(sa.Integer, primary_key=True)
        title = sa.Column(sa.String)

    @pgevents.listens_for(
        Doc, ["after_update", "INSERT"], columns=["title"], delivery="broadcast", images=True
    )
    def on_doc(event: Event) -> None:
        pass

    if before_init:
        pgevents.init_app(app, db)
    (listener,) = pgevents.listeners
    recorded = declared_specs(db.metadata)
    assert recorded == {("public", "doc"): listener.spec}
    assert listener.spec == TriggerSpec(
        "doc",
        schema="public",
        events=("insert", "update"),
        columns=("title",),
        delivery="broadcast",
        images=True,
        pgevents_schema="carrier_events",
    )
    assert listener.callback is on_doc and not listener.seed_style and listener.bind_key is None


def test_merged_declarations_still_dispatch_by_each_listeners_own_spec(database_url: URL, dsn: str) -> None:
    app, db = _app(database_url)
    pgevents = PGEvents(app, db)
    calls: list[tuple[str, str, tuple[str, ...] | None]] = []

    class Pair(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        a = sa.Column(sa.Integer)
        b = sa.Column(sa.Integer)
        c = sa.Column(sa.Integer)

    @pgevents.listens_for(Pair, "update", columns=("a",))
    def on_a(event: Event) -> None:
        calls.append(("on_a", event.op, event.changed))

    @pgevents.listens_for(Pair, ["update", "insert"], columns=("b",))
    def on_b(event: Event) -> None:
        calls.append(("on_b", event.op, event.changed))

    # One trigger captures what either wants; each listener keeps its own spec.
    (merged,) = declared_specs(db.metadata).values()
    assert (merged.events, merged.columns) == (("insert", "update"), ("a", "b"))
    assert [listener.spec.columns for listener in pgevents.listeners] == [("a",), ("b",)]
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            install_declared(conn, db.metadata)
        execute(
            dsn,
            "INSERT INTO pair VALUES (1, 0, 0, 0)",
            "UPDATE pair SET b = 1",
            "UPDATE pair SET c = 1",
            "UPDATE pair SET a = 1",
        )
        assert pgevents.handle_events() == 3
        db.engine.dispose()
    assert calls == [
        ("on_b", "insert", None),
        ("on_b", "update", ("b",)),
        ("on_a", "update", ("a",)),
    ]


@pytest.mark.parametrize("images", [False, True], ids=["keys", "images"])
def test_a_filter_beside_an_unfiltered_listener_holds_only_with_row_images(
    database_url: URL, dsn: str, images: bool
) -> None:
    """The caveat docs/runtime.md documents, and its workaround."""
    app, db = _app(database_url)
    pgevents = PGEvents(app, db)
    calls: list[tuple[str, tuple[str, ...] | None]] = []

    class Row(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)
        a = sa.Column(sa.Integer)
        b = sa.Column(sa.Integer)

    @pgevents.listens_for(Row, "update", columns=("a",), images=images)
    def on_a(event: Event) -> None:
        calls.append(("on_a", event.changed))

    @pgevents.listens_for(Row, "update")
    def on_any(event: Event) -> None:
        calls.append(("on_any", event.changed))

    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            install_declared(conn, db.metadata)
        execute(dsn, "INSERT INTO row VALUES (1, 0, 0)", "UPDATE row SET b = 1")
        assert pgevents.handle_events() == 1
        db.engine.dispose()
    if images:
        assert calls == [("on_any", ("b",))]
    else:
        assert calls == [("on_a", None), ("on_any", None)]


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_queue_rows_are_read_by_column_name(database_url: URL, dsn: str) -> None:
    """``EventQueue`` on artifact 4's job table: claims, dead letters and counts read by column name."""
    app, db = _app(database_url)
    pgevents = PGEvents(app, db)

    class Thing(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    pgevents.track(Thing, "insert")
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            install_declared(conn, db.metadata)
        db.engine.dispose()
    execute(dsn, "INSERT INTO thing VALUES (5)")
    queue = EventQueue("pgevents")
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        (claim,) = queue.claims_from_rows(queue.claim_rows(conn, 10, 30.0, (["public"], ["thing"])))
        queue.bury(conn, claim, "boom", [])
        (letter,) = queue.dead_letters(conn)
        counts = queue.counts(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS pending, 2 AS failed")
            with pytest.raises(
                ValueError, match=r"columns \('pending', 'failed'\); QueueCounts has the fields"
            ):
                by_name(cur, QueueCounts)
        conn.rollback()
    assert letter == DeadLetter(
        id=claim.event.id,
        op="insert",
        schema="public",
        table="thing",
        pk={"id": 5},
        attempts=1,
        error="boom",
        failed_at=letter.failed_at,
    )
    assert (counts.pending, counts.failed, counts.oldest_pending) == (0, 1, None)
    assert isinstance(counts.notification_queue_usage, float)
