"""A unique coupon is one per participant unless the reward's max_per_participant says more
(SPEC §6), through a real server."""

import grpc
from rewards.v1 import catalog_pb2

from tests import factories as f
from tests.helpers import expect_failure


def _coupon(api, codes: int, **fields) -> catalog_pb2.Reward:
    pool = f.code_pool(api, [f"C-{i}" for i in range(codes)])
    return f.reward(
        api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id), **fields
    )


def test_a_second_code_for_one_participant_is_participant_limit_reached(admin):
    reward = _coupon(admin, 5)
    user, other = f.participant(admin), f.participant(admin)
    f.issue(admin, reward.id, user.id)
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_LIMIT_REACHED",
    )
    assert failure.metadata["limit"] == "1"
    assert f.get_pool(admin, reward.unique_coupon.code_pool_id).issued_count == 1
    f.issue(admin, reward.id, other.id)


def test_max_per_participant_allows_more_codes(admin):
    reward = _coupon(admin, 5, max_per_participant=2)
    user = f.participant(admin)
    codes = {f.issue(admin, reward.id, user.id).issuance.coupon_code for _ in range(2)}
    assert len(codes) == 2
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert (failure.reason, failure.metadata["limit"]) == ("PARTICIPANT_LIMIT_REACHED", "2")


def test_a_revoked_code_frees_the_participants_turn(admin):
    reward = _coupon(admin, 5)
    user = f.participant(admin)
    first = f.issue(admin, reward.id, user.id).issuance
    f.revoke(admin, first.id)
    again = f.issue(admin, reward.id, user.id).issuance
    assert again.coupon_code != first.coupon_code
