"""PostgreSQL connections whose transaction control travels with the next statement.

The writer runs each call of a group in its own savepoint: BEGIN, then per call SAVEPOINT,
its statements and RELEASE SAVEPOINT, then COMMIT. Sent alone, the control statements were
about a quarter of an IssueReward's round trips. Here BEGIN, SAVEPOINT and RELEASE SAVEPOINT
wait for the connection's next statement and go with it in one query string (psycopg2 sends
it as one simple query; PostgreSQL runs the statements one after another in the open
transaction, and an error stops the string at the failing one, after the savepoint it
opened). COMMIT releases every savepoint, so a RELEASE still waiting is dropped, and a
transaction that never sent a statement is neither committed nor rolled back.
"""

import threading

from playhouse.pool import PooledPostgresqlDatabase
from psycopg2.extensions import TRANSACTION_STATUS_INTRANS

_DEFERRED = ("SAVEPOINT ", "RELEASE SAVEPOINT ")
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT "


class PostgresDatabase(PooledPostgresqlDatabase):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._held = threading.local()  # per connection, as peewee's own state is per thread

    def _waiting(self) -> list[str]:
        waiting = getattr(self._held, "statements", None)
        if waiting is None:
            waiting = self._held.statements = []
        return waiting

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

    def execute_sql(self, sql, params=None):
        waiting = self._waiting()
        if sql.startswith(_DEFERRED):
            opened = "SAVEPOINT " + sql[len("RELEASE SAVEPOINT ") :]
            if sql.startswith("RELEASE ") and waiting and waiting[-1] == opened:
                waiting.pop()  # nothing ran inside it
            else:
                waiting.append(sql)
            return None
        if sql.startswith(_ROLLBACK_TO):
            opened = "SAVEPOINT " + sql[len(_ROLLBACK_TO) :]
            if opened in waiting:  # nothing ran since it was taken: nothing to undo
                del waiting[waiting.index(opened) :]
                return None
        if waiting:
            sql = "; ".join(s.rstrip(";") for s in [*waiting, sql])
            waiting.clear()
        return super().execute_sql(sql, params)

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
        return sent

    def commit(self) -> None:
        if self._end():
            super().commit()

    def rollback(self) -> None:
        if self._end():
            super().rollback()

    def close(self) -> bool:
        self._waiting().clear()
        return super().close()
