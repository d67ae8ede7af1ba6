"""Group commit (store/group_commit.py) against a real SQLite file, driven from real threads.

Each test binds the store to a file of its own with a few tables of its own, and every calling
thread opens its own connection with `session()`, as RPC threads do. To pin which writes share
a group, a first write holds its commit open until the others have queued behind it: they then
make up the next group, run by the store's writer thread.
"""

import asyncio
import contextvars
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import peewee
import pytest

from rewards_service.domain.errors import FailedPrecondition, Unavailable
from rewards_service.store import db as store_db
from rewards_service.store import group_commit
from rewards_service.store.db import bind, database, in_transaction, open_database, session

# Every wait is bounded: a deadlock or a lost wake-up fails the test instead of hanging it.
TIMEOUT = 30

SCHEMA = [
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT INTO counter (id, n) VALUES (1, 0)",
    "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
    # Deferred: the violation passes the statement and the savepoint, and fails COMMIT itself.
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL"
    " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
]


@pytest.fixture
def sqlite_file(database_url) -> Iterator[Callable[..., str]]:
    """open(busy_timeout_ms) binds the store to a new SQLite file with SCHEMA; returns its path.

    The binding the suite had is restored afterwards, for the tests that run after these.
    """
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only: group commit is used on SQLite only")
    # Not tmp_path: pytest prunes old base temp dirs, even under a run still using them.
    directory = tempfile.mkdtemp(prefix="rewards-group-commit-")
    previous = database.obj
    opened: list[peewee.Database] = []

    def open_file(busy_timeout_ms: int = 1000) -> str:
        path = f"{directory}/group.db"
        opened.append(open_database(f"sqlite:///{path}?busy_timeout={busy_timeout_ms}"))
        bind(opened[-1])
        with session():
            for statement in SCHEMA:
                database.execute_sql(statement)
        return path

    try:
        yield open_file
        # A queued write left behind would stall every later write of the process.
        assert store_db._group_commit._queue == []
    finally:
        for db in opened:
            db.close()  # this thread's connection; each Caller closes its own
        database.initialize(previous)
        shutil.rmtree(directory, ignore_errors=True)


class Caller(threading.Thread):
    """A thread with its own connection, as an RPC thread has, running `body` once."""

    def __init__(self, body: Callable[[], Any]):
        # Daemon: if a bug leaves it blocked, the assertion in outcome() fails the test and the
        # process can still exit.
        super().__init__(daemon=True)
        self.body = body
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with session():
                self.result = self.body()
        except BaseException as exc:
            self.error = exc
        finally:
            database.close()

    def outcome(self) -> "Caller":
        self.join(TIMEOUT)
        assert not self.is_alive(), "the call never returned"
        return self


def start(body: Callable[[], Any]) -> Caller:
    caller = Caller(body)
    caller.start()
    return caller


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


def queued() -> int:
    # Private, read on purpose: the queue's length is the only sign that a caller has handed
    # its write over and is waiting for the running commit, which is what pins the groups.
    with store_db._group_commit._queue_ready:
        return len(store_db._group_commit._queue)


def writer() -> int | None:
    return store_db._group_commit.writer_ident()


def insert(name: str) -> int:
    return database.execute_sql("INSERT INTO item (name) VALUES (?)", (name,)).lastrowid


def committed_names() -> set[str]:
    """What another connection (this thread's) sees: committed rows only."""
    return {name for (name,) in database.execute_sql("SELECT name FROM item").fetchall()}


def scalar(sql: str) -> Any:
    return database.execute_sql(sql).fetchone()[0]


@contextmanager
def held_commit() -> Iterator[None]:
    """A write whose commit stays open for the block: calls made meanwhile queue behind it."""
    running, release = threading.Event(), threading.Event()

    def work():
        insert("gate")
        running.set()
        assert release.wait(TIMEOUT)

    gate = start(lambda: in_transaction(work))
    assert running.wait(TIMEOUT), "the gate write never ran"
    try:
        yield
    finally:
        release.set()
        assert gate.outcome().error is None


def queue_in_order(bodies: list[Callable[[], Any]]) -> list[Caller]:
    """Start one Caller per body, each only once the previous one's write has queued.

    Call inside held_commit(): the writes then form the next group, in this order, and the
    writer runs them together.
    """
    callers: list[Caller] = []
    for body in bodies:
        callers.append(start(body))
        wait_until(lambda: queued() == len(callers), f"{len(callers)} writes are queued")
    return callers


def one_group(bodies: list[Callable[[], Any]]) -> list[Caller]:
    with held_commit():
        callers = queue_in_order(bodies)
    return [caller.outcome() for caller in callers]


def test_writes_queued_behind_a_commit_share_the_next_commit(sqlite_file):
    sqlite_file()
    ran_on: dict[str, int] = {}
    last_running, release_last = threading.Event(), threading.Event()

    def write(name: str):
        def work():
            insert(name)
            ran_on[name] = threading.get_ident()
            return name

        return lambda: in_transaction(work)

    def last():
        insert("w4")
        ran_on["w4"] = threading.get_ident()
        last_running.set()
        assert release_last.wait(TIMEOUT)
        return "w4"

    with held_commit():
        callers = queue_in_order(
            [write("w1"), write("w2"), write("w3"), lambda: in_transaction(last)]
        )
    try:
        assert last_running.wait(TIMEOUT)
        # While the group's last write is still running, none of its earlier writes is visible
        # from another connection and none of their callers has been answered: had any of them
        # been committed on its own, it would already show. Once the last write ends, all four
        # appear together: one commit.
        assert committed_names() == {"gate"}
        assert all(caller.is_alive() for caller in callers)
    finally:
        release_last.set()
    assert [caller.outcome().result for caller in callers] == ["w1", "w2", "w3", "w4"]
    assert [caller.error for caller in callers] == [None] * 4
    assert committed_names() == {"gate", "w1", "w2", "w3", "w4"}
    # All ran on the writer's thread, so on its connection, none on a caller's.
    assert set(ran_on.values()) == {writer()}


def test_a_refusal_fails_only_its_own_call_and_leaves_no_row(sqlite_file):
    sqlite_file()
    refusal = FailedPrecondition("refused after writing", reason="TEST_REFUSAL")
    ran_on: list[int] = []

    def accepted(name: str):
        def work():
            ran_on.append(threading.get_ident())
            return insert(name)

        return lambda: in_transaction(work)

    def refused():
        ran_on.append(threading.get_ident())
        insert("r2")
        raise refusal

    callers = one_group([accepted("r1"), lambda: in_transaction(refused), accepted("r3")])
    # Every write ran on the writer's thread.
    assert set(ran_on) == {writer()} and len(ran_on) == 3
    assert callers[1].error is refusal
    assert type(callers[1].error) is FailedPrecondition
    assert callers[0].error is None and callers[2].error is None
    assert committed_names() == {"gate", "r1", "r3"}
    ids = dict(database.execute_sql("SELECT name, id FROM item").fetchall())
    assert (callers[0].result, callers[2].result) == (ids["r1"], ids["r3"])


def test_a_failed_commit_fails_the_whole_group_and_the_next_write_commits(sqlite_file):
    sqlite_file()
    ran_on: list[int] = []

    def first():
        # Its write fails with the group's commit; it then writes again through the same
        # writer, whose connection must not be left inside the failed transaction.
        failure = None
        try:
            in_transaction(lambda: insert("c1"))
        except Exception as exc:
            failure = exc

        def after():
            ran_on.append(threading.get_ident())
            return insert("after")

        return failure, in_transaction(after)

    def orphan():
        database.execute_sql("INSERT INTO item (name) VALUES ('c2')")
        database.execute_sql("INSERT INTO child (id, parent_id) VALUES (1, 999)")

    callers = one_group(
        [first, lambda: in_transaction(orphan), lambda: in_transaction(lambda: insert("c3"))]
    )
    errors = [callers[0].result[0], callers[1].error, callers[2].error]
    for error in errors:
        assert isinstance(error, peewee.IntegrityError), error
        assert "FOREIGN KEY" in str(error)
    assert committed_names() == {"gate", "after"}
    assert scalar("SELECT count(*) FROM child") == 0
    assert callers[0].error is None
    assert ran_on == [writer()]


def test_a_unique_race_inside_one_group_is_answered_by_on_conflict(sqlite_file):
    sqlite_file()
    conflicts: list[str] = []
    ran_on: set[int] = set()

    def issue(caller: str):
        def work():
            ran_on.add(threading.get_ident())
            return ("made", caller, insert("dup"))

        def on_conflict():
            conflicts.append(caller)
            # Runs in the same group, so it sees the winner's row before it is committed.
            return ("existing", caller, scalar("SELECT id FROM item WHERE name = 'dup'"))

        return lambda: in_transaction(work, on_conflict=on_conflict)

    first, second = one_group([issue("first"), issue("second")])
    assert first.error is None and second.error is None
    [(row_id,)] = database.execute_sql("SELECT id FROM item WHERE name = 'dup'").fetchall()
    assert first.result == ("made", "first", row_id)
    assert second.result == ("existing", "second", row_id)
    assert conflicts == ["second"]
    # One group: both ran on the writer's thread, the loser before the winner had committed.
    assert ran_on == {writer()}


def test_each_write_sees_its_callers_context_variables_on_the_writers_thread(sqlite_file):
    sqlite_file()
    who = contextvars.ContextVar("who", default="nobody")

    def call(name: str):
        def work():
            seen = (who.get(), threading.get_ident())
            who.set("changed by the work")
            return seen

        def body():
            who.set(name)
            seen = in_transaction(work)
            # The work ran in a copy of the caller's context: its own changes stay there.
            return seen, who.get()

        return body

    leader, follower = one_group([call("leader"), call("follower")])
    assert leader.error is None and follower.error is None
    (leader_saw, leader_thread), leader_after = leader.result
    (follower_saw, follower_thread), follower_after = follower.result
    # Both ran on the writer's thread, each still with its own caller's value.
    assert follower_thread == leader_thread == writer() not in (leader.ident, follower.ident)
    assert (leader_saw, follower_saw) == ("leader", "follower")
    assert (leader_after, follower_after) == ("leader", "follower")


def test_a_write_that_calls_in_transaction_again_completes(sqlite_file):
    sqlite_file()

    def nested(outer: str, inner: str):
        def work():
            insert(outer)
            return in_transaction(lambda: insert(inner))

        return lambda: in_transaction(work)

    # Alone, as a group of its own.
    alone = start(nested("alone-outer", "alone-inner")).outcome()
    assert alone.error is None
    # Queued, so it runs inside a group with another caller's write.
    callers = one_group([lambda: in_transaction(lambda: insert("first")), nested("outer", "inner")])
    assert [caller.error for caller in callers] == [None, None]
    assert committed_names() == {
        "alone-outer",
        "alone-inner",
        "gate",
        "first",
        "outer",
        "inner",
    }


def test_many_threads_each_write_takes_effect_exactly_once(sqlite_file):
    sqlite_file()
    threads, writes = 16, 50

    def body(t: int):
        def run():
            for i in range(writes):

                def work(i=i):
                    database.execute_sql("UPDATE counter SET n = n + 1 WHERE id = 1")
                    insert(f"t{t}-{i}")

                in_transaction(work)

        return run

    callers = [start(body(t)) for t in range(threads)]
    assert [caller.outcome().error for caller in callers] == [None] * threads
    assert scalar("SELECT n FROM counter WHERE id = 1") == threads * writes
    assert scalar("SELECT count(*) FROM item") == threads * writes


# Holds the file's write lock from another process until a line arrives on stdin. Another
# process, because closing a second connection of this process to the file would drop this
# process's POSIX locks on it, under the store's own connections too.
HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def held_elsewhere(script: str, path: str) -> Iterator[None]:
    """Another process runs `script` on `path`, which holds a lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.communicate("release\n", timeout=TIMEOUT)
    assert holder.returncode == 0


def test_a_write_lock_held_elsewhere_past_the_retry_budget_is_unavailable(sqlite_file):
    path = sqlite_file(busy_timeout_ms=50)
    with held_elsewhere(HOLD_WRITE_LOCK, path):
        started = time.monotonic()
        callers = [start(lambda i=i: in_transaction(lambda: insert(f"busy-{i}"))) for i in range(4)]
        for caller in callers:
            assert type(caller.outcome().error) is Unavailable, caller.error
        # Bounded: eight attempts of a 50 ms busy timeout and a short backoff, not a hang.
        assert time.monotonic() - started < 15
        assert committed_names() == set()
    callers = [start(lambda i=i: in_transaction(lambda: insert(f"free-{i}"))) for i in range(4)]
    assert [caller.outcome().error for caller in callers] == [None] * 4
    assert committed_names() == {f"free-{i}" for i in range(4)}


def _put(name: str) -> Callable[[], Any]:
    return lambda: in_transaction(lambda: insert(name))


def _fill_the_disk() -> None:
    """SQLITE_FULL: SQLite rolls back the whole transaction, not only the statement."""
    pages = scalar("PRAGMA page_count")
    database.execute_sql(f"PRAGMA max_page_count = {pages}")
    try:
        insert("x" * 200_000)
    finally:
        database.execute_sql("PRAGMA max_page_count = 1073741823")


@pytest.mark.parametrize("how", ["disk full", "RAISE(ROLLBACK)"])
def test_a_write_that_rolls_back_the_whole_transaction_fails_the_whole_group(sqlite_file, how):
    sqlite_file()
    if how == "disk full":
        breaking = lambda: in_transaction(_fill_the_disk)  # noqa: E731
    else:
        with session():
            database.execute_sql(
                "CREATE TRIGGER abort_all BEFORE INSERT ON item WHEN NEW.name = 'abort'"
                " BEGIN SELECT RAISE(ROLLBACK, 'aborted'); END"
            )
        breaking = _put("abort")
    callers = one_group([_put("a1"), breaking, _put("a3")])
    # Acknowledged exactly when it took effect: nothing committed behind a caller told "failed".
    committed = committed_names()
    for name, caller in zip(["a1", "breaking", "a3"], callers, strict=True):
        assert (caller.error is None) == (name in committed), (name, caller.error, committed)
    assert committed == {"gate"}
    assert _put("after")() is not None and "after" in committed_names()


def test_a_nested_call_that_fails_rolls_back_only_its_own_writes(sqlite_file):
    sqlite_file()

    def inner():
        insert("inner")
        raise FailedPrecondition("refused")

    def outer():
        insert("outer")
        with pytest.raises(FailedPrecondition):
            in_transaction(inner)

    assert start(lambda: in_transaction(outer)).outcome().error is None
    assert committed_names() == {"outer"}


def test_a_nested_call_answers_its_conflict_with_on_conflict(sqlite_file):
    sqlite_file()

    def outer():
        insert("dup")
        return in_transaction(lambda: insert("dup"), on_conflict=lambda: "answered")

    caller = start(lambda: in_transaction(outer)).outcome()
    assert caller.error is None and caller.result == "answered"
    assert committed_names() == {"dup"}


# Another worker process: it holds the writers' flock until told to let go.
HOLD_WRITER_FLOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1] + "-writer", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_write_waits_while_another_process_holds_the_writers_flock(sqlite_file):
    path = sqlite_file()
    with held_elsewhere(HOLD_WRITER_FLOCK, path):
        caller = start(_put("after-the-other-worker"))
        # Unlocked, this write takes a few milliseconds.
        caller.join(0.5)
        assert caller.is_alive(), "the write did not wait for the other process"
        assert committed_names() == set()
    assert caller.outcome().error is None
    assert committed_names() == {"after-the-other-worker"}


# Binds the store to argv[1], takes the writers' flock, forks: the child must find the lock
# taken (its own open file) instead of sharing the parent's (an inherited one).
FORK_WHILE_WRITING = """
import fcntl, os, sys
from rewards_service.store import db
db.bind(db.open_database("sqlite:///" + sys.argv[1]))
with db.one_writer():
    pid = os.fork()
    if pid == 0:
        try:
            fcntl.flock(db._writer_lock(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(1)
        except BlockingIOError:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_worker_does_not_share_its_parents_writers_flock(sqlite_file):
    path = sqlite_file()
    out = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_WRITING, path],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert out.stdout.strip() == "0", out.stdout + out.stderr


def test_a_write_whose_event_loop_closed_meanwhile_leaves_the_writer_alive(sqlite_file):
    sqlite_file()
    running, release = threading.Event(), threading.Event()

    def slow() -> str:
        insert("orphan")
        running.set()
        assert release.wait(TIMEOUT)
        return "orphan"

    loop = asyncio.new_event_loop()
    waiting = loop.create_task(store_db.write(slow))
    loop.run_until_complete(asyncio.sleep(0))  # the write is queued
    assert running.wait(TIMEOUT)
    waiting.cancel()
    loop.close()  # as a stopped server's loop is, before its write is answered
    release.set()
    # The writer answered into the closed loop and went on: the next write commits.
    assert start(lambda: in_transaction(lambda: insert("after"))).outcome().error is None
    assert committed_names() == {"orphan", "after"}


@contextmanager
def writer_reports() -> Iterator[dict[str, list]]:
    """What the writer reports through its hooks (metrics uses them) while the block runs."""
    seen: dict[str, list] = {"groups": [], "retries": [], "gave_up": [], "conflicts": []}
    before = dataclasses.replace(group_commit.hooks)
    group_commit.hooks.group_committed = lambda calls, seconds: seen["groups"].append(
        (calls, seconds)
    )
    group_commit.hooks.retried = lambda exc: seen["retries"].append(store_db.contention_reason(exc))
    group_commit.hooks.gave_up = lambda exc: seen["gave_up"].append(store_db.contention_reason(exc))
    group_commit.hooks.conflict = lambda: seen["conflicts"].append(True)
    try:
        yield seen
    finally:
        group_commit.hooks.__dict__.update(before.__dict__)


def test_the_writer_reports_each_groups_size_and_time_and_each_clash(sqlite_file):
    sqlite_file()
    with writer_reports() as seen:

        def racer():
            return in_transaction(lambda: insert("same"), on_conflict=lambda: "answered")

        callers = one_group([_put("a"), _put("b"), racer, racer])
    assert [caller.error for caller in callers] == [None] * 4
    assert callers[3].result == "answered"
    # The gate's own group, then the four queued behind it as one.
    assert [calls for calls, _ in seen["groups"]] == [1, 4]
    assert all(0 < seconds < TIMEOUT for _, seconds in seen["groups"])
    assert seen["conflicts"] == [True]
    assert seen["retries"] == seen["gave_up"] == []


def test_the_writer_reports_each_retry_on_a_busy_file(sqlite_file):
    path = sqlite_file(busy_timeout_ms=50)
    with writer_reports() as seen, held_elsewhere(HOLD_WRITE_LOCK, path):
        assert type(start(_put("busy")).outcome().error) is Unavailable
    assert seen["retries"] == ["busy"] * (store_db.MAX_ATTEMPTS - 1)
    assert seen["gave_up"] == ["busy"]
