"""Hot reads outside transactions are answered from memory while nothing was committed.

The change token is SQLite's WAL-index header; these tests commit from other connections and
other processes and check that no read ever returns what was there before the commit.
"""

import subprocess
import sys
import uuid

import grpc
import pytest
from rewards.v1 import catalog_pb2

from rewards_service.domain.errors import NotFound
from rewards_service.store import fast
from rewards_service.store.db import change_token, database, in_transaction, is_sqlite, session
from rewards_service.store.queries import get_reward
from tests import factories
from tests.helpers import make_api, spawn_server


def _sqlite_only():
    if not is_sqlite():
        pytest.skip("the change token is SQLite's; PostgreSQL reads always query")


def _commit_in_another_process(sql: str, *params: object) -> None:
    """A commit that never goes through this process's connections."""
    path = database.obj.database
    script = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], timeout=10)\n"
        "db.execute(sys.argv[2], sys.argv[3:])\n"
        "db.commit()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, path, sql, *map(str, params)], check=True, timeout=30
    )


def _rename(api, reward_id: str, name: str) -> None:
    api.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward_id, name=name), update_mask={"paths": ["name"]}
        )
    )


def _name(program_id: str, reward_id: str) -> str:
    with session():
        return get_reward(program_id, reward_id).name


def test_postgresql_has_no_change_token(store):
    if is_sqlite():
        pytest.skip("PostgreSQL only")
    with session():
        assert change_token() is None


def test_the_token_holds_while_nothing_is_committed(admin):
    _sqlite_only()
    made = factories.reward(admin)
    with session():
        first = change_token()
        get_reward(admin.program_id, made.id)
        assert first is not None and change_token() == first


def test_a_commit_in_another_process_changes_the_token_and_the_answer(admin):
    _sqlite_only()
    made = factories.reward(admin, name="before")
    assert _name(admin.program_id, made.id) == "before"
    with session():
        token = change_token()
    _commit_in_another_process('UPDATE "reward" SET "name" = ? WHERE "id" = ?', "after", made.id)
    with session():
        assert change_token() != token
    assert _name(admin.program_id, made.id) == "after"


def test_a_commit_on_another_connection_of_this_process_is_seen(admin):
    _sqlite_only()
    made = factories.reward(admin, name="before")
    assert _name(admin.program_id, made.id) == "before"
    # The server's own worker threads commit on connections of their own.
    _rename(admin, made.id, "after")
    assert _name(admin.program_id, made.id) == "after"


def test_reads_inside_a_transaction_see_its_own_writes_and_nothing_of_a_rollback(admin):
    _sqlite_only()
    made = factories.reward(admin, name="before")
    assert _name(admin.program_id, made.id) == "before"

    class Undo(Exception):
        pass

    def work():
        fast.execute('UPDATE "reward" SET "name" = ? WHERE "id" = ?', "inside", made.id)
        assert get_reward(admin.program_id, made.id).name == "inside"
        raise Undo

    with session(), pytest.raises(Undo):
        in_transaction(work)
    assert _name(admin.program_id, made.id) == "before"


def test_a_server_sees_what_another_server_on_the_same_file_committed(store, admin, channel):
    """GetReward on this process's server stays right while another process issues and
    renames: the read it remembers is dropped by the other process's commits."""
    _sqlite_only()
    made = factories.reward(admin, name="first", max_total=5)
    here = factories.get_reward(admin, made.id)
    assert (here.name, here.redeemed_count) == ("first", 0)
    other = spawn_server(store)
    try:
        with grpc.insecure_channel(other.address) as other_channel:
            there = make_api(other_channel, admin.program_id, admin.key)
            user = factories.participant(there)
            for n in range(1, 4):
                factories.issue(there, made.id, user.id, request_id=f"r-{uuid.uuid4().hex}")
                assert factories.get_reward(admin, made.id).redeemed_count == n
            _rename(there, made.id, "second")
            assert factories.get_reward(admin, made.id).name == "second"
    finally:
        assert other.stop() == 0


def test_a_lookup_that_found_nothing_is_not_kept(admin):
    _sqlite_only()
    missing = "rew_" + "x" * 2000
    with session(), pytest.raises(NotFound):
        get_reward(admin.program_id, missing)
    assert not [key for key in fast._results if missing in key[2]]
