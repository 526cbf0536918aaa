"""Worker subprocesses, concurrent writers and database probes for the fault tests.

A ``WorkerProcess`` is ``flask --app tests.runtime_app:create_app(...) pgevents
run`` with its output in a log file. ``Writers`` insert users from several
threads, each in transactions of its own connection, survive a server restart
(a failed transaction is retried; only committed rows count) and can pause at
a gate or stop on request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import URL

from alembic_ops.manifest import DRAFT_VARIABLE

ROOT = Path(__file__).resolve().parent.parent

#: Errors that mean the connection (or the server) went away.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)

#: Application names, so probes can tell the test's own connections from the worker's.
WORKER_APP = "pgevents-worker"
WRITER_APP = "pgevents-test-writer"
PROBE_APP = "pgevents-test-probe"

#: The runtime app's callbacks open a session per event; with its default
#: NullPool that is a new connection per event (about 130 events/s here). A
#: one-connection pool keeps the callbacks fast enough for tens of thousands
#: of events. No pre-ping: after a restart or a kill, the first callback on the
#: dead pooled connection fails and its event is retried, as in production.
ENGINE_OPTIONS = {"pool_size": 1}


# -- probes -------------------------------------------------------------------


@contextmanager
def probe(dsn: str) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection named ``PROBE_APP`` (each query sees fresh statistics)."""
    conn = psycopg2.connect(dsn, application_name=PROBE_APP)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def query(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with probe(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def scalar(dsn: str, sql: str, params: Any = None) -> Any:
    return query(dsn, sql, params)[0][0]


def handled_rows(dsn: str) -> list[tuple[int, str, int, int, int]]:
    """``(event_id, op, row id, attempt, pid)`` of every ``on_user`` delivery, in order."""
    rows = query(
        dsn, "SELECT event_id, op, pk, attempt, pid FROM handled WHERE listener = 'on_user' ORDER BY n"
    )
    return [(event_id, op, pk["id"], attempt, pid) for event_id, op, pk, attempt, pid in rows]


def handled_count(dsn: str) -> int:
    return int(scalar(dsn, "SELECT count(*) FROM handled WHERE listener = 'on_user'"))


def distinct_handled(dsn: str) -> int:
    return int(scalar(dsn, "SELECT count(DISTINCT (op, pk::text)) FROM handled WHERE listener = 'on_user'"))


def pending(dsn: str) -> int:
    """Events not handled yet (unclaimed, claimed or waiting for a retry; the default group's on the log)."""
    if scalar(dsn, "SELECT to_regclass('pgevents.group_cursor') IS NULL"):
        return int(scalar(dsn, "SELECT count(*) FROM pgevents.event"))
    return int(scalar(dsn, "SELECT pgevents.pending('default')"))


def user_ids(dsn: str) -> set[int]:
    return {row[0] for row in query(dsn, 'SELECT id FROM "user"')}


def worker_backends(dsn: str) -> set[int]:
    """Server pids of the worker connections to this database."""
    rows = query(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        (WORKER_APP,),
    )
    return {row[0] for row in rows}


_FOREIGN = (
    " FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND application_name NOT IN (%s, %s)"
)


def foreign_backends(dsn: str) -> int:
    """Client connections to this database that are neither the test's writers nor probes."""
    return int(scalar(dsn, "SELECT count(*)" + _FOREIGN, (WRITER_APP, PROBE_APP)))


def terminate_foreign_backends(dsn: str) -> int:
    """``pg_terminate_backend`` every connection ``foreign_backends`` counts; how many."""
    rows = query(dsn, "SELECT pg_terminate_backend(pid)" + _FOREIGN, (WRITER_APP, PROBE_APP))
    assert all(ok for (ok,) in rows), rows
    return len(rows)


def insert_users(dsn: str, count: int, per_transaction: int = 5000) -> list[int]:
    """Insert ``count`` users in transactions of ``per_transaction`` rows; their ids."""
    ids: list[int] = []
    conn = psycopg2.connect(dsn, application_name=WRITER_APP)
    try:
        with conn.cursor() as cur:
            while len(ids) < count:
                n = min(per_transaction, count - len(ids))
                cur.execute(
                    """INSERT INTO "user" (email) SELECT 'bulk' || g FROM generate_series(1, %s) g"""
                    " RETURNING id",
                    (n,),
                )
                batch = [row[0] for row in cur.fetchall()]
                conn.commit()
                ids.extend(batch)
    finally:
        conn.close()
    return ids


# -- worker subprocesses --------------------------------------------------------


def app_string(**config: Any) -> str:
    """``--app`` value: the runtime app factory called with ``config`` (Flask parses literals)."""
    settings = {"SQLALCHEMY_ENGINE_OPTIONS": ENGINE_OPTIONS, **config}
    arguments = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    return f"tests.runtime_app:create_app({arguments})"


class WorkerProcess:
    """``flask pgevents run`` in a subprocess; stdout and stderr go to ``log_path``."""

    def __init__(self, url: URL, log_path: Path, env: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        self.log_path = log_path
        # Only the settings given here: none inherited from the test run's environment.
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PGEVENTS_") or key == DRAFT_VARIABLE
        }
        environment.update({key: str(value) for key, value in env.items()})
        environment["DATABASE_URL"] = url.render_as_string(hide_password=False)
        self._log = open(log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", app_string(**config), "pgevents", "run"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        return f"worker {self.pid} (exit {self.process.poll()}), log:\n{self.log()}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the worker says it listens; fail at once if it died."""
        deadline = time.monotonic() + timeout
        while "listening" not in self.log():
            assert self.alive(), self.describe()
            assert time.monotonic() < deadline, f"not ready within {timeout}s: {self.describe()}"
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def terminate_and_wait(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (fails if the process outlives ``timeout``)."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit within {timeout}s of SIGTERM: {self.describe()}") from None

    def kill(self) -> None:
        """SIGKILL and reap (a no-op once the process has exited)."""
        if self.alive():
            self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        try:
            self.kill()
        finally:
            self._log.close()


def alive(*workers: WorkerProcess) -> bool:
    """True; fails with its log if one of ``workers`` died (for ``wait_for`` conditions)."""
    for worker in workers:
        assert worker.alive(), worker.describe()
    return True


class WorkerPool:
    """Starts ``WorkerProcess``es and kills whatever is left in ``close()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def start(self, url: URL, *, config: Mapping[str, Any] | None = None, **env: Any) -> WorkerProcess:
        log_path = self.directory / f"worker-{len(self.started) + 1}.log"
        worker = WorkerProcess(url, log_path, env, config or {})
        self.started.append(worker)
        return worker

    def close(self) -> None:
        errors: list[BaseException] = []
        for worker in self.started:
            try:
                worker.stop()
            except BaseException as exc:  # keep killing the others
                errors.append(exc)
        for worker in self.started:
            # Shown by pytest only when the test failed.
            print(f"--- {worker.log_path.name}, exit {worker.process.returncode}:\n{worker.log()[-6000:]}")
        if errors:
            raise errors[0]


# -- writers --------------------------------------------------------------------


class Writers:
    """``writers`` threads, each inserting ``rows`` users per transaction.

    Each thread runs up to ``transactions`` transactions; it stops early once
    ``stop`` is set. With ``gate_after``, it waits for ``gate`` after that
    many transactions. ``pause`` seconds between transactions shape the load.
    A transaction that fails because the connection or server went away is
    retried on a new connection until ``retry_for`` seconds pass; only rows of
    transactions whose COMMIT succeeded are counted.
    """

    def __init__(
        self,
        dsn: str,
        *,
        writers: int,
        transactions: int,
        rows: int,
        pause: float = 0.0,
        gate_after: int | None = None,
        retry_for: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self.transactions = transactions
        self.rows = rows
        self.pause = pause
        self.gate_after = gate_after
        self.retry_for = retry_for
        self.gate = threading.Event()
        self.stop = threading.Event()
        self.failed_transactions = 0
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"writer-{n}", daemon=True)
            for n in range(writers)
        ]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # On the way out of a failing test: stop and don't hang.
        self.stop.set()
        self.gate.set()
        for thread in self._threads:
            thread.join(self.retry_for + 30)

    @property
    def committed(self) -> int:
        with self._lock:
            return len(self._ids)

    def ids(self) -> list[int]:
        with self._lock:
            return list(self._ids)

    def join(self, timeout: float = 120.0) -> list[int]:
        """Wait for every thread; re-raise a thread's error; the committed ids."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"{thread.name} still running after {timeout}s"
        if self._errors:
            raise self._errors[0]
        return self.ids()

    def _connect(self, deadline: float) -> psycopg2.extensions.connection:
        while True:
            try:
                return psycopg2.connect(self.dsn, application_name=WRITER_APP, connect_timeout=5)
            except CONNECTION_ERRORS:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the server is restarting: try again shortly

    def _run(self, number: int) -> None:
        conn: psycopg2.extensions.connection | None = None
        try:
            for done in range(self.transactions):
                if self.stop.is_set():
                    return
                if self.gate_after is not None and done == self.gate_after:
                    if not self.gate.wait(self.retry_for + 60):
                        raise AssertionError("the writers' gate was never opened")
                deadline = time.monotonic() + self.retry_for
                while True:
                    try:
                        if conn is None:
                            conn = self._connect(deadline)
                        ids = self._insert(conn, number, done)
                        break
                    except CONNECTION_ERRORS:
                        with self._lock:
                            self.failed_transactions += 1
                        if conn is not None:
                            conn.close()
                        conn = None
                        if time.monotonic() > deadline:
                            raise
                with self._lock:
                    self._ids.extend(ids)
                if self.pause:
                    self.stop.wait(self.pause)
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            if conn is not None:
                conn.close()

    def _insert(self, conn: psycopg2.extensions.connection, number: int, transaction: int) -> list[int]:
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO "user" (email, name) SELECT %s || g, %s FROM generate_series(1, %s) g"""
                " RETURNING id",
                (f"w{number}-t{transaction}-", f"writer {number}", self.rows),
            )
            ids = [row[0] for row in cur.fetchall()]
        conn.commit()
        return ids
