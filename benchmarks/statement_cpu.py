"""What a capture trigger costs the writing backend in CPU, per statement: artifact 4 against the newer ones.

Timing 16 writers through pgbench on a shared 2-core machine moves by a third
between runs; the CPU time the server spends on one backend's statements
(``/proc/<pid>/schedstat``, so the server must run on this machine) moves far
less. Tables of the write-overhead benchmark's shape, one without a trigger
and one with the default queue trigger of each artifact from 4 (the job
table) to the measured one (in event schemas of their own), each written by its own connection with a prepared
single-row INSERT (``--rows 1000``: an ``INSERT ... SELECT`` of 1000 rows);
the tables take turns in every round, and each round starts from empty tables.
Reported: the trigger's CPU per statement (the table's minus the plain one's
in the same round) and the difference of each newer artifact to 4 and to the
one before, median and quartiles.

    PGEVENTS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.statement_cpu [--rounds N] [--statements N] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from psycopg2.extensions import cursor as Cursor

from alembic_ops import CreatePGEventTriggerOp, TriggerSpec
from alembic_ops.core.names import LOG_PARTITIONS, LOG_VERSION
from benchmarks.common import (
    Machine,
    add_output_option,
    connect,
    cpu_us,
    execute,
    fetch_value,
    measured_version,
    publish,
    scratch,
)

#: The artifacts compared: 4 (the job table) to the measured one.
VERSIONS = tuple(range(4, measured_version() + 1))
#: Table -> (event schema, artifact version); None: no trigger.
TABLES: dict[str, tuple[str, int] | None] = {
    "plain": None,
    **{f"queue_v{version}": (f"ev{version}", version) for version in VERSIONS},
}
#: The tables the triggers write to, emptied every round.
LOGS = tuple(
    f"ev{version}.event_{n}" if version >= LOG_VERSION else f"ev{version}.event"
    for version in VERSIONS
    for n in (range(LOG_PARTITIONS) if version >= LOG_VERSION else (0,))
)


def install(url: sa.URL) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        for table, artifact in TABLES.items():
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, email text NOT NULL, name text NOT NULL,"
                " n int NOT NULL)"
            )
            if artifact is not None:
                schema, version = artifact
                op.install_pgevents(schema=schema, version=version)  # type: ignore[attr-defined]
                op.invoke(CreatePGEventTriggerOp(TriggerSpec(table, pgevents_schema=schema), version=version))
    engine.dispose()


def measure(url: sa.URL, rounds: int, statements: int, rows: int) -> dict[str, list[float]]:
    """CPU per statement of each table, per round."""
    values = "VALUES ('user@example.com', 'User', 1)"
    if rows > 1:
        values = f"SELECT 'user@example.com', 'User', g FROM generate_series(1, {rows}) AS g"
    writers: dict[str, tuple[Cursor, int]] = {}
    for table in TABLES:
        cur = connect(url).cursor()
        execute(cur.connection, "SET synchronous_commit = off")  # the CPU, not the WAL flush
        pid = int(fetch_value(cur.connection, "SELECT pg_backend_pid()"))
        cur.execute(f"PREPARE write AS INSERT INTO {table} (email, name, n) {values}")
        for _ in range(20):  # plans cached, functions compiled
            cur.execute("EXECUTE write")
        writers[table] = (cur, pid)
    admin = connect(url)
    per_statement: dict[str, list[float]] = {table: [] for table in TABLES}
    names = list(TABLES)
    for index in range(rounds):
        execute(admin, f"TRUNCATE {', '.join([*TABLES, *LOGS])}")
        for table in names[index % len(names) :] + names[: index % len(names)]:
            cur, pid = writers[table]
            before = cpu_us(pid)
            for _ in range(statements):
                cur.execute("EXECUTE write")
            per_statement[table].append((cpu_us(pid) - before) / statements)
    admin.close()
    for cur, _ in writers.values():
        cur.connection.close()
    return per_statement


def report(machine: Machine, per_statement: dict[str, list[float]], rows: int, statements: int) -> str:
    plain = per_statement["plain"]
    trigger = {t: [v - p for v, p in zip(vs, plain, strict=True)] for t, vs in per_statement.items()}
    lines = [
        f"## Capture CPU per {'single-row' if rows == 1 else f'{rows}-row'} INSERT, artifacts "
        + ", ".join(map(str, VERSIONS)),
        "",
        *machine.lines(),
        f"- {len(plain)} rounds of {statements} statements per table, the tables taking turns",
        "",
        "| table | backend CPU per statement (median) | the trigger's share: median (min-max) |",
        "| --- | --- | --- |",
    ]
    for table, values in per_statement.items():
        extra = trigger[table]
        lines.append(
            f"| {table} | {statistics.median(values):.1f} us | "
            f"{statistics.median(extra):.1f} us ({min(extra):.1f}-{max(extra):.1f}) |"
        )
    lines.append("")
    pairs = {(version, 4) for version in VERSIONS[1:]} | {(version, version - 1) for version in VERSIONS[1:]}
    for new, old in sorted(pairs):
        difference = [
            a - b for a, b in zip(per_statement[f"queue_v{new}"], per_statement[f"queue_v{old}"], strict=True)
        ]
        low, _, high = statistics.quantiles(difference, n=4) if len(difference) > 1 else (difference[0],) * 3
        lines.append(
            f"Artifact {new} minus artifact {old}, per statement: {statistics.median(difference):+.1f} us "
            f"(quartiles {low:+.1f} to {high:+.1f})."
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.statement_cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--statements", type=int, default=2000, help="statements per table and round")
    parser.add_argument("--rows", type=int, default=1, help="rows per statement")
    add_output_option(parser, "statement_cpu.md")
    args = parser.parse_args(argv)
    with scratch() as (_admin, url, server, _workdir):
        machine = Machine.of(url, server, argv, "python -m benchmarks.statement_cpu")
        install(url)
        per_statement = measure(url, args.rounds, args.statements, args.rows)
    publish(report(machine, per_statement, args.rows, args.statements), Path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
