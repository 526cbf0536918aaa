"""Drain from process start: the real worker on artifact 4 (job table) and on the log (5 on), side by side.

The shape users live in after an outage: a uuid-keyed table never ANALYZEd,
``--events`` events (50,000) written in 20 transactions before the worker
starts, and a callback that appends one JSON line per event to a file.
``flask pgevents run`` is timed from its process start until the file holds a
line for every event. Each run starts from a fresh event schema and table;
the artifacts alternate (4, the log, 4, ...) in one run. ``--hold-xmin`` keeps a
REPEATABLE READ transaction open (with its snapshot taken) from before the
backlog is written until the drain ends.

    PGEVENTS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.log_drain [--events N] [--rounds N] [--hold-xmin] [--latency SECONDS]

After the drains, ``--latency`` (10 s; 0 skips it) starts an idle worker per
artifact and measures commit-to-callback latency of 100 single-row INSERTs/s;
``--sustained SECONDS`` (off by default) writes ``--sustained-rate`` events/s
(20,000) for that long while one worker drains, and reports its rate in each
tenth of the run.

The worker runs ``create_app()`` of this module (``PGEVENTS_BENCH_APP_URL``,
``PGEVENTS_BENCH_OUT``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import URL

from pgevents_migrate import Event, PGEvents

from .common import (
    Machine,
    add_output_option,
    connect,
    execute,
    fetch_value,
    measured_version,
    progress,
    publish,
    scratch,
)

URL_ENV = "PGEVENTS_BENCH_APP_URL"
OUT_ENV = "PGEVENTS_BENCH_OUT"
#: Milliseconds the callback spends per event before it appends its line (default 0).
CALLBACK_MS_ENV = "PGEVENTS_BENCH_CALLBACK_MS"
#: Passed on to the worker's config when set.
QUIET_PERIOD_ENV = "PGEVENTS_QUIET_PERIOD"
TABLE = "bench_drain"
#: Artifact 4's job table against the measured log.
VERSIONS = (4, measured_version())
TRANSACTIONS = 20
TIMEOUT = 300.0
#: Single-row INSERTs per second of the latency run.
RATE = 100
STATS_WAIT = 10.0
ROOT = Path(__file__).resolve().parent.parent


def create_app() -> Flask:
    """The worker's app: one uuid-keyed table, a callback appending a JSON line per event."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ[URL_ENV]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.NullPool}
    if os.environ.get(QUIET_PERIOD_ENV):
        app.config[QUIET_PERIOD_ENV] = os.environ[QUIET_PERIOD_ENV]
    db = SQLAlchemy(app)
    pgevents = PGEvents(app, db)
    table = sa.Table(
        TABLE,
        db.metadata,
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("payload", sa.Text),
    )
    out = open(os.environ[OUT_ENV], "a", buffering=1, encoding="utf-8")  # for the life of the worker
    busy = float(os.environ.get(CALLBACK_MS_ENV, "0")) / 1000

    def append(event: Event) -> None:
        if busy:
            time.sleep(busy)
        out.write(json.dumps({"id": event.id, "op": event.op, "pk": event.pk, "t": time.time()}) + "\n")

    pgevents.listen(table, "insert", append)
    return app


def install(url: URL, version: int) -> None:
    """A fresh table and event schema at ``version``, as the app's migrations would make them."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from alembic_ops import CreatePGEventTriggerOp, declared_specs

    os.environ[URL_ENV] = url.render_as_string(hide_password=False)
    os.environ[OUT_ENV] = os.devnull
    app = create_app()
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context():
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}; DROP SCHEMA IF EXISTS pgevents CASCADE")
        db.create_all()
    with app.app_context(), db.engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.install_pgevents(version=version)  # type: ignore[attr-defined]
        for spec in declared_specs(db.metadata).values():
            op.invoke(CreatePGEventTriggerOp(spec, version=version))


def write_backlog(url: URL, events: int) -> None:
    conn = connect(url)
    try:
        per = events // TRANSACTIONS
        for n in range(TRANSACTIONS):
            rows = per if n < TRANSACTIONS - 1 else events - per * (TRANSACTIONS - 1)
            execute(
                conn,
                f"INSERT INTO {TABLE} (payload) SELECT md5(g::text) FROM generate_series(1, %s) g",
                (rows,),
            )
    finally:
        conn.close()


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def dead_tuples(url: URL) -> int:
    """Dead tuples in the event schema's tables, once the stopped worker's statistics have arrived."""
    conn = connect(url)
    try:
        query = "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'pgevents'"
        deadline, last = time.monotonic() + STATS_WAIT, -1
        while True:
            value = int(fetch_value(conn, query))
            if value == last or time.monotonic() > deadline:
                return value
            last = value
            time.sleep(0.5)
    finally:
        conn.close()


def start_worker(url: URL, out: Path, log_path: Path, **env_vars: str) -> subprocess.Popen[bytes]:
    """``flask pgevents run`` of ``create_app()``: callback lines to ``out``, output to ``log_path``.

    ``env_vars`` go into its environment (``PGEVENTS_*`` settings, ``CALLBACK_MS_ENV``).
    """
    out.touch()
    env = {
        **os.environ,
        URL_ENV: url.render_as_string(hide_password=False),
        OUT_ENV: str(out),
        **env_vars,
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "benchmarks.log_drain:create_app", "pgevents", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    worker.wait(30)


def wait_for_lines(
    out: Path, count: int, worker: subprocess.Popen[bytes], log_path: Path, start: float
) -> None:
    """Until ``out`` has ``count`` lines; the worker's log if it exits, an error after ``TIMEOUT``."""
    while count_lines(out) < count:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {log_path.read_text()}")
        if time.monotonic() - start > TIMEOUT:
            raise RuntimeError(f"{count_lines(out)} of {count} events after {TIMEOUT}s")
        time.sleep(0.01)


def wait_listening(worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the worker says it listens, and a second more (it takes its lane and goes idle)."""
    while "listening" not in log_path.read_text():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {log_path.read_text()}")
        time.sleep(0.05)
    time.sleep(1.0)


def latency(url: URL, version: int, rate: int, seconds: float, writers: int, workdir: Path) -> list[float]:
    """Commit-to-callback milliseconds of single-row INSERTs at ``rate``/s, with an idle worker.

    ``writers`` connections take turns, one INSERT each.
    """
    install(url, version)
    name = f"latency-v{version}-{writers}"
    out, log_path = workdir / f"{name}.jsonl", workdir / f"{name}.log"
    worker = start_worker(url, out, log_path)
    try:
        wait_listening(worker, log_path)
        sent: dict[str, float] = {}
        conns = [connect(url) for _ in range(writers)]
        try:
            for conn in conns:
                conn.autocommit = False
            begin = time.perf_counter()
            for i in range(round(rate * seconds)):
                time.sleep(max(0.0, begin + i / rate - time.perf_counter()))
                conn = conns[i % writers]
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {TABLE} (payload) VALUES ('x') RETURNING id::text")
                    row = cur.fetchone()
                assert row is not None
                before = time.time()
                conn.commit()
                sent[row[0]] = before
        finally:
            for conn in conns:
                conn.close()
        wait_for_lines(out, len(sent), worker, log_path, time.monotonic())
    finally:
        stop_worker(worker)
    seen = {line["pk"]["id"]: line["t"] for line in map(json.loads, out.read_text().splitlines())}
    return [(seen[key] - when) * 1000 for key, when in sent.items()]


def sustained(url: URL, version: int, rate: int, seconds: float, workdir: Path) -> tuple[list[float], int]:
    """Write ``rate`` events/s (a statement every 100 ms) for ``seconds`` while a worker drains.

    Returns the worker's events/s in each tenth of the run and the events
    still unhandled when the writing stopped.
    """
    install(url, version)
    out, log_path = workdir / f"sustained-v{version}.jsonl", workdir / f"sustained-v{version}.log"
    worker = start_worker(url, out, log_path)
    wait_listening(worker, log_path)
    conn = connect(url)
    ticks, per_tick, written = round(seconds * 10), max(1, rate // 10), 0
    counts: list[int] = []
    try:
        begin = time.perf_counter()
        for tick in range(ticks):
            time.sleep(max(0.0, begin + tick / 10 - time.perf_counter()))
            execute(
                conn, f"INSERT INTO {TABLE} (payload) SELECT 'x' FROM generate_series(1, %s)", (per_tick,)
            )
            written += per_tick
            if (tick + 1) % max(1, ticks // 10) == 0:
                counts.append(count_lines(out))
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited: {log_path.read_text()}")
        behind = written - count_lines(out)
    finally:
        conn.close()
        stop_worker(worker)
    window = max(1, ticks // 10) / 10
    return [(b - a) / window for a, b in zip([0, *counts], counts, strict=False)], behind


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


def drain(url: URL, version: int, events: int, hold_xmin: bool, workdir: Path, run: int) -> tuple[float, int]:
    """Events/s from the worker's process start until its file holds every event; dead tuples after."""
    install(url, version)
    holder = connect(url) if hold_xmin else None
    if holder is not None:
        holder.autocommit = False
        holder.set_session(isolation_level="REPEATABLE READ")
        execute(holder, "SELECT 1")  # the snapshot is taken: the xmin horizon stops here
    write_backlog(url, events)
    out = workdir / f"drain-v{version}-{run}.jsonl"
    log_path = workdir / f"worker-v{version}-{run}.log"
    start = time.monotonic()
    worker = start_worker(url, out, log_path)
    try:
        wait_for_lines(out, events, worker, log_path, start)
        seconds = time.monotonic() - start
    finally:
        stop_worker(worker)
        dead = dead_tuples(url)
        if holder is not None:
            holder.rollback()
            holder.close()
    return events / seconds, dead


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.log_drain", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hold-xmin", action="store_true", help="hold a REPEATABLE READ snapshot during each run"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="then, for each artifact, commit-to-callback latency at 100 single-row INSERTs/s for this long"
        " with an idle worker (0: skip)",
    )
    parser.add_argument(
        "--sustained",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then, for each artifact, write --sustained-rate events/s for this long while a worker drains",
    )
    parser.add_argument("--sustained-rate", type=int, default=20_000, metavar="EVENTS")
    parser.add_argument(
        "--latency-writers",
        type=int,
        nargs="+",
        default=[1, 16],
        metavar="N",
        help="measure latency with each of these numbers of writer connections taking turns (default 1 16)",
    )
    add_output_option(parser, "log_drain.md")
    args = parser.parse_args(argv)
    rates: dict[int, list[float]] = {version: [] for version in VERSIONS}
    dead: dict[int, list[float]] = {version: [] for version in VERSIONS}
    with scratch() as (_admin, url, server, workdir):
        machine = Machine.of(url, server, argv, "python -m benchmarks.log_drain")
        for run in range(1, args.rounds + 1):
            for version in VERSIONS:
                rate, dead_after = drain(url, version, args.events, args.hold_xmin, workdir, run)
                rates[version].append(rate)
                dead[version].append(dead_after)
                progress(f"run {run}  artifact {version}  {rate:,.0f} events/s, {dead_after} dead tuples")
        delays = {
            (version, writers): latency(url, version, RATE, args.latency, writers, workdir)
            for version in VERSIONS
            for writers in args.latency_writers
            if args.latency
        }
        steady = {
            version: sustained(url, version, args.sustained_rate, args.sustained, workdir)
            for version in VERSIONS
            if args.sustained
        }
    log = VERSIONS[1]
    lines = [
        f"# Drain from process start, artifact 4 against {log} ({args.events:,} events"
        f"{', xmin held' if args.hold_xmin else ''})",
        "",
        *machine.lines(),
        f"- shape: uuid keys, {TRANSACTIONS} write transactions before the worker starts, never ANALYZEd;"
        " callback appends one JSON line per event; median (min-max) of the runs",
        "",
        "| artifact | events/s | dead tuples in pgevents tables after the drain |",
        "| --- | --- | --- |",
        *(f"| {version} | {spread(rates[version])} | {spread(dead[version])} |" for version in VERSIONS),
        "",
        f"ratio {log}/4 (medians): {statistics.median(rates[log]) / statistics.median(rates[4]):.2f}",
        "",
    ]
    if delays:
        lines += [
            f"Commit-to-callback latency, {RATE} single-row INSERTs/s for {args.latency:g} s, idle worker;"
            " the writers' connections take turns:",
            "",
            "| artifact | writers | p50 | p99 | max |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {version} | {writers} | {percentile(d, 50):.1f} ms | {percentile(d, 99):.1f} ms"
                f" | {max(d):.1f} ms |"
                for (version, writers), d in delays.items()
            ),
            "",
        ]
    if steady:
        lines += [
            f"Sustained: {args.sustained_rate:,} events/s written for {args.sustained:g} s (a statement every"
            " 100 ms) while one worker drains; its rate in each tenth of the run:",
            "",
            "| artifact | events/s per tenth | lowest / highest | unhandled when writing stopped |",
            "| --- | --- | --- | --- |",
            *(
                f"| {version} | {', '.join(f'{r:,.0f}' for r in rates_)} | {min(rates_) / max(rates_):.2f} |"
                f" {behind:,} |"
                for version, (rates_, behind) in steady.items()
            ),
            "",
        ]
    publish("\n".join(lines), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
