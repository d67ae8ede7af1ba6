"""Pure rules of coupons: a unique coupon is one per participant unless max_per_participant
says more; a code's expiry is stored so that "never" sorts after every moment."""

from datetime import UTC, datetime

import pytest
from rewards.v1 import common_pb2

from rewards_service.domain.rewards import participant_cap
from rewards_service.store.fields import ExpiryField

T = common_pb2.RewardType


@pytest.mark.parametrize(
    ("reward_type", "max_per_participant", "cap"),
    [
        (T.REWARD_TYPE_UNIQUE_COUPON, None, 1),
        (T.REWARD_TYPE_UNIQUE_COUPON, 3, 3),
        (T.REWARD_TYPE_NON_UNIQUE_COUPON, None, None),
        (T.REWARD_TYPE_PRODUCT, None, None),
        (T.REWARD_TYPE_PRODUCT, 2, 2),
    ],
)
def test_participant_cap(reward_type, max_per_participant, cap):
    assert participant_cap(reward_type, max_per_participant) == cap


def test_never_is_stored_after_every_moment_and_read_back_as_none():
    field = ExpiryField()
    latest = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert field.db_value(None) == ExpiryField.NEVER > field.db_value(latest)
    assert field.python_value(ExpiryField.NEVER) is None
    assert field.python_value(field.db_value(latest)) == latest
