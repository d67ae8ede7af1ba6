from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2

from tests import factories as f
from tests.helpers import expect_failure


def test_points_flow(admin):
    points = f.asset(admin)
    reward = f.reward(admin, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="10.00"))
    user = f.participant(admin)
    out = f.issue(admin, reward.id, user.id, quantity=3, request_id="r1")
    assert not out.idempotent_replay
    assert out.issuance.credit.amount == "30.00"
    again = f.issue(admin, reward.id, user.id, quantity=3, request_id="r1")
    assert again.idempotent_replay and again.issuance.id == out.issuance.id
    assert f.balance(admin, user.id, points.id).available == "30.00"
    failure = expect_failure(f.issue, admin, reward.id, user.id, quantity=2, request_id="r1")
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


def test_priced_coupon_flow(admin):
    points = f.asset(admin)
    pool = f.code_pool(admin, ["A", "B"])
    reward = f.reward(
        admin,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        cost_asset_id=points.id,
        unit_cost="5",
        max_per_participant=2,
    )
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "12.00")
    first = f.issue(admin, reward.id, user.id).issuance
    second = f.issue(admin, reward.id, user.id).issuance
    assert {first.coupon_code, second.coupon_code} == {"A", "B"}
    assert f.balance(admin, user.id, points.id).available == "2.00"
    got = admin.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward.id))
    assert got.status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert failure.reason == "CODE_POOL_EXHAUSTED"
    revoked = admin.issuance.RevokeIssuance(issuance_pb2.RevokeIssuanceRequest(id=first.id))
    assert revoked.status == common_pb2.ISSUANCE_STATUS_REVOKED
    assert f.balance(admin, user.id, points.id).available == "7.00"
