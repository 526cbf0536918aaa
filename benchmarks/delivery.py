"""How fast events get from a committed write to a callback.

Four measurements, each repeated ``--runs`` times (median, min and max):

1. durable drain: a burst of rows is inserted into a table with a queue
   trigger while no worker runs; then N ``flask pgevents run`` processes start
   and the benchmark polls the event log until it is empty;
2. broadcast drain: the same burst into a table with a broadcast trigger while
   one worker listens, until its callback has seen every event; compared with
   the psycopg2-pgevents 0.2.2 listening loop when that package is importable;
3. latency: a writer commits single-row inserts at a steady rate; the
   callback records when it sees each row, the writer when it sent COMMIT;
4. autogenerate: ``flask db migrate`` for an app with many listened tables,
   timed, with the statements it sends counted.

Workers run ``benchmarks.bench_app``. Run ``python -m benchmarks delivery --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg2.sql as pgsql
import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate  # type: ignore[import-untyped]
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

from benchmarks import bench_app
from benchmarks.common import (
    ENV_URL,
    Connection,
    Machine,
    VariantSkipped,
    add_output_option,
    connect,
    execute,
    fetch_value,
    import_original,
    install_original_trigger,
    progress,
    publish,
    repetitions,
    scratch,
)
from pgevents_migrate import PGEvents
from pgevents_migrate.testing import flask_db, temporary_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 3
PROG = "python -m benchmarks delivery"
EVENT_LOG = pgsql.Identifier("pgevents", "event")

#: Seconds between polls of the event log during a durable drain.
DRAIN_POLL = 0.025
#: Seconds between reads of a callback's output file.
FILE_POLL = 0.005
#: Upper bounds on every wait, so a broken worker fails the run instead of hanging it.
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0
#: Seconds an idle latency worker gets to go to sleep (sleeper row in place) before the writer starts.
SETTLE = 0.5


@dataclass(frozen=True)
class Sizes:
    """How much work one run of each measurement does."""

    burst: int = 50_000
    workers: tuple[int, ...] = (1, 2, 4)
    rate: int = 500
    seconds: float = 10.0
    tables: int = 200


QUICK = Sizes(burst=2_000, workers=(1, 2), rate=500, seconds=1.0, tables=20)


@dataclass(frozen=True)
class Figure:
    """One row of the report: what was measured, in which setting, in which unit."""

    measurement: str
    setting: str
    unit: str
    #: ``(">=", 20000.0)``: shown next to the median, never asserted.
    target: tuple[str, float] | None = None


@dataclass
class Results:
    """Every run's value of every figure, in the order figures were first measured."""

    values: dict[Figure, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[float]] = field(default_factory=dict)

    def add(self, figure: Figure, value: float) -> None:
        self.values.setdefault(figure, []).append(value)

    def note(self, key: str, value: float) -> None:
        """A side figure quoted in the method notes (median shown)."""
        self.notes.setdefault(key, []).append(value)

    def noted(self, key: str, scale: float = 1.0, digits: int = 1) -> str:
        values = self.notes.get(key)
        if not values:
            return "n/a"
        return f"{statistics.median(values) * scale:.{digits}f}"


# --- subprocesses ------------------------------------------------------------------


class Process:
    """A subprocess whose stdout and stderr go to a log file; ``stop()`` ends it."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # closed in stop()
        try:
            self.popen = subprocess.Popen(
                list(args),
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise
        self.started = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def is_ready(self) -> bool:
        """Whether it said it listens; raises if it exited instead."""
        if bench_app.READY in self.log():
            return True
        self.check_alive()
        return False

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}; its log:\n{self.log()[-4000:]}"
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Seconds from start until it listens."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not listening after {timeout}s; its log:\n{self.log()[-4000:]}"
                )
            time.sleep(0.01)
        return time.monotonic() - self.started

    def terminate(self) -> None:
        """SIGTERM, if it still runs (a worker then finishes its callback and exits 0)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM, wait up to ``STOP_TIMEOUT``, else SIGKILL; always reaps and closes the log."""
        try:
            self.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                progress(f"{self.name} did not stop within {STOP_TIMEOUT}s of SIGTERM: killing it")
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT)
        finally:
            self._log.close()


@contextlib.contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    """Stop every process in ``processes`` on the way out (the list may grow inside)."""
    try:
        yield processes
    finally:
        for process in processes:  # all get SIGTERM first, so they stop in parallel
            with contextlib.suppress(OSError):
                process.terminate()
        errors: list[BaseException] = []
        for process in processes:
            try:
                process.stop()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]


@dataclass(frozen=True)
class Spawner:
    """Starts worker processes of the bench app against one database."""

    url: URL
    workdir: Path

    def env(self, **settings: str) -> dict[str, str]:
        env = dict(os.environ)
        env[bench_app.URL_ENV] = self.url.render_as_string(hide_password=False)
        env.update(settings)
        return env

    def log_path(self, name: str) -> Path:
        for n in range(1, 10_000):
            path = self.workdir / f"{name}-{n}.log"
            if not path.exists():
                return path
        raise RuntimeError("too many logs")

    def worker(self, name: str, listen: str, mode: str, out: Path | None = None, expect: int = 0) -> Process:
        """``python -m flask --app benchmarks.bench_app pgevents run``."""
        settings = {bench_app.LISTEN_ENV: listen, bench_app.MODE_ENV: mode}
        if out is not None:
            settings[bench_app.OUT_ENV] = str(out)
            settings[bench_app.EXPECT_ENV] = str(expect)
        args = [sys.executable, "-m", "flask", "--app", "benchmarks.bench_app", "pgevents", "run"]
        return Process(name, args, self.env(**settings), self.log_path(name))

    def original(self, out: Path, expect: int) -> Process:
        """``python -m benchmarks.bench_app original``: the psycopg2-pgevents 0.2.2 loop."""
        settings = {bench_app.OUT_ENV: str(out), bench_app.EXPECT_ENV: str(expect)}
        args = [sys.executable, "-m", "benchmarks.bench_app", "original"]
        return Process("original listener", args, self.env(**settings), self.log_path("original"))


# --- small helpers ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def read_pairs(path: Path) -> list[tuple[int, float]]:
    """The complete ``"<int> <float>"`` lines a callback has written so far."""
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # being written
        first, second = line.split()
        pairs.append((int(first), float(second)))
    return pairs


def burst_statement(table: str) -> pgsql.Composed:
    """One INSERT of ``%s`` rows into ``table``."""
    return pgsql.SQL("INSERT INTO {} (n) SELECT g FROM generate_series(1, %s) AS g").format(
        pgsql.Identifier(table)
    )


def truncate(conn: Connection, *tables: pgsql.Identifier) -> None:
    execute(conn, pgsql.SQL("TRUNCATE {}").format(pgsql.SQL(", ").join(tables)))


def event_count(conn: Connection) -> int:
    return int(fetch_value(conn, pgsql.SQL("SELECT count(*) FROM {}").format(EVENT_LOG)))


def events_left(conn: Connection) -> bool:
    """Whether the event log has a row: stops at the first one (``count(*)`` reads them all)."""
    return bool(fetch_value(conn, pgsql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(EVENT_LOG)))


def rate_figure(measurement: str, setting: str, target: tuple[str, float] | None = None) -> Figure:
    return Figure(measurement, setting, "events/s", target)


# --- 1. durable drain ------------------------------------------------------------------


def durable_drain(
    conn: Connection, spawner: Spawner, sizes: Sizes, workers: int, run: int, results: Results
) -> None:
    """One run: burst with no worker, then ``workers`` workers until the event log is empty."""
    truncate(conn, pgsql.Identifier(bench_app.QUEUE_TABLE), EVENT_LOG)
    execute(conn, burst_statement(bench_app.QUEUE_TABLE), (sizes.burst,))
    logged = event_count(conn)
    if logged != sizes.burst:
        raise RuntimeError(f"{logged} events logged for a {sizes.burst}-row burst")
    execute(conn, pgsql.SQL("ANALYZE {}").format(EVENT_LOG))
    label = f"{workers} worker{'s' if workers > 1 else ''}"
    with running([]) as processes:
        start = time.monotonic()
        for n in range(workers):
            processes.append(spawner.worker(f"drain worker {n + 1}", "queue", "noop"))
        all_ready: float | None = None
        left_when_ready = 0
        deadline = start + DRAIN_TIMEOUT
        while True:
            if all_ready is None and all(p.is_ready() for p in processes):
                all_ready, left_when_ready = time.monotonic(), event_count(conn)
            if not events_left(conn):
                end = time.monotonic()
                break
            for process in processes:
                process.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{event_count(conn)} events still queued after {DRAIN_TIMEOUT}s")
            time.sleep(DRAIN_POLL)
        if all_ready is None:  # the first workers drained it all before the last one listened
            for process in processes:
                process.wait_ready()
            all_ready = time.monotonic()
    if event_count(conn) != 0:
        raise RuntimeError("the event log is not empty after the drain")
    measurement = f"durable drain, {sizes.burst}-row burst, from worker start"
    # The target is set for one worker and the full-size burst.
    target = (">=", 20_000.0) if workers == 1 and sizes.burst >= Sizes.burst else None
    results.add(
        rate_figure(measurement, label, target),
        sizes.burst / (end - start),
    )
    results.add(Figure("durable drain: worker start-up until all listen", label, "s"), all_ready - start)
    if left_when_ready > 0 and end > all_ready:
        results.add(
            rate_figure("durable drain, once all workers listen", label),
            left_when_ready / (end - all_ready),
        )
    progress(f"run {run}  durable drain  {label:<10} {sizes.burst / (end - start):.0f} events/s")


# --- 2. broadcast drain ----------------------------------------------------------------


def wait_for_count(path: Path, count: int, process: Process, timeout: float) -> float:
    """The time the callback wrote when its count reached ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        for seen, when in read_pairs(path):
            if seen == count:
                return when
        process.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} has not seen {count} events after {timeout}s")
        time.sleep(FILE_POLL)


def broadcast_runs(
    url: URL,
    conn: Connection,
    process: Process,
    table: str,
    out: Path,
    sizes: Sizes,
    figure: Figure,
    runs: int,
    results: Results,
) -> None:
    """``runs`` bursts into ``table``; events/s from COMMIT sent to the callback's last event."""
    process.wait_ready()
    writer = connect(url)
    try:
        writer.autocommit = False
        statement = burst_statement(table)
        for run in range(1, runs + 1):
            truncate(conn, pgsql.Identifier(table))
            with writer.cursor() as cur:
                write_start = time.perf_counter()
                cur.execute(statement, (sizes.burst,))
            sent = time.time()
            writer.commit()
            results.note(f"{figure.setting} insert", time.perf_counter() - write_start)
            last = wait_for_count(out, run * sizes.burst, process, DRAIN_TIMEOUT)
            rate = sizes.burst / (last - sent)
            results.add(figure, rate)
            progress(f"run {run}  broadcast drain  {figure.setting:<32} {rate:.0f} events/s")
    finally:
        writer.close()


def broadcast_drain(
    url: URL, conn: Connection, spawner: Spawner, sizes: Sizes, runs: int, results: Results
) -> None:
    measurement = f"broadcast drain, {sizes.burst}-row burst, from COMMIT"
    out = spawner.workdir / "broadcast-count.txt"
    with running([spawner.worker("broadcast worker", "broadcast", "count", out, sizes.burst)]) as (worker,):
        figure = rate_figure(measurement, "pgevents-migrate worker")
        broadcast_runs(url, conn, worker, bench_app.BROADCAST_TABLE, out, sizes, figure, runs, results)
    try:
        import_original()
        create_original_table(conn)
        install_original_trigger(url, bench_app.ORIGINAL_TABLE)
    except VariantSkipped as exc:
        results.skipped["psycopg2-pgevents 0.2.2 loop"] = str(exc)
        progress(f"skipping the psycopg2-pgevents 0.2.2 loop: {exc}")
        return
    out = spawner.workdir / "original-count.txt"
    with running([spawner.original(out, sizes.burst)]) as (listener,):
        figure = rate_figure(measurement, "psycopg2-pgevents 0.2.2 loop")
        broadcast_runs(url, conn, listener, bench_app.ORIGINAL_TABLE, out, sizes, figure, runs, results)


def create_original_table(conn: Connection) -> None:
    """The psycopg2-pgevents trigger reads ``NEW.id`` into an integer."""
    execute(
        conn,
        pgsql.SQL("CREATE TABLE IF NOT EXISTS {} (id serial PRIMARY KEY, n int NOT NULL)").format(
            pgsql.Identifier(bench_app.ORIGINAL_TABLE)
        ),
    )


# --- 3. latency ------------------------------------------------------------------------


def steady_writer(url: URL, table: str, rate: int, seconds: float) -> tuple[dict[int, float], list[float]]:
    """Single-row inserts at ``rate``/s: the time COMMIT was sent per row id, and commit durations."""
    statement = pgsql.SQL("INSERT INTO {} (n) VALUES (%s) RETURNING id").format(pgsql.Identifier(table))
    sent: dict[int, float] = {}
    commits: list[float] = []
    conn = connect(url)
    try:
        conn.autocommit = False
        count = round(rate * seconds)
        start = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(count):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                cur.execute(statement, (i,))
                row = cur.fetchone()
                assert row is not None
                before = time.time()
                conn.commit()
                commits.append(time.time() - before)
                sent[int(row[0])] = before
    finally:
        conn.close()
    return sent, commits


def latency(url: URL, spawner: Spawner, sizes: Sizes, runs: int, results: Results) -> None:
    """Commit-to-callback latency for queue and broadcast delivery at a steady rate."""
    for delivery, table, target in (
        ("queue", bench_app.QUEUE_TABLE, 50.0),
        ("broadcast", bench_app.BROADCAST_TABLE, 10.0),
    ):
        out = spawner.workdir / f"latency-{delivery}.txt"
        measurement = f"latency at {sizes.rate} events/s for {sizes.seconds:g} s, {delivery}"
        with running([spawner.worker(f"{delivery} latency worker", delivery, "latency", out)]) as (worker,):
            worker.wait_ready()
            for run in range(1, runs + 1):
                time.sleep(SETTLE)
                sent, commits = steady_writer(url, table, sizes.rate, sizes.seconds)
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while True:
                    seen = dict(read_pairs(out))
                    missing = [i for i in sent if i not in seen]
                    if not missing:
                        break
                    worker.check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{len(missing)} {delivery} events never reached the callback")
                    time.sleep(0.05)
                latencies = [(seen[i] - when) * 1000 for i, when in sent.items()]
                p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
                results.add(Figure(measurement, "p50", "ms"), p50)
                results.add(Figure(measurement, "p99", "ms", ("<=", target)), p99)
                results.note(f"{delivery} commit", statistics.median(commits))
                results.note(f"{delivery} max", max(latencies))
                progress(f"run {run}  latency {delivery:<9}  p50 {p50:.1f} ms  p99 {p99:.1f} ms")


# --- 4. autogenerate -------------------------------------------------------------------


def autogenerate_app(url: URL, migrations: Path, tables: int) -> Flask:
    """An app with ``tables`` tables, each with an insert listener (as in tests/test_autogenerate.py)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    db = SQLAlchemy()
    db.init_app(app)
    pgevents = PGEvents(app, db)
    Migrate(app, db, directory=str(migrations))
    for i in range(tables):
        table = sa.Table(f"t{i}", db.metadatas[None], sa.Column("id", sa.Integer, primary_key=True))
        pgevents.listen(table, "insert", lambda event: None)
    return app


def timed_migrate(app: Flask, message: str) -> tuple[float, list[str], str]:
    """Seconds ``flask db migrate`` took, the statements it sent, its output."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            start = time.perf_counter()
            output = flask_db(app, "migrate", "-m", message)
            elapsed = time.perf_counter() - start
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
    return elapsed, statements, output


def autogenerate(admin_url: URL, sizes: Sizes, runs: int, results: Results) -> None:
    """``flask db migrate`` with ``tables`` listened tables: triggers to add, then in sync."""
    for run in range(1, runs + 1):
        with (
            temporary_database(admin_url) as url,
            tempfile.TemporaryDirectory(prefix="pgevents-bench-migrations-") as tmp,
        ):
            migrations = Path(tmp) / "migrations"
            app = autogenerate_app(url, migrations, sizes.tables)
            with app.app_context():
                flask_db(app, "init")
                app.extensions["sqlalchemy"].create_all()
            for state, message in (("triggers to add", "pgevents"), ("in sync", "nothing")):
                elapsed, statements, output = timed_migrate(app, message)
                if state == "in sync" and "No changes in schema detected" not in output:
                    raise RuntimeError(f"expected no changes, got: {output[-2000:]}")
                measurement = f"flask db migrate, {sizes.tables} listened tables, {state}"
                results.add(Figure(measurement, "time", "s"), elapsed)
                triggers = sum("pg_trigger" in s for s in statements)
                results.add(Figure(measurement, "statements mentioning pg_trigger", "statements"), triggers)
                results.add(Figure(measurement, "all statements", "statements"), len(statements))
                progress(
                    f"run {run}  flask db migrate ({state})  {elapsed:.2f} s,"
                    f" {triggers} pg_trigger / {len(statements)} statements"
                )
                if state == "triggers to add":
                    flask_db(app, "upgrade")


# --- the report ------------------------------------------------------------------------


def format_value(unit: str, value: float) -> str:
    if unit == "events/s":
        return f"{value:.0f} events/s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.0f}"


def target_cell(figure: Figure, median: float) -> str:
    if figure.target is None:
        return ""
    op, bound = figure.target
    met = median >= bound if op == ">=" else median <= bound
    return f"{op} {format_value(figure.unit, bound)}: {'met' if met else 'MISSED'}"


def table_rows(results: Results) -> list[str]:
    rows = []
    for figure, values in results.values.items():
        median = statistics.median(values)
        cells = [
            figure.measurement,
            figure.setting,
            f"**{format_value(figure.unit, median)}**",
            format_value(figure.unit, min(values)),
            format_value(figure.unit, max(values)),
            target_cell(figure, median),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


@dataclass(frozen=True)
class Meta:
    machine: Machine
    runs: int
    sizes: Sizes
    load: tuple[float, float]


def render_report(meta: Meta, results: Results) -> str:
    sizes = meta.sizes
    lines = [
        "## pgevents delivery",
        "",
        *meta.machine.lines(meta.load),
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; runs: {meta.runs}"
        " (median, min and max over the runs)",
        f"- durable drain: one `INSERT ... SELECT generate_series(1, {sizes.burst})` into a queue table"
        " with no worker running, then `ANALYZE pgevents.event` (untimed); the clock starts just before"
        " the first `python -m flask --app benchmarks.bench_app pgevents run` is spawned (process start-up"
        " included, nothing subtracted) and stops at the first poll"
        f" (every {DRAIN_POLL * 1000:.0f} ms) that finds `pgevents.event` empty"
        " (`SELECT EXISTS (SELECT 1 FROM pgevents.event)`, about 1 ms, where `count(*)` takes 6-13 ms"
        " of a 2-core machine's server CPU at 50000 rows; `count(*)` is checked to be 0 afterwards);"
        " no-op callback; library defaults (batch 500)."
        " 'once all workers listen': the events left (`count(*)`) at the first poll after every"
        " worker logged 'listening', over the time from then to empty",
        f"- broadcast drain: the same burst into a broadcast table while one worker listens; from the moment"
        " COMMIT is sent to the time the callback recorded for the last event; the callback only counts"
        " in-process and writes one line when it reaches the burst size."
        " Median INSERT + COMMIT time of the burst:"
        f" pgevents-migrate {results.noted('pgevents-migrate worker insert', 1000, 0)} ms,"
        f" psycopg2-pgevents {results.noted('psycopg2-pgevents 0.2.2 loop insert', 1000, 0)} ms",
        f"- latency: one connection commits single-row INSERTs at {sizes.rate}/s for {sizes.seconds:g} s"
        " while one idle worker listens (default poll interval, 5 s); latency = `time.time()` in the callback"
        " minus `time.time()` just before the writer sent COMMIT (so it includes the commit itself:"
        f" median {results.noted('queue commit', 1000, 2)} ms queue,"
        f" {results.noted('broadcast commit', 1000, 2)} ms broadcast); the callback appends"
        " `id time` to a file per event; percentiles by nearest rank over every event of a run;"
        f" worst single event: {results.noted('queue max', 1, 1)} ms queue,"
        f" {results.noted('broadcast max', 1, 1)} ms broadcast (median over runs)",
        f"- autogenerate: an app with {sizes.tables} tables, each with an insert listener; tables created,"
        " no triggers; `flask db migrate` run in-process (Flask's CLI runner, so no interpreter start-up),"
        " statements counted with a `before_cursor_execute` listener; then `flask db upgrade` (untimed)"
        " and `flask db migrate` again, which finds nothing to do; a new database per run",
        "",
        "| measurement | setting | median | min | max | target |",
        "| --- | --- | --- | --- | --- | --- |",
        *table_rows(results),
    ]
    if results.skipped:
        lines.append("")
        lines.extend(f"Skipped: {label}: {reason}" for label, reason in results.skipped.items())
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------


SECTIONS = ("drain", "broadcast", "latency", "autogenerate")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Delivery throughput and latency of pgevents-migrate workers, and autogenerate cost.",
        epilog=f"Server: {ENV_URL} (the benchmark creates and drops its own databases there), or else an"
        " embedded server. PYTHONPATH with psycopg2-pgevents 0.2.2 adds the original listening loop.",
    )
    parser.add_argument(
        "--runs", type=int, default=None, help=f"runs per figure (default {DEFAULT_RUNS}, 1 with --quick)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny bursts, 1-2 workers, 1 s of latency, 1 run: a smoke test"
    )
    parser.add_argument("--burst", type=int, default=None, help=f"rows per burst (default {Sizes.burst})")
    parser.add_argument(
        "--workers", default=None, help="comma-separated worker counts for the durable drain (default 1,2,4)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help=f"latency run length (default {Sizes.seconds:g})"
    )
    parser.add_argument(
        "--tables", type=int, default=None, help=f"listened tables for autogenerate (default {Sizes.tables})"
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", default=None, help="run only this part (repeatable)"
    )
    add_output_option(parser, "delivery.md")
    args = parser.parse_args(argv)
    args.runs = repetitions(parser, args, "runs", DEFAULT_RUNS)
    if args.workers is not None:
        try:
            args.workers = tuple(int(n) for n in args.workers.split(","))
        except ValueError:
            parser.error("--workers takes comma-separated numbers, such as 1,2,4")
        if not args.workers or min(args.workers) < 1:
            parser.error("--workers: each count must be at least 1")
    for name in ("burst", "tables"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def choose_sizes(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else Sizes()
    if args.burst is not None:
        sizes = dataclasses.replace(sizes, burst=args.burst)
    if args.workers is not None:
        sizes = dataclasses.replace(sizes, workers=args.workers)
    if args.seconds is not None:
        sizes = dataclasses.replace(sizes, seconds=args.seconds)
    if args.tables is not None:
        sizes = dataclasses.replace(sizes, tables=args.tables)
    return sizes


def measure(admin_url: URL, url: URL, description: str, args: argparse.Namespace, workdir: Path) -> str:
    sizes = choose_sizes(args)
    sections = args.only or SECTIONS
    load_before = os.getloadavg()[0]
    bench_app.install(bench_app.create_app(url.render_as_string(hide_password=False), "queue", "noop"))
    spawner = Spawner(url, workdir)
    results = Results()
    conn = connect(url)
    try:
        if "drain" in sections:
            for run in range(1, args.runs + 1):
                for workers in sizes.workers:
                    durable_drain(conn, spawner, sizes, workers, run, results)
        if "broadcast" in sections:
            broadcast_drain(url, conn, spawner, sizes, args.runs, results)
        if "latency" in sections:
            latency(url, spawner, sizes, args.runs, results)
        if "autogenerate" in sections:
            autogenerate(admin_url, sizes, args.runs, results)
        meta = Meta(
            machine=Machine.read(conn, description, args.argv, PROG),
            runs=args.runs,
            sizes=sizes,
            load=(load_before, os.getloadavg()[0]),
        )
    finally:
        conn.close()
    return render_report(meta, results)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--output``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    args.argv = arguments
    with scratch() as (admin_url, url, server, workdir):
        report = measure(admin_url, url, server, args, workdir)
    publish(report, args.output)
    return 0
