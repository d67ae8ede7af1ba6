from rewards.v1 import catalog_pb2, common_pb2

from tests.helpers import expect_failure


def test_points_reward_round_trips(admin):
    asset = admin.catalog.CreateAsset(
        catalog_pb2.CreateAssetRequest(
            asset=catalog_pb2.Asset(code="POINTS", name="Points", scale=2)
        )
    )
    created = admin.catalog.CreateReward(
        catalog_pb2.CreateRewardRequest(
            reward=catalog_pb2.Reward(
                name="100 points",
                type=common_pb2.REWARD_TYPE_POINTS,
                points=catalog_pb2.PointsConfig(asset_id=asset.id, amount="100.00"),
            )
        )
    )
    assert created.status == common_pb2.REWARD_STATUS_ACTIVE
    assert admin.catalog.GetReward(catalog_pb2.GetRewardRequest(id=created.id)) == created
    failure = expect_failure(
        admin.catalog.CreateReward,
        catalog_pb2.CreateRewardRequest(
            reward=catalog_pb2.Reward(
                type=common_pb2.REWARD_TYPE_POINTS,
                points=catalog_pb2.PointsConfig(asset_id=asset.id, amount="1.001"),
            )
        ),
    )
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"reward.name", "reward.points.amount"}
