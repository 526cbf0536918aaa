"""``python -m benchmarks``: run the write-overhead benchmark (see ``write_overhead.py``)."""

from __future__ import annotations

from benchmarks.write_overhead import main

raise SystemExit(main())
