"""Pricing through a real server: conversion ratios (Capillary's worked examples), cost
rounding, the quantity factor of AMOUNT_BASED issues, payment options with a cash tender,
redemption details; AMOUNT_BASED rewards take no inventory limits."""

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2

from tests import factories as f

AMOUNT = common_pb2.REDEMPTION_TYPE_AMOUNT_BASED
CR = catalog_pb2.CostRounding
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def miles(api, points, **fields) -> catalog_pb2.Reward:
    fields.setdefault("name", "Airline miles")
    fields.setdefault("redemption_type", AMOUNT)
    fields.setdefault("cost_asset_id", points.id)
    fields.setdefault("redemption_unit", "MILES")
    return f.reward(api, **fields)


@pytest.fixture
def points(admin):
    return f.asset(admin, code="POINTS", scale=0)


@pytest.fixture
def user(admin, points):
    person = f.participant(admin)
    f.fund(admin, person.id, points.id, "10000")
    return person


# Conversion ratio


@pytest.mark.parametrize(("amount", "cost"), [("1000", "2273"), ("1", "2")])
def test_capillarys_worked_examples_through_grpc(admin, points, user, amount, cost):
    reward = miles(admin, points, conversion_ratio="0.44")
    assert (reward.conversion_ratio, reward.cost_rounding) == ("0.44", 0)
    out = f.issue(admin, reward.id, user.id, amount=amount).issuance
    assert (out.cost.asset_id, out.cost.amount) == (points.id, cost)
    assert f.balance(admin, user.id, points.id).available == str(10000 - int(cost))
    details = out.redemption_details
    assert details.payment_mode == issuance_pb2.PAYMENT_MODE_POINTS
    assert (details.conversion_ratio, details.redemption_value, details.redemption_unit) == (
        "0.44",
        amount,
        "MILES",
    )
    assert (details.points.asset_id, details.points.amount) == (points.id, cost)
    assert details.payment_option_id == ""
    assert not details.HasField("tender")
    f.assert_ledger_consistent(admin, user.id, points.id)


@pytest.mark.parametrize(
    ("rounding", "cost"),
    [
        (CR.COST_ROUNDING_HALF_UP, "2"),
        (CR.COST_ROUNDING_CEILING, "3"),
        (CR.COST_ROUNDING_FLOOR, "2"),
    ],
)
def test_cost_rounding_is_per_reward(admin, points, user, rounding, cost):
    reward = miles(admin, points, conversion_ratio="0.44", cost_rounding=rounding)
    assert reward.cost_rounding == rounding
    assert f.issue(admin, reward.id, user.id, amount="1").issuance.cost.amount == cost


def test_the_quantity_multiplies_an_amount_based_cost(admin, points, user):
    # (1 / 0.44) x 3 = 6.82 -> 7: rounded once, after the product.
    by_ratio = miles(admin, points, conversion_ratio="0.44")
    out = f.issue(admin, by_ratio.id, user.id, amount="1", quantity=3).issuance
    assert (out.quantity, out.cost.amount) == (3, "7")
    by_unit = miles(admin, points, unit_cost="2.5")
    out = f.issue(admin, by_unit.id, user.id, amount="3", quantity=2).issuance
    assert (out.quantity, out.cost.amount) == (2, "15")
    assert f.get_reward(admin, by_ratio.id).redeemed_count == 3
    assert f.balance(admin, user.id, points.id).available == str(10000 - 7 - 15)


def test_unit_cost_pricing_keeps_rounding_up(admin, points, user):
    # The inverse typed as a unit cost still rounds up, as before cost_rounding existed.
    reward = miles(admin, points, unit_cost="2.272727272727")
    assert f.issue(admin, reward.id, user.id, amount="1").issuance.cost.amount == "3"
    assert f.issue(admin, reward.id, user.id, amount="1000").issuance.cost.amount == "2273"


def test_a_ratio_can_replace_a_unit_cost_by_update(admin, points, user):
    reward = miles(admin, points, unit_cost="3")
    updated = admin.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward.id, conversion_ratio="0.5"),
            update_mask=field_mask_pb2.FieldMask(paths=["unit_cost", "conversion_ratio"]),
        )
    )
    assert (updated.unit_cost, updated.conversion_ratio) == ("", "0.5")
    assert f.issue(admin, reward.id, user.id, amount="3").issuance.cost.amount == "6"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"conversion_ratio": "0.44", "redemption_type": 0}, "reward.conversion_ratio"),
        ({"conversion_ratio": "0"}, "reward.conversion_ratio"),
        ({"conversion_ratio": "1e3"}, "reward.conversion_ratio"),
        ({"conversion_ratio": "0.44", "unit_cost": "2"}, "reward.conversion_ratio"),
        ({"conversion_ratio": "0.44", "cost_asset_id": ""}, "reward.cost_asset_id"),
        ({"conversion_ratio": "0.44", "cost_rounding": 7}, "reward.cost_rounding"),
        ({"conversion_ratio": "0.44", "redemption_unit": "M" * 33}, "reward.redemption_unit"),
    ],
)
def test_bad_ratio_pricing_is_refused(admin, points, fields, field):
    failure = f.refused(admin, lambda: miles(admin, points, **fields))
    assert (failure.code, failure.reason) == (INVALID, "VALIDATION_FAILED")
    assert list(failure.violations) == [field]


# AMOUNT_BASED rewards take no inventory limits


LIMITS = {
    "max_total": 10,
    "max_per_participant": 1,
    "limits": [
        catalog_pb2.RewardLimit(
            scope=common_pb2.LIMIT_SCOPE_PARTICIPANT,
            max_quantity=5,
            window=duration_pb2.Duration(seconds=86400),
        )
    ],
}


@pytest.mark.parametrize("field", LIMITS)
def test_amount_based_create_with_an_inventory_limit_is_refused(admin, points, field):
    failure = f.refused(
        admin,
        lambda: admin.catalog.CreateReward(
            catalog_pb2.CreateRewardRequest(
                reward=catalog_pb2.Reward(
                    name="Miles",
                    type=common_pb2.REWARD_TYPE_PRODUCT,
                    product=catalog_pb2.ProductConfig(product_id="miles"),
                    redemption_type=AMOUNT,
                    cost_asset_id=points.id,
                    conversion_ratio="0.44",
                    **{field: LIMITS[field]},
                )
            )
        ),
    )
    assert (failure.code, failure.reason) == (INVALID, "VALIDATION_FAILED")
    assert list(failure.violations) == [f"reward.{field}"]
    assert "no inventory limits" in failure.violations[f"reward.{field}"]


@pytest.mark.parametrize("field", LIMITS)
def test_amount_based_update_adding_an_inventory_limit_is_refused(admin, points, field):
    reward = miles(admin, points, conversion_ratio="0.44")
    failure = f.refused(
        admin,
        lambda: admin.catalog.UpdateReward(
            catalog_pb2.UpdateRewardRequest(
                reward=catalog_pb2.Reward(id=reward.id, **{field: LIMITS[field]}),
                update_mask=field_mask_pb2.FieldMask(paths=[field]),
            )
        ),
        rewards=(reward.id,),
    )
    assert list(failure.violations) == [f"reward.{field}"]


# Payment options


def two_ways(api, points, **fields) -> catalog_pb2.Reward:
    return f.reward(
        api,
        name="Lounge pass",
        cost_asset_id=points.id,
        payment_options=[
            catalog_pb2.PaymentOption(id="points", unit_cost="2273"),
            catalog_pb2.PaymentOption(
                id="points-and-cash", unit_cost="1000", cash_amount="10.00", cash_currency="USD"
            ),
        ],
        **fields,
    )


def test_several_options_need_one_named(admin, points, user):
    reward = two_ways(admin, points)
    watched = {"rewards": (reward.id,), "balances": ((user.id, points.id),)}
    failure = f.refused(admin, lambda: f.issue(admin, reward.id, user.id), **watched)
    assert (failure.code, failure.reason) == (INVALID, "PAYMENT_OPTION_REQUIRED")
    assert list(failure.violations) == ["payment_option_id"]
    assert failure.metadata["payment_option_ids"] == "points,points-and-cash"
    failure = f.refused(
        admin, lambda: f.issue(admin, reward.id, user.id, payment_option_id="miles"), **watched
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "PAYMENT_OPTION_NOT_FOUND")
    assert failure.metadata["payment_option_id"] == "miles"


def test_cash_and_points_debits_only_the_points_and_records_the_tender(admin, points, user):
    reward = two_ways(admin, points)
    out = f.issue(
        admin,
        reward.id,
        user.id,
        quantity=2,
        payment_option_id="points-and-cash",
        payment_method="CARD",
    ).issuance
    assert out.cost.amount == "2000"
    assert f.balance(admin, user.id, points.id).available == "8000"
    details = out.redemption_details
    assert details.payment_mode == issuance_pb2.PAYMENT_MODE_CASH_AND_POINTS
    assert details.payment_option_id == "points-and-cash"
    assert (details.tender.payment_method, details.tender.amount, details.tender.currency) == (
        "CARD",
        "20.00",
        "USD",
    )
    only_points = f.issue(admin, reward.id, user.id, payment_option_id="points").issuance
    assert only_points.cost.amount == "2273"
    assert only_points.redemption_details.payment_mode == issuance_pb2.PAYMENT_MODE_POINTS
    assert not only_points.redemption_details.HasField("tender")
    # One SPEND entry per issue, of the points part alone.
    spends = [e.delta for e in f.ledger_entries(admin, user.id, points.id) if e.delta[0] == "-"]
    assert spends == ["-2273", "-2000"]
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_a_refused_cash_and_points_issue_debits_nothing(admin, points):
    poor = f.participant(admin)
    f.fund(admin, poor.id, points.id, "999")
    reward = two_ways(admin, points)
    failure = f.refused(
        admin,
        lambda: f.issue(admin, reward.id, poor.id, payment_option_id="points-and-cash"),
        rewards=(reward.id,),
        balances=((poor.id, points.id),),
    )
    assert failure.reason == "INSUFFICIENT_BALANCE"


def test_the_cash_method_defaults_to_cash_and_needs_a_cash_part(admin, points, user):
    reward = two_ways(admin, points)
    out = f.issue(admin, reward.id, user.id, payment_option_id="points-and-cash").issuance
    assert out.redemption_details.tender.payment_method == "CASH"
    failure = f.refused(
        admin,
        lambda: f.issue(
            admin, reward.id, user.id, payment_option_id="points", payment_method="CARD"
        ),
        rewards=(reward.id,),
    )
    assert list(failure.violations) == ["payment_method"]


def test_one_option_keeps_todays_calls_working_and_gets_a_server_id(admin, points, user):
    reward = f.reward(
        admin,
        cost_asset_id=points.id,
        redemption_type=AMOUNT,
        redemption_unit="MILES",
        payment_options=[catalog_pb2.PaymentOption(conversion_ratio="0.44")],
    )
    (option,) = reward.payment_options
    assert option.id.startswith("pay_")
    assert f.get_reward(admin, reward.id).payment_options[0].id == option.id
    out = f.issue(admin, reward.id, user.id, amount="1000").issuance
    assert out.cost.amount == "2273"
    assert out.redemption_details.payment_option_id == option.id
    named = f.issue(admin, reward.id, user.id, amount="1", payment_option_id=option.id)
    assert named.issuance.cost.amount == "2"


def test_a_reward_priced_by_its_own_fields_has_no_option_ids(admin, points, user):
    reward = miles(admin, points, unit_cost="1")
    failure = f.refused(
        admin,
        lambda: f.issue(admin, reward.id, user.id, amount="5", payment_option_id="x"),
        rewards=(reward.id,),
    )
    assert failure.reason == "PAYMENT_OPTION_NOT_FOUND"
    free = f.reward(admin)
    failure = f.refused(
        admin, lambda: f.issue(admin, free.id, user.id, payment_option_id="x"), rewards=(free.id,)
    )
    assert failure.reason == "PAYMENT_OPTION_NOT_FOUND"
    assert not f.issue(admin, free.id, user.id).issuance.HasField("redemption_details")


@pytest.mark.parametrize(
    ("options", "fields", "field"),
    [
        ([{"id": "a", "unit_cost": "1"}], {"unit_cost": "2"}, "reward.unit_cost"),
        ([{"id": "a", "unit_cost": "1"}, {"id": "a", "unit_cost": "2"}], {}, None),
        ([{"unit_cost": "1", "cash_amount": "10"}], {}, "reward.payment_options[0].cash_currency"),
        ([{"conversion_ratio": "0.44"}], {}, "reward.payment_options[0].conversion_ratio"),
        ([{"unit_cost": "1"}], {"cost_asset_id": ""}, "reward.cost_asset_id"),
    ],
)
def test_bad_payment_options_are_refused(admin, points, options, fields, field):
    fields.setdefault("cost_asset_id", points.id)
    failure = f.refused(
        admin,
        lambda: f.reward(
            admin,
            payment_options=[catalog_pb2.PaymentOption(**o) for o in options],
            **fields,
        ),
    )
    assert failure.code == INVALID
    assert list(failure.violations) == [field or "reward.payment_options[1].id"]


def test_redemption_details_are_a_snapshot_and_replays_return_them(admin, points, user):
    reward = two_ways(admin, points)
    first = f.issue(
        admin, reward.id, user.id, payment_option_id="points-and-cash", request_id="lounge-1"
    )
    admin.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(
                id=reward.id,
                payment_options=[
                    catalog_pb2.PaymentOption(
                        id="points-and-cash", unit_cost="1", cash_amount="99", cash_currency="EUR"
                    )
                ],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["payment_options"]),
        )
    )
    again = f.issue(
        admin, reward.id, user.id, payment_option_id="points-and-cash", request_id="lounge-1"
    )
    assert again.idempotent_replay
    assert again.issuance == first.issuance
    assert again.issuance.redemption_details.tender.amount == "10.00"
    # The option is part of the call: another one under the same request_id is a reuse.
    failure = f.refused(
        admin,
        lambda: f.issue(
            admin, reward.id, user.id, payment_option_id="points", request_id="lounge-1"
        ),
    )
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    # A new issue pays today's price.
    later = f.issue(admin, reward.id, user.id).issuance
    assert (later.cost.amount, later.redemption_details.tender.currency) == ("1", "EUR")


def test_rewards_show_their_pricing_and_program(admin, points):
    reward = miles(admin, points, conversion_ratio="0.44", cost_rounding=CR.COST_ROUNDING_FLOOR)
    got = f.get_reward(admin, reward.id)
    assert (got.conversion_ratio, got.cost_rounding, got.redemption_unit) == (
        "0.44",
        CR.COST_ROUNDING_FLOOR,
        "MILES",
    )
    assert got.program_id == admin.program_id
