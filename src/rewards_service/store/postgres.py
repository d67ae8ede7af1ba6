"""PostgreSQL connections whose transaction control, and the statements nobody reads the
result of, travel with the next statement.

The writer runs each call of a group in its own savepoint: BEGIN, then per call SAVEPOINT,
its statements and RELEASE SAVEPOINT, then COMMIT. Sent alone, the control statements were
about a quarter of an IssueReward's round trips. Here BEGIN, SAVEPOINT and RELEASE SAVEPOINT
wait for the connection's next statement and go with it in one query string (psycopg2 sends
it as one simple query; PostgreSQL runs the statements one after another in the open
transaction, and an error stops the string at the failing one, after the savepoint it
opened). COMMIT releases every savepoint, so a RELEASE still waiting is dropped, and a
transaction that never sent a statement is neither committed nor rolled back.

Statements whose rows and row count nobody reads (`execute_unread`: a ledger entry, an
issuance, the outbox's events) wait the same way, rendered with their parameters. They never
outlive the savepoint that made them: its RELEASE (or COMMIT) goes with them, so an error in
one (a unique key taken) is raised in the write that made it and rolls back that write
alone; a savepoint opened while they wait goes with them, so their error is never raised
inside it. A rollback drops them.

Within `carrying()` (the writer's groups of several writes) they do outlive it: a write's
RELEASE, and the next write's SAVEPOINT, wait with them for the next statement that needs
an answer, so a write costs no round trip of its own for its last statements. Their errors
are rare (a unique key another replica took meanwhile) but can no longer be told apart from
the later write's: such a failure is raised as `CarriedStatementFailed`, every savepoint
rollback after it is a no-op, and the writer rolls the group back and runs it again outside
`carrying()`, where each write answers for its own statements. What was made outside any
savepoint (the group's row locks) still goes with the next SAVEPOINT: its error is the
group's, and a deadlock there is retried as one.
"""

import contextlib
import itertools
import math
import re
import threading
import time
from collections.abc import Iterator

import peewee
import psycopg2
from playhouse.pool import PooledPostgresqlDatabase
from psycopg2.extensions import (
    TRANSACTION_STATUS_INERROR,
    TRANSACTION_STATUS_INTRANS,
    connection,
    encodings,
)

_DEFERRED = ("SAVEPOINT ", "RELEASE SAVEPOINT ")
_CONTROL = ("BEGIN", *_DEFERRED)
_RELEASE = "RELEASE SAVEPOINT "
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT "
_SAVEPOINT_CONTROL = (*_DEFERRED, _ROLLBACK_TO)


def _unread_in(waiting: list[str]) -> bool:
    return any(not s.startswith(_CONTROL) for s in waiting)


def _carries(waiting: list[str]) -> bool:
    """Whether statements nobody read wait from a savepoint already released."""
    unread = False
    for statement in waiting:
        if not statement.startswith(_CONTROL):
            unread = True
        elif unread and statement.startswith(_RELEASE):
            return True
    return False


class CarriedStatementFailed(peewee.DatabaseError):
    """A query string that carried statements of an earlier, released savepoint failed: whose
    statement broke is unknown, and the transaction is lost. Roll it back and run its writes
    again outside `carrying()`."""


# A pooled connection that was back in the pool for less than this is handed out without
# the pool's liveness check. One the server ended meanwhile fails its call and is dropped;
# a PostgreSQL restart takes longer than this, so after one every connection is checked.
CHECKED_AFTER_IDLE_SECONDS = 1.0

# Prepared statements (`prepared`): PostgreSQL plans a statement sent as text every time;
# the hot path's statements, planned once per connection, cost its server about half as much
# (the stock take: 283 -> 140 us). Their texts are few, but some grow with a batch's size:
# each connection keeps at most this many, of at most this many parameters.
MAX_PREPARED = 128
MAX_PREPARED_PARAMS = 100
_PLACEHOLDER = re.compile(r"%s")
# Texts whose parameters' types PostgreSQL cannot infer; they go as text. Bounded as above.
_unpreparable: set[str] = set()


class _Connection(connection):
    """A psycopg2 connection that remembers what was prepared on it (text -> name), and
    when it last went back to the pool."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: dict[str, str] = {}
        self.made = 0  # names are never reused: a stale one may still be on the server
        self.stale = False  # DEALLOCATE ALL before preparing again
        self.returned_at = -math.inf  # time.monotonic()


def is_stale_plan(exc: BaseException) -> bool:
    """A prepared `SELECT *` whose table changed shape since (a migration of another
    replica): PostgreSQL refuses it from then on. Statements are prepared afresh and the
    transaction can run again."""
    cause = exc.__cause__ or exc.__context__ or exc
    return getattr(cause, "pgcode", None) == "0A000" and "cached plan" in str(cause)


def _numbered(sql: str) -> str | None:
    """`sql` with $1, $2, ... for its %s placeholders; None when it holds other % forms."""
    if "%" in _PLACEHOLDER.sub("", sql):
        return None
    count = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


class _Held(threading.local):
    """What waits to be sent, and the state of the transaction it belongs to: per
    connection, as peewee's own state is per thread."""

    carry = False  # within carrying()
    outside = False  # a statement made outside any savepoint waits
    depth = 0  # savepoints open (peewee counts transactions only)
    lost: peewee.DatabaseError | None = None  # what failed a string that carried statements

    def __init__(self) -> None:
        self.statements: list[str] = []


class PostgresDatabase(PooledPostgresqlDatabase):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("connection_factory", _Connection)
        super().__init__(*args, **kwargs)
        self._held = _Held()

    # The pool checks that a connection it hands out is still alive with a SELECT 1, a
    # round trip that every read RPC paid under load (GetReward: two instead of one). One
    # back in the pool for less than CHECKED_AFTER_IDLE_SECONDS is handed out as it is.

    def _can_reuse(self, conn) -> bool:
        if not super()._can_reuse(conn):
            return False
        conn.returned_at = time.monotonic()
        return True

    def _is_closed(self, conn) -> bool:
        returned_at = getattr(conn, "returned_at", -math.inf)
        if not conn.closed and time.monotonic() - returned_at < CHECKED_AFTER_IDLE_SECONDS:
            return False
        return super()._is_closed(conn)

    def prepared(self, sql: str, params: tuple) -> tuple[str, tuple]:
        """(sql, params) to send instead: an EXECUTE of `sql` prepared on this connection,
        the first time here (plans survive rollbacks); `sql` itself when it cannot be."""
        if len(params) > MAX_PREPARED_PARAMS or sql in _unpreparable:
            return sql, params
        conn = self.connection()
        prepared = getattr(conn, "prepared", None)
        if prepared is None:
            return sql, params
        if conn.stale and not self._deallocated(conn):
            return sql, params
        name = prepared.get(sql)
        if name is None:
            if len(prepared) >= MAX_PREPARED:
                return sql, params
            name = self._prepare(conn, sql)
            if name is None:
                return sql, params
        if not params:
            return f"EXECUTE {name}", params
        return f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params

    @staticmethod
    def _prepare(conn: _Connection, sql: str) -> str | None:
        numbered = _numbered(sql)
        status = conn.get_transaction_status()
        if numbered is None or status == TRANSACTION_STATUS_INERROR:
            return None
        name = f"rewards_{conn.made}"
        conn.made += 1
        # Sent now, ahead of what waits: it touches no data. Inside a transaction it runs in
        # a savepoint of its own, so that a failure leaves the transaction as it was.
        inside = status == TRANSACTION_STATUS_INTRANS
        statement = f"PREPARE {name} AS {numbered}"
        with conn.cursor() as cursor:
            try:
                cursor.execute(
                    f"SAVEPOINT rewards_prepare; {statement}; RELEASE SAVEPOINT rewards_prepare"
                    if inside
                    else statement
                )
            except psycopg2.Error:
                if inside:
                    cursor.execute(
                        "ROLLBACK TO SAVEPOINT rewards_prepare; RELEASE SAVEPOINT rewards_prepare"
                    )
                if len(_unpreparable) < MAX_PREPARED:
                    _unpreparable.add(sql)
                return None
        conn.prepared[sql] = name
        return name

    @staticmethod
    def _deallocated(conn: _Connection) -> bool:
        """Drop what was prepared on `conn`, unless its transaction has failed (then later)."""
        if conn.get_transaction_status() == TRANSACTION_STATUS_INERROR:
            return False
        with conn.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")  # allowed in a transaction, and not undone
        conn.prepared.clear()
        conn.stale = False
        return True

    def _waiting(self) -> list[str]:
        return self._held.statements

    @contextlib.contextmanager
    def carrying(self) -> Iterator[None]:
        """Within: statements nobody reads wait past the end of their savepoint (above)."""
        self._held.carry = True
        try:
            yield
        finally:
            self._held.carry = False

    def begin(self, isolation_level=None) -> None:
        if self.is_closed():
            self.connect()  # a database that cannot be reached fails here, as before
        level = isolation_level or self._isolation_level
        if level:
            self._waiting().append(
                f"BEGIN TRANSACTION ISOLATION LEVEL {self._adapter.isolation_level_str(level)}"
            )
        else:
            self._waiting().append("BEGIN")

    def execute_unread(self, sql: str, params=()) -> None:
        """A statement whose result nobody reads: in a transaction it waits for the next
        statement that needs an answer, or the end of its savepoint; outside one it runs now
        (nothing would be sure to send it)."""
        if not self.in_transaction():
            self.execute_sql(sql, params)
            return
        connection = self.connection()
        rendered = connection.cursor().mogrify(sql, params).decode(encodings[connection.encoding])
        # The string it joins is sent with parameters (peewee passes at least an empty
        # tuple), so psycopg2 reads every % in it as a placeholder.
        self._waiting().append(rendered.replace("%", "%%"))
        if not self._held.depth:
            self._held.outside = True  # no savepoint of its own: the next one takes it

    def execute_sql(self, sql, params=None):
        waiting = self._waiting()
        if sql.startswith(_SAVEPOINT_CONTROL):
            depth = self._held.depth
            self._held.depth = depth + 1 if sql.startswith("SAVEPOINT ") else max(depth - 1, 0)
        if self._held.lost is not None:
            if sql.startswith(_ROLLBACK_TO):  # the savepoint went with the lost transaction
                return None
            raise CarriedStatementFailed(*self._held.lost.args) from self._held.lost
        if sql.startswith(_DEFERRED) and (
            not _unread_in(waiting) or (self._held.carry and not self._held.outside)
        ):
            opened = "SAVEPOINT " + sql[len(_RELEASE) :]
            if sql.startswith(_RELEASE) and waiting and waiting[-1] == opened:
                waiting.pop()  # nothing ran inside it
            else:
                waiting.append(sql)
            return None
        if sql.startswith(_ROLLBACK_TO):
            opened = "SAVEPOINT " + sql[len(_ROLLBACK_TO) :]
            if opened in waiting:  # nothing ran since it was taken: nothing to undo
                del waiting[waiting.index(opened) :]
                return None
            # What waits was made inside the savepoint (what waited when it was taken went
            # with it): undone unsent.
            waiting.clear()
        carried = _carries(waiting)
        if waiting:
            sql = "; ".join(s.rstrip(";") for s in [*waiting, sql])
            waiting.clear()
        self._held.outside = False
        try:
            return super().execute_sql(sql, params)
        except peewee.DatabaseError as exc:
            if is_stale_plan(exc):
                self.connection().stale = True
            if not carried:
                raise
            self._held.lost = exc
            raise CarriedStatementFailed(*exc.args) from exc

    def transaction_usable(self) -> bool:
        """Whether the open transaction can go on after a write failed: one whose BEGIN still
        waits has lost nothing; on the server, an error outside any savepoint aborts it."""
        if any(s.startswith("BEGIN") for s in self._waiting()):
            return True
        return self.connection().get_transaction_status() == TRANSACTION_STATUS_INTRANS

    def _end(self) -> bool:
        """Forget what waits; whether the transaction ever reached the server."""
        waiting = self._waiting()
        sent = not any(s.startswith("BEGIN") for s in waiting)
        waiting.clear()
        self._held.lost = None
        self._held.depth = 0
        self._held.outside = False
        return sent

    def commit(self) -> None:
        if _unread_in(self._waiting()):
            self.execute_sql("COMMIT")  # they go with it, in order, after what waits
        elif self._end():
            super().commit()

    def rollback(self) -> None:
        if self._end():
            super().rollback()

    def close(self) -> bool:
        self._end()
        return super().close()
