"""PostgreSQL: BEGIN, SAVEPOINT and RELEASE travel with the next statement (store/postgres.py),
and savepoints still undo exactly what they must."""

import uuid

import peewee
import pytest

from rewards_service.store.db import database_settings
from rewards_service.store.postgres import PostgresDatabase


@pytest.fixture
def db(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite has no round trips")
    _, options = database_settings(database_url)
    connection = PostgresDatabase(options.pop("database"), max_connections=2, **options)
    table = f"round_trips_{uuid.uuid4().hex[:8]}"
    connection.execute_sql(f'CREATE TABLE "{table}" ("x" integer PRIMARY KEY)')
    sent: list[str] = []
    connection.query_hooks.append(lambda event: sent.append(event.sql))
    connection.table, connection.sent = table, sent
    yield connection
    connection.query_hooks.clear()
    connection.execute_sql(f'DROP TABLE "{table}"')
    connection.close_all()


def _insert(db, value: int) -> None:
    db.execute_sql(f'INSERT INTO "{db.table}" VALUES (%s)', (value,))


def _rows(db) -> list[int]:
    return [x for (x,) in db.execute_sql(f'SELECT "x" FROM "{db.table}" ORDER BY "x"')]


def test_a_group_of_savepoints_sends_one_query_per_statement(db):
    with db.atomic():
        for value in (1, 2, 3):
            with db.atomic():
                _insert(db, value)
    assert len(db.sent) == 3
    assert db.sent[0].startswith("BEGIN; SAVEPOINT ")
    assert db.sent[1].startswith("RELEASE SAVEPOINT ") and "; SAVEPOINT " in db.sent[1]
    assert _rows(db) == [1, 2, 3]


def test_a_failed_statement_rolls_back_its_own_savepoint_only(db):
    with db.atomic():
        with db.atomic():
            _insert(db, 1)
        with pytest.raises(peewee.IntegrityError), db.atomic():
            _insert(db, 2)
            _insert(db, 1)  # duplicate: fails after its savepoint was taken
        with db.atomic():
            _insert(db, 3)
    assert _rows(db) == [1, 3]


def test_a_savepoint_that_ran_nothing_costs_nothing(db):
    with db.atomic():
        _insert(db, 1)
        with pytest.raises(ValueError), db.atomic():
            raise ValueError("refused before any statement")
        with db.atomic():
            pass
    assert len(db.sent) == 1
    assert "SAVEPOINT" not in db.sent[0].split("INSERT")[1]
    assert _rows(db) == [1]


def test_a_refusal_before_any_statement_leaves_the_transaction_usable(db):
    with db.atomic():
        with pytest.raises(ValueError), db.atomic():
            raise ValueError("refused before any statement")
        assert db.transaction_usable()  # its BEGIN still waits: nothing was lost
        _insert(db, 1)
        with pytest.raises(peewee.IntegrityError):
            _insert(db, 1)  # outside any savepoint: the transaction is aborted
        assert not db.transaction_usable()


def test_a_transaction_that_ran_nothing_reaches_no_server(db):
    with db.atomic(), db.atomic():
        pass
    with pytest.raises(ValueError), db.atomic():
        raise ValueError("refused")
    assert db.sent == []
    connection = db.connection()
    assert connection.get_transaction_status() == 0  # idle: no transaction left open


def test_an_error_in_the_first_statement_leaves_nothing_open(db):
    _insert(db, 1)
    with pytest.raises(peewee.IntegrityError), db.atomic():
        _insert(db, 1)
    assert db.connection().get_transaction_status() == 0
    with db.atomic():
        _insert(db, 2)
    assert _rows(db) == [1, 2]
