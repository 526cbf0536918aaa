"""The README's two commands, read the one way that ``.ci/run`` and the tests share.

Each is the only line of a ```sh block right after its marker
(``<!-- demo-command -->``, ``<!-- test-command -->``). ``.ci/run`` runs
``python3 tests/readme.py test-command`` to get the test command; keep this
file to the standard library.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def command(marker: str, readme: Path = README) -> str:
    """The one-line command in the ```sh block right after ``<!-- marker -->``."""
    pattern = rf"^<!-- {re.escape(marker)} -->\n```sh\n([^\n`]+)\n```$"
    found = re.findall(pattern, readme.read_text(), flags=re.MULTILINE)
    if len(found) != 1:
        raise ValueError(f"{readme}: want one ```sh block of one line right after <!-- {marker} -->")
    return str(found[0])


if __name__ == "__main__":
    print(command(sys.argv[1]))
