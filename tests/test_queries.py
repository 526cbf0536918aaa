"""The named queries of ``pgevents_migrate/sql/queries.sql`` and the rows of a claim."""

from __future__ import annotations

import contextlib
import re
from importlib import resources

import psycopg2
import pytest
from flask import Flask
from psycopg2 import sql

from alembic_ops.core.names import LOG_VERSION
from pgevents_migrate import queue as queue_module
from pgevents_migrate.queue import QUERIES, ClaimRow, EventQueue, parse_queries, query
from tests.apps import JOB_TABLE_VERSION
from tests.pg import execute


def test_each_query_has_a_name_line_then_a_description() -> None:
    text = (resources.files("pgevents_migrate") / "sql" / "queries.sql").read_text(encoding="utf-8")
    described = re.findall(r"^-- (\w+) --\n-- \S", text, re.MULTILINE)
    assert described == list(QUERIES)


def test_the_file_parses_into_statements_without_comments() -> None:
    for name, statement in QUERIES.items():
        assert statement, name
        assert not statement.endswith(";"), name
        assert not any(line.lstrip().startswith("--") for line in statement.splitlines()), name


def test_every_query_is_used_and_every_query_used_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def recording(name: str, **identifiers: str) -> sql.Composed:
        asked.append(name)
        return query(name, **identifiers)

    monkeypatch.setattr(queue_module, "query", recording)
    EventQueue("pgevents")
    assert sorted(set(asked)) == sorted(QUERIES)


def test_an_unknown_query_fails_clearly() -> None:
    with pytest.raises(KeyError, match=r"no query named 'nope' in pgevents_migrate/sql/queries.sql"):
        query("nope")


def test_a_query_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="query 'a' is defined twice"):
        parse_queries("-- a --\n-- one\nSELECT 1;\n\n-- a --\n-- two\nSELECT 2;\n")


def test_identifiers_are_quoted_and_doubled_braces_come_out_single(dsn: str) -> None:
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        claim = query("claim", s='odd "schema"').as_string(conn)
        purge = query("purge", s="pgevents", table="processed", timestamp="processed_at").as_string(conn)
    assert 'UPDATE "odd ""schema""".event e' in claim
    assert "NULLIF(e.done, '{}') AS done" in claim
    assert 'DELETE FROM "pgevents"."processed"' in purge
    assert '"processed_at" < clock_timestamp()' in purge


@pytest.mark.artifact(JOB_TABLE_VERSION)
def test_claim_rows_are_named_by_the_claim_columns_oldest_first(runtime: Flask, dsn: str) -> None:
    """``EventQueue``'s claims of artifact 4's job table (the log's are LogQueue's)."""
    execute(dsn, """INSERT INTO "user" (email) VALUES ('a'), ('b')""")
    execute(dsn, "UPDATE pgevents.event SET done = '{on_user}' WHERE pk = '{\"id\": 2}'")
    queue = EventQueue("pgevents")
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        with conn.cursor() as cur:
            cur.execute(queue.claim_statement(cur, 10, 30.0, (["public"], ["user"])))
            assert cur.description is not None
            assert [column.name for column in cur.description] == list(ClaimRow._fields)
        conn.rollback()
        rows = queue.claim_rows(conn, 10, 30.0, (["public"], ["user"]))
    assert [(row.pk, row.attempts, row.done) for row in rows] == [
        ('{"id": 1}', 1, None),
        ('{"id": 2}', 1, ["on_user"]),
    ]
    assert queue.claim_keys(rows) == [(rows[0].id, 1), (rows[1].id, 1)]
    claims = queue.claims_from_rows(rows)
    assert [(claim.event.pk, claim.event.attempt, claim.done) for claim in claims] == [
        ({"id": 1}, 1, ()),
        ({"id": 2}, 1, ("on_user",)),
    ]


def test_the_log_queries_are_described_and_each_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from pgevents_migrate import log_queue

    text = (resources.files("pgevents_migrate") / "sql" / "log_queries.sql").read_text(encoding="utf-8")
    described = re.findall(r"^-- (\w+) --\n-- \S", text, re.MULTILINE)
    assert described == list(queue_module.load_queries("log_queries.sql"))
    asked: list[str] = []

    def recording(name: str, filename: str = "queries.sql", **fills: str | sql.Composable) -> sql.Composed:
        asked.append(name)
        return query(name, filename, **fills)

    monkeypatch.setattr(log_queue, "query", recording)
    log_queue.LogQueue("pgevents", "default", LOG_VERSION)
    assert sorted(asked) == sorted(described)
