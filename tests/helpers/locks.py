"""Another process holding a SQLite database's write lock, as a stuck job or an operator's
`sqlite3` shell with an open transaction would."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
connection.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_locked_by_another_process(path: Path) -> Iterator[None]:
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"locked"
        yield
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=10)
