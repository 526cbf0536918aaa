"""Concurrent writers beside a worker: what an idle or a busy worker costs them, and the wake-ups they send.

The shape users live in: single-row INSERTs into a uuid-keyed table by
``pgbench -n -c C -j 2 -T S`` (``--clients``: 16, then 64), while one worker
(``flask pgevents run`` of ``log_drain``'s app, a callback appending a JSON
line per event) runs beside them. Cases, taking turns run by run, each run
from TRUNCATE + CHECKPOINT:

- ``plain``: a table of the same shape without a trigger, the baseline;
- ``no worker``: the capture trigger, nobody reading;
- ``idle worker``: a worker started (and idle) before the run;
- ``idle worker, no quiet period``: the same with ``PGEVENTS_QUIET_PERIOD=0``,
  a worker that asks writers to NOTIFY it whenever it has caught up (what every
  worker did before the quiet period);
- ``busy worker``: a worker with a backlog of ``--backlog`` events and a
  callback that spends ``--callback-ms`` per event first, busy the whole run.

Reported per case: TPS, the ratio to ``plain`` of the same round (plain TPS
over the case's, so higher is slower), the NOTIFYs writers sent (a connection
LISTENs on the wake-up channel), the share of the pgbench backends'
``pg_stat_activity`` samples that waited on the NOTIFY lock, and the worker's
CPU per event it handled during the run: its process's and its backends'
(read from ``/proc``, so the server must run on this machine).

    PGEVENTS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.wakeups [--rounds N] [--seconds S] [--clients C [C ...]]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg2.extensions
import psycopg2.sql as pgsql
from sqlalchemy.engine import URL

from alembic_ops.core.names import wakeup_channel
from benchmarks import log_drain
from benchmarks.common import (
    Machine,
    add_output_option,
    connect,
    cpu_us,
    execute,
    progress,
    publish,
    scratch,
)
from benchmarks.wait_events import Waits, WaitSampler, notify_cell
from benchmarks.write_overhead import run_pgbench
from pgevents_migrate.worker import APPLICATION_NAME

Connection = psycopg2.extensions.connection

PLAIN_TABLE = "bench_plain"


@dataclass(frozen=True)
class Case:
    """One way of running the writers: which table, and what worker beside them."""

    key: str
    table: str
    #: The worker's environment (``log_drain.start_worker``), or None for no worker.
    worker: dict[str, str] | None = None
    #: Events written before the worker starts (a busy worker's backlog).
    backlog: int = 0


@dataclass
class Run:
    """One pgbench run of a case: its TPS, the NOTIFYs writers sent, what they waited on."""

    tps: float
    notifies: int
    waits: Waits
    #: The worker's CPU per event it handled during the run, in microseconds:
    #: its process, and its database backends (None without a worker).
    worker_cpu: tuple[float, float] | None = None


class WorkerCPU:
    """CPU spent by a worker process and its backends from now on, and the events it handled."""

    def __init__(self, worker: subprocess.Popen[bytes], conn: Connection, out: Path) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (APPLICATION_NAME,),
            )
            backends = [pid for (pid,) in cur.fetchall()]
        # A server on another machine: its backends' pids mean nothing here.
        if not all(is_postgres(pid) for pid in backends):
            raise RuntimeError("benchmarks.wakeups reads the worker's backends in /proc: run the server here")
        self.pids = [worker.pid, *backends]
        self.out = out
        self.start = self.sample()

    def sample(self) -> tuple[int, float, float]:
        backends = sum(cpu_us(pid) for pid in self.pids[1:])
        return log_drain.count_lines(self.out), cpu_us(self.pids[0]), backends

    def per_event(self) -> tuple[float, float]:
        """Microseconds of CPU per event since start: the process's, the backends'."""
        (events0, process0, backends0), (events, process, backends) = self.start, self.sample()
        handled = max(events - events0, 1)
        return (process - process0) / handled, (backends - backends0) / handled


def is_postgres(pid: int) -> bool:
    """Whether ``pid`` is a PostgreSQL process of this machine."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("postgres")
    except FileNotFoundError:
        return False


def cases(backlog: int, callback_ms: float) -> list[Case]:
    """Every case, in the order of the first round."""
    return [
        Case("plain", PLAIN_TABLE),
        Case("no worker", log_drain.TABLE),
        Case("idle worker", log_drain.TABLE, {}),
        Case("idle worker, no quiet period", log_drain.TABLE, {log_drain.QUIET_PERIOD_ENV: "0"}),
        Case("busy worker", log_drain.TABLE, {log_drain.CALLBACK_MS_ENV: str(callback_ms)}, backlog),
    ]


def prepare(url: URL) -> None:
    """``log_drain``'s table with its trigger (the measured artifact), and a plain one of its shape."""
    log_drain.install(url, log_drain.VERSIONS[-1])
    conn = connect(url)
    execute(
        conn,
        pgsql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING INDEXES)").format(
            pgsql.Identifier(PLAIN_TABLE), pgsql.Identifier(log_drain.TABLE)
        ),
    )
    conn.close()


def reset(url: URL) -> None:
    """Empty tables and log, and a checkpoint: every run starts alike."""
    conn = connect(url)
    tables = [
        pgsql.Identifier(PLAIN_TABLE),
        pgsql.Identifier(log_drain.TABLE),
        pgsql.Identifier("pgevents", "event"),
    ]
    execute(conn, pgsql.SQL("TRUNCATE {}").format(pgsql.SQL(", ").join(tables)))
    execute(conn, "CHECKPOINT")
    conn.close()


def cpu_cell(samples: Sequence[tuple[float, float]]) -> str:
    """Median process and backend microseconds per event, or a dash for runs without a worker."""
    if not samples:
        return "-"
    process = statistics.median(p for p, _ in samples)
    backends = statistics.median(b for _, b in samples)
    return f"{process:.0f} / {backends:.0f} us"


def count_notifies(conn: Connection) -> int:
    """The notifications ``conn`` received since the last call."""
    conn.poll()
    count = len(conn.notifies)
    conn.notifies.clear()
    return count


def pgbench(
    url: URL, table: str, clients: int, seconds: int, workdir: Path, conn: Connection
) -> tuple[float, Waits]:
    """TPS of ``clients`` writers inserting single rows into ``table``, and what they waited on."""
    script = workdir / f"{table}.sql"
    insert = pgsql.SQL("INSERT INTO {} (payload) VALUES ('user@example.com');\n").format(
        pgsql.Identifier(table)
    )
    script.write_text(insert.as_string(conn), encoding="utf-8")
    sampler = WaitSampler(connect(url))
    try:
        tps = run_pgbench(url, script, clients, seconds)
    finally:
        waits = sampler.stop()
    return tps, waits


def run_case(url: URL, case: Case, clients: int, seconds: int, workdir: Path, listener: Connection) -> Run:
    reset(url)
    worker = None
    if case.backlog:
        log_drain.write_backlog(url, case.backlog)
    if case.worker is not None:
        log_path = workdir / "worker.log"
        worker = log_drain.start_worker(url, workdir / "worker.jsonl", log_path, **case.worker)
        log_drain.wait_listening(worker, log_path)
    try:
        cpu = WorkerCPU(worker, listener, workdir / "worker.jsonl") if worker is not None else None
        count_notifies(listener)
        tps, waits = pgbench(url, case.table, clients, seconds, workdir, listener)
        notifies = count_notifies(listener)
        worker_cpu = cpu.per_event() if cpu is not None else None
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {(workdir / 'worker.log').read_text()}")
    finally:
        if worker is not None:
            log_drain.stop_worker(worker)
    return Run(tps, notifies, waits, worker_cpu)


def report(machine: Machine, runs: dict[int, dict[str, list[Run]]], args: argparse.Namespace) -> str:
    def cell(values: Sequence[float], show: Callable[[float], str]) -> str:
        return f"{show(statistics.median(values))} ({show(min(values))}-{show(max(values))})"

    lines = [
        f"## Concurrent writers beside a worker, {args.seconds} s runs",
        "",
        *machine.lines(),
        f"- {args.rounds} rounds; busy worker: {args.backlog:,} events of backlog,"
        f" {args.callback_ms} ms per event",
        "- median (min-max) over the rounds; ratio: plain TPS / the case's TPS of the same round",
        "",
        "- worker CPU per event: the CPU time the worker's process and its database backends ran during"
        " the run, over the events it handled then (the busy worker's 1 ms per event is a sleep)",
        "",
        "| writers | case | TPS | ratio | NOTIFYs sent per run | writers' samples waiting on the NOTIFY lock"
        " | worker CPU per event: process / backends |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for clients, by_case in runs.items():
        lines += case_rows(clients, by_case, cell)
    lines.append("")
    return "\n".join(lines)


def case_rows(
    clients: int, runs: dict[str, list[Run]], cell: Callable[[Sequence[float], Callable[[float], str]], str]
) -> list[str]:
    """The report's rows for ``clients`` writers: one per case."""
    plain = [run.tps for run in runs["plain"]]
    lines = []
    for key, case_runs in runs.items():
        ratios = [p / run.tps for p, run in zip(plain, case_runs, strict=True)]
        lines.append(
            f"| {clients} | {key} | {cell([r.tps for r in case_runs], lambda v: f'{v:,.0f}')} "
            f"| {cell(ratios, lambda v: f'{v:.2f}x')} "
            f"| {cell([r.notifies for r in case_runs], lambda v: f'{v:,.0f}')} "
            f"| {notify_cell([r.waits for r in case_runs])} "
            f"| {cpu_cell([r.worker_cpu for r in case_runs if r.worker_cpu is not None])} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wakeups", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds")
    parser.add_argument("--seconds", type=int, default=8, help="pgbench -T per run")
    parser.add_argument("--backlog", type=int, default=20_000, help="the busy worker's backlog")
    parser.add_argument("--callback-ms", type=float, default=1.0, help="the busy worker's time per event")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[16, 64], help="pgbench clients, one set of runs for each"
    )
    add_output_option(parser, "wakeups.md")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds < 1 or min(args.clients) < 1:
        parser.error("--rounds, --seconds and --clients must be at least 1")
    with scratch() as (_admin, url, server, workdir):
        machine = Machine.of(url, server, argv, "python -m benchmarks.wakeups")
        prepare(url)
        listener = connect(url)
        execute(listener, pgsql.SQL("LISTEN {}").format(pgsql.Identifier(wakeup_channel("pgevents"))))
        all_cases = cases(args.backlog, args.callback_ms)
        runs = {clients: {case.key: [] for case in all_cases} for clients in args.clients}
        for index in range(args.rounds):
            for clients in args.clients:
                for case in all_cases[index % len(all_cases) :] + all_cases[: index % len(all_cases)]:
                    run = run_case(url, case, clients, args.seconds, workdir, listener)
                    runs[clients][case.key].append(run)
                    progress(
                        f"round {index + 1}  {clients:3} writers  {case.key:30} {run.tps:8,.0f} tps"
                        f"  {run.notifies} NOTIFYs"
                    )
        listener.close()
    publish(report(machine, runs, args), Path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
