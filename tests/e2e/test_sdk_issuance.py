"""The SDK's RewardIssuance and Participants methods, and the typed exceptions they raise.

Skipped only while the server answers UNIMPLEMENTED for those services.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
import rewards_client as rc
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2
from rewards_client import RewardsClient, ref

from tests.conftest import new_key, new_program

S = common_pb2


@pytest.fixture(scope="module")
def served(target):
    with RewardsClient(target, new_program("sdk-probe").api_key) as probe:
        for call in (lambda: probe.get_issuance("iss_probe"), lambda: probe.get_participant("p")):
            try:
                call()
            except rc.Unimplemented:
                pytest.skip("the server does not implement RewardIssuance/Participants yet")
            except rc.RewardsError:
                pass


@pytest.fixture
def program(served):
    return new_program("sdk-issuance")


@pytest.fixture
def client(target, program):
    with RewardsClient(target, program.api_key) as c:
        yield c


@pytest.fixture
def points(client):
    return client.create_asset(code="POINTS", name="Points", scale=2)


def product(client, **fields) -> catalog_pb2.Reward:
    fields.setdefault("name", "Mug")
    return client.create_reward(
        type=S.REWARD_TYPE_PRODUCT, product=catalog_pb2.ProductConfig(product_id="sku-1"), **fields
    )


def points_reward(client, asset, amount="10.00", **fields) -> catalog_pb2.Reward:
    return client.create_reward(
        name="Points",
        type=S.REWARD_TYPE_POINTS,
        points=catalog_pb2.PointsConfig(asset_id=asset.id, amount=amount),
        **fields,
    )


def raised(exc_type, call, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    return info.value


# Participants


def test_upsert_get_and_list_participants(client):
    gold = [S.Segment(segment="tier", partition="gold")]
    ann = client.upsert_participant(external_id="ann", email="ann@example.com", segments=gold)
    bob = client.upsert_participant(participants_pb2.Participant(external_id="bob", mobile="+100"))
    assert ann.id.startswith("par_") and bob.id.startswith("par_")
    assert client.get_participant(ann.id) == ann
    assert client.get_participant(participant=ref(email="ANN@example.com")) == ann
    again = client.upsert_participant(external_id="ann", email="ann@new.example.com")
    assert again.id == ann.id and again.email == "ann@new.example.com"
    assert list(again.segments) == []  # no mask: email, mobile and segments are all set
    masked = client.upsert_participant(external_id="bob", segments=gold, update_mask=["segments"])
    assert masked.mobile == "+100" and list(masked.segments) == gold  # mobile not in the mask
    by_email = client.list_participants(email="ann@new.example.com")
    assert [p.id for p in by_email.participants] == [ann.id]
    assert [p.id for p in client.iter_participants(mobile="+100")] == [bob.id]


def test_list_participants_by_segment(client):
    gold = client.upsert_participant(
        external_id="g", segments=[S.Segment(segment="tier", partition="gold")]
    )
    silver = client.upsert_participant(
        external_id="s", segments=[S.Segment(segment="tier", partition="silver")]
    )
    client.upsert_participant(external_id="none")
    tier = client.list_participants(segment="tier").participants
    assert [p.id for p in tier] == [gold.id, silver.id]
    assert [p.id for p in client.iter_participants(segment="tier", partition="gold")] == [gold.id]
    assert [p.id for p in client.iter_participants(segment="tier", page_size=1)] == [
        gold.id,
        silver.id,
    ]


def test_iter_participants_walks_every_page(client):
    made = [client.upsert_participant(external_id=f"u{i}").id for i in range(5)]
    assert client.list_participants(page_size=2).next_page_token
    assert [p.id for p in client.iter_participants(page_size=2)] == made


def test_participant_not_found(client, points):
    raised(rc.ParticipantNotFound, client.get_participant, "par_missing")
    raised(rc.ParticipantNotFound, client.get_balance, ref(external_id="nobody"), points.id)
    reward = product(client)
    error = raised(rc.ParticipantNotFound, client.issue_reward, reward.id, ref(email="x@y.z"))
    assert isinstance(error, rc.NotFound)


def test_ambiguous_participant(client, points):
    client.upsert_participant(external_id="a", email="shared@example.com")
    client.upsert_participant(external_id="b", email="shared@example.com")
    error = raised(
        rc.AmbiguousParticipant, client.get_balance, ref(email="shared@example.com"), points.id
    )
    assert isinstance(error, rc.FailedPrecondition)


def test_adjust_balance_get_balance_and_ledger(client, points):
    user = client.upsert_participant(external_id="u1")
    first = client.adjust_balance(user, asset_id=points.id, delta="100.00", reason="welcome")
    assert not first.idempotent_replay and first.balance.available == "100.00"
    spend = {"asset_id": points.id, "delta": Decimal("-30.5"), "request_id": "adj-2"}
    assert not client.adjust_balance(ref(id=user.id), **spend).idempotent_replay
    replay = client.adjust_balance(ref(id=user.id), **spend)
    assert replay.idempotent_replay
    balance = client.get_balance(ref(external_id="u1"), points.id)
    assert (balance.available, balance.lifetime_earned, balance.lifetime_spent) == (
        "69.50",
        "100.00",
        "30.50",
    )
    entries = client.list_ledger_entries(user, asset_id=points.id, page_size=1)
    assert len(entries.entries) == 1 and entries.next_page_token
    walked = list(client.iter_ledger_entries(user, page_size=1))
    assert [e.delta for e in walked] == ["-30.50", "100.00"]  # newest first
    assert [e.kind for e in walked] == [S.LEDGER_ENTRY_KIND_ADJUST] * 2
    assert walked[0].balance_after == "69.50"


def test_adjust_balance_below_zero(client, points):
    user = client.upsert_participant(external_id="u1")
    error = raised(
        rc.InsufficientBalance, client.adjust_balance, user, asset_id=points.id, delta="-1"
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION


def test_adjust_balance_with_a_reused_request_id(client, points):
    user = client.upsert_participant(external_id="u1")
    client.adjust_balance(user, asset_id=points.id, delta="5", request_id="adj-1")
    raised(
        rc.IdempotencyKeyReused,
        client.adjust_balance,
        user,
        asset_id=points.id,
        delta="6",
        request_id="adj-1",
    )


def test_decimal_amounts_refuse_floats(client, points):
    with pytest.raises(TypeError):
        client.adjust_balance(ref(external_id="u1"), asset_id=points.id, delta=1.5)


def test_ref_names_exactly_one_identifier():
    assert ref(mobile="+1") == S.ParticipantRef(mobile="+1")
    with pytest.raises(ValueError):
        ref()
    with pytest.raises(ValueError):
        ref(id="par_1", email="a@b.c")
    with pytest.raises(TypeError):
        rc.to_ref("par_1")


# Issuing


def test_issue_points_with_every_field(client, points):
    reward = points_reward(client, points)
    user = client.upsert_participant(external_id="u1")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = client.issue_reward(
        reward.id,
        ref(external_id="u1"),
        quantity=3,
        transaction_number="T-1",
        notes="thanks",
        metadata={"k": "v"},
        custom_fields={"size": "L"},
        fulfillment_status="BOOKED",
        event_time=when,
        owner=S.Owner(owner_type=S.OWNER_TYPE_CAMPAIGNS, owner_id="spring"),
    )
    issuance = out.issuance
    assert not out.idempotent_replay
    assert issuance.id.startswith("iss_") and issuance.request_id
    assert (issuance.participant_id, issuance.reward_id, issuance.quantity) == (
        user.id,
        reward.id,
        3,
    )
    assert issuance.status == S.ISSUANCE_STATUS_CONFIRMED
    assert (issuance.credit.asset_id, issuance.credit.amount) == (points.id, "30.00")
    assert (issuance.transaction_number, issuance.notes) == ("T-1", "thanks")
    assert dict(issuance.metadata) == {"k": "v"} and dict(issuance.custom_fields) == {"size": "L"}
    assert issuance.fulfillment_status == "BOOKED"
    assert issuance.event_time.ToDatetime(tzinfo=UTC) == when
    assert issuance.owner.owner_id == "spring"
    assert issuance.reward_snapshot.points.amount == "10.00"
    assert client.get_balance(user, points.id).available == "30.00"


def test_issue_replay_and_reused_request_id(client, points):
    reward = points_reward(client, points)
    user = client.upsert_participant(external_id="u1")
    first = client.issue_reward(reward.id, user, request_id="iss-1")
    replay = client.issue_reward(reward.id, user, request_id="iss-1")
    assert replay.idempotent_replay and replay.issuance.id == first.issuance.id
    error = raised(
        rc.IdempotencyKeyReused,
        client.issue_reward,
        reward.id,
        user,
        quantity=2,
        request_id="iss-1",
    )
    assert isinstance(error, rc.AlreadyExists)
    assert client.get_balance(user, points.id).available == "10.00"


def test_issue_a_priced_amount_based_reward(client, points):
    miles = client.create_reward(
        name="Miles",
        type=S.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="miles"),
        redemption_type=S.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        unit_cost="2.5",
    )
    user = client.upsert_participant(external_id="u1")
    client.adjust_balance(user, asset_id=points.id, delta="100")
    out = client.issue_reward(miles.id, user, amount=Decimal("10"))
    assert (out.issuance.amount, out.issuance.cost.amount) == ("10", "25.00")
    assert client.get_balance(user, points.id).available == "75.00"


def test_insufficient_balance(client, points):
    reward = product(client, cost_asset_id=points.id, unit_cost="5")
    user = client.upsert_participant(external_id="u1")
    error = raised(rc.InsufficientBalance, client.issue_reward, reward.id, user)
    assert error.metadata  # carries the numbers, e.g. available and required
    assert list(client.iter_issuances()) == []


def test_out_of_stock(client):
    reward = product(client, max_total=1)
    user = client.upsert_participant(external_id="u1")
    client.issue_reward(reward.id, user)
    assert client.get_reward(reward.id).status == S.REWARD_STATUS_OUT_OF_STOCK
    raised(rc.OutOfStock, client.issue_reward, reward.id, user)


def test_code_pool_exhausted(client):
    pool = client.create_code_pool(name="Pool")
    client.add_codes(pool.id, ["ONLY"])
    reward = client.create_reward(
        name="Coupon",
        type=S.REWARD_TYPE_UNIQUE_COUPON,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
    )
    user = client.upsert_participant(external_id="u1")
    assert client.issue_reward(reward.id, user).issuance.coupon_code == "ONLY"
    raised(rc.CodePoolExhausted, client.issue_reward, reward.id, user)


def test_reward_not_active(client):
    user = client.upsert_participant(external_id="u1")
    draft = product(client, status=S.REWARD_STATUS_DRAFT)
    raised(rc.RewardNotActive, client.issue_reward, draft.id, user)
    archived = client.delete_reward(product(client).id)
    raised(rc.RewardNotActive, client.issue_reward, archived.id, user)


def test_reward_not_available(client):
    user = client.upsert_participant(external_id="u1")
    later = product(client, available_from=datetime.now(UTC) + timedelta(days=1))
    raised(rc.RewardNotAvailable, client.issue_reward, later.id, user)


def test_not_eligible(client):
    reward = product(client, segments=[S.Segment(segment="tier", partition="gold")])
    silver = client.upsert_participant(
        external_id="u1", segments=[S.Segment(segment="tier", partition="silver")]
    )
    raised(rc.NotEligible, client.issue_reward, reward.id, silver)


def test_participant_limit_reached(client):
    reward = product(client, max_per_participant=2)
    user = client.upsert_participant(external_id="u1")
    client.issue_reward(reward.id, user, quantity=2)
    error = raised(rc.ParticipantLimitReached, client.issue_reward, reward.id, user)
    assert error.metadata


def test_reward_not_found_on_issue(client):
    user = client.upsert_participant(external_id="u1")
    raised(rc.RewardNotFound, client.issue_reward, "rew_missing", user)


def test_batch_issue_rewards_with_partial_success(client):
    reward = product(client, max_total=2)
    user = client.upsert_participant(external_id="u1")
    out = client.batch_issue_rewards(
        [
            {"reward_id": reward.id, "participant": user},
            rc.issue_request(reward.id, ref(external_id="u1"), request_id="b-2"),
            issuance_pb2.IssueRewardRequest(reward_id=reward.id, participant=ref(id=user.id)),
            {"reward_id": "rew_missing", "participant": user},
        ]
    )
    first, second, third, fourth = out.results
    assert first.HasField("issuance") and second.issuance.request_id == "b-2"
    assert first.issuance.request_id and first.issuance.request_id != "b-2"
    assert isinstance(rc.from_status(third.error), rc.OutOfStock)
    assert isinstance(rc.from_status(fourth.error), rc.RewardNotFound)
    assert rc.from_status(fourth.error).reason == "REWARD_NOT_FOUND"


def test_grant_custom_reward(client):
    user = client.upsert_participant(external_id="u1")
    out = client.grant_custom_reward(
        ref(external_id="u1"),
        amount=Decimal("12.50"),
        action_code="survey.done",
        client_reference="ext-1",
        notes="survey",
    )
    issuance = out.issuance
    assert (issuance.type, issuance.status) == (S.REWARD_TYPE_CUSTOM, S.ISSUANCE_STATUS_CONFIRMED)
    assert (issuance.amount, issuance.action_code) == ("12.50", "survey.done")
    assert issuance.participant_id == user.id
    replay = client.grant_custom_reward(
        ref(external_id="u1"),
        amount="12.50",
        action_code="survey.done",
        client_reference="ext-1",
        notes="survey",
    )
    assert replay.idempotent_replay and replay.issuance.id == issuance.id
    raised(
        rc.IdempotencyKeyReused,
        client.grant_custom_reward,
        ref(external_id="u1"),
        amount="13.00",
        action_code="survey.done",
        client_reference="ext-1",
    )
    error = raised(
        rc.ValidationFailed, client.grant_custom_reward, user, amount="500", action_code="x"
    )
    assert "amount" in error.violations


def test_get_list_and_iter_issuances(client):
    mug, pen = product(client, name="Mug"), product(client, name="Pen")
    ann = client.upsert_participant(external_id="ann")
    bob = client.upsert_participant(external_id="bob")
    made = [client.issue_reward(mug.id, ann).issuance for _ in range(3)]
    made.append(client.issue_reward(pen.id, bob).issuance)
    assert client.get_issuance(made[0].id) == made[0]
    newest_first = [i.id for i in reversed(made)]
    assert [i.id for i in client.iter_issuances(page_size=2)] == newest_first
    page = client.list_issuances(participant=ref(external_id="ann"), page_size=2)
    assert len(page.issuances) == 2 and page.next_page_token
    assert [i.id for i in client.iter_issuances(participant=ann, page_size=2)] == newest_first[1:]
    assert [i.id for i in client.iter_issuances(reward_id=pen.id)] == [made[3].id]
    client.claim_issuance(made[0].id)
    claimed = client.iter_issuances(status=S.ISSUANCE_STATUS_CLAIMED)
    assert [i.id for i in claimed] == [made[0].id]
    assert len(list(client.iter_issuances(type=S.REWARD_TYPE_PRODUCT))) == 4
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(client.iter_issuances(created_after=future)) == []
    assert len(list(client.iter_issuances(created_before=future))) == 4


def test_claim_revoke_and_fulfillment(client, points):
    reward = points_reward(client, points)
    user = client.upsert_participant(external_id="u1")
    issued = client.issue_reward(reward.id, user).issuance
    claimed = client.claim_issuance(issued.id)
    assert claimed.status == S.ISSUANCE_STATUS_CLAIMED and claimed.HasField("claimed_at")
    assert client.claim_issuance(issued.id) == claimed
    shipped = client.update_fulfillment(issued.id, status="SHIPPED", note="DHL")
    delivered = client.update_fulfillment(issued.id, status="DELIVERED")
    assert shipped.fulfillment_status == "SHIPPED"
    assert [(e.status, e.note) for e in delivered.fulfillment_history] == [
        ("SHIPPED", "DHL"),
        ("DELIVERED", ""),
    ]
    revoked = client.revoke_issuance(issued.id, reason="fraud")
    assert (revoked.status, revoked.revoke_reason) == (S.ISSUANCE_STATUS_REVOKED, "fraud")
    assert client.revoke_issuance(issued.id).status == S.ISSUANCE_STATUS_REVOKED
    assert client.get_balance(user, points.id).available == "0.00"
    error = raised(rc.InvalidStateTransition, client.claim_issuance, issued.id)
    assert isinstance(error, rc.FailedPrecondition)


def test_revoking_spent_points(client, points):
    reward = points_reward(client, points)
    user = client.upsert_participant(external_id="u1")
    issued = client.issue_reward(reward.id, user).issuance
    client.adjust_balance(user, asset_id=points.id, delta="-10.00")
    raised(rc.InsufficientBalance, client.revoke_issuance, issued.id)


def test_issuance_not_found(client):
    raised(rc.IssuanceNotFound, client.get_issuance, "iss_missing")
    raised(rc.IssuanceNotFound, client.claim_issuance, "iss_missing")
    raised(rc.IssuanceNotFound, client.revoke_issuance, "iss_missing")
    raised(rc.IssuanceNotFound, client.update_fulfillment, "iss_missing", status="SHIPPED")


def test_issuer_and_reader_scopes(client, program, target, points):
    reward = product(client)
    user = client.upsert_participant(external_id="u1")
    with RewardsClient(target, new_key(program.program_id, "issuer").api_key) as issuer:
        issued = issuer.issue_reward(reward.id, user).issuance
        issuer.claim_issuance(issued.id)
        issuer.update_fulfillment(issued.id, status="BOOKED")
        issuer.upsert_participant(external_id="u2")
        raised(rc.InsufficientScope, issuer.revoke_issuance, issued.id)
        raised(rc.InsufficientScope, issuer.grant_custom_reward, user, amount="5", action_code="a")
        raised(rc.InsufficientScope, issuer.adjust_balance, user, asset_id=points.id, delta="1")
    with RewardsClient(target, new_key(program.program_id, "reader").api_key) as reader:
        assert reader.get_issuance(issued.id).id == issued.id
        assert reader.get_balance(user, points.id).available == "0.00"
        raised(rc.InsufficientScope, reader.issue_reward, reward.id, user)
        raised(rc.InsufficientScope, reader.upsert_participant, external_id="u3")


def test_payment_options_manual_grants_and_issuer_filters(client, points):
    lounge = client.create_reward(
        name="Lounge pass",
        type=S.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="lounge"),
        redemption_type=S.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        redemption_unit="MILES",
        payment_options=[
            catalog_pb2.PaymentOption(id="ratio", conversion_ratio="0.44"),
            catalog_pb2.PaymentOption(
                id="mixed", unit_cost="1", cash_amount="10.00", cash_currency="USD"
            ),
        ],
    )
    user = client.upsert_participant(external_id="u1")
    client.adjust_balance(user, asset_id=points.id, delta="5000")
    raised(rc.PaymentOptionRequired, client.issue_reward, lounge.id, user, amount="1000")
    raised(
        rc.PaymentOptionNotFound,
        client.issue_reward,
        lounge.id,
        user,
        amount="1000",
        payment_option_id="nope",
    )
    out = client.issue_reward(
        lounge.id, user, amount="1000", payment_option_id="ratio", source_event_id="evt-1"
    ).issuance
    assert (out.cost.amount, out.redemption_details.redemption_unit) == ("2272.73", "MILES")
    mixed = client.issue_reward(
        lounge.id, user, amount="5", payment_option_id="mixed", payment_method="CARD", manual=True
    ).issuance
    assert mixed.manual and mixed.redemption_details.tender.amount == "10.00"
    assert [i.id for i in client.iter_issuances(source_event_id="evt-1")] == [out.id]
    by_key = client.list_issuances(issuer_key_id=out.issuer_key_id).issuances
    assert [i.id for i in by_key] == [mixed.id, out.id]
    assert client.list_rewards(include_total_size=True).total_size == 1
