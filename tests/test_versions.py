"""Every artifact version against the one before it, compared from the catalog.

The versions come from the manifest, so a new version is tested here without
touching this file: an upgrade must leave what a fresh install leaves, a
downgrade what a fresh install of the older version leaves, and the whole
chain nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import URL

from alembic_ops.manifest import ALL_VERSIONS, MANIFEST
from tests.conftest import temporary_database
from tests.pg import RunOps, events, execute, fetch, libpq_dsn

#: The newest version, the draft if there is one (the suite sets PGEVENTS_DRAFT_ARTIFACTS=1).
NEWEST = ALL_VERSIONS[-1]

#: Every non-system object, as (kind, name, details) text: schemas, relations
#: (tables, sequences, indexes) with their comments and grants, columns,
#: constraints, index and sequence definitions, functions with their source
#: and comments, triggers with their arguments.
SNAPSHOT_SQL = r"""
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema')
       AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
)
SELECT 'schema', n.nspname, jsonb_build_array(obj_description(n.oid, 'pg_namespace'), p.nspacl::text)::text
  FROM ns n JOIN pg_namespace p ON p.oid = n.oid
UNION ALL
SELECT 'relation', n.nspname || '.' || c.relname,
       jsonb_build_array(c.relkind, c.relpersistence, obj_description(c.oid, 'pg_class'),
                         c.relacl::text)::text
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
       jsonb_build_array(a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                         pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum))::text
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN ns n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', n.nspname || '.' || o.conname, pg_get_constraintdef(o.oid)
  FROM pg_constraint o JOIN ns n ON n.oid = o.connamespace
UNION ALL
SELECT 'index', n.nspname || '.' || c.relname, pg_get_indexdef(c.oid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'sequence', n.nspname || '.' || c.relname,
       jsonb_build_array(s.seqtypid::regtype::text, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                         s.seqcycle)::text
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       jsonb_build_array(p.prorettype::regtype::text, l.lanname, p.prosrc, obj_description(p.oid, 'pg_proc'),
                         p.provolatile, p.proconfig::text, p.proacl::text)::text
  FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text || '.' || t.tgname,
       jsonb_build_array(t.tgtype, t.tgenabled, t.tgfoid::regprocedure::text, encode(t.tgargs, 'escape'),
                         t.tgoldtable, t.tgnewtable, pg_get_triggerdef(t.oid))::text
  FROM pg_trigger t WHERE NOT t.tgisinternal
ORDER BY 1, 2, 3
"""

#: A table name that needs quoting, quoted.
ODD = '"Odd ""x"""'
#: Tables for every kind of trigger: single-column and composite keys, row
#: images, an update filter, broadcast delivery, a name that needs quoting.
TABLES = (
    "CREATE SCHEMA app",
    "CREATE TABLE app.item (id int PRIMARY KEY, a int)",
    "CREATE TABLE pair (a int, b int, c int, PRIMARY KEY (a, b))",
    "CREATE TABLE imaged (id int PRIMARY KEY, a int, b int)",
    "CREATE TABLE feed (id uuid PRIMARY KEY, a int)",
    f"CREATE TABLE {ODD} (k text, n int, v int, PRIMARY KEY (k, n))",
)
WRITES = (
    "INSERT INTO app.item VALUES (1, 1), (2, 2)",
    "UPDATE app.item SET a = a + 1",
    "DELETE FROM app.item WHERE id = 1",
    "INSERT INTO pair VALUES (1, 2, 3)",
    "UPDATE pair SET c = 4",
    "INSERT INTO imaged VALUES (1, 1, 1)",
    "UPDATE imaged SET b = 2",
    "UPDATE imaged SET a = 2",
    "DELETE FROM imaged",
    "INSERT INTO feed VALUES ('00000000-0000-0000-0000-000000000001', 1)",
    f"INSERT INTO {ODD} VALUES ('a', 1, 1)",
    f"DELETE FROM {ODD}",
)


#: The triggers every snapshot has: (table, options of op.create_pgevent_trigger).
TRIGGERS: list[tuple[str, dict[str, Any]]] = [
    ("item", {"schema": "app"}),
    ("pair", {"events": ("insert", "update")}),
    ("imaged", {"images": True, "columns": ["a"]}),
    ("feed", {"delivery": "broadcast"}),
    ('Odd "x"', {"events": ("insert", "delete"), "delivery": "broadcast", "images": True}),
]


def install(version: int) -> Callable[[Operations], None]:
    """Install ``version`` and create the triggers of every kind with it."""

    def body(op: Operations) -> None:
        op.install_pgevents(version=version)
        for table, options in TRIGGERS:
            op.create_pgevent_trigger(table, **options, version=version)

    return body


def uninstall(version: int) -> Callable[[Operations], None]:
    """Drop the triggers ``install`` created, then the artifact."""

    def body(op: Operations) -> None:
        for table, options in TRIGGERS:
            op.drop_pgevent_trigger(table, **options, version=version)
        op.uninstall_pgevents(version=version)

    return body


def snapshot(dsn: str) -> list[tuple[Any, ...]]:
    return fetch(dsn, SNAPSHOT_SQL)


def written(dsn: str) -> list[tuple[Any, ...]]:
    """What ``WRITES`` captured, without ids and times."""
    execute(dsn, *WRITES)
    fields = ("op", "schema_name", "table_name", "pk", "old", "new", "changed")
    return [tuple(event[field] for field in fields) for event in events(dsn)]


@pytest.fixture
def fresh(server_url: URL) -> Iterator[tuple[str, RunOps]]:
    """A second fresh database with the tables: its DSN, and ``run_ops`` on it."""
    with temporary_database(server_url) as url:
        engine = sa.create_engine(url, poolclass=sa.NullPool)

        def run(body: Callable[[Operations], None]) -> None:
            with engine.begin() as conn:
                body(Operations(MigrationContext.configure(conn)))

        execute(libpq_dsn(url), *TABLES)
        yield libpq_dsn(url), run
        engine.dispose()


@pytest.mark.parametrize("version", ALL_VERSIONS[1:])
def test_a_version_step_equals_a_fresh_install(
    version: int, run_ops: RunOps, dsn: str, fresh: tuple[str, RunOps]
) -> None:
    """Upgrading from the version before equals installing this one; downgrading undoes it."""
    execute(dsn, *TABLES)
    run_ops(install(version - 1))
    before = snapshot(dsn)
    run_ops(lambda op: op.upgrade_pgevents(from_version=version - 1, to_version=version))
    fresh_dsn, run_fresh = fresh
    run_fresh(install(version))
    assert snapshot(dsn) == snapshot(fresh_dsn)
    assert snapshot(dsn) != before, f"version {version} changes nothing in the catalog"
    assert written(dsn) == written(fresh_dsn) != []

    run_ops(lambda op: op.downgrade_pgevents(from_version=version, to_version=version - 1))
    assert snapshot(dsn) == before


def test_the_whole_chain_leaves_nothing_behind(run_ops: RunOps, dsn: str, fresh: tuple[str, RunOps]) -> None:
    """1 -> newest -> 1 -> uninstalled: the catalog is as it was before."""
    execute(dsn, *TABLES)
    empty = snapshot(dsn)
    run_ops(install(1))
    at_first = snapshot(dsn)
    run_ops(lambda op: op.upgrade_pgevents(from_version=1, to_version=NEWEST))
    fresh_dsn, run_fresh = fresh
    run_fresh(install(NEWEST))
    assert snapshot(dsn) == snapshot(fresh_dsn)
    assert written(dsn) == written(fresh_dsn) != []
    execute(dsn, "TRUNCATE pgevents.event")

    run_ops(lambda op: op.downgrade_pgevents(from_version=NEWEST, to_version=1))
    assert snapshot(dsn) == at_first
    run_ops(uninstall(1))
    assert snapshot(dsn) == empty


def test_the_manifest_names_every_template() -> None:
    """No template file is left out of the manifest, and each version says what it changed."""
    folder = resources.files("alembic_ops").joinpath("sql")
    files = {
        f"{version.name}/{template.name.removesuffix('.sql')}"
        for version in folder.iterdir()
        if version.is_dir()
        for template in version.iterdir()
        if template.name.endswith(".sql")
    }
    assert files == {path for version in MANIFEST for path in version.templates.values()}
    assert all(version.summary and "\n" not in version.summary for version in MANIFEST)
