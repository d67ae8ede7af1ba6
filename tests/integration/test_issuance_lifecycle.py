"""IssueReward's effects, idempotency, GrantCustomReward, BatchIssueRewards and the issuance
lifecycle (claim, revoke, fulfillment, reads), per SPEC §8."""

import time
from decimal import Decimal

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2

from rewards_service.domain.issuance import digest
from rewards_service.store.db import session
from rewards_service.store.models import Issuance
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api

IS = common_pb2.IssuanceStatus
K = common_pb2.LedgerEntryKind
PARTICIPANT = common_pb2.LIMIT_SCOPE_PARTICIPANT
GLOBAL = common_pb2.LIMIT_SCOPE_GLOBAL
DAY = 86400


def set_status(api, reward_id: str, status: int) -> catalog_pb2.Reward:
    return api.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward_id, status=status),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )


def funded(api, points, amount: str = "100.00"):
    user = f.participant(api)
    f.fund(api, user.id, points.id, amount)
    return user


def kinds(entries) -> list[int]:
    return [e.kind for e in entries]


# Conversion ratio: AMOUNT_BASED pricing rounds up at the asset's scale.


@pytest.mark.parametrize(("scale", "cost", "left"), [(0, "2273", "727"), (2, "2272.73", "727.27")])
def test_conversion_ratio_1000_miles_at_044_value_per_point(admin, scale, cost, left):
    points = f.asset(admin, scale=scale)
    user = funded(admin, points, "3000")
    miles = f.reward(
        admin,
        name="1000 airline miles",
        redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        unit_cost="2.272727272727",  # 1 / 0.44
    )
    out = f.issue(admin, miles.id, user.id, amount="1000").issuance
    assert out.amount == "1000"
    assert out.quantity == 1
    assert (out.cost.asset_id, out.cost.amount) == (points.id, cost)
    assert f.balance(admin, user.id, points.id).available == left
    spend = f.ledger_entries(admin, user.id, points.id)[0]
    assert (spend.kind, spend.delta, spend.issuance_id) == (
        K.LEDGER_ENTRY_KIND_SPEND,
        f"-{cost}",
        out.id,
    )
    assert f.get_reward(admin, miles.id).redeemed_count == 1
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_unit_based_cost_is_unit_cost_times_quantity(admin):
    points = f.asset(admin, scale=2)
    user = funded(admin, points, "10.00")
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="1.25")
    out = f.issue(admin, reward.id, user.id, quantity=3).issuance
    assert out.cost.amount == "3.75"
    assert f.balance(admin, user.id, points.id).available == "6.25"
    assert f.get_reward(admin, reward.id).redeemed_count == 3
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_unit_cost_finer_than_the_scale_rounds_up(admin):
    points = f.asset(admin, scale=0)
    user = funded(admin, points, "10")
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="0.3")
    assert f.issue(admin, reward.id, user.id, quantity=3).issuance.cost.amount == "1"
    assert f.issue(admin, reward.id, user.id, quantity=4).issuance.cost.amount == "2"
    assert f.balance(admin, user.id, points.id).available == "7"
    f.assert_ledger_consistent(admin, user.id, points.id)


# Every reward type's issuance


def test_points_reward_credits_per_unit_and_snapshots_config(admin):
    points = f.asset(admin, scale=2)
    user = f.participant(admin)
    reward = f.reward(
        admin, name="Bonus", points=catalog_pb2.PointsConfig(asset_id=points.id, amount="12.50")
    )
    out = f.issue(admin, reward.id, user.id, quantity=2).issuance
    assert out.type == common_pb2.REWARD_TYPE_POINTS
    assert (out.credit.asset_id, out.credit.amount) == (points.id, "25.00")
    assert not out.HasField("cost")
    assert out.reward_snapshot.name == "Bonus"
    assert out.reward_snapshot.points.amount == "12.50"
    got = f.balance(admin, user.id, points.id)
    assert (got.available, got.lifetime_earned, got.lifetime_spent) == ("25.00", "25.00", "0.00")
    assert kinds(f.ledger_entries(admin, user.id)) == [K.LEDGER_ENTRY_KIND_EARN]
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_other_reward_types_issue_with_their_config(admin):
    user = f.participant(admin)
    product = f.reward(admin, product=catalog_pb2.ProductConfig(product_id="sku-9", quantity=2))
    entry = f.reward(
        admin, competition_entry=catalog_pb2.CompetitionEntryConfig(competition_id="cup", entries=5)
    )
    coupon = f.reward(
        admin,
        non_unique_coupon=catalog_pb2.NonUniqueCouponConfig(
            code="SAVE10", discount_type=common_pb2.DISCOUNT_TYPE_PERCENTAGE, discount_value="10"
        ),
    )
    got = f.issue(admin, product.id, user.id).issuance
    assert (got.type, got.reward_snapshot.product.product_id) == (
        common_pb2.REWARD_TYPE_PRODUCT,
        "sku-9",
    )
    got = f.issue(admin, entry.id, user.id).issuance
    assert got.reward_snapshot.competition_entry.entries == 5
    got = f.issue(admin, coupon.id, user.id).issuance
    assert (got.type, got.coupon_code) == (common_pb2.REWARD_TYPE_NON_UNIQUE_COUPON, "SAVE10")
    assert got.reward_snapshot.non_unique_coupon.discount_value == "10"


def test_snapshot_keeps_the_reward_as_it_was(admin):
    user = f.participant(admin)
    reward = f.reward(admin, name="Old name")
    issued = f.issue(admin, reward.id, user.id).issuance
    admin.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward.id, name="New name"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    )
    assert f.get_issuance(admin, issued.id).reward_snapshot.name == "Old name"


def test_issue_keeps_every_caller_field(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    event = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_000)
    out = f.issue(
        admin,
        reward.id,
        user.id,
        request_id="keep-1",
        transaction_number="TX-42",
        notes="birthday",
        metadata={"channel": "app"},
        custom_fields={"size": "M"},
        fulfillment_status="BOOKED",
        event_time=event,
        owner=common_pb2.Owner(owner_type=common_pb2.OWNER_TYPE_CAMPAIGNS, owner_id="cmp-7"),
    ).issuance
    got = f.get_issuance(admin, out.id)
    assert got == out
    assert (got.request_id, got.transaction_number, got.notes) == ("keep-1", "TX-42", "birthday")
    assert dict(got.metadata) == {"channel": "app"}
    assert dict(got.custom_fields) == {"size": "M"}
    assert got.event_time == event
    assert (got.owner.owner_type, got.owner.owner_id) == (common_pb2.OWNER_TYPE_CAMPAIGNS, "cmp-7")
    assert got.fulfillment_status == "BOOKED"
    assert [e.status for e in got.fulfillment_history] == ["BOOKED"]
    assert got.status == IS.ISSUANCE_STATUS_CONFIRMED
    assert got.participant_id == user.id and got.reward_id == reward.id
    assert got.id.startswith("iss_")


# Segment eligibility


def test_segment_table(admin):
    r1 = f.reward(admin, name="r1", segments=[("s1", "p1"), ("s2", "p2")])
    r2 = f.reward(admin, name="r2", segments=[("s1", "p2"), ("s2", "p1")])
    r3 = f.reward(admin, name="r3", segments=[("s3", "p1")])
    r4 = f.reward(admin, name="r4")
    user1 = f.participant(admin, "user1", segments=[("s2", "p1"), ("s3", "p2")])
    nobody = f.participant(admin, "user-without-segments")

    def outcome(reward, user):
        try:
            return f.issue(admin, reward.id, user.id).issuance.reward_id
        except grpc.RpcError:
            failure = expect_failure(f.issue, admin, reward.id, user.id)
            return failure.reason

    assert [outcome(r, user1) for r in (r1, r2, r3, r4)] == [
        "NOT_ELIGIBLE",
        r2.id,
        "NOT_ELIGIBLE",
        r4.id,
    ]
    assert [outcome(r, nobody) for r in (r1, r2, r3, r4)] == [
        "NOT_ELIGIBLE",
        "NOT_ELIGIBLE",
        "NOT_ELIGIBLE",
        r4.id,
    ]
    assert {i.reward_id for i in f.all_issuances(admin)} == {r2.id, r4.id}
    assert len(f.all_issuances(admin)) == 3


def test_eligibility_follows_the_participants_current_segments(admin):
    reward = f.reward(admin, segments=[("vip", "eu")])
    user = f.participant(admin, "mover")
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == "NOT_ELIGIBLE"
    f.participant(admin, "mover", segments=[("vip", "eu")])
    assert f.issue(admin, reward.id, user.id).issuance.reward_id == reward.id


# Rolling limits


def test_rolling_limit_three_per_participant_per_day(admin):
    reward = f.reward(admin, limits=[(PARTICIPANT, 3, DAY)])
    user, other = f.participant(admin), f.participant(admin)
    for _ in range(3):
        f.issue(admin, reward.id, user.id)
    before = f.snapshot(admin, rewards=(reward.id,))
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "PARTICIPANT_LIMIT_REACHED"
    assert failure.metadata["window"] == "86400s"
    assert failure.metadata["limit"] == "3"
    assert failure.metadata["used"] == "3"
    assert failure.metadata["scope"] == "LIMIT_SCOPE_PARTICIPANT"
    assert f.snapshot(admin, rewards=(reward.id,)) == before
    # Someone else has their own three.
    for _ in range(3):
        f.issue(admin, reward.id, other.id)
    assert f.get_reward(admin, reward.id).redeemed_count == 6


def test_rolling_limit_counts_units_not_calls(admin):
    reward = f.reward(admin, limits=[(PARTICIPANT, 3, DAY)])
    user = f.participant(admin)
    f.issue(admin, reward.id, user.id, quantity=2)
    failure = expect_failure(f.issue, admin, reward.id, user.id, quantity=2)
    assert (failure.reason, failure.metadata["used"]) == ("PARTICIPANT_LIMIT_REACHED", "2")
    f.issue(admin, reward.id, user.id, quantity=1)
    assert f.get_reward(admin, reward.id).redeemed_count == 3


def test_global_rolling_limit_counts_everyone(admin):
    reward = f.reward(admin, limits=[(GLOBAL, 3, DAY)])
    users = [f.participant(admin) for _ in range(3)]
    f.issue(admin, reward.id, users[0].id, quantity=2)
    f.issue(admin, reward.id, users[1].id)
    failure = expect_failure(f.issue, admin, reward.id, users[2].id)
    assert failure.reason == "PARTICIPANT_LIMIT_REACHED"
    assert failure.metadata["scope"] == "LIMIT_SCOPE_GLOBAL"
    assert failure.metadata["window"] == "86400s"
    assert failure.metadata["used"] == "3"
    assert f.all_issuances(admin, participant=f.ref(users[2].id)) == []


def test_rolling_window_slides(admin):
    reward = f.reward(admin, limits=[(PARTICIPANT, 1, 2)])
    user = f.participant(admin)
    f.issue(admin, reward.id, user.id)
    assert expect_failure(f.issue, admin, reward.id, user.id).metadata["window"] == "2s"
    time.sleep(2.2)
    assert f.issue(admin, reward.id, user.id).issuance.reward_id == reward.id


def test_every_limit_applies(admin):
    reward = f.reward(admin, limits=[(PARTICIPANT, 5, DAY), (PARTICIPANT, 2, 3600)])
    user = f.participant(admin)
    f.issue(admin, reward.id, user.id, quantity=2)
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert (failure.metadata["limit"], failure.metadata["window"]) == ("2", "3600s")


# Idempotency


def test_replay_returns_the_original_and_changes_nothing(admin):
    points = f.asset(admin)
    user = funded(admin, points)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    first = f.issue(admin, reward.id, user.id, quantity=2, request_id="order-7")
    assert not first.idempotent_replay
    watched = {"rewards": (reward.id,), "balances": ((user.id, points.id),)}
    before = f.snapshot(admin, **watched)
    again = f.issue(admin, reward.id, user.id, quantity=2, request_id="order-7")
    assert again.idempotent_replay
    assert again.issuance == first.issuance
    assert f.snapshot(admin, **watched) == before
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_replay_of_an_equal_amount_written_differently(admin):
    points = f.asset(admin, scale=0)
    user = funded(admin, points, "5000")
    miles = f.reward(
        admin,
        redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        unit_cost="2.272727272727",
    )
    first = f.issue(admin, miles.id, user.id, amount="1000", request_id="eq").issuance
    again = f.issue(admin, miles.id, user.id, amount="1000.00", request_id="eq")
    assert again.idempotent_replay and again.issuance == first
    assert f.balance(admin, user.id, points.id).available == "2727"
    f.assert_ledger_consistent(admin, user.id, points.id)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("deactivated", "REWARD_NOT_ACTIVE"),
        ("archived", "REWARD_NOT_ACTIVE"),
        ("sold out", "OUT_OF_STOCK"),
    ],
)
def test_replay_after_the_reward_changed_still_returns_the_original(admin, change, refusal):
    points = f.asset(admin)
    user = funded(admin, points)
    cap = {"max_total": 1} if change == "sold out" else {}
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10", **cap)
    first = f.issue(admin, reward.id, user.id, request_id="keep").issuance
    if change == "deactivated":
        set_status(admin, reward.id, common_pb2.REWARD_STATUS_INACTIVE)
    elif change == "archived":
        admin.catalog.DeleteReward(catalog_pb2.DeleteRewardRequest(id=reward.id))
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == refusal
    watched = {"rewards": (reward.id,), "balances": ((user.id, points.id),)}
    before = f.snapshot(admin, **watched)
    again = f.issue(admin, reward.id, user.id, request_id="keep")
    assert again.idempotent_replay
    assert again.issuance == first
    assert f.snapshot(admin, **watched) == before
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_replay_of_a_revoked_issuance_returns_it_and_issues_nothing(admin):
    points = f.asset(admin)
    user = funded(admin, points, "30.00")
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    first = f.issue(admin, reward.id, user.id, request_id="gone").issuance
    revoked = f.revoke(admin, first.id, "cancelled")
    watched = {"rewards": (reward.id,), "balances": ((user.id, points.id),)}
    before = f.snapshot(admin, **watched)
    again = f.issue(admin, reward.id, user.id, request_id="gone")
    assert again.idempotent_replay
    assert again.issuance == revoked
    assert f.snapshot(admin, **watched) == before
    assert f.balance(admin, user.id, points.id).available == "30.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


ORIGINAL = {
    "notes": "first",
    "metadata": {"a": "1"},
    "custom_fields": {"size": "M"},
    "fulfillment_status": "BOOKED",
    "event_time": timestamp_pb2.Timestamp(seconds=1_700_000_000),
    "owner": common_pb2.Owner(owner_type=common_pb2.OWNER_TYPE_CAMPAIGNS, owner_id="c1"),
}
CHANGED = {
    "notes": {"notes": "second"},
    "metadata": {"metadata": {"a": "2"}},
    "metadata left out": {"metadata": {}},
    "custom_fields": {"custom_fields": {"size": "L"}},
    "fulfillment_status": {"fulfillment_status": "SHIPPED"},
    "event_time": {"event_time": timestamp_pb2.Timestamp(seconds=1_700_000_001)},
    "owner_type": {
        "owner": common_pb2.Owner(owner_type=common_pb2.OWNER_TYPE_JOURNEYS, owner_id="c1")
    },
    "owner_id": {
        "owner": common_pb2.Owner(owner_type=common_pb2.OWNER_TYPE_CAMPAIGNS, owner_id="c2")
    },
}


@pytest.mark.parametrize("change", CHANGED)
def test_a_replay_with_any_other_attribute_is_key_reuse(admin, change):
    reward, user = f.reward(admin), f.participant(admin)
    first = f.issue(admin, reward.id, user.id, request_id="attrs", **ORIGINAL).issuance
    again = f.issue(admin, reward.id, user.id, request_id="attrs", **ORIGINAL)
    assert again.idempotent_replay and again.issuance == first
    failure = expect_failure(
        f.issue, admin, reward.id, user.id, request_id="attrs", **{**ORIGINAL, **CHANGED[change]}
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert [i.id for i in f.all_issuances(admin)] == [first.id]


def test_a_grant_replay_with_other_notes_or_metadata_is_key_reuse(admin):
    user = f.participant(admin)
    f.grant(admin, user.id, "g-attrs", notes="n", metadata={"k": "v"})
    assert f.grant(admin, user.id, "g-attrs", notes="n", metadata={"k": "v"}).idempotent_replay
    for other in ({"notes": "m", "metadata": {"k": "v"}}, {"notes": "n", "metadata": {}}):
        failure = expect_failure(f.grant, admin, user.id, "g-attrs", **other)
        assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


def test_an_issuance_recorded_before_every_attribute_counted_still_replays(admin):
    """Issuances made before the fingerprint covered notes, metadata etc. kept a digest of
    fewer attributes; their replays are still recognised."""
    reward, user = f.reward(admin), f.participant(admin)
    first = f.issue(admin, reward.id, user.id, request_id="old", notes="n").issuance
    with session():
        Issuance.update(request_hash=digest("issue", reward.id, 1, "", "")).where(
            Issuance.id == first.id
        ).execute()
    again = f.issue(admin, reward.id, user.id, request_id="old", notes="n")
    assert again.idempotent_replay and again.issuance.id == first.id
    failure = expect_failure(f.issue, admin, reward.id, user.id, request_id="old", quantity=2)
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


def test_a_failed_call_records_nothing_and_can_be_retried(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="25")
    failure = expect_failure(f.issue, admin, reward.id, user.id, request_id="retry-me")
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert f.all_issuances(admin) == []
    f.fund(admin, user.id, points.id, "30.00")
    out = f.issue(admin, reward.id, user.id, request_id="retry-me")
    assert not out.idempotent_replay
    assert out.issuance.request_id == "retry-me"
    assert f.balance(admin, user.id, points.id).available == "5.00"
    again = f.issue(admin, reward.id, user.id, request_id="retry-me")
    assert again.idempotent_replay and again.issuance.id == out.issuance.id
    assert f.balance(admin, user.id, points.id).available == "5.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_a_refused_request_id_may_be_used_for_another_request(admin):
    # Nothing was recorded, so the key is free, even for different attributes.
    reward = f.reward(admin, status=common_pb2.REWARD_STATUS_INACTIVE)
    other = f.reward(admin)
    user = f.participant(admin)
    assert expect_failure(f.issue, admin, reward.id, user.id, request_id="k").reason == (
        "REWARD_NOT_ACTIVE"
    )
    assert not f.issue(admin, other.id, user.id, request_id="k").idempotent_replay


def test_request_ids_are_per_program(channel):
    apis = []
    for name in ("a", "b"):
        issued = new_program(name)
        apis.append(make_api(channel, issued.program_id, issued.api_key))
    a, b = apis
    in_a = f.issue(a, f.reward(a).id, f.participant(a, "same-user").id, request_id="shared")
    in_b = f.issue(b, f.reward(b).id, f.participant(b, "same-user").id, request_id="shared")
    assert not in_a.idempotent_replay and not in_b.idempotent_replay
    assert in_a.issuance.id != in_b.issuance.id
    assert [i.id for i in f.all_issuances(b)] == [in_b.issuance.id]
    replay_a = f.issue(
        a, in_a.issuance.reward_id, in_a.issuance.participant_id, request_id="shared"
    )
    assert replay_a.idempotent_replay and replay_a.issuance.id == in_a.issuance.id


# GrantCustomReward


def test_grant_custom_reward(admin):
    user = f.participant(admin)
    out = f.grant(
        admin,
        user.id,
        "ext-ref-1",
        amount="25.50",
        action_code="review.posted",
        notes="thanks",
        metadata={"source": "crm"},
    )
    assert not out.idempotent_replay
    granted = out.issuance
    assert granted.type == common_pb2.REWARD_TYPE_CUSTOM
    assert granted.status == IS.ISSUANCE_STATUS_CONFIRMED
    assert (granted.amount, granted.action_code, granted.request_id) == (
        "25.50",
        "review.posted",
        "ext-ref-1",
    )
    assert granted.reward_id == "" and granted.quantity == 1
    assert granted.participant_id == user.id
    assert (granted.notes, dict(granted.metadata)) == ("thanks", {"source": "crm"})
    assert f.get_issuance(admin, granted.id) == granted
    listed = f.all_issuances(admin, type=common_pb2.REWARD_TYPE_CUSTOM)
    assert [i.id for i in listed] == [granted.id]
    claimed = f.claim(admin, granted.id)
    assert claimed.status == IS.ISSUANCE_STATUS_CLAIMED and claimed.HasField("claimed_at")


@pytest.mark.parametrize("amount", ["1.00", "100.00", "1", "99.9", "42.42"])
def test_grant_amount_within_bounds(admin, amount):
    user = f.participant(admin)
    granted = f.grant(admin, user.id, "ok", amount=amount).issuance
    assert granted.amount == f"{Decimal(amount):.2f}"


@pytest.mark.parametrize(
    "amount",
    [
        "0.99",
        "100.01",
        "1.001",
        "abc",
        "",
        "-5.00",
        "0",
        "1e2",
        "1000",
        " 5.00",
        "5,00",
        "5.00\n",
    ],
)
def test_grant_amount_out_of_bounds(admin, amount):
    user = f.participant(admin)
    failure = f.refused(admin, lambda: f.grant(admin, user.id, "bad", amount=amount))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"amount"}


@pytest.mark.parametrize("code", ["a", "A.b-c_9", "x" * 64])
def test_grant_action_code_pattern_accepts(admin, code):
    user = f.participant(admin)
    assert f.grant(admin, user.id, "ok", action_code=code).issuance.action_code == code


@pytest.mark.parametrize("code", ["", "has space", "x" * 65, "semi;colon", "é"])
def test_grant_action_code_pattern_refuses(admin, code):
    user = f.participant(admin)
    failure = f.refused(admin, lambda: f.grant(admin, user.id, "bad", action_code=code))
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"action_code"}


def test_grant_needs_a_client_reference_and_a_participant(admin):
    failure = f.refused(
        admin,
        lambda: admin.issuance.GrantCustomReward(
            issuance_pb2.GrantCustomRewardRequest(amount="5.00", action_code="x")
        ),
    )
    assert set(failure.violations) == {"participant", "client_reference"}
    user = f.participant(admin)
    failure = f.refused(admin, lambda: f.grant(admin, user.id, "r" * 129))
    assert set(failure.violations) == {"client_reference"}


def test_grant_to_an_unknown_participant_records_nothing(admin):
    failure = f.refused(
        admin,
        lambda: admin.issuance.GrantCustomReward(
            issuance_pb2.GrantCustomRewardRequest(
                participant=f.ref(external_id="later"),
                amount="5.00",
                action_code="x",
                client_reference="grant-later",
            )
        ),
    )
    assert failure.reason == "PARTICIPANT_NOT_FOUND"
    user = f.participant(admin, "later")
    out = admin.issuance.GrantCustomReward(
        issuance_pb2.GrantCustomRewardRequest(
            participant=f.ref(external_id="later"),
            amount="5.00",
            action_code="x",
            client_reference="grant-later",
        )
    )
    assert not out.idempotent_replay and out.issuance.participant_id == user.id


def test_grant_replay_and_conflict(admin):
    user = f.participant(admin)
    other = f.participant(admin)
    first = f.grant(admin, user.id, "cr-1", amount="10.00", action_code="a").issuance
    again = f.grant(admin, user.id, "cr-1", amount="10", action_code="a")
    assert again.idempotent_replay and again.issuance == first
    for changed in (
        {"amount": "11.00", "action_code": "a"},
        {"amount": "10.00", "action_code": "b"},
    ):
        failure = f.refused(admin, lambda c=changed: f.grant(admin, user.id, "cr-1", **c))
        assert failure.code == grpc.StatusCode.ALREADY_EXISTS
        assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    failure = f.refused(
        admin, lambda: f.grant(admin, other.id, "cr-1", amount="10.00", action_code="a")
    )
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    # An IssueReward reusing the client_reference conflicts too: one namespace.
    reward = f.reward(admin)
    failure = f.refused(admin, lambda: f.issue(admin, reward.id, user.id, request_id="cr-1"))
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    assert [i.id for i in f.all_issuances(admin)] == [first.id]


# BatchIssueRewards


def item(reward_id: str, participant_id: str, **fields) -> issuance_pb2.IssueRewardRequest:
    return issuance_pb2.IssueRewardRequest(
        reward_id=reward_id, participant=f.ref(participant_id), **fields
    )


def batch(api, *items) -> list[issuance_pb2.BatchIssueRewardsResult]:
    return list(
        api.issuance.BatchIssueRewards(
            issuance_pb2.BatchIssueRewardsRequest(requests=list(items))
        ).results
    )


def error_reason(status) -> tuple[int, str, dict[str, str], set[str]]:
    """(code, ErrorInfo reason, metadata, BadRequest fields) of a per-item google.rpc.Status."""
    reason, metadata, fields = "", {}, set()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "rewards.v1"
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = {v.field for v in bad.field_violations}
    return status.code, reason, metadata, fields


def test_batch_mixed_results_in_request_order(admin):
    points = f.asset(admin)
    user = funded(admin, points, "15.00")
    free = f.reward(admin, max_total=1)
    priced = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    results = batch(
        admin,
        item(free.id, user.id, request_id="b-1"),
        item("rew_missing", user.id),
        item(free.id, user.id),  # max_total reached by the first item
        item(priced.id, user.id),
        item(priced.id, user.id),  # balance spent by the previous item
        item(priced.id, user.id, quantity=-1),
    )
    assert [r.HasField("issuance") for r in results] == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert results[0].issuance.reward_id == free.id and not results[0].idempotent_replay
    assert results[3].issuance.cost.amount == "10.00"
    code, reason, metadata, _ = error_reason(results[1].error)
    assert (code, reason, metadata["id"]) == (code_pb2.NOT_FOUND, "REWARD_NOT_FOUND", "rew_missing")
    assert results[1].error.message
    code, reason, _, _ = error_reason(results[2].error)
    assert (code, reason) == (code_pb2.FAILED_PRECONDITION, "OUT_OF_STOCK")
    code, reason, metadata, _ = error_reason(results[4].error)
    assert (code, reason, metadata["available"]) == (
        code_pb2.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
        "5.00",
    )
    code, reason, _, fields = error_reason(results[5].error)
    assert (code, reason) == (code_pb2.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert any("quantity" in field for field in fields)
    assert not any(r.HasField("error") for r in results if r.HasField("issuance"))
    assert len(f.all_issuances(admin)) == 2
    assert f.balance(admin, user.id, points.id).available == "5.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_batch_items_are_idempotent_on_their_own_request_ids(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    first = batch(
        admin,
        item(reward.id, user.id, request_id="i-1"),
        item(reward.id, user.id, request_id="i-2", quantity=2),
        item(reward.id, user.id, request_id="i-1"),  # same key, same attributes, same batch
        item(reward.id, user.id, request_id="i-2", quantity=3),  # same key, other attributes
    )
    assert [r.idempotent_replay for r in first[:3]] == [False, False, True]
    assert first[2].issuance.id == first[0].issuance.id
    assert error_reason(first[3].error)[:2] == (code_pb2.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    second = batch(
        admin,
        item(reward.id, user.id, request_id="i-2", quantity=2),
        item(reward.id, user.id, request_id="i-3"),
        item(reward.id, user.id, request_id="i-1"),
    )
    assert [r.idempotent_replay for r in second] == [True, False, True]
    assert second[0].issuance.id == first[1].issuance.id
    assert second[2].issuance.id == first[0].issuance.id
    assert len(f.all_issuances(admin)) == 3
    assert f.get_reward(admin, reward.id).redeemed_count == 4
    # A batch item and a single call share one namespace.
    single = f.issue(admin, reward.id, user.id, request_id="i-3")
    assert single.idempotent_replay and single.issuance.id == second[1].issuance.id


def test_a_bad_event_time_fails_only_its_item(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    results = batch(
        admin,
        item(reward.id, user.id),
        item(reward.id, user.id, event_time=timestamp_pb2.Timestamp(seconds=10**13)),
    )
    assert results[0].HasField("issuance")
    code, reason, _, _ = error_reason(results[1].error)
    assert (code, reason) == (code_pb2.INVALID_ARGUMENT, "VALIDATION_FAILED")


def test_batch_of_500_is_accepted_and_501_refused(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    failure = f.refused(
        admin,
        lambda: batch(admin, *[item(reward.id, user.id) for _ in range(501)]),
        rewards=(reward.id,),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"requests"}
    failure = f.refused(admin, lambda: batch(admin), rewards=(reward.id,))
    assert set(failure.violations) == {"requests"}
    results = batch(admin, *[item(reward.id, user.id) for _ in range(500)])
    assert len(results) == 500 and all(r.HasField("issuance") for r in results)
    assert len({r.issuance.id for r in results}) == 500
    assert f.get_reward(admin, reward.id).redeemed_count == 500


# ClaimIssuance


def test_claim(admin, api_for):
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id).issuance
    issuer = api_for(admin.program_id, "issuer")
    claimed = f.claim(issuer, issued.id)
    assert claimed.status == IS.ISSUANCE_STATUS_CLAIMED
    assert claimed.HasField("claimed_at")
    assert claimed.claimed_at.ToDatetime() >= issued.issued_at.ToDatetime()
    again = f.claim(issuer, issued.id)
    assert again == claimed
    assert f.get_issuance(admin, issued.id) == claimed


def test_claim_a_revoked_one_is_refused(admin):
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id).issuance
    f.revoke(admin, issued.id)
    failure = f.refused(admin, lambda: f.claim(admin, issued.id))
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    assert f.get_issuance(admin, issued.id).status == IS.ISSUANCE_STATUS_REVOKED


# RevokeIssuance


def test_revoke_releases_max_total_and_lifts_out_of_stock(admin):
    reward = f.reward(admin, max_total=2)
    user = f.participant(admin)
    first = f.issue(admin, reward.id, user.id).issuance
    f.issue(admin, reward.id, user.id)
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == "OUT_OF_STOCK"
    revoked = f.revoke(admin, first.id, "customer returned it")
    assert revoked.status == IS.ISSUANCE_STATUS_REVOKED
    assert revoked.revoke_reason == "customer returned it"
    assert revoked.HasField("revoked_at")
    got = f.get_reward(admin, reward.id)
    assert (got.status, got.redeemed_count) == (common_pb2.REWARD_STATUS_ACTIVE, 1)
    f.issue(admin, reward.id, user.id)
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK


def test_revoke_releases_per_participant_and_rolling_caps(admin):
    reward = f.reward(admin, max_per_participant=1, limits=[(GLOBAL, 1, DAY)])
    user = f.participant(admin)
    first = f.issue(admin, reward.id, user.id).issuance
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == (
        "PARTICIPANT_LIMIT_REACHED"
    )
    f.revoke(admin, first.id)
    assert f.issue(admin, reward.id, user.id).issuance.status == IS.ISSUANCE_STATUS_CONFIRMED


def test_revoke_refunds_the_cost_with_a_reversal(admin):
    points = f.asset(admin)
    user = funded(admin, points, "50.00")
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="15")
    issued = f.issue(admin, reward.id, user.id, quantity=2).issuance
    assert f.balance(admin, user.id, points.id).available == "20.00"
    f.revoke(admin, issued.id, "cancelled")
    got = f.balance(admin, user.id, points.id)
    assert (got.available, got.lifetime_earned, got.lifetime_spent) == ("50.00", "50.00", "0.00")
    newest = f.ledger_entries(admin, user.id, points.id)[0]
    assert (newest.kind, newest.delta, newest.balance_after) == (
        K.LEDGER_ENTRY_KIND_REVERSAL,
        "30.00",
        "50.00",
    )
    assert (newest.issuance_id, newest.reason) == (issued.id, "cancelled")
    assert f.get_reward(admin, reward.id).redeemed_count == 0
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_revoke_takes_back_credited_points(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    reward = f.reward(admin, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="40"))
    issued = f.issue(admin, reward.id, user.id).issuance
    f.revoke(admin, issued.id)
    got = f.balance(admin, user.id, points.id)
    assert (got.available, got.lifetime_earned, got.lifetime_spent) == ("0.00", "0.00", "0.00")
    assert [(e.kind, e.delta) for e in f.ledger_entries(admin, user.id)] == [
        (K.LEDGER_ENTRY_KIND_REVERSAL, "-40.00"),
        (K.LEDGER_ENTRY_KIND_EARN, "40.00"),
    ]
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_revoke_is_refused_when_the_points_were_spent(admin):
    points = f.asset(admin, "POINTS")
    cash = f.asset(admin, "CASH")
    user = funded(admin, cash, "10.00")
    reward = f.reward(
        admin,
        max_total=1,
        cost_asset_id=cash.id,
        unit_cost="4",
        points=catalog_pb2.PointsConfig(asset_id=points.id, amount="40"),
    )
    issued = f.issue(admin, reward.id, user.id).issuance
    f.fund(admin, user.id, points.id, "-25.00")  # spent
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = f.refused(
        admin,
        lambda: f.revoke(admin, issued.id, "too late"),
        rewards=(reward.id,),
        balances=((user.id, points.id), (user.id, cash.id)),
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert (failure.metadata["required"], failure.metadata["available"]) == ("40.00", "15.00")
    got = f.get_issuance(admin, issued.id)
    assert got == issued
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    f.assert_ledger_consistent(admin, user.id, points.id)
    f.assert_ledger_consistent(admin, user.id, cash.id)


def test_revoke_voids_a_unique_code_which_is_never_reissued(admin):
    pool = f.code_pool(admin, ["AAA", "BBB"])
    reward = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    user = f.participant(admin)
    first = f.issue(admin, reward.id, user.id).issuance
    f.revoke(admin, first.id)
    stats = f.get_pool(admin, pool.id)
    assert (stats.total_count, stats.available_count) == (2, 1)
    second = f.issue(admin, reward.id, user.id).issuance
    assert {first.coupon_code, second.coupon_code} == {"AAA", "BBB"}
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    f.revoke(admin, second.id)
    # Revoking gave no code back: the reward stays out of stock until codes are added.
    assert f.get_reward(admin, reward.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    failure = expect_failure(f.issue, admin, reward.id, user.id)
    assert failure.reason == "CODE_POOL_EXHAUSTED"
    admin.catalog.AddCodes(catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=["AAA", "CCC"]))
    third = f.issue(admin, reward.id, user.id).issuance
    assert third.coupon_code == "CCC"
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == "CODE_POOL_EXHAUSTED"


def test_revoking_twice_returns_it_unchanged(admin):
    points = f.asset(admin)
    user = funded(admin, points, "20.00")
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="5", max_total=3)
    issued = f.issue(admin, reward.id, user.id).issuance
    revoked = f.revoke(admin, issued.id, "first")
    watched = {"rewards": (reward.id,), "balances": ((user.id, points.id),)}
    before = f.snapshot(admin, **watched)
    again = f.revoke(admin, issued.id, "second")
    assert again == revoked
    assert again.revoke_reason == "first"
    assert f.snapshot(admin, **watched) == before
    assert f.balance(admin, user.id, points.id).available == "20.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_revoke_a_claimed_issuance_and_a_custom_grant(admin):
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id).issuance
    f.claim(admin, issued.id)
    assert f.revoke(admin, issued.id).status == IS.ISSUANCE_STATUS_REVOKED
    granted = f.grant(admin, user.id, "g-1").issuance
    assert f.revoke(admin, granted.id, "mistake").status == IS.ISSUANCE_STATUS_REVOKED


def test_revoke_after_the_reward_was_archived(admin):
    reward = f.reward(admin, max_total=1)
    user = f.participant(admin)
    issued = f.issue(admin, reward.id, user.id).issuance
    admin.catalog.DeleteReward(catalog_pb2.DeleteRewardRequest(id=reward.id))
    assert f.revoke(admin, issued.id).status == IS.ISSUANCE_STATUS_REVOKED
    got = f.get_reward(admin, reward.id)
    assert (got.status, got.redeemed_count) == (common_pb2.REWARD_STATUS_ARCHIVED, 0)
    assert expect_failure(f.issue, admin, reward.id, user.id).reason == "REWARD_NOT_ACTIVE"


# UpdateFulfillment


def test_update_fulfillment_keeps_history_in_order(admin, api_for):
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id, fulfillment_status="BOOKED").issuance
    issuer = api_for(admin.program_id, "issuer")
    for status, note in (("SHIPPED", "via DHL"), ("DELIVERED", ""), ("RETURNED", "damaged")):
        got = issuer.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=issued.id, status=status, note=note)
        )
        assert got.fulfillment_status == status
    got = f.get_issuance(admin, issued.id)
    history = [(e.status, e.note) for e in got.fulfillment_history]
    assert history == [
        ("BOOKED", ""),
        ("SHIPPED", "via DHL"),
        ("DELIVERED", ""),
        ("RETURNED", "damaged"),
    ]
    times = [e.created_at.ToDatetime() for e in got.fulfillment_history]
    assert times == sorted(times)
    assert got.fulfillment_status == "RETURNED"
    assert got.status == IS.ISSUANCE_STATUS_CONFIRMED


def test_update_fulfillment_validates(admin):
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id).issuance
    failure = f.refused(
        admin,
        lambda: admin.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=issued.id, status="", note="n" * 1001)
        ),
    )
    assert set(failure.violations) == {"status", "note"}
    assert f.get_issuance(admin, issued.id).fulfillment_history == []


def test_fulfillment_history_is_capped_and_a_full_one_changes_nothing(admin):
    """An unbounded history once made an issuance too large to read (and its appends
    committed, then failed to answer)."""
    user = f.participant(admin)
    issued = f.issue(admin, f.reward(admin).id, user.id, fulfillment_status="BOOKED").issuance
    for n in range(1, 100):
        admin.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=issued.id, status=f"S{n}", note="n" * 1000)
        )
    full = f.get_issuance(admin, issued.id)
    assert len(full.fulfillment_history) == 100
    failure = expect_failure(
        admin.issuance.UpdateFulfillment,
        issuance_pb2.UpdateFulfillmentRequest(id=issued.id, status="LOST", note="x"),
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "FULFILLMENT_HISTORY_FULL"
    assert failure.metadata == {"limit": "100"}
    assert f.get_issuance(admin, issued.id) == full
    assert full.fulfillment_status == "S99"


# ListIssuances


def test_list_issuances_filters(admin):
    points = f.asset(admin)
    alice = f.participant(admin, "alice", email="alice@example.com")
    bob = f.participant(admin, "bob", email="bob@example.com")
    product = f.reward(admin)
    bonus = f.reward(admin, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="1"))
    a1 = f.issue(admin, product.id, alice.id).issuance
    time.sleep(0.01)
    b1 = f.issue(admin, bonus.id, bob.id).issuance
    time.sleep(0.01)
    a2 = f.issue(admin, bonus.id, alice.id).issuance
    time.sleep(0.01)
    g1 = f.grant(admin, bob.id, "g").issuance
    f.claim(admin, a2.id)
    f.revoke(admin, b1.id)

    def ids(**filters):
        return [i.id for i in f.all_issuances(admin, **filters)]

    assert ids() == [g1.id, a2.id, b1.id, a1.id]
    assert ids(participant=f.ref(alice.id)) == [a2.id, a1.id]
    assert ids(participant=f.ref(external_id="bob")) == [g1.id, b1.id]
    assert ids(participant=f.ref(email="alice@example.com")) == [a2.id, a1.id]
    assert ids(reward_id=bonus.id) == [a2.id, b1.id]
    assert ids(status=IS.ISSUANCE_STATUS_CLAIMED) == [a2.id]
    assert ids(status=IS.ISSUANCE_STATUS_REVOKED) == [b1.id]
    assert ids(status=IS.ISSUANCE_STATUS_CONFIRMED) == [g1.id, a1.id]
    assert ids(type=common_pb2.REWARD_TYPE_POINTS) == [a2.id, b1.id]
    assert ids(type=common_pb2.REWARD_TYPE_CUSTOM) == [g1.id]
    assert ids(participant=f.ref(alice.id), reward_id=bonus.id) == [a2.id]
    assert ids(created_after=b1.issued_at) == [g1.id, a2.id, b1.id]
    assert ids(created_before=b1.issued_at) == [a1.id]
    assert ids(created_after=b1.issued_at, created_before=g1.issued_at) == [a2.id, b1.id]
    failure = expect_failure(
        admin.issuance.ListIssuances,
        issuance_pb2.ListIssuancesRequest(participant=f.ref(external_id="nobody")),
    )
    assert failure.reason == "PARTICIPANT_NOT_FOUND"
    f.assert_ledger_consistent(admin, alice.id, points.id)
    f.assert_ledger_consistent(admin, bob.id, points.id)


def test_list_issuances_pages_newest_first_without_duplicates_or_gaps(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    made = [f.issue(admin, reward.id, user.id).issuance.id for _ in range(7)]
    pages, token = [], ""
    while True:
        page = admin.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(page_size=3, page_token=token)
        )
        pages.append([i.id for i in page.issuances])
        if len(pages) == 1:
            # Inserted between pages: newer than the cursor, so it never shows up later.
            late = f.issue(admin, reward.id, user.id).issuance.id
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == list(reversed(made))
    assert f.all_issuances(admin)[0].id == late
    # A token is bound to its filters.
    first = admin.issuance.ListIssuances(issuance_pb2.ListIssuancesRequest(page_size=3))
    failure = expect_failure(
        admin.issuance.ListIssuances,
        issuance_pb2.ListIssuancesRequest(
            page_size=3, page_token=first.next_page_token, reward_id=reward.id
        ),
    )
    assert (failure.reason, set(failure.violations)) == ("VALIDATION_FAILED", {"page_token"})
    failure = expect_failure(
        admin.issuance.ListIssuances,
        issuance_pb2.ListIssuancesRequest(page_token="not-a-token"),
    )
    assert set(failure.violations) == {"page_token"}
