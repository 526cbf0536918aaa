"""The Alembic operations: up, down, reverse, offline SQL and rendering."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import render_op_text
from alembic.migration import MigrationContext
from alembic.operations import Operations

import alembic_ops
from alembic_ops import (
    CURRENT_VERSION,
    ArtifactVersionError,
    CreatePGEventTriggerOp,
    DowngradePGEventsOp,
    DropPGEventTriggerOp,
    InstallPGEventsOp,
    InvalidIdentifierError,
    InvalidTriggerSpecError,
    MissingArtifactVersionError,
    RefusedOperationError,
    TriggerSpec,
    UninstallPGEventsOp,
    UnknownArtifactVersionError,
    UpgradePGEventsOp,
    artifacts,
)
from alembic_ops.core.catalog import read_installed
from alembic_ops.core.names import LOG_VERSION
from alembic_ops.manifest import ALL_VERSIONS, DRAFT_VERSIONS, VERSIONS
from pgevents_migrate.queue import EventQueue
from tests.apps import JOB_TABLE_VERSION
from tests.pg import RunOps, events, execute, fetch

STATE_SQL = """
SELECT 'trigger', c.relname || '.' || t.tgname || ':' || t.tgtype || ':' || encode(t.tgargs, 'escape')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function', n.nspname || '.' || p.proname || ':' || md5(p.prosrc)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'pgevents%'
UNION ALL
SELECT 'relation', n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'pgevents%'
UNION ALL
SELECT 'schema', nspname FROM pg_namespace WHERE nspname LIKE 'pgevents%'
ORDER BY 1, 2
"""


def offline_sql(body: Callable[[Operations], None]) -> str:
    """What ``upgrade --sql`` prints for ``body``'s operations."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    body(Operations(context))
    return buffer.getvalue()


#: The main tables each kind of event log installs.
LOG_RELATIONS = {
    JOB_TABLE_VERSION: {"pgevents.event", "pgevents.dead_letter", "pgevents.processed", "pgevents.sleeper"},
    LOG_VERSION: {
        "pgevents.event",
        *(f"pgevents.event_{generation}" for generation in range(4)),
        "pgevents.consumer_group",
        "pgevents.group_cursor",
        "pgevents.retry",
        "pgevents.dead_letter",
        "pgevents.sleeper",
    },
}


@pytest.mark.parametrize("version", [JOB_TABLE_VERSION, CURRENT_VERSION])
def test_install_and_uninstall_round_trip(run_ops: RunOps, dsn: str, version: int) -> None:
    empty = fetch(dsn, STATE_SQL)
    run_ops(lambda op: op.install_pgevents(version=version))
    installed = fetch(dsn, STATE_SQL)
    assert ("schema", "pgevents") in installed
    log_kind = LOG_VERSION if version >= LOG_VERSION else JOB_TABLE_VERSION
    assert {name for kind, name in installed if kind == "relation"} >= LOG_RELATIONS[log_kind]
    assert fetch(dsn, "SELECT obj_description('pgevents.capture()'::regprocedure)") == [
        (f"pgevents-migrate artifact {version}",)
    ]
    run_ops(lambda op: op.uninstall_pgevents(version=version))
    assert fetch(dsn, STATE_SQL) == empty
    run_ops(lambda op: op.install_pgevents(version=version))
    assert fetch(dsn, STATE_SQL) == installed


def test_uninstall_keeps_a_schema_it_did_not_create(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE SCHEMA pgevents", "CREATE TABLE pgevents.mine (id int)")
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    run_ops(lambda op: op.uninstall_pgevents(version=CURRENT_VERSION))
    assert fetch(dsn, "SELECT count(*) FROM pgevents.mine") == [(0,)]
    execute(dsn, "DROP TABLE pgevents.mine")
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    run_ops(lambda op: op.uninstall_pgevents(version=CURRENT_VERSION))
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgevents'") == [(1,)]


def test_uninstall_refuses_while_triggers_use_the_function(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    run_ops(lambda op: op.create_pgevent_trigger("t", version=CURRENT_VERSION))
    with pytest.raises(Exception, match="other objects depend on it"):
        run_ops(lambda op: op.uninstall_pgevents(version=CURRENT_VERSION))
    execute(dsn, "INSERT INTO t VALUES (1)")
    assert len(events(dsn)) == 1


def test_trigger_up_down_up_leaves_catalogs_identical(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, 'CREATE SCHEMA "Sales"', 'CREATE TABLE "Sales"."Order" (id int PRIMARY KEY, a int)')
    run_ops(lambda op: op.install_pgevents(version=CURRENT_VERSION))
    before = fetch(dsn, STATE_SQL)
    options = {"schema": "Sales", "events": ("insert", "update"), "columns": ["a"], "images": True}
    run_ops(lambda op: op.create_pgevent_trigger("Order", **options, version=CURRENT_VERSION))
    created = fetch(dsn, STATE_SQL)
    assert [name for kind, name in created if kind == "trigger"] == [
        "Order.pgevents_insert:4:queue\\000images\\0001\\000id\\000",
        "Order.pgevents_update:16:queue\\000images\\0001\\000id\\000a\\000",
    ]
    run_ops(lambda op: op.drop_pgevent_trigger("Order", **options, version=CURRENT_VERSION))
    assert fetch(dsn, STATE_SQL) == before
    run_ops(lambda op: op.create_pgevent_trigger("Order", **options, version=CURRENT_VERSION))
    assert fetch(dsn, STATE_SQL) == created


def test_reverse_and_diff_tuples() -> None:
    create = CreatePGEventTriggerOp(
        TriggerSpec("t", schema="s", events=("after_update", "insert"), columns=("b", "a"))
    )
    drop = create.reverse()
    assert isinstance(drop, DropPGEventTriggerOp)
    assert drop.spec == create.spec and drop.version == create.version
    assert drop.reverse() == create
    assert create.spec.events == ("insert", "update") and create.spec.columns == ("a", "b")
    assert create.to_diff_tuple() == ("add_pgevent_trigger", create.spec)
    assert drop.to_diff_tuple() == ("remove_pgevent_trigger", create.spec)
    install = InstallPGEventsOp("ev", 1)
    assert install.reverse() == UninstallPGEventsOp("ev", 1)
    assert install.reverse().reverse() == install
    assert install.to_diff_tuple() == ("install_pgevents", "ev", 1)
    upgrade = UpgradePGEventsOp("ev", from_version=1, to_version=2)
    assert upgrade.reverse() == DowngradePGEventsOp("ev", from_version=2, to_version=1)
    assert upgrade.reverse().reverse() == upgrade
    assert upgrade.to_diff_tuple() == ("upgrade_pgevents", "ev", 1, 2)
    assert upgrade.reverse().to_diff_tuple() == ("downgrade_pgevents", "ev", 2, 1)
    with pytest.raises(
        ArtifactVersionError, match="to_version \\(1\\) must be newer than from_version \\(2\\)"
    ):
        UpgradePGEventsOp(from_version=2, to_version=1)
    with pytest.raises(ArtifactVersionError, match="must be older"):
        DowngradePGEventsOp(from_version=2, to_version=2)
    with pytest.raises(UnknownArtifactVersionError):
        UpgradePGEventsOp(from_version=1, to_version=ALL_VERSIONS[-1] + 1)


def test_a_draft_version_needs_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A draft's SQL may change: no migration may use it unless PGEVENTS_DRAFT_ARTIFACTS=1."""
    for draft in DRAFT_VERSIONS:
        assert draft > alembic_ops.CURRENT_VERSION
        monkeypatch.setenv("PGEVENTS_DRAFT_ARTIFACTS", "0")
        with pytest.raises(UnknownArtifactVersionError, match=f"version {draft} is a draft"):
            InstallPGEventsOp("ev", draft)
        monkeypatch.setenv("PGEVENTS_DRAFT_ARTIFACTS", "1")
        assert InstallPGEventsOp("ev", draft).version == draft


def test_offline_sql_is_runnable(dsn: str) -> None:
    schema, table, column = "Odd %s :name", "it's %(x)s", "a::b := %"
    sql = offline_sql(
        lambda op: (
            op.install_pgevents(version=CURRENT_VERSION),
            op.create_pgevent_trigger(
                table, schema=schema, columns=[column], images=True, version=CURRENT_VERSION
            ),
        )
    )
    assert "%%" not in sql
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        ident = psycopg2.sql.Identifier
        cur.execute(psycopg2.sql.SQL("CREATE SCHEMA {}").format(ident(schema)))
        cur.execute(
            psycopg2.sql.SQL("CREATE TABLE {}.{} (id int PRIMARY KEY, {} int)").format(
                ident(schema), ident(table), ident(column)
            )
        )
        cur.execute(sql)  # no parameters: the text goes to the server as printed
        cur.execute(psycopg2.sql.SQL("INSERT INTO {}.{} VALUES (1, 2)").format(ident(schema), ident(table)))
    conn.close()
    (event,) = events(dsn)
    assert (event["schema_name"], event["table_name"], event["new"]) == (schema, table, {"id": 1, column: 2})
    down = offline_sql(
        lambda op: (
            op.drop_pgevent_trigger(table, schema=schema, version=CURRENT_VERSION),
            op.uninstall_pgevents(version=CURRENT_VERSION),
        )
    )
    with pytest.raises(psycopg2.errors.RaiseException, match="holds 1 undelivered event"):
        execute(dsn, down)  # the printed guard refuses to drop a pending event
    assert len(events(dsn)) == 1
    down = offline_sql(
        lambda op: (
            op.drop_pgevent_trigger(table, schema=schema, version=CURRENT_VERSION),
            op.uninstall_pgevents(discard_events=True, version=CURRENT_VERSION),
        )
    )
    execute(dsn, down)  # no parameters: run as printed
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgevents'") == [(0,)]


def test_migration_replays_the_version_it_was_rendered_with() -> None:
    sql = offline_sql(lambda op: op.install_pgevents(version=1))
    assert "'pgevents-migrate artifact 1'" in sql
    with pytest.raises(UnknownArtifactVersionError, match="version 99 is not shipped"):
        offline_sql(lambda op: op.install_pgevents(version=99))
    with pytest.raises(UnknownArtifactVersionError):
        CreatePGEventTriggerOp(TriggerSpec("t"), version=0)


#: The argument sets every version is rendered with for its pins: two event
#: schemas; tables with and without a schema (hostile names included), keys
#: only or row images, with and without an update filter, queue and broadcast,
#: all events or some. Single-column or composite keys are resolved when the
#: SQL runs, so the tests in test_versions.py cover those.
PINNED_SCHEMAS = ("pgevents", "ev_2")
PINNED_SPECS = (
    TriggerSpec("item"),
    TriggerSpec("Order", schema="Sales", columns=("a",), images=True),
    TriggerSpec(
        'Order "x"',
        schema="it's",
        events=("insert", "update"),
        columns=("b", "a"),
        delivery="broadcast",
        pgevents_schema="ev_2",
    ),
    TriggerSpec("pair", events=("delete",), images=True, pgevents_schema="ev_2"),
    TriggerSpec(
        "it's %(x)s",
        schema="Odd %s :name",
        events=("update", "delete"),
        columns=("a::b := %",),
        delivery="broadcast",
        images=True,
    ),
)
#: Per operation: the statements it renders for every argument set.
PINNED_OPERATIONS: dict[str, Callable[[int], list[str]]] = {
    "install": lambda v: [artifacts.install_sql(s, v) for s in PINNED_SCHEMAS],
    "uninstall": lambda v: [artifacts.uninstall_sql(s, v) for s in PINNED_SCHEMAS],
    "check_no_events": lambda v: [artifacts.check_no_events_sql(s, v) for s in PINNED_SCHEMAS],
    "check_table": lambda v: [artifacts.check_table_sql(spec, v) for spec in PINNED_SPECS],
    "create": lambda v: [sql for spec in PINNED_SPECS for sql in artifacts.create_trigger_sql(spec, v)],
    "drop": lambda v: [sql for spec in PINNED_SPECS for sql in artifacts.drop_trigger_sql(spec, v)],
    "upgrade": lambda v: [sql for s in PINNED_SCHEMAS for sql in artifacts.change_version_sql(s, v - 1, v)],
    "downgrade": lambda v: [sql for s in PINNED_SCHEMAS for sql in artifacts.change_version_sql(s, v, v - 1)],
}


def rendered_digests(version: int) -> dict[tuple[int, str], str]:
    """sha256 of what each operation of ``version`` renders for the pinned argument sets."""
    return {
        (version, operation): hashlib.sha256("\x00".join(render(version)).encode()).hexdigest()
        for operation, render in PINNED_OPERATIONS.items()
        if version > 1 or operation not in ("upgrade", "downgrade")
    }


#: What ``rendered_digests`` gave for each version when it was released: a
#: released version's SQL must never change, because old migrations replay it.
#: A new version adds its digests there with ``python -m tests.test_ops``,
#: which never changes the digests of a version already pinned.
RELEASED_SQL = Path(__file__).with_name("released_sql.json")


def released_digests() -> dict[tuple[int, str], str]:
    """The pinned digests, by (version, operation)."""
    pinned = json.loads(RELEASED_SQL.read_text(encoding="utf-8"))
    return {(int(v), op): digest for v, ops in pinned.items() for op, digest in ops.items()}


@pytest.mark.parametrize("version", VERSIONS)
def test_released_versions_render_byte_identically(version: int) -> None:
    rendered = rendered_digests(version)
    pinned = {key: digest for key, digest in released_digests().items() if key[0] == version}
    assert pinned, f"version {version} is not pinned yet: run python -m tests.test_ops to pin it"
    assert rendered == pinned


def test_upgrade_and_downgrade_keep_events_and_triggers(run_ops: RunOps, dsn: str) -> None:
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY, a int)")
    run_ops(lambda op: (op.install_pgevents(version=1), op.create_pgevent_trigger("item", version=1)))
    at_v1 = fetch(dsn, STATE_SQL)
    execute(dsn, "INSERT INTO item VALUES (1, 1)")

    run_ops(lambda op: op.upgrade_pgevents(from_version=1, to_version=2))
    at_v2 = fetch(dsn, STATE_SQL)
    assert fetch(dsn, "SELECT obj_description('pgevents.capture()'::regprocedure)") == [
        ("pgevents-migrate artifact 2",)
    ]
    assert [row for row in at_v2 if row[0] != "function"] == [row for row in at_v1 if row[0] != "function"]
    # The upgraded function is the one a fresh install of version 2 creates.
    run_ops(lambda op: op.install_pgevents(schema="pgevents_fresh", version=2))
    sources = fetch(
        dsn,
        "SELECT DISTINCT replace(prosrc, 'pgevents_fresh', 'pgevents') FROM pg_proc"
        " WHERE proname = 'capture'",
    )
    assert len(sources) == 1
    execute(dsn, "UPDATE item SET a = 2", "DELETE FROM item")
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [
        ("insert", {"id": 1}),
        ("update", {"id": 1}),
        ("delete", {"id": 1}),
    ]
    run_ops(lambda op: op.uninstall_pgevents(schema="pgevents_fresh", version=2))

    run_ops(lambda op: op.downgrade_pgevents(from_version=2, to_version=1))
    assert fetch(dsn, STATE_SQL) == at_v1
    assert len(events(dsn)) == 3
    execute(dsn, "INSERT INTO item VALUES (2, 1)")
    assert len(events(dsn)) == 4


LONG = "x" * 63
GENERATED_SQL = """
SELECT c.relname, t.tgname, t.tgfoid::regprocedure::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal ORDER BY 1, 2
"""


@pytest.mark.parametrize("version", [JOB_TABLE_VERSION, CURRENT_VERSION])
def test_triggers_get_capture_functions_of_their_own(run_ops: RunOps, dsn: str, version: int) -> None:
    """Artifacts 3 and 4: single-key triggers without images or a filter; from 5 on, every trigger."""
    execute(
        dsn,
        "CREATE SCHEMA other",
        "CREATE TABLE item (id int PRIMARY KEY, a int)",
        "CREATE TABLE other.item (id int PRIMARY KEY)",
        "CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b))",
        "CREATE TABLE imaged (id int PRIMARY KEY)",
        f'CREATE TABLE "{LONG}" (id int PRIMARY KEY)',
    )
    run_ops(
        lambda op: (
            op.install_pgevents(version=version),
            op.create_pgevent_trigger("item", events=("insert", "update"), version=version),
            op.create_pgevent_trigger(
                "item", schema="other", events="insert", delivery="broadcast", version=version
            ),
            op.create_pgevent_trigger("pair", events="insert", version=version),
            op.create_pgevent_trigger("imaged", events="insert", images=True, version=version),
            op.create_pgevent_trigger(LONG, events="insert", version=version),
        )
    )
    generic = "pgevents.capture()"
    all_own = version >= LOG_VERSION
    assert fetch(dsn, GENERATED_SQL) == [
        ("imaged", "pgevents_insert", "pgevents.capture_imaged_insert()" if all_own else generic),
        ("item", "pgevents_insert", "pgevents.capture_item_insert()"),
        ("item", "pgevents_insert", "pgevents.capture_item_insert_2()"),
        ("item", "pgevents_update", "pgevents.capture_item_update()"),
        ("pair", "pgevents_insert", "pgevents.capture_pair_insert()" if all_own else generic),
        (LONG, "pgevents_insert", f"pgevents.capture_{LONG[:40]}_insert()"),
    ]
    assert fetch(dsn, "SELECT obj_description('pgevents.capture_item_insert_2()'::regprocedure)") == [
        ("pgevents-migrate capture of other.item insert",)
    ]
    with pytest.raises(sa.exc.InternalError, match=r"trigger pgevents_insert on table \w+ depends on"):
        run_ops(lambda op: op.uninstall_pgevents(version=version))
    run_ops(lambda op: op.drop_pgevent_trigger("item", events="update", version=version))
    assert "pgevents.capture_item_update()" not in [row[2] for row in fetch(dsn, GENERATED_SQL)]
    execute(dsn, "DROP TABLE item, pair, imaged, other.item")
    run_ops(
        lambda op: (
            op.drop_pgevent_trigger(LONG, events="insert", version=version),
            op.uninstall_pgevents(version=version),
        )
    )
    assert fetch(dsn, STATE_SQL) == []


def test_upgrade_to_3_and_back_keeps_events_and_specs(run_ops: RunOps, engine: sa.Engine, dsn: str) -> None:
    odd = 'it\'s é,\\ "x"'  # arguments must survive the re-creation byte for byte
    quoted = '"' + odd.replace('"', '""') + '"'
    execute(
        dsn,
        "CREATE TABLE item (id int PRIMARY KEY, a int)",
        "CREATE TABLE imaged (id int PRIMARY KEY)",
        f'CREATE TABLE "ключ" ({quoted} int PRIMARY KEY)',
    )
    run_ops(
        lambda op: (
            op.install_pgevents(version=2),
            op.create_pgevent_trigger("item", version=2),
            op.create_pgevent_trigger("imaged", events="insert", images=True, version=2),
            op.create_pgevent_trigger("ключ", events=("insert", "update"), columns=[odd], version=2),
        )
    )
    execute(dsn, "INSERT INTO item VALUES (1, 1)")
    at_v2 = fetch(dsn, STATE_SQL)
    with engine.connect() as conn:
        specs_v2 = {key: table.spec() for key, table in read_installed(conn, "public").tables.items()}

    execute(dsn, offline_sql(lambda op: op.upgrade_pgevents(from_version=2, to_version=3)))
    assert [row[2] for row in fetch(dsn, GENERATED_SQL)] == [
        "pgevents.capture()",
        "pgevents.capture_item_delete()",
        "pgevents.capture_item_insert()",
        "pgevents.capture_item_update()",
        'pgevents."capture_ключ_insert"()',
        "pgevents.capture()",
    ]
    with engine.connect() as conn:
        installed = read_installed(conn, "public")
    assert installed.artifacts == {"pgevents": 3}
    assert {key: table.spec() for key, table in installed.tables.items()} == specs_v2
    execute(
        dsn,
        "UPDATE item SET a = 2",
        "DELETE FROM item",
        "INSERT INTO imaged VALUES (7)",
        'INSERT INTO "ключ" VALUES (8)',
    )
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [
        ("insert", {"id": 1}),
        ("update", {"id": 1}),
        ("delete", {"id": 1}),
        ("insert", {"id": 7}),
        ("insert", {odd: 8}),
    ]

    run_ops(lambda op: op.downgrade_pgevents(from_version=3, to_version=2))
    assert fetch(dsn, STATE_SQL) == at_v2
    assert len(events(dsn)) == 5


def test_upgrade_to_3_leaves_a_drifted_key_on_the_generic_function(run_ops: RunOps, dsn: str) -> None:
    """A key renamed under artifact 2 must not start failing writes when the upgrade runs."""
    execute(dsn, "CREATE TABLE item (id int PRIMARY KEY)")
    run_ops(lambda op: (op.install_pgevents(version=2), op.create_pgevent_trigger("item", version=2)))
    execute(dsn, "ALTER TABLE item RENAME COLUMN id TO ident")
    run_ops(lambda op: op.upgrade_pgevents(from_version=2, to_version=3))
    assert {row[2] for row in fetch(dsn, GENERATED_SQL)} == {"pgevents.capture()"}
    execute(dsn, "INSERT INTO item VALUES (1)")
    assert [e["pk"] for e in events(dsn)] == [{"id": None}]


SOURCES_SQL = """
SELECT t.tgrelid::regclass::text, t.tgname, p.prosrc
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal ORDER BY 1, 2
"""
NOT_NULL_SQL = """
SELECT attrelid::regclass::text, attname FROM pg_attribute
 WHERE attrelid::regclass::text LIKE '%.event' AND attnum > 0 AND attnotnull ORDER BY 1, attnum
"""


def test_upgrade_to_4_and_back(run_ops: RunOps, dsn: str) -> None:
    """Generated functions read the flag sequence; event rows skip NOT NULL checks; all of it undone."""
    execute(
        dsn,
        "CREATE TABLE item (id int PRIMARY KEY, a int)",
        "CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b))",
    )
    run_ops(
        lambda op: (
            op.install_pgevents(version=3),
            op.create_pgevent_trigger("item", version=3),
            op.create_pgevent_trigger("pair", events="insert", version=3),
        )
    )
    execute(dsn, "INSERT INTO item VALUES (1, 1)")
    worker = f"pgevents_worker_{uuid.uuid4().hex[:8]}"
    execute(dsn, f"CREATE ROLE {worker}", f"GRANT SELECT, INSERT, DELETE ON pgevents.sleeper TO {worker}")
    at_v3 = fetch(dsn, STATE_SQL), fetch(dsn, SOURCES_SQL), fetch(dsn, NOT_NULL_SQL)

    run_ops(lambda op: op.upgrade_pgevents(from_version=3, to_version=4))
    # Roles that maintain sleeper rows may set the flag; everyone may read it.
    privileges = "SELECT has_sequence_privilege(%s, 'pgevents.sleeping', %s)"
    assert fetch(dsn, privileges, (worker, "UPDATE")) == [(True,)]
    assert fetch(dsn, privileges, ("public", "SELECT")) == [(True,)]
    assert fetch(dsn, privileges, ("public", "UPDATE")) == [(False,)]
    execute(dsn, f"DROP OWNED BY {worker}", f"DROP ROLE {worker}")
    sources = {(table, trigger): source for table, trigger, source in fetch(dsn, SOURCES_SQL)}
    for event in ("insert", "update", "delete"):
        assert "pg_sequence_last_value('pgevents.sleeping') > 0" in sources["item", f"pgevents_{event}"]
    assert "FROM pgevents.sleeper" in sources["pair", "pgevents_insert"]  # the generic capture()
    # The same catalog as a fresh install of version 4.
    run_ops(lambda op: op.install_pgevents(schema="pgevents_fresh", version=4))
    assert fetch(dsn, NOT_NULL_SQL) == [("pgevents.event", "id"), ("pgevents_fresh.event", "id")]
    assert fetch(dsn, "SELECT last_value, is_called FROM pgevents.sleeping") == [(0, True)]
    execute(dsn, "UPDATE item SET a = 2", "DELETE FROM item", "INSERT INTO pair VALUES (1, 2)")
    assert [(e["op"], e["pk"]) for e in events(dsn)] == [
        ("insert", {"id": 1}),
        ("update", {"id": 1}),
        ("delete", {"id": 1}),
        ("insert", {"a": 1, "b": 2}),
    ]
    run_ops(lambda op: op.uninstall_pgevents(schema="pgevents_fresh", version=4))

    run_ops(lambda op: op.downgrade_pgevents(from_version=4, to_version=3))
    assert (fetch(dsn, STATE_SQL), fetch(dsn, SOURCES_SQL), fetch(dsn, NOT_NULL_SQL)) == at_v3
    assert len(events(dsn)) == 4
    # Workers of this release still sleep on artifact 3: only the row, no flag.
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True
        EventQueue("pgevents").sleep(conn)
        assert fetch(dsn, "SELECT count(*) FROM pgevents.sleeper") == [(1,)]


def test_version_change_refuses_a_database_at_another_version(run_ops: RunOps, dsn: str) -> None:
    run_ops(lambda op: op.install_pgevents(version=2))
    before = fetch(dsn, STATE_SQL)
    with pytest.raises(
        Exception, match="holds 'pgevents-migrate artifact 2', expected 'pgevents-migrate artifact 1'"
    ):
        run_ops(lambda op: op.upgrade_pgevents(from_version=1, to_version=2))
    with pytest.raises(RefusedOperationError, match="holds no pgevents capture function"):
        run_ops(lambda op: op.downgrade_pgevents(schema="elsewhere", from_version=2, to_version=1))
    assert fetch(dsn, STATE_SQL) == before


def test_offline_version_change_is_runnable(run_ops: RunOps, dsn: str) -> None:
    run_ops(lambda op: op.install_pgevents(version=1))
    at_v1 = fetch(dsn, STATE_SQL)
    execute(dsn, offline_sql(lambda op: op.upgrade_pgevents(from_version=1, to_version=2)))
    assert fetch(dsn, "SELECT obj_description('pgevents.capture()'::regprocedure)") == [
        ("pgevents-migrate artifact 2",)
    ]
    execute(dsn, offline_sql(lambda op: op.downgrade_pgevents(from_version=2, to_version=1)))
    assert fetch(dsn, STATE_SQL) == at_v1


def test_rendered_operations_are_literal_and_import_the_package() -> None:
    context = AutogenContext(MigrationContext.configure(dialect_name="postgresql"))
    create = CreatePGEventTriggerOp(
        TriggerSpec(
            "Order", schema="Sales", events=("update",), columns=("email",), delivery="broadcast", images=True
        )
    )
    assert render_op_text(context, create) == (
        "op.create_pgevent_trigger('Order', schema='Sales', events=('update',), columns=('email',), "
        f"delivery='broadcast', images=True, version={CURRENT_VERSION})"
    )
    assert render_op_text(context, create.reverse()).startswith("op.drop_pgevent_trigger('Order', ")
    assert (
        render_op_text(context, InstallPGEventsOp())
        == f"op.install_pgevents(schema='pgevents', version={CURRENT_VERSION})"
    )
    assert (
        render_op_text(context, UninstallPGEventsOp())
        == f"op.uninstall_pgevents(schema='pgevents', version={CURRENT_VERSION})"
    )
    upgrade = UpgradePGEventsOp("ev", from_version=1, to_version=2)
    assert (
        render_op_text(context, upgrade) == "op.upgrade_pgevents(schema='ev', from_version=1, to_version=2)"
    )
    assert (
        render_op_text(context, upgrade.reverse())
        == "op.downgrade_pgevents(schema='ev', from_version=2, to_version=1)"
    )
    assert any(line.startswith("import alembic_ops") for line in context.imports)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"table_name": ""}, InvalidIdentifierError, "table name must not be empty"),
        ({"table_name": "t" * 64}, InvalidIdentifierError, "64 bytes long; PostgreSQL would truncate"),
        ({"table_name": "é" * 32}, InvalidIdentifierError, "64 bytes long"),
        ({"table_name": "t", "schema": "a\x00b"}, InvalidIdentifierError, "NUL"),
        ({"table_name": "t", "events": ["upsert"]}, InvalidTriggerSpecError, "unknown event 'upsert'"),
        ({"table_name": "t", "events": []}, InvalidTriggerSpecError, "no events given"),
        ({"table_name": "t", "delivery": "email"}, InvalidTriggerSpecError, "unknown delivery 'email'"),
        ({"table_name": "t", "events": "insert", "columns": ["a"]}, InvalidTriggerSpecError, "filter update"),
        ({"table_name": "t", "columns": "email"}, InvalidTriggerSpecError, "not the string 'email'"),
        ({"table_name": "t", "pgevents_schema": "ev-ents"}, InvalidIdentifierError, "letters, digits"),
        ({"table_name": "t", "pgevents_schema": "e" * 60}, InvalidIdentifierError, "too long"),
    ],
)
def test_bad_input_gets_a_clear_error(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        offline_sql(lambda op: op.create_pgevent_trigger(**kwargs, version=CURRENT_VERSION))


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda op: op.install_pgevents(), "op.install_pgevents(schema='pgevents') needs version="),
        (lambda op: op.uninstall_pgevents(schema="ev"), "op.uninstall_pgevents(schema='ev') needs version="),
        (lambda op: op.create_pgevent_trigger("user"), "op.create_pgevent_trigger('user') needs version="),
        (lambda op: op.drop_pgevent_trigger("user"), "op.drop_pgevent_trigger('user') needs version="),
    ],
    ids=["install", "uninstall", "create", "drop"],
)
def test_a_migration_must_name_the_artifact_version(call: Callable[[Operations], None], named: str) -> None:
    with pytest.raises(MissingArtifactVersionError, match=re.escape(named)) as raised:
        offline_sql(call)
    assert "so that it runs the same SQL after pgevents-migrate is upgraded" in str(raised.value)
    assert f"write version={CURRENT_VERSION}" in str(raised.value)


def test_package_imports_no_flask() -> None:
    import subprocess
    import sys

    code = "import sys, alembic_ops; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert alembic_ops.VERSIONS == VERSIONS and alembic_ops.CURRENT_VERSION == VERSIONS[-1]


if __name__ == "__main__":
    # Pin the versions not pinned yet; a pinned version's digests never change.
    pinned = json.loads(RELEASED_SQL.read_text(encoding="utf-8"))
    for version in VERSIONS:
        if str(version) not in pinned:
            pinned[str(version)] = {op: digest for (_, op), digest in rendered_digests(version).items()}
            print(f"pinned version {version} in {RELEASED_SQL}")
    RELEASED_SQL.write_text(json.dumps(pinned, indent=2) + "\n", encoding="utf-8")
