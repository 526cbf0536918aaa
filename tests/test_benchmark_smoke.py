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


def table_rows(report: str) -> list[list[str]]:
    """The cells of every Markdown table row after the header and separator."""
    lines = [line for line in report.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


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
