"""Pure pricing rules (domain/pricing.py): conversion ratios exact in decimal, cost rounding,
payment options and their choice; the catalog rules around them (domain/rewards.py)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rewards.v1 import catalog_pb2, common_pb2

from rewards_service.domain import pricing
from rewards_service.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from rewards_service.domain.issuance import (
    GrantRequest,
    IssueRequest,
    check_fulfillable,
    check_grant_request,
    digest,
)
from rewards_service.domain.participants import ParticipantRef
from rewards_service.domain.rewards import RewardLimit, RewardSpec, check_reward
from rewards_service.domain.validation import Violations

CR = catalog_pb2.CostRounding
HALF_UP, CEILING, FLOOR = (
    CR.COST_ROUNDING_HALF_UP,
    CR.COST_ROUNDING_CEILING,
    CR.COST_ROUNDING_FLOOR,
)
AMOUNT = common_pb2.REDEMPTION_TYPE_AMOUNT_BASED


# Conversion ratios: Capillary's worked examples


def test_capillarys_examples_round_half_up():
    assert pricing.ratio_cost(Decimal("0.44"), Decimal(1000), 0) == 2273
    assert pricing.ratio_cost(Decimal("0.44"), Decimal(1), 0) == 2


@pytest.mark.parametrize(("rounding", "expected"), [(HALF_UP, 2), (CEILING, 3), (FLOOR, 2)])
def test_one_at_044_by_each_rounding(rounding, expected):
    assert pricing.ratio_cost(Decimal("0.44"), Decimal(1), 0, rounding) == expected


def test_the_quantity_multiplies_before_rounding():
    # (1 / 0.44) x 3 = 6.818... -> 7, not round(2.27) x 3 = 6.
    assert pricing.ratio_cost(Decimal("0.44"), Decimal(1), 0, HALF_UP, quantity=3) == 7
    assert pricing.ratio_cost(Decimal("0.44"), Decimal(1000), 2, HALF_UP, quantity=2) == 454545


def test_an_exact_half_rounds_up_and_a_hair_below_rounds_down():
    # 5 / 2 = 2.5 exactly -> 3; the quotient is never truncated first.
    assert pricing.ratio_cost(Decimal(2), Decimal(5), 0) == 3
    assert pricing.ratio_cost(Decimal(3), Decimal("7.499999999999999999"), 0) == 2
    assert pricing.ratio_cost(Decimal(3), Decimal("7.5"), 0) == 3


@given(
    amount=st.decimals(min_value="0.01", max_value="1000000", places=2),
    ratio=st.decimals(min_value="0.0001", max_value="1000", places=4),
    scale=st.integers(0, 8),
    quantity=st.integers(1, 1000),
)
def test_ratio_cost_brackets_the_exact_quotient(amount, ratio, scale, quantity):
    exact = Fraction(amount) * quantity / Fraction(ratio) * 10**scale
    floor = pricing.ratio_cost(ratio, amount, scale, FLOOR, quantity)
    ceiling = pricing.ratio_cost(ratio, amount, scale, CEILING, quantity)
    half_up = pricing.ratio_cost(ratio, amount, scale, HALF_UP, quantity)
    assert floor <= exact <= ceiling
    assert ceiling - floor <= 1
    assert abs(half_up - exact) <= Fraction(1, 2)
    assert half_up in (floor, ceiling)


def test_unit_cost_pricing_keeps_rounding_up_when_unset():
    assert pricing.effective_rounding(0, by_ratio=False) == CEILING
    assert pricing.effective_rounding(0, by_ratio=True) == HALF_UP
    assert pricing.effective_rounding(FLOOR, by_ratio=False) == FLOOR
    price = pricing.Price("", unit_cost="2.272727272727")
    assert price.cost(units=1, amount=Decimal(1000), scale=0, cost_rounding=0) == 2273
    assert price.cost(units=1, amount=Decimal(1), scale=0, cost_rounding=0) == 3
    assert price.cost(units=1, amount=Decimal(1), scale=0, cost_rounding=HALF_UP) == 2
    # UNIT_BASED: unit_cost x units, rounded up at the scale as before.
    assert (
        pricing.Price("", unit_cost="0.333").cost(units=2, amount=None, scale=2, cost_rounding=0)
        == 67
    )


def test_cash_totals_are_exact():
    assert pricing.cash_total("10.00", 1) == "10.00"
    assert pricing.cash_total("0.1", 3) == "0.3"


# Choosing a payment option

OPTIONS = [
    {"id": "by-ratio", "conversion_ratio": "0.44"},
    {"id": "mixed", "unit_cost": "1000", "cash_amount": "10.00", "cash_currency": "USD"},
]


def test_one_option_needs_no_id_and_several_need_one():
    only = pricing.choose_price(OPTIONS[:1], "", "", "")
    assert only is not None and only.option_id == "by-ratio"
    mixed = pricing.choose_price(OPTIONS, "", "", "mixed")
    assert mixed is not None and mixed.cash_amount == "10.00"
    with pytest.raises(InvalidArgument) as required:
        pricing.choose_price(OPTIONS, "", "", "")
    assert required.value.reason == "PAYMENT_OPTION_REQUIRED"
    assert [v.field for v in required.value.violations] == ["payment_option_id"]
    with pytest.raises(NotFound) as unknown:
        pricing.choose_price(OPTIONS, "", "", "nope")
    assert unknown.value.reason == "PAYMENT_OPTION_NOT_FOUND"


def test_a_reward_without_options_is_priced_by_its_own_fields():
    price = pricing.choose_price([], "5", "", "")
    assert price is not None and (price.option_id, price.unit_cost) == ("", "5")
    with pytest.raises(NotFound):
        pricing.choose_price([], "5", "", "by-ratio")
    # A free reward has no price, and no option to name.
    assert pricing.choose_price([], "", "", "") is None
    with pytest.raises(NotFound):
        pricing.choose_price([], "", "", "by-ratio")


def test_a_payment_method_needs_a_cash_part():
    assert pricing.choose_price(OPTIONS, "", "", "mixed", "CARD") is not None
    for options, wanted in ((OPTIONS, "by-ratio"), ([], "")):
        with pytest.raises(InvalidArgument) as refused:
            pricing.choose_price(options, "", "", wanted, "CARD")
        assert [v.field for v in refused.value.violations] == ["payment_method"]


# Catalog rules


def spec(**fields) -> RewardSpec:
    fields.setdefault("name", "Miles")
    fields.setdefault("type", common_pb2.REWARD_TYPE_PRODUCT)
    fields.setdefault("config_kind", "product")
    fields.setdefault("config", {"product_id": "sku"})
    return RewardSpec(**fields)


def violations(s: RewardSpec) -> dict[str, str]:
    v = Violations()
    check_reward(v, s)
    return {item.field: item.description for item in v.items}


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_total", 10), ("max_per_participant", 1), ("limits", [RewardLimit(1, 5, 86400)])],
)
def test_amount_based_rewards_take_no_inventory_limits(field, value):
    got = violations(
        spec(redemption_type=AMOUNT, cost_asset_id="ast_1", unit_cost="1", **{field: value})
    )
    assert list(got) == [f"reward.{field}"]
    assert "AMOUNT_BASED rewards take no inventory limits" in got[f"reward.{field}"]
    # The same limits are fine on UNIT_BASED.
    assert violations(spec(cost_asset_id="ast_1", unit_cost="1", **{field: value})) == {}


def test_a_conversion_ratio_is_an_amount_based_price_instead_of_unit_cost():
    assert (
        violations(spec(redemption_type=AMOUNT, cost_asset_id="a", conversion_ratio="0.44")) == {}
    )
    assert list(violations(spec(cost_asset_id="a", conversion_ratio="0.44"))) == [
        "reward.conversion_ratio"
    ]
    assert list(
        violations(
            spec(redemption_type=AMOUNT, cost_asset_id="a", conversion_ratio="0.44", unit_cost="2")
        )
    ) == ["reward.conversion_ratio"]
    assert list(
        violations(spec(redemption_type=AMOUNT, cost_asset_id="a", conversion_ratio="0"))
    ) == ["reward.conversion_ratio"]
    assert list(violations(spec(conversion_ratio="0.44", redemption_type=AMOUNT))) == [
        "reward.cost_asset_id"
    ]
    assert list(violations(spec(cost_asset_id="a", unit_cost="1", cost_rounding=9))) == [
        "reward.cost_rounding"
    ]


def test_payment_options_are_checked_each():
    options = [
        {"id": "a", "unit_cost": "1000", "cash_amount": "10.00", "cash_currency": "USD"},
        {"id": "a", "unit_cost": "5"},
        {"unit_cost": "5", "cash_amount": "1.00001", "cash_currency": "usd"},
        {"conversion_ratio": "0.44"},
        {"id": "bad id"},
    ]
    got = violations(spec(cost_asset_id="x", payment_options=options, unit_cost="3"))
    assert set(got) == {
        "reward.unit_cost",
        "reward.payment_options[1].id",
        "reward.payment_options[2].cash_amount",
        "reward.payment_options[2].cash_currency",
        "reward.payment_options[3].conversion_ratio",
        "reward.payment_options[4].id",
        "reward.payment_options[4].unit_cost",
    }
    assert list(violations(spec(cost_asset_id="x", payment_options=[{}] * 11))) == [
        "reward.payment_options"
    ]


# Issue and grant requests


def ref() -> ParticipantRef:
    return ParticipantRef("external_id", "u1")


def test_new_issue_attributes_are_in_the_replay_digest_and_old_digests_stay():
    plain = IssueRequest("rew_1", ref(), amount="5")
    # Unset, the new fields leave the digest as recorded before they existed: those
    # issuances still replay.
    recorded = digest("issue/2", "rew_1", 1, "5", "", "", [], [], "", "", 0, "")
    assert plain.fingerprint() == recorded
    for change in (
        {"payment_option_id": "a"},
        {"payment_method": "CARD"},
        {"manual": True},
        {"source_event_id": "evt-1"},
    ):
        assert IssueRequest("rew_1", ref(), amount="5", **change).fingerprint() != (
            plain.fingerprint()
        )
    # Who calls is recorded, not compared.
    by_other_key = IssueRequest("rew_1", ref(), amount="5", issuer_key_id="key_2")
    assert by_other_key.fingerprint() == plain.fingerprint()


@pytest.mark.parametrize(
    "reference", ["order 1", "Bestellung Nr. 7 \u2013 \U0001f381", "x" * 128, "a/b?c=d"]
)
def test_client_references_are_any_text_without_control_characters(reference):
    v = Violations()
    check_grant_request(v, GrantRequest(ref(), "10.00", "survey", reference))
    assert not v


@pytest.mark.parametrize("reference", ["", "   ", "x" * 129, "tab\there", "line\nbreak", "\x7f"])
def test_client_references_refused(reference):
    v = Violations()
    check_grant_request(v, GrantRequest(ref(), "10.00", "survey", reference))
    assert [item.field for item in v.items] == ["client_reference"]


def test_a_revoked_issuance_takes_no_fulfillment_status():
    check_fulfillable(common_pb2.ISSUANCE_STATUS_CONFIRMED)
    check_fulfillable(common_pb2.ISSUANCE_STATUS_CLAIMED)
    with pytest.raises(FailedPrecondition) as refused:
        check_fulfillable(common_pb2.ISSUANCE_STATUS_REVOKED)
    assert refused.value.reason == "INVALID_STATE_TRANSITION"
