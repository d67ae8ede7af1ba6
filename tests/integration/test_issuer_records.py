"""Through a real server: manual grants (admin only, past the campaign rules, never past
stock or caps), who issued each issuance and why (key, source_event_id) with the filters that
find them, free-text client references, program_id, ListRewards' total_size, and fulfillment
of revoked issuances."""

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2

from rewards_service.services import programs
from rewards_service.store.db import session
from tests import factories as f
from tests.helpers import make_api

FP = grpc.StatusCode.FAILED_PRECONDITION
DAY = 86400


def ts(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


@pytest.fixture
def campaign(admin):
    """A reward outside its window, for a segment the user is not in, with a rolling limit of
    one a day already used, and a lifetime cap of 2 per participant."""
    user = f.participant(admin)
    reward = f.reward(
        admin,
        segments=[("vip", "gold")],
        limits=[(common_pb2.LIMIT_SCOPE_PARTICIPANT, 1, DAY)],
        max_per_participant=2,
    )
    f.issue(admin, reward.id, user.id, manual=True)  # takes the day's one
    admin.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(
                id=reward.id, available_from=ts(datetime.now(UTC) + timedelta(days=3))
            ),
            update_mask={"paths": ["available_from"]},
        )
    )
    return reward, user


def test_a_manual_grant_skips_window_segments_and_rolling_limits(admin, campaign):
    reward, user = campaign
    failure = f.refused(admin, lambda: f.issue(admin, reward.id, user.id), rewards=(reward.id,))
    assert (failure.code, failure.reason) == (FP, "REWARD_NOT_AVAILABLE")
    out = f.issue(admin, reward.id, user.id, manual=True, request_id="goodwill-1").issuance
    assert out.manual
    assert f.get_issuance(admin, out.id).manual
    assert f.get_reward(admin, reward.id).redeemed_count == 2
    # max_per_participant is never bypassed.
    failure = f.refused(
        admin, lambda: f.issue(admin, reward.id, user.id, manual=True), rewards=(reward.id,)
    )
    assert (failure.reason, failure.metadata["window"]) == ("PARTICIPANT_LIMIT_REACHED", "lifetime")
    # manual is part of the call: the same request_id without it is a reuse, with it a replay.
    again = f.issue(admin, reward.id, user.id, manual=True, request_id="goodwill-1")
    assert again.idempotent_replay and again.issuance.id == out.id
    failure = f.refused(admin, lambda: f.issue(admin, reward.id, user.id, request_id="goodwill-1"))
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


def test_each_rule_alone_is_skipped(admin):
    user = f.participant(admin)
    later = ts(datetime.now(UTC) + timedelta(days=1))
    for fields, reason in (
        ({"available_from": later}, "REWARD_NOT_AVAILABLE"),
        ({"segments": [("vip", "gold")]}, "NOT_ELIGIBLE"),
        ({"limits": [(common_pb2.LIMIT_SCOPE_GLOBAL, 1, DAY)]}, "PARTICIPANT_LIMIT_REACHED"),
    ):
        reward = f.reward(admin, **fields)
        if "limits" in fields:
            f.issue(admin, reward.id, f.participant(admin).id)
        failure = f.refused(admin, lambda r=reward: f.issue(admin, r.id, user.id))
        assert failure.reason == reason
        assert f.issue(admin, reward.id, user.id, manual=True).issuance.manual


def test_a_manual_grant_still_needs_stock_status_and_balance(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    sold = f.reward(admin, max_total=1)
    f.issue(admin, sold.id, user.id)
    failure = f.refused(admin, lambda: f.issue(admin, sold.id, user.id, manual=True))
    assert failure.reason == "OUT_OF_STOCK"
    pricey = f.reward(admin, cost_asset_id=points.id, unit_cost="5")
    failure = f.refused(
        admin,
        lambda: f.issue(admin, pricey.id, user.id, manual=True),
        balances=((user.id, points.id),),
    )
    assert failure.reason == "INSUFFICIENT_BALANCE"
    pool = f.code_pool(admin, [])
    coupon = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    failure = f.refused(admin, lambda: f.issue(admin, coupon.id, user.id, manual=True))
    assert failure.reason == "CODE_POOL_EXHAUSTED"


def test_only_an_admin_may_grant_manually(admin, api_for):
    issuer = api_for(admin.program_id, "issuer")
    user = f.participant(admin)
    reward = f.reward(admin)
    failure = f.refused(
        issuer, lambda: f.issue(issuer, reward.id, user.id, manual=True), rewards=(reward.id,)
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "INSUFFICIENT_SCOPE",
    )
    batch = issuer.issuance.BatchIssueRewards(
        issuance_pb2.BatchIssueRewardsRequest(
            requests=[
                issuance_pb2.IssueRewardRequest(
                    reward_id=reward.id, participant=f.ref(user.id), manual=True, request_id="b1"
                ),
                issuance_pb2.IssueRewardRequest(
                    reward_id=reward.id, participant=f.ref(user.id), request_id="b2"
                ),
            ]
        )
    )
    refused, issued = batch.results
    assert refused.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert issued.issuance.id and not issued.issuance.manual
    assert [i.request_id for i in f.all_issuances(admin)] == ["b2"]


# Who issued it


def test_issuances_record_the_key_and_the_source_event(admin, channel):
    with session():
        till = programs.create_key(admin.program_id, "issuer", name="till-7 (store 12)")
    api = make_api(channel, admin.program_id, till.api_key)
    user = f.participant(admin)
    reward = f.reward(admin)
    out = f.issue(api, reward.id, user.id, source_event_id="evt-991").issuance
    assert (out.issuer_key_id, out.issuer_key_name, out.source_event_id) == (
        till.key_id,
        "till-7 (store 12)",
        "evt-991",
    )
    assert out.program_id == admin.program_id == f.get_issuance(admin, out.id).program_id
    by_admin = f.issue(admin, reward.id, user.id).issuance
    assert by_admin.issuer_key_id.startswith("key_") and by_admin.issuer_key_id != till.key_id
    assert by_admin.source_event_id == ""
    grant = f.grant(admin, user.id, "order 1", action_code="review.posted").issuance
    assert grant.issuer_key_id == by_admin.issuer_key_id

    def ids(**filters) -> list[str]:
        return [i.id for i in f.all_issuances(admin, **filters)]

    assert ids(issuer_key_id=till.key_id) == [out.id]
    assert ids(issuer_key_id=by_admin.issuer_key_id) == [grant.id, by_admin.id]
    assert ids(source_event_id="evt-991") == [out.id]
    assert ids(source_event_id="evt-992") == []
    assert ids(action_code="review.posted") == [grant.id]
    assert ids(action_code="review.posted", issuer_key_id=till.key_id) == []


def test_a_page_token_is_bound_to_the_new_filters(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    for _ in range(3):
        f.issue(admin, reward.id, user.id, source_event_id="evt-1")
    page = admin.issuance.ListIssuances(
        issuance_pb2.ListIssuancesRequest(page_size=1, source_event_id="evt-1")
    )
    failure = f.refused(
        admin,
        lambda: admin.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(
                page_size=1, source_event_id="evt-2", page_token=page.next_page_token
            )
        ),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT


def test_source_event_ids_are_bounded(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    failure = f.refused(
        admin, lambda: f.issue(admin, reward.id, user.id, source_event_id="e" * 129)
    )
    assert list(failure.violations) == ["source_event_id"]
    assert f.issue(admin, reward.id, user.id, source_event_id="e" * 128).issuance.source_event_id


# Client references (Ownli)


@pytest.mark.parametrize("reference", ["order 1", "Bestellung 7 \u2013 \u00e9t\u00e9", "x" * 128])
def test_client_references_are_free_text_and_replay(admin, reference):
    user = f.participant(admin)
    first = f.grant(admin, user.id, reference)
    assert first.issuance.request_id == reference
    again = f.grant(admin, user.id, reference)
    assert again.idempotent_replay and again.issuance.id == first.issuance.id
    failure = f.refused(admin, lambda: f.grant(admin, user.id, reference, amount="20.00"))
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("reference", ["order\t1", "order\n1", "x" * 129, " "])
def test_client_references_with_control_characters_or_too_long_are_refused(admin, reference):
    user = f.participant(admin)
    failure = f.refused(admin, lambda: f.grant(admin, user.id, reference))
    assert list(failure.violations) == ["client_reference"]


def test_issue_request_ids_stay_printable_ascii(admin):
    # Decided: only client_reference widened; IssueReward's request_id keeps SPEC's rule.
    user = f.participant(admin)
    reward = f.reward(admin)
    failure = f.refused(admin, lambda: f.issue(admin, reward.id, user.id, request_id="order 1"))
    assert list(failure.violations) == ["request_id"]


def test_a_client_reference_shares_the_request_id_space(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    f.issue(admin, reward.id, user.id, request_id="order-1")
    failure = f.refused(admin, lambda: f.grant(admin, user.id, "order-1"))
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


# ListRewards total_size


def test_total_size_only_when_asked_and_filtered(admin):
    for category in ("a", "a", "b"):
        f.reward(admin, category=category)
    archived = f.reward(admin, category="a")
    admin.catalog.DeleteReward(catalog_pb2.DeleteRewardRequest(id=archived.id))

    def listed(**fields) -> catalog_pb2.ListRewardsResponse:
        return admin.catalog.ListRewards(catalog_pb2.ListRewardsRequest(**fields))

    assert listed(page_size=1).total_size == 0
    first = listed(page_size=1, include_total_size=True)
    assert (len(first.rewards), first.total_size) == (1, 3)
    assert listed(category="a", include_total_size=True).total_size == 2
    assert listed(show_archived=True, include_total_size=True).total_size == 4
    # Asking for the count does not change the page token's filters.
    second = listed(page_size=1, page_token=first.next_page_token)
    assert second.rewards[0].id != first.rewards[0].id
    assert all(r.program_id == admin.program_id for r in listed().rewards)


# Fulfillment of a revoked issuance


def test_update_fulfillment_on_a_revoked_issuance_is_refused(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    out = f.issue(admin, reward.id, user.id, fulfillment_status="BOOKED").issuance
    f.revoke(admin, out.id, "cancelled")

    def update():
        return admin.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=out.id, status="SHIPPED")
        )

    failure = f.refused(admin, update)
    assert (failure.code, failure.reason) == (FP, "INVALID_STATE_TRANSITION")
    after = f.get_issuance(admin, out.id)
    assert (after.fulfillment_status, len(after.fulfillment_history)) == ("BOOKED", 1)
