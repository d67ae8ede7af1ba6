"""Coupon codes with an expiry, through a real server: an expired code is never drawn, the
issuance shows the drawn code's expiry, pool stats count expired codes, and a pool whose
codes left have all expired is exhausted until codes that can be drawn are added."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2, events_pb2

from tests import factories as f
from tests.helpers import expect_failure
from tests.integration.test_events import kinds, last_position, listed

E = events_pb2.EventType


def _ts(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _add(api, pool_id: str, codes=(), expires_at=None, entries=()):
    return api.catalog.AddCodes(
        catalog_pb2.AddCodesRequest(
            code_pool_id=pool_id,
            codes=list(codes),
            expires_at=_ts(expires_at) if expires_at else None,
            code_entries=[
                catalog_pb2.CodeEntry(code=code, expires_at=_ts(at) if at else None)
                for code, at in entries
            ],
        )
    )


def _coupon(api, pool_id: str, **fields) -> catalog_pb2.Reward:
    return f.reward(
        api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool_id), **fields
    )


def test_an_expired_code_is_never_drawn_and_the_issuance_shows_the_expiry(admin):
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(days=30)
    pool = f.code_pool(admin, [])
    added = _add(admin, pool.id, entries=[("OLD-1", now - timedelta(days=1)), ("NEW-1", later)])
    assert added.added_count == 2
    assert (added.code_pool.available_count, added.code_pool.expired_count) == (2, 1)
    reward = _coupon(admin, pool.id)
    issued = f.issue(admin, reward.id, f.participant(admin).id).issuance
    assert issued.coupon_code == "NEW-1"
    assert issued.code_expires_at.ToDatetime(tzinfo=UTC) == later
    assert f.get_issuance(admin, issued.id).code_expires_at == issued.code_expires_at
    stats = f.get_pool(admin, pool.id)
    assert (stats.total_count, stats.available_count, stats.issued_count) == (2, 1, 1)
    assert stats.expired_count == 1
    listed = admin.catalog.ListCodePools(catalog_pb2.ListCodePoolsRequest())
    assert [p.expired_count for p in listed.code_pools] == [1]
    # The one code left has expired: the next issue finds the pool exhausted.
    failure = expect_failure(f.issue, admin, reward.id, f.participant(admin).id)
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CODE_POOL_EXHAUSTED",
    )


def test_codes_without_an_expiry_never_expire_and_those_expiring_first_go_first(admin):
    now = datetime.now(UTC)
    pool = f.code_pool(admin, [])
    _add(admin, pool.id, codes=["FOREVER"])
    _add(
        admin,
        pool.id,
        codes=["BATCH"],
        expires_at=now + timedelta(days=2),
        entries=[("OWN", now + timedelta(days=1)), ("INHERITS", None)],
    )
    reward = _coupon(admin, pool.id, max_per_participant=10)
    user = f.participant(admin).id
    drawn = [f.issue(admin, reward.id, user).issuance for _ in range(4)]
    assert drawn[0].coupon_code == "OWN"
    assert {i.coupon_code for i in drawn[1:3]} == {"BATCH", "INHERITS"}
    assert drawn[1].code_expires_at == drawn[2].code_expires_at == _ts(now + timedelta(days=2))
    assert drawn[3].coupon_code == "FOREVER"
    assert not drawn[3].HasField("code_expires_at")


def test_a_pool_whose_codes_all_expired_is_exhausted_until_fresh_codes_come(admin):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    pool = f.code_pool(admin, [])
    _add(admin, pool.id, codes=["SOON-1", "SOON-2"], expires_at=soon)
    reward = _coupon(admin, pool.id)
    assert reward.status == common_pb2.REWARD_STATUS_ACTIVE
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    user = f.participant(admin).id
    failure = expect_failure(f.issue, admin, reward.id, user)
    assert failure.reason == "CODE_POOL_EXHAUSTED"
    # The failed issue changed nothing of the pool, and turned the reward OUT_OF_STOCK.
    stats = f.get_pool(admin, pool.id)
    assert (stats.available_count, stats.issued_count, stats.expired_count) == (2, 0, 2)
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    again = expect_failure(f.issue, admin, reward.id, user)
    assert again.reason == "CODE_POOL_EXHAUSTED"
    # Codes already expired do not lift it; a code that can be drawn does.
    _add(admin, pool.id, codes=["STALE"], expires_at=datetime.now(UTC) - timedelta(hours=1))
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    _add(admin, pool.id, codes=["FRESH"])
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_ACTIVE
    assert f.issue(admin, reward.id, user).issuance.coupon_code == "FRESH"


def test_a_reward_on_a_pool_of_expired_codes_is_created_out_of_stock(admin):
    pool = f.code_pool(admin, [])
    _add(admin, pool.id, codes=["GONE"], expires_at=datetime.now(UTC) - timedelta(minutes=1))
    reward = _coupon(admin, pool.id)
    assert reward.status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = expect_failure(f.issue, admin, reward.id, f.participant(admin).id)
    assert failure.reason == "CODE_POOL_EXHAUSTED"


def test_a_bad_expiry_or_code_entry_is_invalid_argument_and_adds_nothing(admin):
    pool = f.code_pool(admin, [])
    bad = catalog_pb2.AddCodesRequest(
        code_pool_id=pool.id,
        codes=["OK-1"],
        code_entries=[catalog_pb2.CodeEntry(code="has space")],
    )
    failure = expect_failure(admin.catalog.AddCodes, bad)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "code_entries[0].code" in failure.violations
    late = catalog_pb2.AddCodesRequest(
        code_pool_id=pool.id,
        codes=["OK-1"],
        expires_at=timestamp_pb2.Timestamp(seconds=253_402_300_800),
    )
    failure = expect_failure(admin.catalog.AddCodes, late)
    assert "expires_at" in failure.violations
    assert f.get_pool(admin, pool.id).total_count == 0


def _pool_events(api, after: int) -> list[events_pb2.Event]:
    kinds = [
        E.EVENT_TYPE_CODE_POOL_LOW,
        E.EVENT_TYPE_CODE_POOL_EXHAUSTED,
        E.EVENT_TYPE_REWARD_STATUS_CHANGED,
    ]
    return listed(api, after=after, types=kinds)


def test_a_pool_exhausted_by_expiry_has_the_events_of_a_drained_one(admin):
    """Drained by draws or by expiry, the pool says EXHAUSTED and then its reward turns
    OUT_OF_STOCK; restocked, the reward turns ACTIVE. Expiry does not move available_count,
    so it brings no LOW."""
    drained = f.code_pool(admin, ["D-1"])
    drained_coupon = _coupon(admin, drained.id)
    start = last_position(admin)
    f.issue(admin, drained_coupon.id, f.participant(admin).id)
    ordinary = _pool_events(admin, start)
    assert kinds(ordinary) == ["CODE_POOL_EXHAUSTED", "REWARD_STATUS_CHANGED"]

    soon = datetime.now(UTC) + timedelta(seconds=1)
    pool = admin.catalog.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(
            code_pool=catalog_pb2.CodePool(name="expiring", low_stock_threshold=2)
        )
    )
    _add(admin, pool.id, codes=["LIVE-1"])
    _add(admin, pool.id, codes=["SOON-1", "SOON-2", "SOON-3"], expires_at=soon)
    reward = _coupon(admin, pool.id)
    start = last_position(admin)
    drawn = [f.issue(admin, reward.id, f.participant(admin).id).issuance for _ in range(2)]
    assert [i.coupon_code for i in drawn] == ["SOON-1", "SOON-2"]  # expiring first go first
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    f.issue(admin, reward.id, f.participant(admin).id)  # LIVE-1, the last live code
    # available_count fell to 1, below the threshold: LOW, counting the expired code.
    [low] = _pool_events(admin, start)
    assert low.type == E.EVENT_TYPE_CODE_POOL_LOW
    assert (low.code_pool.available_count, low.code_pool.expired_count) == (1, 1)
    start = low.position
    failure = expect_failure(f.issue, admin, reward.id, f.participant(admin).id)
    assert failure.reason == "CODE_POOL_EXHAUSTED"
    found = _pool_events(admin, start)
    assert kinds(found) == kinds(ordinary)
    exhausted, status = found
    assert exhausted.code_pool.id == pool.id
    assert (exhausted.code_pool.available_count, exhausted.code_pool.expired_count) == (1, 1)
    assert status.position == exhausted.position + 1  # in the same write
    assert (status.reward.id, status.reward.status) == (
        reward.id,
        common_pb2.REWARD_STATUS_OUT_OF_STOCK,
    )
    # Issues that fail again announce nothing more; fresh codes lift OUT_OF_STOCK.
    expect_failure(f.issue, admin, reward.id, f.participant(admin).id)
    _add(admin, pool.id, codes=["FRESH"])
    restocked = _pool_events(admin, status.position)
    assert [(e.type, e.reward.status) for e in restocked] == [
        (E.EVENT_TYPE_REWARD_STATUS_CHANGED, common_pb2.REWARD_STATUS_ACTIVE)
    ]


def test_issues_finding_a_pool_dry_together_announce_it_once(admin):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    pool = f.code_pool(admin, [])
    _add(admin, pool.id, codes=["SOON-1"], expires_at=soon)
    rewards = [_coupon(admin, pool.id) for _ in range(2)]
    users = [f.participant(admin).id for _ in range(8)]
    start = last_position(admin)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    with ThreadPoolExecutor(8) as workers:
        failures = list(
            workers.map(
                lambda i: expect_failure(f.issue, admin, rewards[i % 2].id, users[i]), range(8)
            )
        )
    assert {x.reason for x in failures} <= {"CODE_POOL_EXHAUSTED", "OUT_OF_STOCK"}
    found = _pool_events(admin, start)
    assert sorted(kinds(found)) == [
        "CODE_POOL_EXHAUSTED",
        "REWARD_STATUS_CHANGED",
        "REWARD_STATUS_CHANGED",
    ]
    assert found[0].type == E.EVENT_TYPE_CODE_POOL_EXHAUSTED
