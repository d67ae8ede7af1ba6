"""PostgreSQL: BEGIN, SAVEPOINT and RELEASE, and statements nobody reads the result of, travel
with the next statement (store/postgres.py), and savepoints still undo exactly what they must."""

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import peewee
import psycopg2
import pytest
from rewards.v1 import common_pb2, issuance_pb2

from rewards_service.store import db as store_db
from rewards_service.store import postgres
from rewards_service.store.db import database, database_settings
from rewards_service.store.group_commit import Conflict, GroupCommit, hooks
from rewards_service.store.postgres import CarriedStatementFailed, PostgresDatabase
from tests import factories as f
from tests.helpers import writes_held


@pytest.fixture
def db(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite has no round trips")
    _, options = database_settings(database_url)
    connection = PostgresDatabase(options.pop("database"), max_connections=2, **options)
    table = f"round_trips_{uuid.uuid4().hex[:8]}"
    connection.execute_sql(
        f'CREATE TABLE "{table}" ("x" integer PRIMARY KEY, "note" text NOT NULL DEFAULT \'\')'
    )
    sent: list[str] = []
    connection.query_hooks.append(lambda event: sent.append(event.sql))
    connection.table, connection.sent = table, sent
    yield connection
    connection.query_hooks.clear()
    connection.execute_sql(f'DROP TABLE "{table}"')
    connection.close_all()


def _insert(db, value: int) -> None:
    db.execute_sql(f'INSERT INTO "{db.table}" ("x") VALUES (%s)', (value,))


def _insert_unread(db, value: int, note: str = "") -> None:
    db.execute_unread(f'INSERT INTO "{db.table}" ("x", "note") VALUES (%s, %s)', (value, note))


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


def test_an_unread_statement_goes_with_the_commit_when_it_is_the_last_thing(db):
    with db.atomic():
        _insert_unread(db, 1, "50% off")  # a % in a value is not a placeholder
    assert db.sent == [
        f'BEGIN; INSERT INTO "{db.table}" ("x", "note") VALUES (1, \'50%% off\'); COMMIT'
    ]
    assert _rows(db) == [1]
    note = db.execute_sql(f'SELECT "note" FROM "{db.table}"').fetchone()[0]
    assert note == "50% off"


def test_an_unread_statement_goes_with_the_next_statement_that_needs_an_answer(db):
    with db.atomic():
        _insert_unread(db, 1)
        _insert_unread(db, 2)
        assert db.sent == []
        assert _rows(db) == [1, 2]  # sent with the read, which sees them
    assert len(db.sent) == 1
    assert _rows(db) == [1, 2]


def test_a_rollback_drops_what_was_not_sent(db):
    with pytest.raises(ValueError), db.atomic():
        _insert_unread(db, 1)
        raise ValueError("refused")
    assert db.sent == []  # its BEGIN never left either
    with pytest.raises(ValueError), db.atomic():
        _insert(db, 2)
        _insert_unread(db, 3)
        raise ValueError("refused")
    with db.atomic():
        _insert(db, 4)
        with pytest.raises(ValueError), db.atomic():
            _insert_unread(db, 5)
            raise ValueError("refused")
        _insert_unread(db, 6)
    assert _rows(db) == [4, 6]
    assert db.connection().get_transaction_status() == 0


def test_outside_a_transaction_an_unread_statement_runs_at_once(db):
    _insert_unread(db, 1)
    assert len(db.sent) == 1
    assert _rows(db) == [1]


def test_an_unread_statement_that_breaks_a_key_fails_its_own_savepoint_at_its_release(db):
    _insert(db, 1)
    with db.atomic():
        with db.atomic():
            _insert_unread(db, 2)
        with pytest.raises(peewee.IntegrityError), db.atomic():
            _insert_unread(db, 3)
            _insert_unread(db, 1)  # duplicate: raised when its savepoint ends
        with db.atomic():
            _insert_unread(db, 4)
    assert _rows(db) == [1, 2, 4]
    released = [sql for sql in db.sent if "VALUES (3" in sql]
    assert len(released) == 1 and released[0].split("; ")[-1].startswith("RELEASE SAVEPOINT ")


def test_a_savepoint_taken_while_statements_wait_takes_them_first(db):
    _insert(db, 1)
    # Raised where the duplicate was written, not inside the savepoint opened after it
    # (which would then fail to roll back to a savepoint the server never took).
    with pytest.raises(peewee.IntegrityError), db.atomic():
        _insert(db, 2)
        _insert_unread(db, 1)
        with db.atomic():
            _insert_unread(db, 3)
    assert db.sent[-1].startswith(f'INSERT INTO "{db.table}"')
    assert db.sent[-1].split("; ")[-1].startswith("SAVEPOINT ")
    assert _rows(db) == [1]


def _last_statement(database_url: str, pid: int) -> str:
    """What the backend `pid` ran last, as PostgreSQL itself reports it."""
    with psycopg2.connect(database_url) as other, other.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
        (query,) = cursor.fetchone()
    other.close()
    return query


def test_a_connection_back_in_the_pool_moments_ago_is_handed_out_without_a_liveness_check(
    db, database_url, monkeypatch
):
    monkeypatch.setattr(postgres, "CHECKED_AFTER_IDLE_SECONDS", 60.0)
    with db.connection_context():
        pid = db.execute_sql("SELECT pg_backend_pid() /* a read */").fetchone()[0]
    with db.connection_context():
        assert db.connection().get_backend_pid() == pid
        assert _last_statement(database_url, pid).endswith("/* a read */")  # no SELECT 1
    monkeypatch.setattr(postgres, "CHECKED_AFTER_IDLE_SECONDS", 0.0)
    with db.connection_context():
        assert db.connection().get_backend_pid() == pid
        assert _last_statement(database_url, pid) == "SELECT 1"  # idle longer: checked


def test_a_connection_the_server_ended_while_it_idled_is_replaced(db, database_url, monkeypatch):
    monkeypatch.setattr(postgres, "CHECKED_AFTER_IDLE_SECONDS", 0.0)
    with db.connection_context():
        pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg2.connect(database_url) as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    other.close()
    with db.connection_context():
        assert db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid


def _group_commit(db) -> GroupCommit:
    def lock_rows(keys):
        ids = [int(key) for _table, key in keys]
        db.execute_sql(f'SELECT 1 FROM "{db.table}" WHERE "x" = ANY(%s) FOR UPDATE', (ids,))

    return GroupCommit(
        db,
        is_retryable=lambda exc: False,
        max_attempts=1,
        backoff=lambda attempt: None,
        one_writer=threading.Lock,
        lock_rows=lock_rows,
        carrying=db.carrying,
    )


def _in_one_group(writer: GroupCommit, writes, *, before=lambda: None) -> list:
    """Run `writes` ((work, on_conflict) pairs) as one group of `writer`, in this order: they
    queue behind a write that holds the writer. `before` runs just before it lets go. Their
    outcomes, settled."""
    started, go_on = threading.Event(), threading.Event()

    def hold() -> str:
        started.set()
        assert go_on.wait(30)
        return "held"

    with ThreadPoolExecutor(len(writes) + 1) as pool:
        first = pool.submit(writer.submit, hold, None)
        assert started.wait(30)
        outcomes = []
        for work, on_conflict in writes:
            outcomes.append(pool.submit(writer.submit, work, on_conflict, [("t", "1")]))
            while len(writer._queue) < len(outcomes):
                time.sleep(0.001)
        before()
        go_on.set()
        assert first.result(30) == "held"
    writer.close()
    return outcomes


def _put(db, value: int):
    return lambda: _insert_unread(db, value) or value


def test_in_a_group_an_unread_insert_that_breaks_a_key_fails_its_own_write_only(db):
    _insert(db, 1)
    outcomes = _in_one_group(
        _group_commit(db),
        [
            (_put(db, 10), None),
            (_put(db, 1), lambda: "answered"),
            (_put(db, 11), None),
            (_put(db, 1), None),
        ],
    )
    assert outcomes[0].result(30) == 10
    assert outcomes[1].result(30) == "answered"  # the request_id race's answer still works
    assert outcomes[2].result(30) == 11
    with pytest.raises(Conflict):
        outcomes[3].result(30)
    assert _rows(db) == [1, 10, 11]
    # First the four INSERTs waited past their writes' RELEASEs and went together; the
    # duplicate failed them all, so the group ran again with each INSERT going with its own
    # RELEASE, where its error is its own write's.
    carried, *alone = [sql for sql in db.sent[1:] if "INSERT" in sql]
    assert carried.count("INSERT") == 4 and carried.count("RELEASE SAVEPOINT ") >= 3
    assert len(alone) == 4
    assert all(sql.split("; ")[-1].startswith("RELEASE SAVEPOINT ") for sql in alone)


def test_in_a_group_unread_statements_wait_past_their_writes_savepoints(db):
    writes = [(_put(db, value), None) for value in (1, 2, 3)]
    outcomes = _in_one_group(_group_commit(db), writes, before=db.sent.clear)
    assert [outcome.result(30) for outcome in outcomes] == [1, 2, 3]
    # The lock, then the three writes whole with the COMMIT.
    assert len(db.sent) == 2, db.sent
    assert db.sent[-1].count("INSERT") == 3 and db.sent[-1].endswith("COMMIT")
    assert _rows(db) == [1, 2, 3]


def test_in_a_group_a_row_lock_that_fails_is_retried_as_the_groups_failure(db):
    # The lock waits for the next statement, but not inside a write's savepoint: its error
    # (here a stand-in for deadlock_detected) is the group's, which runs again.
    failures = []

    def lock_rows(keys):
        if not failures:
            db.execute_unread("SELECT 1 / 0")
        else:
            db.execute_unread(f'SELECT 1 FROM "{db.table}" FOR UPDATE')

    writer = GroupCommit(
        db,
        is_retryable=lambda exc: "division by zero" in str(exc),
        max_attempts=3,
        backoff=lambda attempt: None,
        one_writer=threading.Lock,
        lock_rows=lock_rows,
        carrying=db.carrying,
    )
    retried = hooks.retried
    hooks.retried = failures.append
    try:
        writes = [(lambda value=value: _insert(db, value) or value, None) for value in (1, 2)]
        outcomes = _in_one_group(writer, writes)
    finally:
        hooks.retried = retried
    assert [outcome.result(30) for outcome in outcomes] == [1, 2]
    assert len(failures) == 1 and "division by zero" in str(failures[0])
    assert _rows(db) == [1, 2]


def test_a_carried_statement_that_fails_loses_the_transaction_until_it_rolls_back(db):
    _insert(db, 1)
    with pytest.raises(CarriedStatementFailed), db.atomic(), db.carrying():
        with db.atomic():
            _insert_unread(db, 1)  # duplicate: carried past its RELEASE
        with db.atomic():
            _insert(db, 2)  # fails with what it carried; its savepoint was never taken
    with db.atomic():
        _insert(db, 3)
    assert _rows(db) == [1, 3]


_EXECUTE = re.compile(r"EXECUTE (rewards_\d+)(?: \(%s(?:, %s)*\))?")


@pytest.fixture
def writer_statements(store):
    """Every query string the store's writer sends from now on (a COMMIT goes through here
    whenever statements wait for it). Not counted: a statement's PREPARE, sent once per
    connection."""
    if not store.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite has no round trips")
    sent: list[str] = []

    def hook(event) -> None:
        if threading.get_ident() == store_db._group_commit.writer_ident():
            # A prepared statement's EXECUTE, shown as the text it runs.
            texts = {name: text for text, name in database.obj.connection().prepared.items()}
            sent.append(_EXECUTE.sub(lambda m: texts[m.group(1)], event.sql))

    database.obj.query_hooks.append(hook)
    yield sent
    database.obj.query_hooks.remove(hook)


def _new_id() -> str:
    return str(uuid.uuid4())


def _priced_reward(admin):
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="1", max_total=1000)
    users = [f.participant(admin) for _ in range(3)]
    for user in users:
        f.fund(admin, user.id, points.id, "100")
    return reward, users


def test_an_issue_of_a_priced_reward_takes_four_round_trips(admin, writer_statements):
    reward, users = _priced_reward(admin)
    writer_statements.clear()
    f.issue(admin, reward.id, users[0].id, request_id=_new_id())
    # The lock with the replay lookup; the reward with its stock taken and the participant;
    # balance; then the ledger entry, the issuance and the events go with the COMMIT. No
    # sold-out check: 999 units are left.
    assert len(writer_statements) == 4, writer_statements
    assert "FOR UPDATE" in writer_statements[0] and '"request_id"' in writer_statements[0]
    assert writer_statements[-1].endswith("; COMMIT")
    assert not any('SET "status"' in sql for sql in writer_statements)


@pytest.mark.parametrize(
    ("kind", "trips"),
    [("external_id", 4), ("email", 5)],  # an email may be shared: looked up on its own
)
def test_the_participant_is_read_with_the_reward_when_its_identifier_is_unique(
    admin, writer_statements, kind, trips
):
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="1", max_total=1000)
    tag = uuid.uuid4().hex[:8]
    user = f.participant(admin, f"ext-{tag}", email=f"{tag}@example.com")
    f.fund(admin, user.id, points.id, "100")
    writer_statements.clear()
    value = {"external_id": user.external_id, "email": user.email}[kind]
    issued = admin.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=reward.id, participant=f.ref(**{kind: value}), request_id=_new_id()
        )
    ).issuance
    assert issued.participant_id == user.id
    assert len(writer_statements) == trips, writer_statements


def test_a_participant_missing_from_the_joined_read_is_not_found_and_takes_no_stock(admin):
    reward, _ = _priced_reward(admin)
    failure = f.refused(
        admin,
        lambda: f.issue(admin, reward.id, f"par_{uuid.uuid4().hex}"),
        rewards=(reward.id,),
    )
    assert failure.reason == "PARTICIPANT_NOT_FOUND"


def _waiting_on_lock(store: str, reward_id: str) -> bool:
    with psycopg2.connect(store) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND position(%s in query) > 0",
            (reward_id,),
        )
        waiting = cursor.fetchone()[0] > 0
    connection.close()
    return waiting


def _queued_behind(store, reward_id: str, first, calls) -> list:
    """The results of `calls`, queued in this order while `first` (an issue of the reward)
    waits on the reward's row: they then run as one group."""
    with ThreadPoolExecutor(1 + len(calls)) as pool:
        with writes_held(store, [reward_id]):
            waiting = pool.submit(first)
            while not _waiting_on_lock(store, reward_id):  # the writer waits on the row
                time.sleep(0.01)
            queued = []
            for call in calls:
                queued.append(pool.submit(call))
                while len(store_db._group_commit._queue) < len(queued):
                    time.sleep(0.001)
        waiting.result(30)
        return [call.result(30) for call in queued]


def test_each_further_issue_in_a_group_takes_two_round_trips(admin, store, writer_statements):
    reward, users = _priced_reward(admin)
    writer_statements.clear()

    def issue(user):
        return lambda: f.issue(admin, reward.id, user.id, request_id=_new_id())

    _queued_behind(store, reward.id, issue(users[0]), [issue(user) for user in users[1:]])
    groups = [i for i, sql in enumerate(writer_statements) if sql.startswith("BEGIN")]
    assert len(groups) == 2, writer_statements
    second = writer_statements[groups[1] :]
    # The lock with both issues' replay lookups, two per issue (the reward with the
    # participant; the balance), and the events with the COMMIT: each issue's ledger entry,
    # issuance and RELEASE wait for the next statement.
    assert len(second) == 1 + 2 * 2 + 1, second
    assert second[0].count("(%s, %s)") == 2  # both look-ups in one statement
    assert second[-1].endswith("; COMMIT")


def test_one_request_id_twice_in_a_group_issues_once_and_replays_once(admin, store):
    if not store.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite reads no request_id ahead")
    reward, users = _priced_reward(admin)
    request_id = _new_id()

    def again():
        return f.issue(admin, reward.id, users[0].id, request_id=request_id)

    # Both read ahead as missing; the second's look-up then finds the first's.
    answers = _queued_behind(
        store, reward.id, lambda: f.issue(admin, reward.id, users[1].id), [again, again]
    )
    assert answers[0].issuance.id == answers[1].issuance.id
    assert sorted(answer.idempotent_replay for answer in answers) == [False, True]
    assert f.balance(admin, users[0].id, reward.cost_asset_id).available == "99.00"


def test_a_burst_of_retries_of_one_request_id_in_a_group_reads_it_once(
    admin, store, writer_statements
):
    reward, users = _priced_reward(admin)
    request_id = _new_id()
    issued = f.issue(admin, reward.id, users[0].id, request_id=request_id).issuance
    writer_statements.clear()

    def retry():
        return f.issue(admin, reward.id, users[0].id, request_id=request_id)

    answers = _queued_behind(
        store, reward.id, lambda: f.issue(admin, reward.id, users[1].id), [retry, retry, retry]
    )
    assert [(a.issuance.id, a.idempotent_replay) for a in answers] == [(issued.id, True)] * 3
    groups = [i for i, sql in enumerate(writer_statements) if sql.startswith("BEGIN")]
    burst = writer_statements[groups[-1] :]
    # The lock with the look-ups, then the driver's COMMIT: no retry asks the database again.
    assert len(burst) == 1, burst
    assert burst[0].count("(%s, %s)") == 3


def test_a_row_read_ahead_and_changed_in_the_group_is_read_again_by_later_retries(admin, store):
    if not store.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite reads no request_id ahead")
    reward, users = _priced_reward(admin)
    request_id = _new_id()
    issued = f.issue(admin, reward.id, users[0].id, request_id=request_id).issuance

    def retry():
        return f.issue(admin, reward.id, users[0].id, request_id=request_id).issuance

    before, revoked, after = _queued_behind(
        store,
        reward.id,
        lambda: f.issue(admin, reward.id, users[1].id),
        [retry, lambda: f.revoke(admin, issued.id), retry],
    )
    assert before.status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    assert revoked.status == after.status == common_pb2.ISSUANCE_STATUS_REVOKED


def _prepared_names(db) -> set[str]:
    return {name for (name,) in db.execute_sql("SELECT name FROM pg_prepared_statements")}


def test_a_statement_is_prepared_once_per_connection_and_answers_as_its_text(db):
    text = f'INSERT INTO "{db.table}" ("x", "note") VALUES (%s, %s) RETURNING "x", "note"'
    for value in (1, 2):
        sql, params = db.prepared(text, (value, f"n{value}%"))
        assert sql.startswith("EXECUTE ") and params == (value, f"n{value}%")
        assert db.execute_sql(sql, params).fetchone() == (value, f"n{value}%")
    assert len(_prepared_names(db)) == 1
    with db.atomic():  # unread, it waits rendered like any other
        db.execute_unread(*db.prepared(text, (3, "three")))
    assert db.execute_sql(f'SELECT "note" FROM "{db.table}" WHERE "x" = 3').fetchone() == ("three",)


def test_a_prepared_statement_outlives_a_rollback(db):
    text = f'SELECT count(*) FROM "{db.table}" WHERE "x" > %s'
    with pytest.raises(ValueError), db.atomic():
        _insert(db, 1)
        assert db.execute_sql(*db.prepared(text, (0,))).fetchone() == (1,)
        raise ValueError("rolled back")
    sql, params = db.prepared(text, (0,))
    assert sql.startswith("EXECUTE ")
    assert db.execute_sql(sql, params).fetchone() == (0,)


def test_a_statement_that_cannot_be_prepared_goes_as_text_and_leaves_the_transaction_usable(db):
    untyped = "SELECT %s IS NULL"  # PostgreSQL cannot tell the parameter's type
    with db.atomic():
        _insert(db, 1)
        assert db.prepared(untyped, (None,)) == (untyped, (None,))
        _insert(db, 2)
    assert db.prepared("SELECT '100%%' || %s", ("x",))[0] == "SELECT '100%%' || %s"
    assert _rows(db) == [1, 2]
    assert not _prepared_names(db)


def test_after_its_table_changes_shape_a_statement_is_prepared_afresh(db):
    _insert(db, 1)
    text = f'SELECT * FROM "{db.table}" WHERE "x" = %s'
    sql, params = db.prepared(text, (1,))
    assert db.execute_sql(sql, params).fetchone() == (1, "")
    # Another replica's migration adds a column: the plan prepared here no longer fits.
    other = PostgresDatabase(db.database, **db.connect_params)
    other.execute_sql(f'ALTER TABLE "{db.table}" ADD COLUMN "y" integer NOT NULL DEFAULT 7')
    other.close()
    with pytest.raises(peewee.DatabaseError) as stale:
        db.execute_sql(sql, params)
    assert store_db.contention_reason(stale.value) == "stale_plan"  # the writer runs it again
    sql, params = db.prepared(text, (1,))
    assert sql.startswith("EXECUTE ")
    assert db.execute_sql(sql, params).fetchone() == (1, "", 7)
    assert len(_prepared_names(db)) == 1


def test_a_connection_prepares_a_bounded_number_of_statements(db, monkeypatch):
    # Some texts grow with what a caller sends (codes added at once, a group's events): past
    # the bounds they go as text, and the server keeps no more than the bound.
    monkeypatch.setattr(postgres, "MAX_PREPARED", 3)
    sent = []
    for width in range(1, 6):
        text = "SELECT " + " + ".join(["%s::int"] * width)
        sql, params = db.prepared(text, (1,) * width)
        sent.append(sql.startswith("EXECUTE "))
        assert db.execute_sql(sql, params).fetchone() == (width,)
    assert sent == [True, True, True, False, False]
    assert len(_prepared_names(db)) == 3
    monkeypatch.setattr(postgres, "MAX_PREPARED", 10)  # room again: only the width refuses
    many = (1,) * (postgres.MAX_PREPARED_PARAMS + 1)
    text = "SELECT " + " + ".join(["%s::int"] * len(many))
    assert db.prepared(text, many) == (text, many)
