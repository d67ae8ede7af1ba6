"""Contention faults injected at the real database, no mocks.

SQLite: another connection holds the write lock (`BEGIN IMMEDIATE` on a sqlite3 connection to
the same file) while calls arrive. PostgreSQL: a trigger on the issuance table, in a schema the
test creates and drops, raises serialization_failure (40001) or deadlock_detected (40P01) on the
first N inserts of the test's program; a sequence counts the attempts (a sequence, because a
counter row would roll back with the failed transaction).

The promise: bounded retries, one effect per call, and once the retry budget is spent a
retryable code (UNAVAILABLE or ABORTED) with nothing changed.
"""

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from rewards.v1 import issuance_pb2, participants_pb2

from rewards_service.store.db import MAX_ATTEMPTS, session
from rewards_service.store.models import Issuance, LedgerEntry, Reward
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import ServerProcess, failure_of, make_api, spawn_server
from tests.integration.test_group_commit import writer_reports
from tests.invariants import assert_invariants, program_state

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
# A busy timeout far below the default 10 s, so that a held lock outlives the whole retry
# budget within a test.
SHORT_BUSY_MS = 100


@dataclass
class Scene:
    api: object
    program_id: str
    points: str
    priced: str
    user: str


def _scene(api, program_id) -> Scene:
    points = f.asset(api)
    priced = f.reward(api, cost_asset_id=points.id, unit_cost="10")
    user = f.participant(api)
    f.fund(api, user.id, points.id, "100.00")
    return Scene(api, program_id, points.id, priced.id, user.id)


@pytest.fixture
def scene(channel) -> Scene:
    issued = new_program("contention")
    return _scene(make_api(channel, issued.program_id, issued.api_key), issued.program_id)


def _issue(api, scene: Scene, request_id: str, **kwargs):
    return api.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=scene.priced, participant=f.ref(scene.user), request_id=request_id
        ),
        timeout=30,
        **kwargs,
    )


def _grant(api, scene: Scene, reference: str):
    return api.issuance.GrantCustomReward(
        issuance_pb2.GrantCustomRewardRequest(
            participant=f.ref(scene.user),
            amount="5.00",
            action_code="contention.test",
            client_reference=reference,
        ),
        timeout=30,
    )


def _adjust(api, scene: Scene, request_id: str, delta: str):
    return api.participants.AdjustBalance(
        participants_pb2.AdjustBalanceRequest(
            participant=f.ref(scene.user),
            asset_id=scene.points,
            delta=delta,
            reason="contention",
            request_id=request_id,
        ),
        timeout=30,
    )


def _attempt(call):
    """(response, None) or (None, grpc error), and how long the call took."""
    started = time.monotonic()
    try:
        return call(), None, time.monotonic() - started
    except grpc.RpcError as error:
        return None, error, time.monotonic() - started


def _stored(program_id: str, request_id: str) -> tuple[int, int]:
    """(issuances with this request_id, their ledger entries) straight from the database."""
    with session():
        ids = [
            i
            for (i,) in Issuance.select(Issuance.id)
            .where((Issuance.program == program_id) & (Issuance.request_id == request_id))
            .tuples()
        ]
        entries = LedgerEntry.select().where(LedgerEntry.issuance_id.in_(ids)).count() if ids else 0
    return len(ids), entries


def _available(scene: Scene) -> Decimal:
    return Decimal(f.balance(scene.api, scene.user, scene.points).available)


# SQLite: a second connection holds the write lock.


@pytest.fixture
def sqlite_path(store) -> str:
    if not store.startswith("sqlite"):
        pytest.skip("SQLite only: holds the file's write lock from a second connection")
    return store[len("sqlite:///") :]


class WriteLock:
    """The database file's write lock, held by a connection of this test."""

    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5)

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.fixture
def short_busy_server(sqlite_path, store):
    """A server process on the suite's SQLite file whose busy timeout is SHORT_BUSY_MS."""
    server = spawn_server(f"{store}?busy_timeout={SHORT_BUSY_MS}")
    yield server
    assert server.stop() == 0


def test_calls_wait_out_a_held_write_lock_and_take_effect_once(scene, sqlite_path):
    hold = 1.5
    api = scene.api
    calls = [
        *(lambda i=i: _issue(api, scene, f"held-{i}") for i in range(4)),
        *(lambda: _issue(api, scene, "held-same") for _ in range(3)),
        lambda: _grant(api, scene, "held-grant"),
        lambda: _adjust(api, scene, "held-adjust", "7.00"),
    ]
    with ThreadPoolExecutor(len(calls)) as pool:
        with WriteLock(sqlite_path):
            futures = [pool.submit(_attempt, call) for call in calls]
            time.sleep(hold)
            # Every call is still waiting for the lock, none failed.
            assert not any(fut.done() for fut in futures)
            released = time.monotonic()
        results = [fut.result(timeout=30) for fut in futures]
    errors = [(e.code(), e.details()) for _, e, _ in results if e is not None]
    assert errors == []
    assert all(took >= hold * 0.9 for _, _, took in results)
    assert time.monotonic() - released < 10
    responses = [r for r, _, _ in results]
    same = responses[4:7]
    assert len({r.issuance.id for r in same}) == 1
    assert sorted(r.idempotent_replay for r in same) == [False, True, True]
    # One effect each: five priced issues (10.00 each) and +7.00.
    for request_id in [*(f"held-{i}" for i in range(4)), "held-same"]:
        assert _stored(scene.program_id, request_id) == (1, 1)
    assert _stored(scene.program_id, "held-grant") == (1, 0)
    assert _available(scene) == Decimal("100.00") - 5 * 10 + 7
    assert _redeemed(scene.priced) == 5
    assert_invariants(scene.program_id)


def _short_busy_api(server: ServerProcess, scene: Scene):
    channel = grpc.insecure_channel(server.address)
    return channel, make_api(channel, scene.program_id, scene.api.key)


def test_a_lock_held_past_the_retry_budget_changes_nothing(scene, short_busy_server, sqlite_path):
    channel, api = _short_busy_api(short_busy_server, scene)
    with channel:
        before = program_state(scene.program_id)
        with WriteLock(sqlite_path):
            response, error, took = _attempt(lambda: _issue(api, scene, "past-budget"))
            assert error is not None, response
            assert took < 15
            # Checked while the lock is still held: nothing was half-written either.
            assert program_state(scene.program_id) == before
        assert program_state(scene.program_id) == before
        assert _stored(scene.program_id, "past-budget") == (0, 0)
        # The failure recorded nothing, so the same request_id now issues for the first time.
        retried = _issue(api, scene, "past-budget")
        assert not retried.idempotent_replay
        assert _stored(scene.program_id, "past-budget") == (1, 1)
        assert _available(scene) == Decimal("90.00")
        assert_invariants(scene.program_id)


def test_a_lock_held_past_the_retry_budget_answers_with_a_retryable_code(
    scene, short_busy_server, sqlite_path
):
    channel, api = _short_busy_api(short_busy_server, scene)
    with channel, WriteLock(sqlite_path):
        _, error, took = _attempt(lambda: _issue(api, scene, "past-budget-code"))
        assert error is not None
        assert error.code() in RETRYABLE, (error.code(), error.details())
        assert failure_of(error).domain == "rewards.v1"
        # It really retried: every attempt waited out the busy timeout, and then it stopped.
        assert MAX_ATTEMPTS * SHORT_BUSY_MS / 1000 * 0.9 <= took < 15


def test_a_lock_held_for_a_few_busy_timeouts_is_retried_through(
    scene, short_busy_server, sqlite_path
):
    channel, api = _short_busy_api(short_busy_server, scene)
    with channel, ThreadPoolExecutor(2) as pool:
        with WriteLock(sqlite_path):
            issued = pool.submit(_attempt, lambda: _issue(api, scene, "few-timeouts"))
            granted = pool.submit(_attempt, lambda: _grant(api, scene, "few-timeouts-grant"))
            # Longer than three busy timeouts, well inside the retry budget.
            time.sleep(3.5 * SHORT_BUSY_MS / 1000)
        for fut in (issued, granted):
            response, error, _ = fut.result(timeout=30)
            assert error is None, (error.code(), error.details())
            assert not response.idempotent_replay
    assert _stored(scene.program_id, "few-timeouts") == (1, 1)
    assert _stored(scene.program_id, "few-timeouts-grant") == (1, 0)
    assert _available(scene) == Decimal("90.00")
    assert_invariants(scene.program_id)


# PostgreSQL: a trigger fails the first N issuance inserts of the test's program.


class Faults:
    def __init__(self, conn, schema: str):
        self.conn = conn
        self.schema = schema

    def _run(self, text: str, *params):
        with self.conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else None

    def fail_inserts(self, program_id: str, count: int, sqlstate: str) -> None:
        self._run(f"DELETE FROM {self.schema}.plan")
        self._run(f"ALTER SEQUENCE {self.schema}.attempts RESTART")
        self._run(
            f"INSERT INTO {self.schema}.plan VALUES (%s, %s, %s)", program_id, count, sqlstate
        )

    def stop(self) -> None:
        self._run(f"DELETE FROM {self.schema}.plan")

    def attempts(self) -> int:
        [(value, called)] = self._run(f"SELECT last_value, is_called FROM {self.schema}.attempts")
        return value if called else 0


@pytest.fixture
def faults(store):
    if not store.startswith("postgres"):
        pytest.skip("PostgreSQL only: injects 40001/40P01 with a trigger")
    import psycopg2

    conn = psycopg2.connect(store)
    conn.autocommit = True
    schema = f"fault_{uuid.uuid4().hex[:10]}"
    faults = Faults(conn, schema)
    faults._run(f"CREATE SCHEMA {schema}")
    faults._run(
        f"CREATE TABLE {schema}.plan (program_id text PRIMARY KEY, failures int, sqlstate text)"
    )
    faults._run(f"CREATE SEQUENCE {schema}.attempts")
    faults._run(
        f"""
        CREATE FUNCTION {schema}.fail_first() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE planned record;
        BEGIN
            SELECT * INTO planned FROM {schema}.plan WHERE program_id = NEW.program_id;
            IF FOUND AND nextval('{schema}.attempts') <= planned.failures THEN
                RAISE EXCEPTION 'injected fault' USING ERRCODE = planned.sqlstate;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    faults._run(
        f"CREATE TRIGGER {schema} BEFORE INSERT ON issuance "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.fail_first()"
    )
    try:
        yield faults
    finally:
        faults._run(f"DROP TRIGGER IF EXISTS {schema} ON issuance")
        faults._run(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


SQLSTATES = pytest.mark.parametrize("sqlstate", ["40001", "40P01"])


def _redeemed(reward_id: str) -> int:
    with session():
        return Reward.get_by_id(reward_id).redeemed_count


@SQLSTATES
def test_the_fault_trigger_fails_only_the_planned_inserts(scene, faults, channel, sqlstate):
    """The injection itself: it fires for the planned program only, and counts attempts."""
    faults.fail_inserts(scene.program_id, 1000, sqlstate)
    _, error, _ = _attempt(lambda: _issue(scene.api, scene, "trigger-check"))
    assert error is not None
    assert faults.attempts() >= 1
    other = new_program("contention-other")
    bystander = _scene(make_api(channel, other.program_id, other.api_key), other.program_id)
    seen = faults.attempts()
    assert not _issue(bystander.api, bystander, "trigger-check").idempotent_replay
    assert faults.attempts() == seen


@SQLSTATES
def test_failures_past_the_retry_budget_change_nothing(scene, faults, sqlstate):
    before = program_state(scene.program_id)
    faults.fail_inserts(scene.program_id, 1000, sqlstate)
    for call in (
        lambda: _issue(scene.api, scene, "pg-budget"),
        lambda: _grant(scene.api, scene, "pg-budget-grant"),
    ):
        response, error, took = _attempt(call)
        assert error is not None, response
        assert took < 15
    assert program_state(scene.program_id) == before
    # Nothing was recorded, so once the faults stop the same keys issue for the first time.
    faults.stop()
    assert not _issue(scene.api, scene, "pg-budget").idempotent_replay
    assert not _grant(scene.api, scene, "pg-budget-grant").idempotent_replay
    assert _stored(scene.program_id, "pg-budget") == (1, 1)
    assert _stored(scene.program_id, "pg-budget-grant") == (1, 0)
    assert _available(scene) == Decimal("90.00")
    assert_invariants(scene.program_id)


@SQLSTATES
def test_failures_past_the_retry_budget_answer_with_a_retryable_code(scene, faults, sqlstate):
    before = program_state(scene.program_id)
    faults.fail_inserts(scene.program_id, 1000, sqlstate)
    _, error, took = _attempt(lambda: _issue(scene.api, scene, "pg-budget-code"))
    assert error is not None
    assert error.code() in RETRYABLE, (error.code(), error.details())
    assert failure_of(error).domain == "rewards.v1"
    # Bounded: exactly the budget of attempts, then the answer.
    assert faults.attempts() == MAX_ATTEMPTS
    assert took < 15
    assert program_state(scene.program_id) == before


@SQLSTATES
def test_injected_failures_are_retried_with_one_effect(scene, faults, sqlstate):
    faults.fail_inserts(scene.program_id, 3, sqlstate)
    response, error, _ = _attempt(lambda: _issue(scene.api, scene, "pg-retried"))
    assert error is None, (error.code(), error.details())
    assert not response.idempotent_replay
    # Three failed attempts rolled back whole, the fourth committed.
    assert faults.attempts() == 4
    assert _stored(scene.program_id, "pg-retried") == (1, 1)
    assert _available(scene) == Decimal("90.00")
    assert _redeemed(scene.priced) == 1
    # The replay inserts nothing and returns the one issuance.
    replay = _issue(scene.api, scene, "pg-retried")
    assert replay.idempotent_replay and replay.issuance.id == response.issuance.id
    assert faults.attempts() == 4
    faults.fail_inserts(scene.program_id, 2, sqlstate)
    _, error, _ = _attempt(lambda: _grant(scene.api, scene, "pg-retried-grant"))
    assert error is None, (error.code(), error.details())
    assert faults.attempts() == 3
    assert _stored(scene.program_id, "pg-retried-grant") == (1, 0)
    assert_invariants(scene.program_id)


def test_concurrent_calls_under_injected_failures_make_one_issuance(scene, faults):
    faults.fail_inserts(scene.program_id, 5, "40001")
    with ThreadPoolExecutor(10) as pool:
        results = list(
            pool.map(lambda _: _attempt(lambda: _issue(scene.api, scene, "pg-herd")), range(10))
        )
    errors = [(e.code(), e.details()) for _, e, _ in results if e is not None]
    assert errors == []
    responses = [r for r, _, _ in results]
    assert len({r.issuance.id for r in responses}) == 1
    assert sum(not r.idempotent_replay for r in responses) == 1
    assert _stored(scene.program_id, "pg-herd") == (1, 1)
    assert _available(scene) == Decimal("90.00")
    assert _redeemed(scene.priced) == 1
    assert_invariants(scene.program_id)


@SQLSTATES
def test_the_writer_reports_injected_failures_as_retries_by_reason(scene, faults, sqlstate):
    faults.fail_inserts(scene.program_id, 2, sqlstate)
    with writer_reports() as seen:
        _, error, _ = _attempt(lambda: _issue(scene.api, scene, "pg-reported"))
    assert error is None, (error.code(), error.details())
    reason = {"40001": "serialization_failure", "40P01": "deadlock_detected"}[sqlstate]
    assert seen["retries"] == [reason, reason]
    assert seen["gave_up"] == []
    faults.fail_inserts(scene.program_id, 1000, sqlstate)
    with writer_reports() as seen:
        _, error, _ = _attempt(lambda: _issue(scene.api, scene, "pg-reported-budget"))
    assert error is not None
    assert seen["retries"] == [reason] * (MAX_ATTEMPTS - 1)
    assert seen["gave_up"] == [reason]
