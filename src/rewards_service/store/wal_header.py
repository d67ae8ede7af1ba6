"""Whether a SQLite database has changed, without calling into SQLite.

Python's sqlite3 releases the GIL around every step of every statement. Under concurrent
load each release hands the GIL to another thread and the caller waits to get it back: one
SELECT by key added about 25 context switches to a GetReward call at 16 streams, and cost
more than all the rest of the call. Reads that can prove nothing changed skip the query.

In WAL mode every commit, by any connection of any process, rewrites the WAL-index header at
the start of the -shm file: a change counter, the frame count, the salts and a checksum
(https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Equal headers mean no
commit in between. SQLite writes the header's second copy first and its first copy last, so
a reader that finds the two copies equal has read a whole header. Reading it through a
shared read-only mapping takes no lock and no system call.

Two rules keep the mapping safe:
- Closing any descriptor of a file drops every POSIX lock this process holds on it, and
  SQLite's own -shm locks are POSIX locks. The descriptor and the mapping are never closed.
- SQLite truncates the -shm file only when it finds no other connection open. Each header
  holds a connection of its own open for the life of the process, so the mapped file never
  shrinks under the mapping.
"""

import mmap
import os
import sqlite3

# Two copies of the 48-byte header.
_HEADER = 48
_BOTH_COPIES = 2 * _HEADER


class WalHeader:
    def __init__(self, keeper: sqlite3.Connection, view: mmap.mmap) -> None:
        self._keeper = keeper
        self._view = view

    @classmethod
    def open(cls, path: str) -> "WalHeader | None":
        """The header of the database at `path`; None when it is not in WAL mode."""
        keeper = sqlite3.connect(path, check_same_thread=False)
        (mode,) = keeper.execute("PRAGMA journal_mode").fetchall()[0]
        if mode != "wal":
            keeper.close()
            return None
        keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # maps the -shm
        fd = os.open(f"{path}-shm", os.O_RDONLY)
        if os.fstat(fd).st_size < _BOTH_COPIES:  # not initialised: never expected after a read
            return None  # fd and keeper stay open, as above
        return cls(keeper, mmap.mmap(fd, _BOTH_COPIES, mmap.MAP_SHARED, mmap.PROT_READ))

    def token(self) -> bytes | None:
        """The committed state as bytes, or None while a commit is rewriting the header."""
        both = self._view[:_BOTH_COPIES]
        first = both[:_HEADER]
        return first if first == both[_HEADER:] else None
