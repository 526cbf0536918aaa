"""``python -m benchmarks delivery --quick`` runs end to end against the suite's server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from benchmarks import event_row_cost
from tests.apps import NEWEST_VERSION

ROOT = Path(__file__).resolve().parent.parent
#: ``**12345 events/s**``, ``**3.2 ms**``, ``**0.41 s**``, ``**1**``: a number and its unit.
VALUE = re.compile(r"\*\*\d+(\.\d+)?( events/s| ms| s)?\*\*")
NUMBER = re.compile(r"\d+(\.\d+)?( events/s| ms| s)?")
#: (measurement prefix, setting) of every row the quick run must produce.
EXPECTED = [
    ("durable drain, 2000-row burst, from worker start", "1 worker"),
    ("durable drain, 2000-row burst, from worker start", "2 workers"),
    ("durable drain: worker start-up until all listen", "1 worker"),
    ("durable drain: worker start-up until all listen", "2 workers"),
    ("broadcast drain, 2000-row burst, from COMMIT", "pgevents-migrate worker"),
    ("latency at 500 events/s for 1 s, queue", "p50"),
    ("latency at 500 events/s for 1 s, queue", "p99"),
    ("latency at 500 events/s for 1 s, broadcast", "p50"),
    ("latency at 500 events/s for 1 s, broadcast", "p99"),
    ("flask db migrate, 20 listened tables, triggers to add", "time"),
    ("flask db migrate, 20 listened tables, triggers to add", "statements mentioning pg_trigger"),
    ("flask db migrate, 20 listened tables, triggers to add", "all statements"),
    ("flask db migrate, 20 listened tables, in sync", "time"),
    ("flask db migrate, 20 listened tables, in sync", "statements mentioning pg_trigger"),
    ("flask db migrate, 20 listened tables, in sync", "all statements"),
]


def table_rows(report: str) -> list[list[str]]:
    """The cells of every Markdown table row after the header and separator."""
    lines = [line for line in report.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def run_benchmark(server_url: URL, *args: str) -> subprocess.CompletedProcess[str]:
    """``python <args>`` against the suite's server; fails the test unless it exits 0."""
    env = dict(os.environ, PGEVENTS_BENCH_DATABASE_URL=server_url.render_as_string(hide_password=False))
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_quick_delivery_benchmark_writes_a_row_per_measurement(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "delivery.md"
    result = run_benchmark(server_url, "-m", "benchmarks", "delivery", "--quick", "--output", str(output))
    report = output.read_text(encoding="utf-8")
    assert report in result.stdout
    assert "PostgreSQL " in report and "nproc " in report
    assert "python -m benchmarks delivery --quick" in report
    rows = table_rows(report)
    assert all(len(row) == 6 for row in rows), rows
    found = {(row[0], row[1]): row for row in rows}
    for key in EXPECTED:
        assert key in found, f"no row {key}: {sorted(found)}"
    for row in rows:
        assert VALUE.fullmatch(row[2]), row
        assert NUMBER.fullmatch(row[3]) and NUMBER.fullmatch(row[4]), row
    # The original loop is a row when psycopg2-pgevents is importable, else a printed reason.
    original = ("broadcast drain, 2000-row burst, from COMMIT", "psycopg2-pgevents 0.2.2 loop")
    assert original in found or "Skipped: psycopg2-pgevents 0.2.2 loop: " in report
    # The statement counter saw the comparator's catalog query.
    triggers = found[("flask db migrate, 20 listened tables, in sync", "statements mentioning pg_trigger")]
    assert int(triggers[2].strip("*")) >= 1


def test_the_log_drain_benchmark_compares_artifacts_4_and_5(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "log_drain.md"
    command = ["-m", "benchmarks.log_drain", "--events", "2000", "--rounds", "1", "--latency", "1"]
    command += ["--latency-writers", "1", "3"]
    run_benchmark(server_url, *command, "--output", str(output))
    report = output.read_text(encoding="utf-8")
    drain_table, latency_table = report.split("Commit-to-callback latency")
    rows = {row[0]: row for row in table_rows(drain_table)}
    assert sorted(rows) == ["4", str(NEWEST_VERSION)]
    latencies = {(row[0], row[1]): row for row in table_rows(latency_table)}
    versions = ("4", str(NEWEST_VERSION))
    assert sorted(latencies) == [(version, writers) for version in versions for writers in "13"]
    assert all(re.fullmatch(r"[\d.]+ ms", cell) for row in latencies.values() for cell in row[2:]), latencies
    for row in rows.values():
        assert re.fullmatch(r"[\d,]+ \([\d,]+-[\d,]+\)", row[1]), row
    # The job table leaves a dead tuple or two per event; the log only its bookkeeping.
    assert int(rows["4"][2].split()[0].replace(",", "")) >= 2000
    assert int(rows[str(NEWEST_VERSION)][2].split()[0].replace(",", "")) < 200


def test_the_statement_cpu_benchmark_measures_each_artifacts_trigger(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "statement_cpu.md"
    command = ["-m", "benchmarks.statement_cpu", "--rounds", "2", "--statements", "20"]
    run_benchmark(server_url, *command, "--output", str(output))
    report = output.read_text(encoding="utf-8")
    rows = {row[0]: row for row in table_rows(report)}
    assert sorted(rows) == ["plain", *(f"queue_v{version}" for version in range(4, NEWEST_VERSION + 1))]
    assert all(re.fullmatch(r"[\d.]+ us", row[1]) for row in rows.values()), rows
    assert rows["plain"][2] == "0.0 us (0.0-0.0)"
    for version in range(5, NEWEST_VERSION + 1):
        assert re.search(rf"Artifact {version} minus artifact 4, per statement: [+-][\d.]+ us", report)


def test_the_statement_instructions_benchmark_counts_each_artifacts_trigger(
    server_url: URL, tmp_path: Path
) -> None:
    """Under valgrind, with the embedded server's binaries (the README's test command installs valgrind)."""
    output = tmp_path / "statement_instructions.md"
    command = ["-m", "benchmarks.statement_instructions", "--statements", "3", "--base", "1"]
    run_benchmark(server_url, *command, "--output", str(output))
    report = output.read_text(encoding="utf-8")
    rows = {row[0]: row for row in table_rows(report)}
    assert sorted(rows) == ["plain", *(f"queue_v{version}" for version in range(4, NEWEST_VERSION + 1))]
    # Counts this small move with start-up noise: only their form is checked.
    assert all(re.fullmatch(r"-?[\d,]+", row[1]) for row in rows.values()), rows
    assert rows["plain"][2] == "0"
    for version in range(5, NEWEST_VERSION + 1):
        assert re.search(rf"Artifact {version}'s trigger against artifact 4's: [\d.]+x", report)


def test_the_wakeups_benchmark_runs_every_case(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "wakeups.md"
    command = ["-m", "benchmarks.wakeups", "--rounds", "1", "--seconds", "1", "--backlog", "200"]
    run_benchmark(server_url, *command, "--clients", "3", "4", "--output", str(output))
    table = table_rows(output.read_text(encoding="utf-8"))
    cases = ["plain", "no worker", "idle worker", "idle worker, no quiet period", "busy worker"]
    assert [row[:2] for row in table] == [[clients, case] for clients in "34" for case in cases]
    rows = {row[1]: row[1:] for row in table if row[0] == "3"}
    assert rows["plain"][2] == "1.00x (1.00x-1.00x)"
    assert all(re.fullmatch(r"[\d,]+ \([\d,]+-[\d,]+\)", row[1]) for row in rows.values()), rows
    assert rows["no worker"][3] == "0 (0-0)"  # nobody sleeps: no wake-ups
    # The worker's CPU per event: its process and its backends, for the cases with a worker.
    assert rows["plain"][5] == rows["no worker"][5] == "-"
    assert all(re.fullmatch(r"\d+ / \d+ us", rows[case][5]) for case in cases[2:]), rows


def test_the_event_row_cost_benchmark_runs_every_variant(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "event_row_cost.md"
    run_benchmark(
        server_url,
        "-m",
        "benchmarks.event_row_cost",
        "--rounds",
        "1",
        "--seconds",
        "1",
        "--output",
        str(output),
    )
    rows = {row[0]: row for row in table_rows(output.read_text(encoding="utf-8"))}
    assert list(rows) == [variant.key for variant in event_row_cost.VARIANTS]
    assert rows["plain"][2] == "1.00x (1.00x-1.00x)"
    assert all(re.fullmatch(r"[\d,.]+ \([\d,.]+-[\d,.]+\)", row[1]) for row in rows.values()), rows


def test_all_runs_every_part_into_one_report(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "all.md"
    result = run_benchmark(server_url, "-m", "benchmarks", "all", "--quick", "--output", str(output))
    report = output.read_text(encoding="utf-8")
    assert report in result.stdout
    for heading in (
        "16 concurrent writers",  # write overhead
        "## Concurrent writers beside a worker",
        "# Drain from process start",
        "latency at 500 events/s for 1 s, broadcast",
    ):
        assert heading in report
