"""Every refusal IssueReward (and its neighbours) can give, per SPEC §4 and §8: the right code,
reason and ErrorInfo metadata, and nothing changed: redeemed_count, balances, ledger entries,
code pool counts, issuances."""

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from tests import factories as f

FP = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def s(admin):
    scene = f.scene(admin)
    yield scene
    # Whatever the test did, the scene's money still adds up.
    f.assert_ledger_consistent(scene.api, scene.user.id, scene.points.id)


def ts(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


def issue_ref(api, reward_id: str, participant_ref, **fields):
    return api.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(reward_id=reward_id, participant=participant_ref, **fields)
    )


def test_scene_is_what_the_refusals_are_measured_against(s):
    # The baseline the other tests compare with: one code drawn, 10.00 spent.
    assert f.get_reward(s.api, s.coupon.id).redeemed_count == 1
    pool = f.get_pool(s.api, s.pool.id)
    assert (pool.total_count, pool.available_count, pool.issued_count) == (3, 2, 1)
    assert f.balance(s.api, s.user.id, s.points.id).available == "90.00"
    assert len(f.ledger_entries(s.api, s.user.id)) == 2
    assert [i.id for i in f.all_issuances(s.api)] == [s.first.id]
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


# NOT_FOUND


def test_unknown_reward_is_reward_not_found(s):
    failure = f.refused(s.api, lambda: f.issue(s.api, "rew_doesnotexist", s.user.id), **s.watched())
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "REWARD_NOT_FOUND"
    assert failure.metadata["id"] == "rew_doesnotexist"


def test_another_programs_reward_is_reward_not_found(s, channel):
    from tests.conftest import new_program
    from tests.helpers import make_api

    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    theirs = f.reward(other)
    failure = f.refused(s.api, lambda: f.issue(s.api, theirs.id, s.user.id), **s.watched())
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "REWARD_NOT_FOUND"
    assert f.get_reward(other, theirs.id).redeemed_count == 0


@pytest.mark.parametrize("kind", ["id", "external_id", "email", "mobile"])
def test_unknown_participant_is_participant_not_found(s, kind):
    value = {
        "id": "par_doesnotexist",
        "external_id": "nobody",
        "email": "nobody@example.com",
        "mobile": "+15550000000",
    }[kind]
    reward = s.priced()
    failure = f.refused(
        s.api,
        lambda: issue_ref(s.api, reward.id, f.ref(**{kind: value})),
        **s.watched(reward.id),
    )
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "PARTICIPANT_NOT_FOUND"
    assert failure.metadata == {kind: value}


@pytest.mark.parametrize("kind", ["email", "mobile"])
def test_shared_email_or_mobile_is_ambiguous(s, kind):
    shared = {"email": "family@example.com", "mobile": "+15551234567"}[kind]
    twin = f.participant(s.api, "twin-a", **{kind: shared})
    f.participant(s.api, "twin-b", **{kind: shared})
    f.fund(s.api, twin.id, s.points.id, "10.00")
    reward = s.priced()
    failure = f.refused(
        s.api,
        lambda: issue_ref(s.api, reward.id, f.ref(**{kind: shared})),
        **s.watched(reward.id),
    )
    assert failure.code == FP
    assert failure.reason == "AMBIGUOUS_PARTICIPANT"
    assert failure.metadata == {kind: shared}
    # Either participant is still reachable by its external_id.
    out = issue_ref(s.api, reward.id, f.ref(external_id="twin-a"))
    assert out.issuance.participant_id == twin.id
    f.assert_ledger_consistent(s.api, twin.id, s.points.id)


# Status and window


@pytest.mark.parametrize("status", ["DRAFT", "INACTIVE", "ARCHIVED"])
def test_reward_not_active(s, status):
    if status == "ARCHIVED":
        reward = s.priced()
        s.api.catalog.DeleteReward(catalog_pb2.DeleteRewardRequest(id=reward.id))
    else:
        reward = s.priced(status=common_pb2.RewardStatus.Value(f"REWARD_STATUS_{status}"))
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.code == FP
    assert failure.reason == "REWARD_NOT_ACTIVE"
    assert failure.metadata["status"] == f"REWARD_STATUS_{status}"
    assert status in failure.message


@pytest.mark.parametrize("when", ["future", "past"])
def test_outside_the_window_is_reward_not_available(s, when):
    now = datetime.now(UTC)
    start, end = (
        (now + timedelta(hours=1), now + timedelta(hours=2))
        if when == "future"
        else (now - timedelta(hours=2), now - timedelta(hours=1))
    )
    reward = s.priced(available_from=ts(start), available_until=ts(end))
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.code == FP
    assert failure.reason == "REWARD_NOT_AVAILABLE"
    assert datetime.fromisoformat(failure.metadata["available_from"]) == start
    assert datetime.fromisoformat(failure.metadata["available_until"]) == end


def test_inside_the_window_is_issued(s):
    now = datetime.now(UTC)
    reward = s.priced(
        available_from=ts(now - timedelta(hours=1)), available_until=ts(now + timedelta(hours=1))
    )
    assert f.issue(s.api, reward.id, s.user.id).issuance.status == (
        common_pb2.ISSUANCE_STATUS_CONFIRMED
    )
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_not_in_any_segment_is_not_eligible(s):
    reward = s.priced(segments=[("gold", "eu")])
    f.participant(s.api, s.user.external_id, segments=[("gold", "us"), ("silver", "eu")])
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.code == FP
    assert failure.reason == "NOT_ELIGIBLE"
    assert failure.metadata["reward_id"] == reward.id


# Stock and limits


def test_max_total_reached_is_out_of_stock(s):
    reward = s.priced(max_total=2)
    f.issue(s.api, reward.id, s.user.id, quantity=2)
    assert f.get_reward(s.api, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.code == FP
    assert failure.reason == "OUT_OF_STOCK"
    assert failure.metadata["limit"] == "2"
    assert failure.metadata["available"] == "0"
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_quantity_above_what_is_left_is_out_of_stock(s):
    reward = s.priced(max_total=3)
    f.issue(s.api, reward.id, s.user.id, quantity=2)
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=2), **s.watched(reward.id)
    )
    assert failure.code == FP
    assert failure.reason == "OUT_OF_STOCK"
    assert (failure.metadata["available"], failure.metadata["requested"]) == ("1", "2")
    assert f.get_reward(s.api, reward.id).status == common_pb2.REWARD_STATUS_ACTIVE
    # The last unit is still there for whoever asks for one.
    f.issue(s.api, reward.id, s.user.id, quantity=1)
    assert f.get_reward(s.api, reward.id).redeemed_count == 3


def test_max_per_participant_is_participant_limit_reached(s):
    reward = s.priced(max_per_participant=2)
    f.issue(s.api, reward.id, s.user.id)
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=2), **s.watched(reward.id)
    )
    assert failure.code == FP
    assert failure.reason == "PARTICIPANT_LIMIT_REACHED"
    assert failure.metadata["limit"] == "2"
    assert failure.metadata["used"] == "1"
    f.issue(s.api, reward.id, s.user.id)  # exactly up to the cap is fine
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.reason == "PARTICIPANT_LIMIT_REACHED"
    assert failure.metadata["used"] == "2"
    # Another participant has a cap of their own.
    other = f.participant(s.api)
    f.fund(s.api, other.id, s.points.id, "20.00")
    assert f.issue(s.api, reward.id, other.id, quantity=2).issuance.quantity == 2
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)
    f.assert_ledger_consistent(s.api, other.id, s.points.id)


def test_rolling_limit_is_participant_limit_reached(s):
    reward = s.priced(limits=[(common_pb2.LIMIT_SCOPE_PARTICIPANT, 1, 3600)])
    f.issue(s.api, reward.id, s.user.id)
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.code == FP
    assert failure.reason == "PARTICIPANT_LIMIT_REACHED"
    assert failure.metadata["window"] == "3600s"
    assert failure.metadata["limit"] == "1"


def test_empty_pool_is_code_pool_exhausted(s):
    f.issue(s.api, s.coupon.id, s.user.id)
    f.issue(s.api, s.coupon.id, s.user.id)
    assert f.get_reward(s.api, s.coupon.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = f.refused(s.api, lambda: f.issue(s.api, s.coupon.id, s.user.id), **s.watched())
    assert failure.code == FP
    assert failure.reason == "CODE_POOL_EXHAUSTED"
    assert failure.metadata["code_pool_id"] == s.pool.id
    assert failure.metadata["available"] == "0"
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_cost_above_balance_is_insufficient_balance(s):
    reward = s.priced(unit_cost="30")
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=4), **s.watched(reward.id)
    )
    assert failure.code == FP
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert failure.metadata["asset_id"] == s.points.id
    assert failure.metadata["required"] == "120.00"
    assert failure.metadata["available"] == "90.00"
    # Exactly the balance is fine and leaves zero.
    f.issue(s.api, reward.id, s.user.id, quantity=3)
    assert f.balance(s.api, s.user.id, s.points.id).available == "0.00"
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_participant_without_a_balance_is_insufficient_balance(s):
    poor = f.participant(s.api)
    reward = s.priced()
    failure = f.refused(
        s.api,
        lambda: f.issue(s.api, reward.id, poor.id),
        **s.watched(reward.id, balances=((poor.id, s.points.id),)),
    )
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert failure.metadata["available"] == "0.00"
    assert f.ledger_entries(s.api, poor.id) == []


def test_a_points_reward_credits_nothing_when_its_cost_is_refused(s):
    bonus = f.asset(s.api, "MILES", scale=0)
    reward = s.priced(
        unit_cost="95", points=catalog_pb2.PointsConfig(asset_id=bonus.id, amount="500")
    )
    failure = f.refused(
        s.api,
        lambda: f.issue(s.api, reward.id, s.user.id),
        **s.watched(reward.id, balances=((s.user.id, bonus.id),)),
    )
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert f.balance(s.api, s.user.id, bonus.id).available == "0"


# Idempotency and validation


@pytest.mark.parametrize("change", ["quantity", "participant", "reward", "transaction_number"])
def test_request_id_reused_with_other_attributes(s, change):
    reward = s.priced()
    other_reward = s.priced()
    other_user = f.participant(s.api)
    f.fund(s.api, other_user.id, s.points.id, "50.00")
    original = f.issue(s.api, reward.id, s.user.id, request_id="order-1").issuance
    changed = {
        "quantity": lambda: f.issue(s.api, reward.id, s.user.id, quantity=2, request_id="order-1"),
        "participant": lambda: f.issue(s.api, reward.id, other_user.id, request_id="order-1"),
        "reward": lambda: f.issue(s.api, other_reward.id, s.user.id, request_id="order-1"),
        "transaction_number": lambda: f.issue(
            s.api, reward.id, s.user.id, request_id="order-1", transaction_number="T-9"
        ),
    }[change]
    failure = f.refused(
        s.api,
        changed,
        **s.watched(reward.id, other_reward.id, balances=((other_user.id, s.points.id),)),
    )
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    assert failure.metadata["request_id"] == "order-1"
    assert failure.metadata["issuance_id"] == original.id


def test_request_id_of_a_custom_grant_is_not_reusable_for_an_issue(s):
    granted = f.grant(s.api, s.user.id, "shared-key").issuance
    reward = s.priced()
    failure = f.refused(
        s.api,
        lambda: f.issue(s.api, reward.id, s.user.id, request_id="shared-key"),
        **s.watched(reward.id),
    )
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    assert failure.metadata["issuance_id"] == granted.id


def test_invalid_fields_are_all_reported(s):
    reward = s.priced()
    request = issuance_pb2.IssueRewardRequest(
        reward_id="",
        quantity=-1,
        request_id="has space",
        transaction_number="t" * 129,
        notes="n" * 1001,
        metadata={f"k{i}": "v" for i in range(51)},
        custom_fields={"": "empty key"},
        fulfillment_status="s" * 65,
        owner=common_pb2.Owner(owner_type=99, owner_id="o" * 129),
    )
    failure = f.refused(s.api, lambda: s.api.issuance.IssueReward(request), **s.watched(reward.id))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {
        "reward_id",
        "participant",
        "quantity",
        "request_id",
        "transaction_number",
        "notes",
        "metadata",
        "custom_fields[]",
        "fulfillment_status",
        "owner.owner_type",
        "owner.owner_id",
    }
    assert all(failure.violations.values()), "every violation says what is wrong"


@pytest.mark.parametrize(
    ("amount", "violation"),
    [
        ("abc", "amount"),
        ("-5", "amount"),
        ("0", "amount"),
        ("1e3", "amount"),
        ("NaN", "amount"),
        ("5\n", "amount"),
        ("\u0663", "amount"),
    ],
)
def test_amount_must_be_a_positive_plain_decimal(s, amount, violation):
    reward = s.priced(redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED)
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, amount=amount), **s.watched(reward.id)
    )
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {violation}


def test_amount_is_required_for_amount_based_and_refused_for_unit_based(s):
    by_amount = s.priced(redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED)
    by_unit = s.priced()
    failure = f.refused(
        s.api, lambda: f.issue(s.api, by_amount.id, s.user.id), **s.watched(by_amount.id)
    )
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"amount"}
    failure = f.refused(
        s.api, lambda: f.issue(s.api, by_unit.id, s.user.id, amount="5"), **s.watched(by_unit.id)
    )
    assert set(failure.violations) == {"amount"}


def test_a_unique_coupon_is_one_code_per_issuance(s):
    failure = f.refused(
        s.api, lambda: f.issue(s.api, s.coupon.id, s.user.id, quantity=2), **s.watched()
    )
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"quantity"}


# Issuances that do not exist, and state transitions


@pytest.mark.parametrize("method", ["GetIssuance", "ClaimIssuance", "RevokeIssuance"])
def test_unknown_issuance_is_issuance_not_found(s, method):
    request = {
        "GetIssuance": issuance_pb2.GetIssuanceRequest,
        "ClaimIssuance": issuance_pb2.ClaimIssuanceRequest,
        "RevokeIssuance": issuance_pb2.RevokeIssuanceRequest,
    }[method](id="iss_doesnotexist")
    failure = f.refused(s.api, lambda: getattr(s.api.issuance, method)(request), **s.watched())
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "ISSUANCE_NOT_FOUND"
    assert failure.metadata["id"] == "iss_doesnotexist"


def test_update_fulfillment_of_unknown_issuance_is_issuance_not_found(s):
    failure = f.refused(
        s.api,
        lambda: s.api.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id="iss_doesnotexist", status="SHIPPED")
        ),
        **s.watched(),
    )
    assert failure.reason == "ISSUANCE_NOT_FOUND"


def test_another_programs_issuance_is_not_found(s, channel):
    from tests.conftest import new_program
    from tests.helpers import make_api

    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    failure = f.refused(other, lambda: f.revoke(other, s.first.id))
    assert failure.reason == "ISSUANCE_NOT_FOUND"
    failure = f.refused(other, lambda: f.claim(other, s.first.id))
    assert failure.reason == "ISSUANCE_NOT_FOUND"
    assert f.get_issuance(s.api, s.first.id).status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    assert f.balance(s.api, s.user.id, s.points.id).available == "90.00"


def test_claiming_a_revoked_issuance_is_an_invalid_state_transition(s):
    f.revoke(s.api, s.first.id, "fraud")
    failure = f.refused(s.api, lambda: f.claim(s.api, s.first.id), **s.watched())
    assert failure.code == FP
    assert failure.reason == "INVALID_STATE_TRANSITION"
    assert failure.metadata == {
        "from": "ISSUANCE_STATUS_REVOKED",
        "to": "ISSUANCE_STATUS_CLAIMED",
    }
    got = f.get_issuance(s.api, s.first.id)
    assert got.status == common_pb2.ISSUANCE_STATUS_REVOKED
    assert not got.HasField("claimed_at")
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


# Roles


def test_a_reader_cannot_issue(s, api_for):
    reader = api_for(s.api.program_id, "reader")
    reward = s.priced()
    for call in (
        lambda: f.issue(reader, reward.id, s.user.id),
        lambda: reader.issuance.BatchIssueRewards(
            issuance_pb2.BatchIssueRewardsRequest(
                requests=[
                    issuance_pb2.IssueRewardRequest(
                        reward_id=reward.id, participant=f.ref(s.user.id)
                    )
                ]
            )
        ),
        lambda: f.claim(reader, s.first.id),
        lambda: f.participant(reader),
    ):
        failure = f.refused(s.api, call, **s.watched(reward.id))
        assert failure.code == grpc.StatusCode.PERMISSION_DENIED
        assert failure.reason == "INSUFFICIENT_SCOPE"
        assert failure.metadata == {"role": "reader", "required_role": "issuer"}
    # A reader can still read.
    assert f.get_issuance(reader, s.first.id).id == s.first.id


def test_an_issuer_cannot_revoke_grant_or_adjust(s, api_for):
    issuer = api_for(s.api.program_id, "issuer")
    for call in (
        lambda: f.revoke(issuer, s.first.id),
        lambda: f.grant(issuer, s.user.id, "grant-by-issuer"),
        lambda: f.fund(issuer, s.user.id, s.points.id, "5.00"),
    ):
        failure = f.refused(s.api, call, **s.watched())
        assert failure.code == grpc.StatusCode.PERMISSION_DENIED
        assert failure.reason == "INSUFFICIENT_SCOPE"
        assert failure.metadata == {"role": "issuer", "required_role": "admin"}
    assert f.get_issuance(s.api, s.first.id).status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    # An issuer can issue.
    assert f.issue(issuer, s.coupon.id, s.user.id).issuance.coupon_code
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_a_reader_cannot_adjust_balances(s, api_for):
    reader = api_for(s.api.program_id, "reader")
    failure = f.refused(
        s.api,
        lambda: reader.participants.AdjustBalance(
            participants_pb2.AdjustBalanceRequest(
                participant=f.ref(s.user.id), asset_id=s.points.id, delta="5.00"
            )
        ),
        **s.watched(),
    )
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.metadata["required_role"] == "admin"


def test_another_programs_participant_is_participant_not_found(s, channel):
    from tests.conftest import new_program
    from tests.helpers import make_api

    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    theirs = f.participant(other, s.user.external_id)
    reward = s.priced()
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, theirs.id), **s.watched(reward.id))
    assert failure.reason == "PARTICIPANT_NOT_FOUND"


# The contract's order: status, window, eligibility, max_total, max_per_participant, rolling
# limits, balance. When several checks would fail, the first one names the refusal.


def test_status_is_checked_before_window_and_eligibility(s):
    past = datetime.now(UTC) - timedelta(days=2)
    reward = s.priced(
        status=common_pb2.REWARD_STATUS_INACTIVE,
        available_from=ts(past),
        available_until=ts(past + timedelta(days=1)),
        segments=[("vip", "eu")],
        unit_cost="1000",
    )
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.reason == "REWARD_NOT_ACTIVE"


def test_window_is_checked_before_eligibility(s):
    past = datetime.now(UTC) - timedelta(days=2)
    reward = s.priced(
        available_from=ts(past),
        available_until=ts(past + timedelta(days=1)),
        segments=[("vip", "eu")],
        unit_cost="1000",
    )
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **s.watched(reward.id))
    assert failure.reason == "REWARD_NOT_AVAILABLE"


def test_eligibility_is_checked_before_stock_limits_and_balance(s):
    reward = s.priced(
        segments=[("vip", "eu")],
        max_total=1,
        max_per_participant=1,
        limits=[(common_pb2.LIMIT_SCOPE_PARTICIPANT, 1, 3600)],
        unit_cost="1000",
    )
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=2), **s.watched(reward.id)
    )
    assert failure.reason == "NOT_ELIGIBLE"


def test_caps_are_checked_in_order_and_before_the_balance(s):
    reward = s.priced(
        max_total=3,
        max_per_participant=1,
        limits=[(common_pb2.LIMIT_SCOPE_PARTICIPANT, 1, 3600)],
        unit_cost="50",
    )
    f.issue(s.api, reward.id, s.user.id)  # 90.00 -> 40.00: the next one is unaffordable too
    watched = s.watched(reward.id)
    # max_total (1 + 3 > 3) before max_per_participant, rolling limit and balance.
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=3), **watched)
    assert failure.reason == "OUT_OF_STOCK"
    # max_per_participant before the rolling limit and the balance.
    failure = f.refused(s.api, lambda: f.issue(s.api, reward.id, s.user.id), **watched)
    assert (failure.reason, failure.metadata["window"]) == ("PARTICIPANT_LIMIT_REACHED", "lifetime")
    # A rolling limit before the balance.
    rolling = s.priced(limits=[(common_pb2.LIMIT_SCOPE_PARTICIPANT, 1, 3600)], unit_cost="30")
    f.issue(s.api, rolling.id, s.user.id)  # 40.00 -> 10.00
    failure = f.refused(
        s.api, lambda: f.issue(s.api, rolling.id, s.user.id), **s.watched(reward.id, rolling.id)
    )
    assert (failure.reason, failure.metadata["window"]) == ("PARTICIPANT_LIMIT_REACHED", "3600s")
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)


def test_a_credit_beyond_any_balance_is_refused_cleanly(s):
    reward = f.reward(
        s.api, points=catalog_pb2.PointsConfig(asset_id=s.points.id, amount="9000000000000000")
    )
    failure = f.refused(
        s.api, lambda: f.issue(s.api, reward.id, s.user.id, quantity=1000), **s.watched(reward.id)
    )
    assert failure.code in {grpc.StatusCode.INVALID_ARGUMENT, FP}
    f.assert_ledger_consistent(s.api, s.user.id, s.points.id)
