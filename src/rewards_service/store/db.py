"""Database selection and the transaction runner every use case goes through."""

import contextlib
import fcntl
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar
from urllib.parse import urlparse

import peewee
from playhouse import db_url
from playhouse.pool import PooledPostgresqlDatabase

from rewards_service.store.group_commit import Conflict, GroupCommit, RequestKey, RowKey
from rewards_service.store.postgres import PostgresDatabase, is_stale_plan
from rewards_service.store.wal_header import WalHeader

__all__ = ["Conflict", "RequestKey", "RowKey"]  # for services, with in_transaction and write

database = peewee.DatabaseProxy()

T = TypeVar("T")

# SQLITE_BUSY is rare with BEGIN IMMEDIATE and a busy timeout, but a bounded retry keeps a
# burst of writers from surfacing as errors.
MAX_ATTEMPTS = 8
DEFAULT_BUSY_TIMEOUT_MS = 10_000


def database_settings(url: str) -> tuple[str, dict]:
    """("sqlite", options) or ("postgresql", connect arguments) of a database URL, parsed
    with playhouse.db_url: a percent-encoded user or password (p%40ss) is decoded. Errors
    never repeat the URL, which may hold a password."""
    scheme = urlparse(url).scheme
    if scheme not in ("sqlite", "postgres", "postgresql"):
        shown = f"scheme {scheme!r}" if scheme else "URL without a scheme"
        raise ValueError(f"unsupported database {shown}: use sqlite:/// or postgresql://")
    try:
        options = db_url.parse(url, unquote_password=True, unquote_user=True)
    except ValueError:
        raise ValueError("the database URL cannot be parsed") from None
    if scheme == "sqlite":
        if options.get("host") or options.get("port"):
            raise ValueError("a sqlite URL has three slashes: sqlite:///relative.db")
        path = options.pop("database", "")
        if not urlparse(url).path[1:]:  # db_url reads no file as ":memory:"
            raise ValueError("the sqlite:/// database URL names no file")
        busy_ms = options.pop("busy_timeout", DEFAULT_BUSY_TIMEOUT_MS)
        if options:
            raise ValueError(
                f"unknown sqlite URL option {sorted(options)[0]!r}: only busy_timeout is known"
            )
        if not isinstance(busy_ms, int) or isinstance(busy_ms, bool) or busy_ms < 0:
            raise ValueError("busy_timeout must be a whole number of milliseconds")
        return "sqlite", {"database": path, "busy_timeout": busy_ms}
    options["database"] = options.get("database") or "postgres"
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 5432)
    return "postgresql", options


def open_database(url: str, *, pool_size: int = 32) -> peewee.Database:
    """sqlite:///relative.db or sqlite:////abs/path.db (optional ?busy_timeout=ms), or
    postgresql://user:password@host:port/dbname (query options go to the driver)."""
    kind, options = database_settings(url)
    if kind == "sqlite":
        busy_ms = options["busy_timeout"]
        return peewee.SqliteDatabase(
            options["database"],
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                # In WAL mode NORMAL keeps every acknowledged commit through a crash or kill -9
                # of the process (the WAL is written before COMMIT returns); only an OS crash or
                # power loss can drop the last commits. FULL would fsync on every commit.
                "synchronous": "normal",
                "busy_timeout": busy_ms,
            },
            timeout=busy_ms / 1000,
            # Writers take the lock up front, so two transactions never deadlock on upgrade.
            lock_type="IMMEDIATE",
            check_same_thread=False,
        )
    return PostgresDatabase(
        options.pop("database"),
        max_connections=pool_size,
        stale_timeout=300,
        timeout=30,
        **options,
    )


def sqlite_path(url: str) -> str | None:
    """The file a sqlite URL names; None for PostgreSQL."""
    kind, options = database_settings(url)
    return options["database"] if kind == "sqlite" else None


def bind(db: peewee.Database) -> None:
    database.initialize(db)


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


# Per file. Never closed (see wal_header.py for why its descriptor must stay open), so a
# forked worker sets the parent's aside and maps the header for itself.
_headers: dict[str, WalHeader | None] = {}
_inherited: list[WalHeader | None] = []


# Per file, per process: a forked worker opens its own, since an flock belongs to the open
# file, and one inherited would be held by parent and child at once.
_writer_locks: dict[str, int | None] = {}


def _set_inherited_aside() -> None:
    _inherited.extend(_headers.values())
    _headers.clear()
    for fd in _writer_locks.values():
        if fd is not None:
            os.close(fd)  # the parent's own descriptor still holds whatever it held
    _writer_locks.clear()


os.register_at_fork(after_in_child=_set_inherited_aside)


def _writer_lock() -> int | None:
    """This process's descriptor of `<file>-writer`; None off SQLite or without a file."""
    if not is_sqlite() or database.obj.database == ":memory:":
        return None
    path = database.obj.database
    if path in _writer_locks:
        return _writer_locks[path]
    try:
        fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        fd = None  # e.g. a read-only directory: writers wait in SQLite's busy handler
    kept = _writer_locks.setdefault(path, fd)
    if fd is not None and kept != fd:  # another thread opened one first
        os.close(fd)
    return kept


@contextmanager
def one_writer() -> Iterator[None]:
    """Processes sharing a SQLite file (--workers) write one at a time through an flock on
    `<file>-writer`. SQLite would serialise them anyway, but its busy handler sleeps in
    growing steps, up to 100 ms, before looking again: with 2 workers, IssueReward's p99 was
    140-200 ms. The flock wakes the next writer when it is released. Correctness does not
    depend on it: a process that does not take it still waits in SQLite."""
    fd = _writer_lock()
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def change_token() -> bytes | None:
    """Equal tokens mean nothing was committed in between, by any process. None when that
    cannot be known (PostgreSQL, or a commit in progress). Read it before the query whose
    result it vouches for: a later commit then makes a different token."""
    if not is_sqlite():
        return None
    path = database.obj.database
    header = _headers.get(path, False)
    if header is False:
        try:
            opened = WalHeader.open(path)
        except (OSError, sqlite3.Error):
            opened = None  # e.g. a read-only -shm: every read queries
        header = _headers.setdefault(path, opened)
    return header.token() if header is not None else None


@contextmanager
def session():
    """One connection for the duration of an RPC.

    SQLite keeps one connection per worker thread open (cheap, and the pragmas stay set);
    PostgreSQL borrows one from the pool and returns it.
    """
    if is_sqlite():
        if database.is_closed():  # connect() takes a lock even to find it open
            database.connect()
        yield
    else:
        with database.connection_context():
            yield


CONTENTION_CODES = {"40001": "serialization_failure", "40P01": "deadlock_detected"}


def contention_reason(exc: Exception) -> str | None:
    """Why `exc` is worth running the transaction again: serialization_failure,
    deadlock_detected, busy (SQLite), stale_plan (postgres.py); None when it is not."""
    # peewee re-raises the driver's error inside its except block: the original is the context.
    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(cause, sqlite3.OperationalError):
        return "busy" if "locked" in str(cause) or "busy" in str(cause) else None
    if is_stale_plan(exc):
        return "stale_plan"
    return CONTENTION_CODES.get(getattr(cause, "pgcode", None) or "")


def is_retryable(exc: Exception) -> bool:
    return contention_reason(exc) is not None


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * 2**attempt))


def in_transaction(
    work: Callable[[], T],
    *,
    on_conflict: Callable[[], T] | None = None,
    locks: Sequence[RowKey] = (),
    reads: Sequence[RequestKey] = (),
) -> T:
    """Run `work` on the store's writer, in one transaction, retried from the start on
    contention; its result once committed.

    `on_conflict` answers a unique-key race (e.g. two calls with one request_id): it runs after
    the loser's writes were rolled back, typically to return the winner's result; when it
    returns None the clash was on another key, and the call fails with it. Concurrent
    calls share one commit (group_commit.py); each still succeeds or fails alone. `locks` names
    rows the work will lock on PostgreSQL, taken for the whole group in one order; `reads`
    names rows it will look up by request_id, read for the whole group at once there.
    """
    return _group_commit.submit(work, on_conflict, locks, reads)


async def write(
    work: Callable[[], T],
    *,
    on_conflict: Callable[[], T] | None = None,
    locks: Sequence[RowKey] = (),
    reads: Sequence[RequestKey] = (),
) -> T:
    """`in_transaction` for coroutines: awaited on the event loop, holding no thread."""
    return await _group_commit.submit_async(work, on_conflict, locks, reads)


def _lock_rows(keys: list[RowKey]) -> None:
    """Lock the rows of a group in the order given (sorted), so that groups of different
    processes never wait on each other in a cycle. SQLite has one writer: nothing to do."""
    if not keys or is_sqlite():
        return
    by_table: dict[str, list[str]] = {}
    for table, key in keys:
        by_table.setdefault(table, []).append(key)
    for table, ids in by_table.items():
        # Nobody reads its rows: it goes with the group's next statement (postgres.py).
        database.obj.execute_unread(
            f'SELECT 1 FROM "{table}" WHERE "id" = ANY(%s) ORDER BY "id" FOR UPDATE', (ids,)
        )


def _read_ahead(keys: list[RequestKey]) -> AbstractContextManager:
    """A group's look-ups by request_id in one statement, on PostgreSQL (queries.py); SQLite
    has no round trips to save."""
    if not keys or is_sqlite():
        return contextlib.nullcontext()
    from rewards_service.store import queries  # it imports this module

    return queries.read_ahead(keys)


def _carrying() -> AbstractContextManager:
    """A group's statements nobody reads wait past each write's savepoint (postgres.py)."""
    if isinstance(database.obj, PostgresDatabase):
        return database.obj.carrying()
    return contextlib.nullcontext()


def _publish_events(events: list) -> None:
    from rewards_service.store import outbox  # it imports the models, which import this

    outbox.write_events(events)


def _events_published(events: list) -> None:
    from rewards_service.store import outbox

    outbox.wake_watchers(events)


_group_commit = GroupCommit(
    database,
    is_retryable=is_retryable,
    max_attempts=MAX_ATTEMPTS,
    backoff=_backoff,
    one_writer=one_writer,
    lock_rows=_lock_rows,
    publish=_publish_events,
    published=_events_published,
    carrying=_carrying,
    read_ahead=_read_ahead,
)


def pool_connections() -> tuple[int, int] | None:
    """(in use, idle) connections of the PostgreSQL pool; None on SQLite."""
    pool = database.obj
    if not isinstance(pool, PooledPostgresqlDatabase):
        return None
    return len(pool._in_use), len(pool._connections)


def release_connections() -> None:
    """Close every connection, e.g. before forking workers that must not share sockets."""
    _group_commit.close()
    if isinstance(database.obj, PooledPostgresqlDatabase):
        database.obj.close_all()
    elif not database.is_closed():
        database.close()
