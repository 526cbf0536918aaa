"""``python -m benchmarks all``: every shape users live in, one benchmark after another, one report.

1. write overhead (``write_overhead``): single-row, 1000-row INSERTs and
   UPDATEs, 16 writers; a plain table, the original trigger, queue and
   broadcast, the previous artifact;
2. writers beside a worker (``wakeups``): 16 and 64 writers into a uuid-keyed
   table (which the original trigger cannot capture: its ids are integers); a
   plain table, no worker, an idle and a busy worker; NOTIFYs sent and waits
   on the NOTIFY lock;
3. the drain and queue latency (``log_drain``): 50,000 events from the
   worker's process start, never ANALYZEd, a callback appending a JSON line per
   event; latency at 100 events/s from 1 and from 16 writers;
4. queue and broadcast latency (``delivery --only latency``).

Each part runs as ``python -m benchmarks.<part>`` would (its own scratch
database, the same ``PGEVENTS_BENCH_DATABASE_URL`` or embedded server); the
report puts their reports one after another. ``--quick`` runs each part's
smoke-test size.

    PYTHONPATH=/tmp/pgevents-original PGEVENTS_BENCH_DATABASE_URL=... python -m benchmarks all [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from benchmarks import delivery, log_drain, wakeups, write_overhead
from benchmarks.common import add_output_option, progress, publish

Main = Callable[[Sequence[str]], int]


def parts(rounds: int, quick: bool) -> list[tuple[str, Main, list[str]]]:
    """Each part: its name, its ``main`` and its arguments."""
    if quick:
        return [
            ("write_overhead", write_overhead.main, ["--quick"]),
            (
                "wakeups",
                wakeups.main,
                ["--rounds", "1", "--seconds", "1", "--backlog", "200", "--clients", "3"],
            ),
            ("log_drain", log_drain.main, ["--events", "2000", "--rounds", "1", "--latency", "1"]),
            ("delivery", delivery.main, ["--quick", "--only", "latency"]),
        ]
    runs = ["--rounds", str(rounds)]
    return [
        ("write_overhead", write_overhead.main, runs),
        ("wakeups", wakeups.main, runs),
        ("log_drain", log_drain.main, ["--rounds", str(min(rounds, 2))]),
        ("delivery", delivery.main, ["--runs", str(rounds), "--only", "latency"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks all", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (runs) of each part")
    parser.add_argument("--quick", action="store_true", help="each part's smoke-test size")
    add_output_option(parser, "all.md")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    reports = []
    with tempfile.TemporaryDirectory(prefix="pgevents-bench-all-") as workdir:
        for name, run, arguments in parts(args.rounds, args.quick):
            output = Path(workdir) / f"{name}.md"
            progress(f"== {name} {' '.join(arguments)}")
            with redirect_stdout(StringIO()):  # each part prints its report; the whole is printed below
                run([*arguments, "--output", str(output)])
            reports.append(output.read_text(encoding="utf-8"))
    publish("\n".join(reports), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
