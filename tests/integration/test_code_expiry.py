"""Coupon codes with an expiry, through a real server: an expired code is never drawn, the
issuance shows the drawn code's expiry, pool stats count expired codes, and a pool whose
codes left have all expired is exhausted until codes that can be drawn are added."""

import time
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2

from tests import factories as f
from tests.helpers import expect_failure


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
