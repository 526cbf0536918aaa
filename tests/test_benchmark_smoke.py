"""``python -m benchmarks --quick`` runs end to end against the suite's server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("single-row INSERTs", "1000-row INSERTs", "1000-row UPDATEs", "16 concurrent writers")
RATIO = re.compile(r"\*\*\d+\.\d\dx\*\*")
PERCENT = re.compile(r"\d+\.\d%")
WAITS_TITLE = "### 16 concurrent writers: where the writers waited"


def tables(report: str) -> list[list[list[str]]]:
    """Each Markdown table of ``report``: the cells of its rows after the header and separator."""
    blocks: list[list[str]] = [[]]
    for line in report.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [
        [[cell.strip() for cell in line.strip("|").split("|")] for line in block[2:]]
        for block in blocks
        if block
    ]


def table_rows(report: str) -> list[list[str]]:
    """The rows of the report's first (main) table."""
    return tables(report)[0]


def test_quick_benchmark_writes_a_row_per_workload(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "out.md"
    env = dict(os.environ, PGEVENTS_BENCH_DATABASE_URL=server_url.render_as_string(hide_password=False))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = output.read_text(encoding="utf-8")
    assert report in result.stdout
    assert "PostgreSQL " in report and "nproc " in report
    rows = table_rows(report)
    assert {row[0] for row in rows} == set(WORKLOADS)
    queue = {row[0]: row[3] for row in rows if row[1] == "queue"}
    assert set(queue) == set(WORKLOADS)
    assert all(RATIO.fullmatch(ratio) for ratio in queue.values()), queue
    baseline = {row[0]: row[3] for row in rows if row[1] == "none"}
    assert set(baseline.values()) == {"**1.00x**"}

    # The second table: one row per variant of the concurrent workload, with the
    # share of pgbench backend samples waiting on the NOTIFY lock. A 1-second
    # run may leave a variant without samples, but not all of them.
    assert WAITS_TITLE in report
    waits = tables(report.split(WAITS_TITLE, 1)[1])[0]
    concurrent = [row[1] for row in rows if row[0] == "16 concurrent writers"]
    assert [row[0] for row in waits] == concurrent
    notify = {row[0]: row[2] for row in waits}
    assert all(PERCENT.fullmatch(cell.split(" ")[0]) or cell == "no samples" for cell in notify.values())
    assert any(PERCENT.fullmatch(cell.split(" ")[0]) for cell in notify.values()), notify
    assert sum(int(row[4]) for row in waits) > 0
    # Variants that never send NOTIFY never wait on its lock.
    assert notify["none"] in {"0.0%", "no samples"}
    assert notify["queue"] in {"0.0%", "no samples"}
