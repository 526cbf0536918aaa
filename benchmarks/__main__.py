"""``python -m benchmarks``: the write-overhead benchmark (see ``write_overhead.py``).

``python -m benchmarks delivery [options]`` runs the delivery benchmark instead
(see ``delivery.py``), and ``python -m benchmarks all [options]`` every shape
one after another, in one report (see ``suite.py``); ``--help`` after either
lists its options.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["delivery"]:
    from benchmarks.delivery import main as delivery_main

    raise SystemExit(delivery_main(sys.argv[2:]))

if sys.argv[1:2] == ["all"]:
    from benchmarks.suite import main as suite_main

    raise SystemExit(suite_main(sys.argv[2:]))

from benchmarks.write_overhead import main

raise SystemExit(main())
