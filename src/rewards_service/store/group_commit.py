"""The store's writer: one thread per process runs every write, in groups that share one
transaction and one commit (peewee's playhouse/sqliteq.py has the same shape: callers hand
their work over and wait; nothing else sees the thread).

SQLite admits one writer at a time and every commit writes each page it touched to the WAL.
Run one after another, concurrent issues pay that page I/O once each, and a thread holding
the write lock keeps losing the GIL to the threads queued behind it. The writer takes the
queued writes, runs each in its own savepoint on its own connection, commits once, then
wakes their callers. A write that fails rolls back to its savepoint and fails alone; a commit
that fails fails the whole group, and nothing of it is acknowledged. Callers learn their
result only after the commit.

One writer also means this process never has two writers queued in SQLite's busy handler,
which sleeps in growing steps (up to 100 ms) before it looks again. Writers of other
processes sharing the file (--workers) take turns on a lock of their own first
(`one_writer`), which wakes the next one as soon as it is released.

On PostgreSQL the writer holds one connection: a group is one transaction, so a hot reward's
row lock is taken once per group instead of once per call. Groups of different replicas
could lock rows in different orders and deadlock; each write names the rows it will lock
(`locks`), and the group locks them all first, in one sorted order (`lock_rows`).
"""

import asyncio
import contextlib
import contextvars
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import peewee

from rewards_service.domain.errors import Unavailable
from rewards_service.store.postgres import CarriedStatementFailed

# Bounds how long one commit keeps the callers in its group waiting.
MAX_GROUP = 16

# A row a write will lock: (table, primary key).
RowKey = tuple[str, str]
# A row a write will look up by its request_id: (table, program_id, request_id).
RequestKey = tuple[str, str, str]

# What the current write recorded to be published with its effects (the outbox's events):
# per write, dropped when its savepoint rolls back.
_recording = threading.local()


def record(item: object) -> None:
    """Publish `item` with the current write's effects, in the same transaction: before the
    group commits, only if this write succeeded."""
    items = getattr(_recording, "items", None)
    if items is None:
        raise RuntimeError("record() is for work running on the store's writer")
    items.append(item)


def _nothing(*_args: Any) -> None:
    pass


@dataclass
class WriterHooks:
    """What the writer reports as it goes, for metrics and tracing (server.py sets them from
    metrics.py and tracing.py, so the store imports neither); each does nothing until set."""

    group_committed: Callable[[int, float], None] = _nothing  # (writes, seconds)
    retried: Callable[[Exception], None] = _nothing  # contention: the group runs again
    gave_up: Callable[[Exception], None] = _nothing  # contention past the retry budget
    conflict: Callable[[], None] = _nothing  # a unique (or other integrity) clash
    # Runs each write in its caller's context, instead of calling it (tracing: a span).
    around_write: Callable[[Callable[[], Any]], Any] | None = None


hooks = WriterHooks()


class Conflict(peewee.IntegrityError):
    """A write broke a unique (or other integrity) rule and its caller did not answer it:
    what services see of the database's own error."""

    @classmethod
    def of(cls, error: peewee.IntegrityError) -> "Conflict":
        if isinstance(error, Conflict):
            return error
        conflict = cls(*error.args)
        conflict.__cause__ = error
        return conflict


@dataclass(eq=False)
class _Write:
    work: Callable[[], Any]
    on_conflict: Callable[[], Any] | None
    # The caller's context variables (the authenticated caller), for the writer thread.
    context: contextvars.Context
    locks: Sequence[RowKey] = ()
    reads: Sequence[RequestKey] = ()
    # How the caller learns the outcome: a thread waits on `done`; a coroutine awaits `future`,
    # settled on its event loop.
    done: threading.Event | None = None
    future: asyncio.Future | None = None
    result: Any = None
    error: BaseException | None = None
    # What the write recorded (`record`), once it succeeded.
    recorded: list = field(default_factory=list)

    def settle(self) -> None:
        """On the future's loop: its outcome, unless the caller went away meanwhile."""
        assert self.future is not None
        if self.future.cancelled():
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    def run(
        self,
        database: peewee.Database,
        is_retryable: Callable[[Exception], bool],
        publish: Callable[[list], None] | None = None,
        first: Callable[[], None] | None = None,
    ) -> None:
        """In its own savepoint (its own transaction when outside one; `publish` then gets
        what it recorded before it commits). `first` runs at its start (the row locks of a
        write that is its own transaction). Contention propagates: the whole group retries.
        Inside another write, what it records joins that write's."""
        outer = getattr(_recording, "items", None)
        try:
            self._run(database, is_retryable, publish, first)
        finally:
            _recording.items = outer
        if outer is not None:
            outer.extend(self.recorded)
            self.recorded = []

    def _run(self, database, is_retryable, publish, first) -> None:
        step, clash = self.work, None
        self.recorded = []
        while True:
            _recording.items = recorded = []
            try:
                with database.atomic():
                    if first is not None:
                        first()
                    around = hooks.around_write
                    if around is None:
                        result = self.context.run(step)
                    else:
                        result = self.context.run(around, step)
                    if publish is not None and recorded:
                        publish(recorded)
                if clash is not None and result is None:  # not the caller's clash to answer
                    self.result, self.error = None, Conflict.of(clash)
                else:
                    self.result, self.error, self.recorded = result, None, recorded
                return
            except peewee.IntegrityError as exc:
                hooks.conflict()
                if self.on_conflict is None or clash is not None:
                    self.error = Conflict.of(exc)
                    return
                step, clash = self.on_conflict, exc  # answer as the loser of the race
            except peewee.DatabaseError as exc:
                if is_retryable(exc) or isinstance(exc, CarriedStatementFailed):
                    raise
                self.error = exc
                return
            except Exception as exc:  # a refusal: this write alone rolls back
                self.error = exc
                return


class _TransactionLost(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _lost_in(exc: BaseException | None) -> BaseException | None:
    """The error that ended the group's transaction, if `exc` is or follows that loss."""
    while exc is not None:
        if isinstance(exc, _TransactionLost):
            return exc.error
        exc = exc.__context__
    return None


class GroupCommit:
    def __init__(
        self,
        database: peewee.Database,
        *,
        is_retryable: Callable[[Exception], bool],
        max_attempts: int,
        backoff: Callable[[int], None],
        one_writer: Callable[[], AbstractContextManager],
        lock_rows: Callable[[list[RowKey]], None],
        publish: Callable[[list], None] = lambda items: None,
        published: Callable[[list], None] = lambda items: None,
        carrying: Callable[[], AbstractContextManager] = contextlib.nullcontext,
        read_ahead: Callable[[list[RequestKey]], AbstractContextManager] = (
            lambda keys: contextlib.nullcontext()
        ),
    ) -> None:
        """`publish` writes what a group's successful writes recorded, inside its transaction
        just before COMMIT; `published` hears of them after the commit. A group of several
        writes runs within `carrying()` (store/postgres.py) until a statement carried from one
        write to the next fails; it then runs again without. `read_ahead` reads, right after
        the row locks, the rows the group's writes will look up by request_id (`reads`),
        and keeps them for those look-ups while the group runs."""
        self._database = database
        self._carrying = carrying
        self._read_ahead = read_ahead
        self._publish = publish
        self._published = published
        self._one_writer = one_writer
        self._lock_rows = lock_rows
        self._is_retryable = is_retryable
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._local = threading.local()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """No writer yet: a forked worker starts its own, the parent's is not in the child."""
        self._queue: list[_Write] = []
        self._queue_ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._bound: peewee.Database | None = None

    def submit(
        self,
        work: Callable[[], Any],
        on_conflict: Callable[[], Any] | None,
        locks: Sequence[RowKey] = (),
        reads: Sequence[RequestKey] = (),
    ) -> Any:
        """`work`'s result once committed, or its error once its savepoint rolled back."""
        write = _Write(work, on_conflict, contextvars.copy_context(), locks, reads)
        if getattr(self._local, "in_group", False):
            # Called from inside a write of the group: a savepoint of its transaction.
            write.run(self._database, self._is_retryable)
            return write.outcome()
        write.done = threading.Event()
        self._enqueue(write)
        write.done.wait()
        return write.outcome()

    async def submit_async(
        self,
        work: Callable[[], Any],
        on_conflict: Callable[[], Any] | None,
        locks: Sequence[RowKey] = (),
        reads: Sequence[RequestKey] = (),
    ) -> Any:
        """`submit` for a coroutine: the event loop waits without a thread, and the writer
        settles a whole group's futures with one wake-up of the loop."""
        write = _Write(work, on_conflict, contextvars.copy_context(), locks, reads)
        write.future = asyncio.get_running_loop().create_future()
        self._enqueue(write)
        return await write.future

    def _enqueue(self, write: _Write) -> None:
        with self._queue_ready:
            self._queue.append(write)
            self._start_writer()
            self._queue_ready.notify()

    def _start_writer(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_forever, name="store-writer", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the writer once it has committed what was queued before, and close its
        connection (before a fork: a SQLite connection must not live on in a child)."""
        with self._queue_ready:
            thread = self._thread
            if thread is None:
                return
            self._queue.append(_STOP)
            self._queue_ready.notify()
        thread.join()
        with self._queue_ready:
            self._thread = None
            if self._queue:  # submitted while it stopped
                self._start_writer()

    def writer_ident(self) -> int | None:
        thread = self._thread
        return thread.ident if thread is not None else None

    def _write_forever(self) -> None:
        self._local.in_group = True
        while True:
            with self._queue_ready:
                while not self._queue:
                    self._queue_ready.wait()
                group = self._queue[:MAX_GROUP]
                if _STOP in group:
                    group = group[: group.index(_STOP)] or [_STOP]
                del self._queue[: len(group)]
            if group[0] is _STOP:
                self._release_connection()
                return
            self._follow_binding()
            try:
                with self._one_writer():
                    started = time.perf_counter()
                    self._run_with_retries(group)
                    hooks.group_committed(len(group), time.perf_counter() - started)
            except BaseException as exc:
                self._fail(group, exc)
            finally:
                self._answer(group)
            committed = [item for write in group if write.error is None for item in write.recorded]
            if committed:
                self._published(committed)

    @staticmethod
    def _answer(group: list[_Write]) -> None:
        waiting: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
        for write in group:
            if write.future is not None:
                waiting.setdefault(write.future.get_loop(), []).append(write)
            elif write.done is not None:
                write.done.set()
        for loop, writes in waiting.items():
            # A loop closed meanwhile (its server stopped) has nobody waiting; the writer
            # must live on for the others.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, writes)

    def _follow_binding(self) -> None:
        """The store was bound to another database (tests do): close the old connection."""
        current = self._database.obj if isinstance(self._database, peewee.DatabaseProxy) else None
        if current is not self._bound:
            if self._bound is not None and not self._bound.is_closed():
                self._bound.close()
            self._bound = current

    def _release_connection(self) -> None:
        if not self._database.is_closed():
            self._database.close()

    def _run_with_retries(self, group: list[_Write]) -> None:
        carry = len(group) > 1
        attempt = 0
        while attempt < self._max_attempts:
            try:
                if len(group) == 1:
                    # Its savepoint is its transaction: what it wrote unread goes with the
                    # COMMIT (store/postgres.py), where an error is still this write's.
                    self._run_alone(group[0])
                    return
                carrying = self._carrying() if carry else contextlib.nullcontext()
                with self._database.atomic(), carrying:
                    self._run_group(group)
                return
            except CarriedStatementFailed:
                carry = False  # again, each write answering for its own statements
                continue
            except (_TransactionLost, peewee.DatabaseError) as exc:
                # Some errors (disk full, I/O, RAISE(ROLLBACK)) make SQLite roll back the
                # whole transaction, not just the savepoint; the rollback on the way out
                # then fails too, with the loss as its context.
                lost = _lost_in(exc)
                if lost is not None:
                    self._fail(group, lost)
                    return
                if not self._is_retryable(exc):
                    self._fail(group, exc)
                    self._drop_broken_connection()
                    return
                attempt += 1
                (hooks.gave_up if attempt == self._max_attempts else hooks.retried)(exc)
            self._backoff(attempt - 1)
        self._fail(group, Unavailable("The store is too busy to finish this call; retry it."))

    def _run_group(self, group: list[_Write]) -> None:
        self._lock_rows(sorted({key for write in group for key in write.locks}))
        with self._read_ahead([key for write in group for key in write.reads]):
            for write in group:
                write.run(self._database, self._is_retryable)
                if write.error is not None and not self._still_open():
                    raise _TransactionLost(write.error)
        recorded = [item for write in group for item in write.recorded]
        if recorded:
            self._publish(recorded)

    def _run_alone(self, write: _Write) -> None:
        keys = sorted(set(write.locks))
        lock = (lambda: self._lock_rows(keys)) if keys else None
        write.run(self._database, self._is_retryable, self._publish, first=lock)
        if write.error is not None:
            self._drop_broken_connection()

    def _drop_broken_connection(self) -> None:
        """The writer keeps its connection; one the server closed (a PostgreSQL restart) is
        dropped so that the next group connects afresh."""
        if self._database.is_closed():
            return
        if getattr(self._database.connection(), "closed", 0):  # psycopg2: nonzero once lost
            self._database.close()

    def _still_open(self) -> bool:
        """Whether the group's transaction survived a failed write."""
        connection = self._database.connection()
        if isinstance(connection, sqlite3.Connection):
            return connection.in_transaction
        return self._database.transaction_usable()  # store/postgres.py

    @staticmethod
    def _fail(group: list[_Write], error: BaseException) -> None:
        for write in group:
            write.result, write.error, write.recorded = None, error, []


def _settle_all(writes: list[_Write]) -> None:
    for write in writes:
        write.settle()


_STOP = _Write(lambda: None, None, contextvars.Context())
