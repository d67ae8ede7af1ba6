"""An issue queued behind a change of its reward sees the reward as committed: it pays the
new price and is checked against the new segments. The change is made from a connection of
this test, holding the lock UpdateReward holds (the reward's row lock on PostgreSQL, the
write lock on SQLite) while the issue waits."""

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal

from tests import factories as f
from tests.helpers import expect_failure


@contextmanager
def reward_changed_elsewhere(store: str, reward_id: str, assignments: str, *params):
    """Lock the reward as UpdateReward does, change it, and commit on leaving."""
    if store.startswith("sqlite"):
        conn = sqlite3.connect(store[len("sqlite:///") :], isolation_level=None, timeout=5)
        conn.execute("BEGIN IMMEDIATE")
        run, mark = conn.execute, "?"
    else:
        import psycopg2

        conn = psycopg2.connect(store)
        cursor = conn.cursor()
        run, mark = cursor.execute, "%s"
        run('SELECT 1 FROM "reward" WHERE "id" = %s FOR UPDATE', (reward_id,))
    try:
        run(
            f'UPDATE "reward" SET {assignments.replace("?", mark)}, "version" = "version" + 1 '
            f'WHERE "id" = {mark}',
            (*params, reward_id),
        )
        yield
        run("COMMIT")
    finally:
        conn.close()


def _queued(call):
    """Run `call` on another thread; make sure it is waiting, not done."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    time.sleep(0.5)
    assert not future.done(), "the call did not wait for the lock"
    pool.shutdown(wait=False)
    return future


def test_a_queued_issue_pays_the_price_committed_before_it(store, admin):
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10.00")
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "100.00")
    with reward_changed_elsewhere(store, reward.id, '"unit_cost" = ?', "25.00"):
        issued = _queued(lambda: f.issue(admin, reward.id, user.id))
    cost = issued.result(timeout=30).issuance.cost
    assert (cost.asset_id, Decimal(cost.amount)) == (points.id, Decimal("25.00"))
    assert Decimal(f.balance(admin, user.id, points.id).available) == Decimal("75.00")
    assert f.get_reward(admin, reward.id).unit_cost == "25.00"


def test_a_queued_issue_is_checked_against_the_segments_committed_before_it(store, admin):
    reward = f.reward(admin)
    user = f.participant(admin, segments=[("gold", "eu")])
    with reward_changed_elsewhere(
        store, reward.id, '"segments" = ?', '[{"segment": "gold", "partition": "us"}]'
    ):
        issued = _queued(lambda: expect_failure(f.issue, admin, reward.id, user.id))
    assert issued.result(timeout=30).reason == "NOT_ELIGIBLE"
    got = f.get_reward(admin, reward.id)
    assert got.redeemed_count == 0
    assert [(s.segment, s.partition) for s in got.segments] == [("gold", "us")]
