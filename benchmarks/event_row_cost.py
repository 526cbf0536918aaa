"""Where a 1000-row statement's capture time goes: an event row like the log's, one part left out at a time.

Diagnostic, not a target: each variant is a uuid-keyed table of the write
benchmarks' shape with a statement-level AFTER INSERT trigger (transition
table, PL/pgSQL, as the log's capture functions are) writing one row per
captured row into an event table of its own, shaped like the log's partitions
(``id`` from a ``CACHE 1`` sequence, ``txid`` and ``created_at`` defaults).
Each leaves one part out or changes it, so the difference to ``event row``
is that part's cost:

- ``plain``: no trigger, the baseline;
- ``transition table only``: the trigger reads its transition table, writes nothing;
- ``event row``: the log's row and its btree index on ``id``;
- ``no index``, ``BRIN index``: the same without the index, or with a BRIN one;
- ``key as text``: the key stored as text instead of ``jsonb_build_object``;
- ``unlogged``: the event table UNLOGGED (what WAL costs);
- ``id cached``: the id sequence with ``CACHE 32``;
- ``one row per statement``: one event row holding every key of the statement
  (a ``jsonb`` array of ``{"id": ...}`` objects), which a reader would split;
- ``one row per statement, key values``: the same holding an array of the key
  values (``to_jsonb(array_agg(id))``), stored uncompressed (``STORAGE
  EXTERNAL``: pglz on a large value costs more than it saves here);
- ``rows of up to 1024 key values``: the same, split into rows of at most 1024
  keys, each row's id ``nextval * 1024`` (key ``i`` of a row reads as event id
  ``id + i``; docs/design/bulk-capture.md, section 3).

``pgbench -n -c 1 -T S`` runs one ``INSERT ... SELECT ... generate_series(1,
1000)`` per transaction, the variants taking turns run by run, each run from
TRUNCATE + CHECKPOINT; reported: TPS and the ratio to ``plain`` of the same
round (higher is slower).

    PGEVENTS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.event_row_cost [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg2.sql as pgsql
from sqlalchemy.engine import URL

from benchmarks.common import (
    Connection,
    Machine,
    add_output_option,
    connect,
    execute,
    progress,
    publish,
    scratch,
)
from benchmarks.write_overhead import run_pgbench

ROWS = 1000


@dataclass(frozen=True)
class Variant:
    """A table and what its trigger writes per captured row."""

    key: str
    #: The event table's changes to the log-shaped one (``{events}`` names it), or None for no trigger.
    events_ddl: str | None = None
    #: The trigger's statement (``{events}`` names the event table), default: one log-shaped row per row.
    capture: str = (
        "INSERT INTO {events} (gen, op, schema_name, table_name, pk, old, new, changed)"
        " SELECT 0, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME, jsonb_build_object('id', n.id),"
        " NULL, NULL, NULL FROM n"
    )


VARIANTS = [
    Variant("plain"),
    Variant("transition table only", "", "PERFORM count(*) FROM n"),
    Variant("event row", "CREATE INDEX ON {events} (id)"),
    Variant("no index", ""),
    Variant("BRIN index", "CREATE INDEX ON {events} USING brin (id)"),
    Variant(
        "key as text",
        "CREATE INDEX ON {events} (id); ALTER TABLE {events} ALTER pk TYPE text",
        "INSERT INTO {events} (gen, op, schema_name, table_name, pk, old, new, changed)"
        " SELECT 0, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME, n.id::text, NULL, NULL, NULL FROM n",
    ),
    Variant("unlogged", "CREATE INDEX ON {events} (id); ALTER TABLE {events} SET UNLOGGED"),
    Variant("id cached", "CREATE INDEX ON {events} (id); ALTER SEQUENCE {sequence} CACHE 32"),
    Variant(
        "one row per statement",
        "CREATE INDEX ON {events} (id)",
        "INSERT INTO {events} (gen, op, schema_name, table_name, pk, old, new, changed)"
        " SELECT 0, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME, jsonb_agg(jsonb_build_object('id', n.id)),"
        " NULL, NULL, NULL FROM n",
    ),
    Variant(
        "one row per statement, key values",
        "CREATE INDEX ON {events} (id); ALTER TABLE {events} ALTER pk SET STORAGE EXTERNAL",
        "INSERT INTO {events} (gen, op, schema_name, table_name, pk, old, new, changed)"
        " SELECT 0, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME, to_jsonb(array_agg(n.id)),"
        " NULL, NULL, NULL FROM n",
    ),
    Variant(
        "rows of up to 1024 key values",
        "CREATE INDEX ON {events} (id); ALTER TABLE {events} ALTER pk SET STORAGE EXTERNAL",
        "INSERT INTO {events} (id, gen, op, schema_name, table_name, pk, old, new, changed)"
        " SELECT nextval({sequence_name}) * 1024, 0, 'insert', TG_TABLE_SCHEMA, TG_TABLE_NAME,"
        " to_jsonb(array_agg(k.id)), NULL, NULL, NULL"
        " FROM (SELECT n.id, (row_number() OVER () - 1) / 1024 AS chunk FROM n) AS k GROUP BY k.chunk",
    ),
]


def names(index: int) -> dict[str, pgsql.Identifier]:
    """The written table, its event table, id sequence and trigger function of variant ``index``."""
    return {
        "table": pgsql.Identifier(f"bench_rows_{index}"),
        "events": pgsql.Identifier(f"bench_events_{index}"),
        "sequence": pgsql.Identifier(f"bench_event_id_{index}"),
        "function": pgsql.Identifier(f"bench_capture_{index}"),
    }


def create(conn: Connection, index: int, variant: Variant) -> None:
    """Variant ``index``'s table, and its event table and trigger unless it is ``plain``."""
    ids = names(index)
    execute(
        conn,
        pgsql.SQL(
            "CREATE TABLE {table} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), payload text)"
        ).format(**ids),
    )
    if variant.events_ddl is None:
        return
    ddl = [
        "CREATE SEQUENCE {sequence} CACHE 1",
        "CREATE TABLE {events} (id bigint DEFAULT nextval({sequence_name}), gen smallint, op text,"
        " schema_name text, table_name text, pk jsonb, old jsonb, new jsonb, changed text[],"
        " txid xid8 DEFAULT pg_current_xact_id(), created_at timestamptz DEFAULT now())",
        *filter(None, variant.events_ddl.split("; ")),
        "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {body}",
        "CREATE TRIGGER capture AFTER INSERT ON {table} REFERENCING NEW TABLE AS n"
        " FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]
    sequence_name = pgsql.Literal(ids["sequence"].as_string(conn))
    body = pgsql.SQL("BEGIN " + variant.capture + "; RETURN NULL; END")
    body_text = body.format(**ids, sequence_name=sequence_name).as_string(conn)
    for statement in ddl:
        execute(
            conn,
            pgsql.SQL(statement).format(**ids, sequence_name=sequence_name, body=pgsql.Literal(body_text)),
        )


def pgbench(url: URL, conn: Connection, index: int, seconds: int, workdir: Path) -> float:
    """TPS of one connection inserting ``ROWS``-row statements into variant ``index``'s table."""
    ids = names(index)
    tables = [ids["table"]] + ([ids["events"]] if VARIANTS[index].events_ddl is not None else [])
    execute(conn, pgsql.SQL("TRUNCATE {}").format(pgsql.SQL(", ").join(tables)))
    execute(conn, "CHECKPOINT")
    script = workdir / f"rows_{index}.sql"
    statement = pgsql.SQL(
        "INSERT INTO {} (payload) SELECT md5(g::text) FROM generate_series(1, {}) g;\n"
    ).format(ids["table"], pgsql.Literal(ROWS))
    script.write_text(statement.as_string(conn), encoding="utf-8")
    return run_pgbench(url, script, 1, seconds)


def report(machine: Machine, tps: dict[str, list[float]], args: argparse.Namespace) -> str:
    plain = tps["plain"]
    lines = [
        f"## Where a {ROWS}-row statement's capture time goes, {args.seconds} s runs",
        "",
        *machine.lines(),
        f"- {args.rounds} rounds; median (min-max); ratio: plain TPS / the variant's TPS of the same round",
        "",
        "| variant | TPS | ratio |",
        "| --- | --- | --- |",
    ]
    for key, values in tps.items():
        ratios = [p / v for p, v in zip(plain, values, strict=True)]
        lines.append(
            f"| {key} | {statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})"
            f" | {statistics.median(ratios):.2f}x ({min(ratios):.2f}x-{max(ratios):.2f}x) |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.event_row_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4, help="pgbench -T per run")
    add_output_option(parser, "event_row_cost.md")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds < 1:
        parser.error("--rounds and --seconds must be at least 1")
    tps: dict[str, list[float]] = {variant.key: [] for variant in VARIANTS}
    with scratch() as (_admin, url, server, workdir):
        machine = Machine.of(url, server, argv, "python -m benchmarks.event_row_cost")
        conn = connect(url)
        for index, variant in enumerate(VARIANTS):
            create(conn, index, variant)
        for round_ in range(args.rounds):
            order = list(range(len(VARIANTS)))
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for index in order:
                value = pgbench(url, conn, index, args.seconds, workdir)
                tps[VARIANTS[index].key].append(value)
                progress(f"round {round_ + 1}  {VARIANTS[index].key:24} {value:8,.1f} tps")
        conn.close()
    publish(report(machine, tps, args), Path(args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
