"""The pure rules of catalog rewards: shape checks, lifecycle, immutability, stock."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rewards.v1 import common_pb2 as common

from rewards_service.domain import rewards as rules
from rewards_service.domain.errors import FailedPrecondition, InvalidArgument
from rewards_service.domain.validation import Violations

S = common.RewardStatus
T = common.RewardType
R = common.RedemptionType

DRAFT = S.REWARD_STATUS_DRAFT
ACTIVE = S.REWARD_STATUS_ACTIVE
INACTIVE = S.REWARD_STATUS_INACTIVE
OUT_OF_STOCK = S.REWARD_STATUS_OUT_OF_STOCK
ARCHIVED = S.REWARD_STATUS_ARCHIVED
STATUSES = (DRAFT, ACTIVE, INACTIVE, OUT_OF_STOCK, ARCHIVED)

# Written out from the spec, not read from the module under test.
ALLOWED = {
    (DRAFT, ACTIVE),
    (DRAFT, ARCHIVED),
    (ACTIVE, INACTIVE),
    (INACTIVE, ACTIVE),
    (ACTIVE, ARCHIVED),
    (INACTIVE, ARCHIVED),
    (OUT_OF_STOCK, ARCHIVED),
}
REFUSED = {(a, b) for a in STATUSES for b in STATUSES if a != b} - ALLOWED

VALID_CONFIGS = {
    T.REWARD_TYPE_POINTS: ("points", {"asset_id": "ast_1", "amount": "10.00"}),
    T.REWARD_TYPE_PRODUCT: ("product", {"product_id": "sku-1", "quantity": 2}),
    T.REWARD_TYPE_COMPETITION_ENTRY: (
        "competition_entry",
        {"competition_id": "cmp-1", "entries": 3},
    ),
    T.REWARD_TYPE_UNIQUE_COUPON: ("unique_coupon", {"code_pool_id": "pool_1"}),
    T.REWARD_TYPE_NON_UNIQUE_COUPON: (
        "non_unique_coupon",
        {
            "code": "SAVE10",
            "discount_type": common.DISCOUNT_TYPE_PERCENTAGE,
            "discount_value": "10",
        },
    ),
}


def spec(reward_type: int = T.REWARD_TYPE_PRODUCT, **overrides) -> rules.RewardSpec:
    kind, config = VALID_CONFIGS[reward_type]
    base = rules.RewardSpec(name="A reward", type=reward_type, config_kind=kind, config=config)
    return replace(base, **overrides)


def violations_of(s: rules.RewardSpec) -> dict[str, str]:
    v = Violations()
    rules.check_reward(v, s)
    return {item.field: item.description for item in v.items}


@pytest.mark.parametrize("reward_type", list(VALID_CONFIGS), ids=lambda t: T.Name(t))
def test_a_valid_reward_of_each_type_has_no_violations(reward_type):
    assert violations_of(spec(reward_type)) == {}


def test_a_fully_specified_reward_has_no_violations():
    now = datetime.now(UTC)
    full = spec(
        T.REWARD_TYPE_POINTS,
        description="d" * 1000,
        category="c" * 100,
        redemption_type=R.REDEMPTION_TYPE_UNIT_BASED,
        cost_asset_id="ast_2",
        unit_cost="2.50",
        max_total=100,
        max_per_participant=5,
        limits=[rules.RewardLimit(common.LIMIT_SCOPE_PARTICIPANT, 15, 86400)],
        available_from=now,
        available_until=now + timedelta(days=1),
        segments=[{"segment": "tier", "partition": "gold"}],
        metadata={"k" * 64: "v" * 1024},
    )
    assert violations_of(full) == {}


@pytest.mark.parametrize(
    ("reward_type", "config", "field"),
    [
        (T.REWARD_TYPE_POINTS, {"asset_id": "ast_1", "amount": "0"}, "reward.points.amount"),
        (T.REWARD_TYPE_POINTS, {"asset_id": "ast_1", "amount": "-1"}, "reward.points.amount"),
        (T.REWARD_TYPE_POINTS, {"asset_id": "ast_1", "amount": "ten"}, "reward.points.amount"),
        (T.REWARD_TYPE_POINTS, {"asset_id": "ast_1", "amount": "1e3"}, "reward.points.amount"),
        (T.REWARD_TYPE_POINTS, {"asset_id": "ast_1", "amount": ""}, "reward.points.amount"),
        (T.REWARD_TYPE_POINTS, {"asset_id": "", "amount": "1"}, "reward.points.asset_id"),
        (T.REWARD_TYPE_PRODUCT, {"product_id": "", "quantity": 1}, "reward.product.product_id"),
        (T.REWARD_TYPE_PRODUCT, {"product_id": "  ", "quantity": 1}, "reward.product.product_id"),
        (
            T.REWARD_TYPE_PRODUCT,
            {"product_id": "p" * 129, "quantity": 1},
            "reward.product.product_id",
        ),
        (T.REWARD_TYPE_PRODUCT, {"product_id": "sku", "quantity": -1}, "reward.product.quantity"),
        (
            T.REWARD_TYPE_COMPETITION_ENTRY,
            {"competition_id": "", "entries": 1},
            "reward.competition_entry.competition_id",
        ),
        (
            T.REWARD_TYPE_COMPETITION_ENTRY,
            {"competition_id": "c" * 129, "entries": 1},
            "reward.competition_entry.competition_id",
        ),
        (
            T.REWARD_TYPE_COMPETITION_ENTRY,
            {"competition_id": "cmp", "entries": -2},
            "reward.competition_entry.entries",
        ),
        (T.REWARD_TYPE_UNIQUE_COUPON, {"code_pool_id": ""}, "reward.unique_coupon.code_pool_id"),
        (
            T.REWARD_TYPE_UNIQUE_COUPON,
            {"code_pool_id": "x" * 129},
            "reward.unique_coupon.code_pool_id",
        ),
        (
            T.REWARD_TYPE_NON_UNIQUE_COUPON,
            {"code": "", "discount_type": common.DISCOUNT_TYPE_FIXED, "discount_value": "5"},
            "reward.non_unique_coupon.code",
        ),
        (
            T.REWARD_TYPE_NON_UNIQUE_COUPON,
            {"code": "C", "discount_type": 0, "discount_value": "5"},
            "reward.non_unique_coupon.discount_type",
        ),
        (
            T.REWARD_TYPE_NON_UNIQUE_COUPON,
            {
                "code": "C",
                "discount_type": common.DISCOUNT_TYPE_PERCENTAGE,
                "discount_value": "101",
            },
            "reward.non_unique_coupon.discount_value",
        ),
        (
            T.REWARD_TYPE_NON_UNIQUE_COUPON,
            {"code": "C", "discount_type": common.DISCOUNT_TYPE_FIXED, "discount_value": "-0.01"},
            "reward.non_unique_coupon.discount_value",
        ),
        (
            T.REWARD_TYPE_NON_UNIQUE_COUPON,
            {"code": "C", "discount_type": common.DISCOUNT_TYPE_FIXED, "discount_value": ""},
            "reward.non_unique_coupon.discount_value",
        ),
    ],
)
def test_a_bad_config_names_its_field(reward_type, config, field):
    kind = VALID_CONFIGS[reward_type][0]
    found = violations_of(spec(reward_type, config_kind=kind, config=config))
    assert list(found) == [field]


def test_percentage_bounds_and_fixed_has_no_upper_bound():
    kind = "non_unique_coupon"
    t = T.REWARD_TYPE_NON_UNIQUE_COUPON
    pct = common.DISCOUNT_TYPE_PERCENTAGE
    fixed = common.DISCOUNT_TYPE_FIXED
    ok = [(pct, "0"), (pct, "100"), (pct, "99.99"), (fixed, "150"), (fixed, "0")]
    for discount_type, value in ok:
        config = {"code": "C", "discount_type": discount_type, "discount_value": value}
        assert violations_of(spec(t, config_kind=kind, config=config)) == {}, value
    config = {"code": "C", "discount_type": pct, "discount_value": "100.01"}
    assert (
        "at most 100"
        in violations_of(spec(t, config_kind=kind, config=config))[
            "reward.non_unique_coupon.discount_value"
        ]
    )


def test_the_type_must_be_a_catalog_type():
    for bad in (T.REWARD_TYPE_UNSPECIFIED, T.REWARD_TYPE_CUSTOM, 99):
        found = violations_of(spec(type=bad))
        assert list(found) == ["reward.type"], bad


def test_a_missing_config_names_the_member_the_type_needs():
    found = violations_of(spec(T.REWARD_TYPE_POINTS, config_kind=None, config={}))
    assert list(found) == ["reward.points"]


def test_a_config_of_another_type_is_named():
    found = violations_of(
        spec(T.REWARD_TYPE_POINTS, config_kind="product", config={"product_id": "x"})
    )
    assert list(found) == ["reward.product"]
    assert "points" in found["reward.product"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "reward.name"),
        ({"name": "   "}, "reward.name"),
        ({"name": "n" * 256}, "reward.name"),
        ({"description": "d" * 1001}, "reward.description"),
        ({"category": "c" * 101}, "reward.category"),
        ({"unit_cost": "5"}, "reward.cost_asset_id"),
        ({"redemption_type": R.REDEMPTION_TYPE_AMOUNT_BASED}, "reward.cost_asset_id"),
        ({"redemption_type": 7}, "reward.redemption_type"),
        ({"cost_asset_id": "ast_1"}, "reward.unit_cost"),
        ({"cost_asset_id": "ast_1", "unit_cost": "0"}, "reward.unit_cost"),
        ({"cost_asset_id": "ast_1", "unit_cost": "-3"}, "reward.unit_cost"),
        ({"cost_asset_id": "ast_1", "unit_cost": "1,5"}, "reward.unit_cost"),
        ({"max_total": 0}, "reward.max_total"),
        ({"max_total": -1}, "reward.max_total"),
        ({"max_per_participant": 0}, "reward.max_per_participant"),
        (
            {
                "redemption_type": R.REDEMPTION_TYPE_AMOUNT_BASED,
                "cost_asset_id": "ast_1",
                "unit_cost": "2",
                "max_per_participant": 3,
            },
            "reward.max_per_participant",
        ),
        ({"limits": [rules.RewardLimit(0, 1, 60)]}, "reward.limits[0].scope"),
        (
            {"limits": [rules.RewardLimit(common.LIMIT_SCOPE_GLOBAL, 0, 60)]},
            "reward.limits[0].max_quantity",
        ),
        (
            {"limits": [rules.RewardLimit(common.LIMIT_SCOPE_GLOBAL, 1, 0)]},
            "reward.limits[0].window",
        ),
        (
            {"limits": [rules.RewardLimit(common.LIMIT_SCOPE_GLOBAL, 1, 60)] * 21},
            "reward.limits",
        ),
        ({"segments": [{"segment": "", "partition": "p"}]}, "reward.segments[0].segment"),
        ({"segments": [{"segment": "s", "partition": "p" * 101}]}, "reward.segments[0].partition"),
        ({"segments": [{"segment": "s", "partition": "p"}] * 101}, "reward.segments"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "reward.metadata"),
        ({"metadata": {"k": "v" * 1025}}, "reward.metadata[k]"),
    ],
)
def test_a_bad_field_is_named(overrides, field):
    assert list(violations_of(spec(**overrides))) == [field]


def test_amount_based_pricing_with_a_cost_asset_is_valid():
    found = violations_of(
        spec(
            redemption_type=R.REDEMPTION_TYPE_AMOUNT_BASED,
            cost_asset_id="ast_1",
            unit_cost="2.272727",
        )
    )
    assert found == {}


def test_the_availability_window_must_be_open():
    now = datetime.now(UTC)
    for until in (now, now - timedelta(seconds=1)):
        found = violations_of(spec(available_from=now, available_until=until))
        assert list(found) == ["reward.available_until"]
    assert violations_of(spec(available_from=now)) == {}
    assert violations_of(spec(available_until=now)) == {}


def test_every_bad_field_is_reported_not_just_the_first():
    now = datetime.now(UTC)
    bad = spec(
        T.REWARD_TYPE_POINTS,
        name="",
        description="d" * 1001,
        category="c" * 101,
        config={"asset_id": "", "amount": "0"},
        unit_cost="1",
        max_total=0,
        available_from=now,
        available_until=now,
        segments=[{"segment": "", "partition": ""}],
        metadata={"": "v"},
    )
    assert set(violations_of(bad)) == {
        "reward.name",
        "reward.description",
        "reward.category",
        "reward.points.asset_id",
        "reward.points.amount",
        "reward.cost_asset_id",
        "reward.max_total",
        "reward.available_until",
        "reward.segments[0].segment",
        "reward.segments[0].partition",
        "reward.metadata[]",
    }


def test_the_prefix_is_applied_to_every_field():
    v = Violations()
    rules.check_reward(v, spec(name="", max_total=0), prefix="requests[3].reward.")
    assert [item.field for item in v.items] == [
        "requests[3].reward.name",
        "requests[3].reward.max_total",
    ]


@pytest.mark.parametrize(("current", "wanted"), sorted(ALLOWED))
def test_an_allowed_transition_passes(current, wanted):
    assert rules.check_transition(current, wanted) is None


@pytest.mark.parametrize(("current", "wanted"), sorted(REFUSED))
def test_a_refused_transition_is_invalid_state_transition(current, wanted):
    with pytest.raises(FailedPrecondition) as raised:
        rules.check_transition(current, wanted)
    assert raised.value.reason == "INVALID_STATE_TRANSITION"
    assert raised.value.metadata == {"from": S.Name(current), "to": S.Name(wanted)}


def test_the_refused_set_covers_what_the_spec_forbids():
    assert all((ARCHIVED, other) in REFUSED for other in STATUSES if other != ARCHIVED)
    assert all((other, OUT_OF_STOCK) in REFUSED for other in STATUSES if other != OUT_OF_STOCK)
    assert len(REFUSED) == 20 - len(ALLOWED)


@pytest.mark.parametrize("status", STATUSES)
def test_staying_in_the_same_status_is_not_a_transition(status):
    assert rules.check_transition(status, status) is None


def test_a_new_reward_starts_active_unless_draft_or_inactive_is_asked():
    v = Violations()
    assert rules.check_create_status(v, S.REWARD_STATUS_UNSPECIFIED) == ACTIVE
    assert rules.check_create_status(v, DRAFT) == DRAFT
    assert rules.check_create_status(v, INACTIVE) == INACTIVE
    assert rules.check_create_status(v, ACTIVE) == ACTIVE
    assert not v
    for status in (OUT_OF_STOCK, ARCHIVED):
        v = Violations()
        rules.check_create_status(v, status)
        assert [item.field for item in v.items] == ["reward.status"]


@pytest.mark.parametrize(
    ("field", "new_value"),
    [
        ("type", T.REWARD_TYPE_POINTS),
        ("redemption_type", R.REDEMPTION_TYPE_AMOUNT_BASED),
        ("cost_asset_id", "ast_other"),
    ],
)
def test_changing_an_immutable_field_is_refused(field, new_value):
    existing = spec(redemption_type=R.REDEMPTION_TYPE_UNIT_BASED, cost_asset_id="ast_1")
    updated = replace(existing, **{field: new_value})
    with pytest.raises(InvalidArgument) as raised:
        rules.check_immutable(existing, updated, {field})
    assert raised.value.reason == "IMMUTABLE_FIELD"
    assert raised.value.metadata == {"fields": field}
    assert field in raised.value.message


def test_immutable_fields_are_free_when_unchanged_or_not_in_the_mask():
    existing = spec(redemption_type=R.REDEMPTION_TYPE_UNIT_BASED, cost_asset_id="ast_1")
    same = replace(existing, name="renamed")
    rules.check_immutable(existing, same, {"type", "redemption_type", "cost_asset_id", "name"})
    changed = replace(existing, type=T.REWARD_TYPE_POINTS, cost_asset_id="ast_2")
    rules.check_immutable(existing, changed, {"name"})


def test_every_changed_immutable_field_is_listed():
    existing = spec(redemption_type=R.REDEMPTION_TYPE_UNIT_BASED, cost_asset_id="ast_1")
    changed = replace(existing, type=T.REWARD_TYPE_POINTS, cost_asset_id="")
    with pytest.raises(InvalidArgument) as raised:
        rules.check_immutable(existing, changed, {"type", "cost_asset_id", "redemption_type"})
    assert raised.value.metadata == {"fields": "type,cost_asset_id"}


@pytest.mark.parametrize(
    ("status", "redeemed", "max_total", "pool_available", "expected"),
    [
        (ACTIVE, 0, None, None, ACTIVE),
        (ACTIVE, 4, 5, None, ACTIVE),
        (ACTIVE, 5, 5, None, OUT_OF_STOCK),
        (ACTIVE, 7, 5, None, OUT_OF_STOCK),
        (ACTIVE, 0, None, 0, OUT_OF_STOCK),
        (ACTIVE, 0, None, 1, ACTIVE),
        (ACTIVE, 0, 10, 0, OUT_OF_STOCK),
        (OUT_OF_STOCK, 5, 6, None, ACTIVE),
        (OUT_OF_STOCK, 5, None, None, ACTIVE),
        (OUT_OF_STOCK, 0, None, 3, ACTIVE),
        (OUT_OF_STOCK, 5, 5, None, OUT_OF_STOCK),
        (OUT_OF_STOCK, 1, 10, 0, OUT_OF_STOCK),
        (OUT_OF_STOCK, 10, 10, 3, OUT_OF_STOCK),
        (DRAFT, 5, 5, 0, DRAFT),
        (INACTIVE, 5, 5, 0, INACTIVE),
        (INACTIVE, 0, None, 3, INACTIVE),
        (ARCHIVED, 5, 5, 0, ARCHIVED),
    ],
)
def test_stock_status(status, redeemed, max_total, pool_available, expected):
    got = rules.stock_status(
        status, redeemed_count=redeemed, max_total=max_total, pool_available=pool_available
    )
    assert S.Name(got) == S.Name(expected)


def test_normalize_config_fills_documented_defaults_only():
    assert rules.normalize_config("product", {"product_id": "p", "quantity": 0})["quantity"] == 1
    assert rules.normalize_config("product", {"product_id": "p", "quantity": 4})["quantity"] == 4
    assert rules.normalize_config("competition_entry", {"competition_id": "c"})["entries"] == 1
    config = {"asset_id": "a", "amount": "1"}
    assert rules.normalize_config("points", config) == config


def test_every_catalog_type_has_its_own_config_member():
    assert set(rules.CONFIG_FOR_TYPE.values()) == {
        "points",
        "product",
        "competition_entry",
        "unique_coupon",
        "non_unique_coupon",
    }
    assert T.REWARD_TYPE_CUSTOM not in rules.CONFIG_FOR_TYPE


def test_refusals_name_enum_values_as_sent_on_the_wire():
    found = violations_of(
        spec(type=99, redemption_type=7, cost_rounding=9, config_kind=None, config={})
    )
    assert found["reward.type"] == (
        "must be one of REWARD_TYPE_POINTS, REWARD_TYPE_PRODUCT, REWARD_TYPE_COMPETITION_ENTRY, "
        "REWARD_TYPE_UNIQUE_COUPON, REWARD_TYPE_NON_UNIQUE_COUPON"
    )
    assert found["reward.redemption_type"] == (
        "must be one of REDEMPTION_TYPE_UNIT_BASED, REDEMPTION_TYPE_AMOUNT_BASED"
    )
    assert "COST_ROUNDING_HALF_UP" in found["reward.cost_rounding"]
    with pytest.raises(InvalidArgument) as refused:
        rules.check_transition(S.REWARD_STATUS_ACTIVE, 42)
    assert "REWARD_STATUS_ARCHIVED" in refused.value.violations[0].description
