"""Group commit for SQLite: the writes of concurrent calls share one transaction and one commit.

SQLite admits one writer at a time and every commit writes each page it touched to the WAL.
Run one after another, concurrent issues pay that page I/O once each, and the thread holding
the write lock keeps losing the GIL to the threads queued behind it. Here the first caller to
find no commit running becomes the leader: it takes the queued writes, runs each in its own
savepoint on its own connection, commits once, then wakes their callers. A write that fails
rolls back to its savepoint and fails alone; a commit that fails fails the whole group, and
nothing of it is acknowledged. Callers learn their result only after the commit.

One leader at a time also means this process never has two writers queued in SQLite's busy
handler, which sleeps in growing steps (up to 100 ms) before it looks again. Leaders of other
processes sharing the file (--workers) take turns on a lock of their own first (`one_writer`),
which wakes the next one as soon as it is released.

On PostgreSQL each write runs alone: groups on different replicas lock rows in different
orders and deadlock, which PostgreSQL only notices after deadlock_timeout (1 s).
"""

import contextvars
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import peewee

from rewards_service.domain.errors import Unavailable

# Bounds how long one commit keeps the callers in its group waiting.
MAX_GROUP = 16


@dataclass(eq=False)
class _Write:
    work: Callable[[], Any]
    on_conflict: Callable[[], Any] | None
    # The caller's context variables (the authenticated caller), for the leader.
    context: contextvars.Context
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: Any = None
    error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    def run(self, database: peewee.Database, is_retryable: Callable[[Exception], bool]) -> None:
        """In its own savepoint (its own transaction when outside one). Contention propagates:
        the whole group retries."""
        step, answering = self.work, False
        while True:
            try:
                with database.atomic():
                    self.result, self.error = self.context.run(step), None
                return
            except peewee.IntegrityError as exc:
                if self.on_conflict is None or answering:
                    self.error = exc
                    return
                step, answering = self.on_conflict, True  # answer as the loser of the race
            except peewee.DatabaseError as exc:
                if is_retryable(exc):
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
    ) -> None:
        self._database = database
        self._one_writer = one_writer
        self._is_retryable = is_retryable
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._queue: list[_Write] = []
        self._queue_lock = threading.Lock()
        self._leading = False
        self._local = threading.local()

    def submit(
        self, work: Callable[[], Any], on_conflict: Callable[[], Any] | None, *, alone: bool
    ) -> Any:
        """`work`'s result once committed. `alone` runs it in a transaction of its own, on the
        caller's thread, with the same retries and conflict answer."""
        write = _Write(work, on_conflict, contextvars.copy_context())
        if getattr(self._local, "in_group", False):
            # Called from inside a write of the group: a savepoint of its transaction.
            write.run(self._database, self._is_retryable)
            return write.outcome()
        if alone:
            self._commit([write])
            return write.outcome()
        with self._queue_lock:
            self._queue.append(write)
            write.lead = not self._leading
            self._leading = True
        if not write.lead:
            write.done.wait()
        if write.lead:
            self._lead()
        return write.outcome()

    def _lead(self) -> None:
        with self._queue_lock:
            group = self._queue[:MAX_GROUP]
            del self._queue[:MAX_GROUP]
        try:
            self._commit(group)
        finally:
            with self._queue_lock:
                # Hand over to the oldest queued write, or stop leading.
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._leading = False
            for write in group:
                write.lead = False
                write.done.set()

    def _commit(self, group: list[_Write]) -> None:
        self._local.in_group = True
        try:
            with self._one_writer():
                self._run_with_retries(group)
        except BaseException as exc:
            self._fail(group, exc)
            raise
        finally:
            self._local.in_group = False

    def _run_with_retries(self, group: list[_Write]) -> None:
        for attempt in range(self._max_attempts):
            try:
                if len(group) == 1:  # alone, its savepoint is its transaction
                    group[0].run(self._database, self._is_retryable)
                    return
                with self._database.atomic():
                    for write in group:
                        write.run(self._database, self._is_retryable)
                        if write.error is not None and not self._still_open():
                            raise _TransactionLost(write.error)
                return
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
                    return
            self._backoff(attempt)
        self._fail(group, Unavailable("The store is too busy to finish this call; retry it."))

    def _still_open(self) -> bool:
        return self._database.connection().in_transaction

    @staticmethod
    def _fail(group: list[_Write], error: BaseException) -> None:
        for write in group:
            write.result, write.error = None, error
