"""RewardCatalog rewards through a real server: every type, validation, lifecycle, updates,
stock, filters and pages."""

import uuid
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2

from rewards_service.services import programs
from rewards_service.store.db import session
from tests import factories as f
from tests.helpers import Api, expect_failure, make_api

S = common_pb2.RewardStatus
T = common_pb2.RewardType
DRAFT = S.REWARD_STATUS_DRAFT
ACTIVE = S.REWARD_STATUS_ACTIVE
INACTIVE = S.REWARD_STATUS_INACTIVE
OUT_OF_STOCK = S.REWARD_STATUS_OUT_OF_STOCK
ARCHIVED = S.REWARD_STATUS_ARCHIVED
STATUSES = (DRAFT, ACTIVE, INACTIVE, OUT_OF_STOCK, ARCHIVED)
ALLOWED = [
    (DRAFT, ACTIVE),
    (DRAFT, ARCHIVED),
    (ACTIVE, INACTIVE),
    (INACTIVE, ACTIVE),
    (ACTIVE, ARCHIVED),
    (INACTIVE, ARCHIVED),
    (OUT_OF_STOCK, ARCHIVED),
]
REFUSED = sorted({(a, b) for a in STATUSES for b in STATUSES if a != b} - set(ALLOWED))


def status_ids(pair) -> str:
    return "-".join(S.Name(s).removeprefix("REWARD_STATUS_") for s in pair)


# Helpers


@dataclass
class Ctx:
    """What a program needs to create rewards of every type, plus another program's ids."""

    api: Api
    asset: catalog_pb2.Asset
    pool: catalog_pb2.CodePool
    foreign_asset_id: str
    foreign_pool_id: str


@pytest.fixture
def other(channel) -> Api:
    """Admin stubs of a second program."""
    with session():
        issued = programs.create_program(f"other-{uuid.uuid4().hex[:8]}")
    return make_api(channel, issued.program_id, issued.api_key)


@pytest.fixture
def ctx(admin, other) -> Ctx:
    return Ctx(
        api=admin,
        asset=f.asset(admin, "POINTS", scale=2),
        pool=f.code_pool(admin, ["C1", "C2", "C3"]),
        foreign_asset_id=f.asset(other, "POINTS").id,
        foreign_pool_id=f.code_pool(other, ["X1"]).id,
    )


def create(api: Api, reward: catalog_pb2.Reward, request_id: str = "") -> catalog_pb2.Reward:
    return api.catalog.CreateReward(
        catalog_pb2.CreateRewardRequest(reward=reward, request_id=request_id)
    )


def get(api: Api, reward_id: str) -> catalog_pb2.Reward:
    return api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward_id))


def update(api: Api, reward_id: str, paths: list[str], etag: str = "", **fields):
    return api.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward_id, etag=etag, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )
    )


def delete(api: Api, reward_id: str, etag: str = "") -> catalog_pb2.Reward:
    return api.catalog.DeleteReward(catalog_pb2.DeleteRewardRequest(id=reward_id, etag=etag))


def list_all(api: Api, **filters) -> list[catalog_pb2.Reward]:
    found: list[catalog_pb2.Reward] = []
    token = ""
    while True:
        page = api.catalog.ListRewards(
            catalog_pb2.ListRewardsRequest(page_size=1000, page_token=token, **filters)
        )
        found.extend(page.rewards)
        token = page.next_page_token
        if not token:
            return found


def assert_nothing_created(api: Api) -> None:
    assert list_all(api, show_archived=True) == []


def expect_invalid(api: Api, reward: catalog_pb2.Reward, request_id: str = ""):
    failure = expect_failure(
        api.catalog.CreateReward,
        catalog_pb2.CreateRewardRequest(reward=reward, request_id=request_id),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT, failure
    assert failure.reason == "VALIDATION_FAILED"
    assert failure.domain == "rewards.v1"
    # The message names the bad fields too (long lists are clipped; BadRequest has them all).
    assert failure.message.startswith("The request has invalid fields: ")
    assert next(iter(failure.violations)) in failure.message
    return failure


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


# One valid reward of each type, with every optional field set.


def points(c: Ctx, **kw) -> catalog_pb2.PointsConfig:
    return catalog_pb2.PointsConfig(**{"asset_id": c.asset.id, "amount": "100.00", **kw})


def product(c: Ctx, **kw) -> catalog_pb2.ProductConfig:
    return catalog_pb2.ProductConfig(**{"product_id": "sku-42", "quantity": 2, **kw})


def competition(c: Ctx, **kw) -> catalog_pb2.CompetitionEntryConfig:
    return catalog_pb2.CompetitionEntryConfig(**{"competition_id": "cup-2025", "entries": 3, **kw})


def unique(c: Ctx, **kw) -> catalog_pb2.UniqueCouponConfig:
    return catalog_pb2.UniqueCouponConfig(**{"code_pool_id": c.pool.id, **kw})


def non_unique(c: Ctx, **kw) -> catalog_pb2.NonUniqueCouponConfig:
    fields = {
        "code": "SAVE10",
        "discount_type": common_pb2.DISCOUNT_TYPE_PERCENTAGE,
        "discount_value": "10",
        **kw,
    }
    return catalog_pb2.NonUniqueCouponConfig(**fields)


CONFIGS = {
    "points": (T.REWARD_TYPE_POINTS, points),
    "product": (T.REWARD_TYPE_PRODUCT, product),
    "competition_entry": (T.REWARD_TYPE_COMPETITION_ENTRY, competition),
    "unique_coupon": (T.REWARD_TYPE_UNIQUE_COUPON, unique),
    "non_unique_coupon": (T.REWARD_TYPE_NON_UNIQUE_COUPON, non_unique),
}


def reward_of(c: Ctx, kind: str, config=None, **fields) -> catalog_pb2.Reward:
    reward_type, make = CONFIGS[kind]
    fields.setdefault("name", f"A {kind} reward")
    fields.setdefault("type", reward_type)
    return catalog_pb2.Reward(**{kind: config if config is not None else make(c)}, **fields)


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_a_valid_reward_of_each_type_round_trips(ctx, kind):
    sent = reward_of(
        ctx,
        kind,
        description="Something nice",
        category="treats",
        cost_asset_id=ctx.asset.id,
        unit_cost="12.50",
        max_total=100,
        max_per_participant=3,
        limits=[
            catalog_pb2.RewardLimit(
                scope=common_pb2.LIMIT_SCOPE_PARTICIPANT,
                max_quantity=15,
                window=duration_pb2.Duration(seconds=86400),
            )
        ],
        available_from=ts(1_700_000_000),
        available_until=ts(2_000_000_000),
        segments=[common_pb2.Segment(segment="tier", partition="gold")],
        metadata={"source": "test", "campaign": "spring"},
    )
    created = create(ctx.api, sent)
    assert created.id.startswith("rew_")
    assert created.status == ACTIVE
    assert created.redemption_type == common_pb2.REDEMPTION_TYPE_UNIT_BASED
    assert created.redeemed_count == 0
    assert created.etag
    assert created.created_at.seconds > 0 and created.updated_at.seconds > 0
    assert created.WhichOneof("config") == kind
    assert getattr(created, kind) == getattr(sent, kind)
    for name in ("name", "description", "category", "type", "cost_asset_id", "unit_cost"):
        assert getattr(created, name) == getattr(sent, name), name
    assert (created.max_total, created.max_per_participant) == (100, 3)
    assert list(created.limits) == list(sent.limits)
    assert created.available_from == sent.available_from
    assert created.available_until == sent.available_until
    assert list(created.segments) == list(sent.segments)
    assert dict(created.metadata) == dict(sent.metadata)
    assert get(ctx.api, created.id) == created
    assert [r.id for r in list_all(ctx.api)] == [created.id]


def test_a_minimal_reward_gets_the_documented_defaults(ctx):
    made = create(
        ctx.api,
        catalog_pb2.Reward(
            name="Bare",
            type=T.REWARD_TYPE_PRODUCT,
            product=catalog_pb2.ProductConfig(product_id="p"),
        ),
    )
    assert made.status == ACTIVE
    assert made.product.quantity == 1
    assert made.redemption_type == common_pb2.REDEMPTION_TYPE_UNIT_BASED
    assert not made.HasField("max_total") and not made.HasField("max_per_participant")
    assert made.cost_asset_id == "" and made.unit_cost == ""
    assert not made.HasField("available_from") and not made.HasField("available_until")
    entry = create(
        ctx.api,
        catalog_pb2.Reward(
            name="Entry",
            type=T.REWARD_TYPE_COMPETITION_ENTRY,
            competition_entry=catalog_pb2.CompetitionEntryConfig(competition_id="c"),
        ),
    )
    assert entry.competition_entry.entries == 1
    assert get(ctx.api, entry.id) == entry


def test_output_only_fields_are_ignored_on_create(ctx):
    made = create(
        ctx.api,
        reward_of(
            ctx,
            "product",
            id="rew_mine",
            redeemed_count=99,
            etag="v99",
            created_at=ts(1),
            updated_at=ts(1),
        ),
    )
    assert made.id != "rew_mine" and made.id.startswith("rew_")
    assert made.redeemed_count == 0
    assert made.etag != "v99"
    assert made.created_at.seconds > 1_600_000_000


# Invalid configs: at least three per type, each naming its field.

BAD_CONFIGS = [
    ("points", lambda c: points(c, amount="0"), "reward.points.amount"),
    ("points", lambda c: points(c, amount="-5"), "reward.points.amount"),
    ("points", lambda c: points(c, amount="ten"), "reward.points.amount"),
    ("points", lambda c: points(c, amount=""), "reward.points.amount"),
    ("points", lambda c: points(c, amount="1.001"), "reward.points.amount"),  # asset scale 2
    ("points", lambda c: points(c, asset_id=""), "reward.points.asset_id"),
    ("points", lambda c: points(c, asset_id="ast_unknown"), "reward.points.asset_id"),
    ("points", lambda c: points(c, asset_id=c.foreign_asset_id), "reward.points.asset_id"),
    ("product", lambda c: product(c, product_id=""), "reward.product.product_id"),
    ("product", lambda c: product(c, product_id="   "), "reward.product.product_id"),
    ("product", lambda c: product(c, product_id="p" * 129), "reward.product.product_id"),
    ("product", lambda c: product(c, quantity=-1), "reward.product.quantity"),
    (
        "competition_entry",
        lambda c: competition(c, competition_id=""),
        "reward.competition_entry.competition_id",
    ),
    (
        "competition_entry",
        lambda c: competition(c, competition_id="c" * 129),
        "reward.competition_entry.competition_id",
    ),
    (
        "competition_entry",
        lambda c: competition(c, entries=-3),
        "reward.competition_entry.entries",
    ),
    ("unique_coupon", lambda c: unique(c, code_pool_id=""), "reward.unique_coupon.code_pool_id"),
    (
        "unique_coupon",
        lambda c: unique(c, code_pool_id="pool_unknown"),
        "reward.unique_coupon.code_pool_id",
    ),
    (
        "unique_coupon",
        lambda c: unique(c, code_pool_id=c.foreign_pool_id),
        "reward.unique_coupon.code_pool_id",
    ),
    ("non_unique_coupon", lambda c: non_unique(c, code=""), "reward.non_unique_coupon.code"),
    (
        "non_unique_coupon",
        lambda c: non_unique(c, discount_type=common_pb2.DISCOUNT_TYPE_UNSPECIFIED),
        "reward.non_unique_coupon.discount_type",
    ),
    (
        "non_unique_coupon",
        lambda c: non_unique(c, discount_value="101"),
        "reward.non_unique_coupon.discount_value",
    ),
    (
        "non_unique_coupon",
        lambda c: non_unique(
            c, discount_type=common_pb2.DISCOUNT_TYPE_FIXED, discount_value="-1.00"
        ),
        "reward.non_unique_coupon.discount_value",
    ),
    (
        "non_unique_coupon",
        lambda c: non_unique(c, discount_value="ten percent"),
        "reward.non_unique_coupon.discount_value",
    ),
]


@pytest.mark.parametrize(
    ("kind", "make", "field"),
    BAD_CONFIGS,
    ids=[f"{kind}-{i}" for i, (kind, _, _) in enumerate(BAD_CONFIGS)],
)
def test_a_bad_config_is_refused_naming_its_field(ctx, kind, make, field):
    failure = expect_invalid(ctx.api, reward_of(ctx, kind, make(ctx)))
    assert set(failure.violations) == {field}
    assert failure.violations[field]  # a description, not just a name
    assert_nothing_created(ctx.api)


def test_every_type_has_at_least_three_bad_cases():
    counts = {kind: sum(1 for k, _, _ in BAD_CONFIGS if k == kind) for kind in CONFIGS}
    assert min(counts.values()) >= 3, counts


def test_a_fixed_discount_may_exceed_100(ctx):
    made = create(
        ctx.api,
        reward_of(
            ctx,
            "non_unique_coupon",
            non_unique(ctx, discount_type=common_pb2.DISCOUNT_TYPE_FIXED, discount_value="150"),
        ),
    )
    assert made.non_unique_coupon.discount_value == "150"


@pytest.mark.parametrize(
    ("reward", "field"),
    [
        (
            catalog_pb2.Reward(name="x", product=catalog_pb2.ProductConfig(product_id="p")),
            "reward.type",
        ),
        (
            catalog_pb2.Reward(
                name="x",
                type=T.REWARD_TYPE_CUSTOM,
                product=catalog_pb2.ProductConfig(product_id="p"),
            ),
            "reward.type",
        ),
        (catalog_pb2.Reward(name="x", type=T.REWARD_TYPE_POINTS), "reward.points"),
        (
            catalog_pb2.Reward(
                name="x",
                type=T.REWARD_TYPE_POINTS,
                product=catalog_pb2.ProductConfig(product_id="p"),
            ),
            "reward.product",
        ),
        (
            catalog_pb2.Reward(
                name="x",
                type=T.REWARD_TYPE_UNIQUE_COUPON,
                non_unique_coupon=catalog_pb2.NonUniqueCouponConfig(code="C"),
            ),
            "reward.non_unique_coupon",
        ),
    ],
    ids=["no-type", "custom-type", "no-config", "points-with-product", "unique-with-non-unique"],
)
def test_type_and_config_must_match(ctx, reward, field):
    failure = expect_invalid(ctx.api, reward)
    assert set(failure.violations) == {field}
    assert_nothing_created(ctx.api)


MULTI_ERRORS = {
    "points": (
        lambda c: reward_of(c, "points", points(c, asset_id="", amount="0"), name=""),
        {"reward.name", "reward.points.asset_id", "reward.points.amount"},
    ),
    "product": (
        lambda c: reward_of(
            c, "product", product(c, product_id="", quantity=-2), description="d" * 1001
        ),
        {"reward.description", "reward.product.product_id", "reward.product.quantity"},
    ),
    "competition_entry": (
        lambda c: reward_of(
            c,
            "competition_entry",
            competition(c, competition_id="", entries=-1),
            category="c" * 101,
        ),
        {
            "reward.category",
            "reward.competition_entry.competition_id",
            "reward.competition_entry.entries",
        },
    ),
    "unique_coupon": (
        lambda c: reward_of(
            c,
            "unique_coupon",
            unique(c, code_pool_id="pool_nope"),
            name="n" * 256,
            max_total=0,
        ),
        {"reward.name", "reward.unique_coupon.code_pool_id", "reward.max_total"},
    ),
    "non_unique_coupon": (
        lambda c: reward_of(
            c,
            "non_unique_coupon",
            non_unique(c, code="", discount_type=0, discount_value="x"),
        ),
        {
            "reward.non_unique_coupon.code",
            "reward.non_unique_coupon.discount_type",
            "reward.non_unique_coupon.discount_value",
        },
    ),
}


@pytest.mark.parametrize("kind", list(MULTI_ERRORS))
def test_a_request_with_several_bad_fields_lists_them_all(ctx, kind):
    make, fields = MULTI_ERRORS[kind]
    failure = expect_invalid(ctx.api, make(ctx))
    assert set(failure.violations) == fields
    assert_nothing_created(ctx.api)


def test_every_kind_of_bad_field_is_reported_in_one_answer(ctx):
    bad = reward_of(
        ctx,
        "points",
        points(ctx, asset_id="ast_missing", amount="-1"),
        name="",
        description="d" * 1001,
        category="c" * 101,
        unit_cost="5",
        max_total=0,
        max_per_participant=-1,
        limits=[catalog_pb2.RewardLimit(scope=0, max_quantity=0)],
        available_from=ts(2_000_000_000),
        available_until=ts(1_000_000_000),
        segments=[common_pb2.Segment(segment="", partition="p")],
        metadata={"v": "x" * 1025},
    )
    failure = expect_invalid(ctx.api, bad, request_id="has a space")
    assert set(failure.violations) == {
        "request_id",
        "reward.name",
        "reward.description",
        "reward.category",
        "reward.points.asset_id",
        "reward.points.amount",
        "reward.cost_asset_id",
        "reward.max_total",
        "reward.max_per_participant",
        "reward.limits[0].scope",
        "reward.limits[0].max_quantity",
        "reward.limits[0].window",
        "reward.available_until",
        "reward.segments[0].segment",
        "reward.metadata[v]",
    }
    assert_nothing_created(ctx.api)


# Pricing, window, segments, limits, metadata


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"unit_cost": "5"}, "reward.cost_asset_id"),
        ({"redemption_type": common_pb2.REDEMPTION_TYPE_AMOUNT_BASED}, "reward.cost_asset_id"),
        (
            {
                "redemption_type": common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
                "unit_cost": "2",
            },
            "reward.cost_asset_id",
        ),
        ({"cost_asset_id": "ast_nope", "unit_cost": "5"}, "reward.cost_asset_id"),
        ({"cost_asset_id": "FOREIGN", "unit_cost": "5"}, "reward.cost_asset_id"),
        ({"cost_asset_id": "ASSET"}, "reward.unit_cost"),
        ({"cost_asset_id": "ASSET", "unit_cost": "0"}, "reward.unit_cost"),
        ({"cost_asset_id": "ASSET", "unit_cost": "-2"}, "reward.unit_cost"),
        ({"cost_asset_id": "ASSET", "unit_cost": "1e2"}, "reward.unit_cost"),
        (
            {
                "redemption_type": common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
                "cost_asset_id": "ASSET",
                "unit_cost": "2.2727",
                "max_per_participant": 5,
            },
            "reward.max_per_participant",
        ),
        ({"redemption_type": 9}, "reward.redemption_type"),
    ],
    ids=[
        "unit_cost-without-asset",
        "amount-based-without-asset",
        "amount-based-with-cost-without-asset",
        "unknown-asset",
        "foreign-asset",
        "asset-without-unit_cost",
        "zero-unit_cost",
        "negative-unit_cost",
        "exponent-unit_cost",
        "max_per_participant-with-amount-based",
        "unknown-redemption-type",
    ],
)
def test_pricing_is_validated(ctx, fields, field):
    swap = {"ASSET": ctx.asset.id, "FOREIGN": ctx.foreign_asset_id}
    if "cost_asset_id" in fields:
        fields = {**fields, "cost_asset_id": swap.get(fields["cost_asset_id"], "ast_nope")}
    failure = expect_invalid(ctx.api, reward_of(ctx, "product", **fields))
    assert set(failure.violations) == {field}
    assert_nothing_created(ctx.api)


def test_amount_based_pricing_round_trips(ctx):
    made = create(
        ctx.api,
        reward_of(
            ctx,
            "product",
            redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
            cost_asset_id=ctx.asset.id,
            unit_cost="2.272727",
        ),
    )
    assert made.redemption_type == common_pb2.REDEMPTION_TYPE_AMOUNT_BASED
    assert made.unit_cost == "2.272727"
    assert get(ctx.api, made.id) == made


@pytest.mark.parametrize(
    ("start", "end"), [(1_800_000_000, 1_800_000_000), (1_800_000_001, 1_800_000_000)]
)
def test_the_availability_window_must_open_before_it_closes(ctx, start, end):
    failure = expect_invalid(
        ctx.api, reward_of(ctx, "product", available_from=ts(start), available_until=ts(end))
    )
    assert set(failure.violations) == {"reward.available_until"}
    assert_nothing_created(ctx.api)


def test_a_window_open_on_one_side_is_fine(ctx):
    since = create(ctx.api, reward_of(ctx, "product", available_from=ts(1_800_000_000)))
    until = create(ctx.api, reward_of(ctx, "product", available_until=ts(1_800_000_000)))
    assert since.available_from.seconds == 1_800_000_000 and not since.HasField("available_until")
    assert until.available_until.seconds == 1_800_000_000 and not until.HasField("available_from")


def test_segments_round_trip_in_order(ctx):
    pairs = [("tier", "gold"), ("tier", "silver"), ("region", "north")]
    made = create(
        ctx.api,
        reward_of(
            ctx,
            "product",
            segments=[common_pb2.Segment(segment=s, partition=p) for s, p in pairs],
        ),
    )
    assert [(s.segment, s.partition) for s in get(ctx.api, made.id).segments] == pairs


@pytest.mark.parametrize(
    ("segments", "fields"),
    [
        ([("", "gold")], {"reward.segments[0].segment"}),
        ([("tier", "gold"), ("tier", "")], {"reward.segments[1].partition"}),
        ([("t" * 101, "p" * 101)], {"reward.segments[0].segment", "reward.segments[0].partition"}),
        ([("tier", "gold")] * 101, {"reward.segments"}),
    ],
    ids=["empty-segment", "empty-partition", "too-long", "too-many"],
)
def test_bad_segments_are_named(ctx, segments, fields):
    failure = expect_invalid(
        ctx.api,
        reward_of(
            ctx,
            "product",
            segments=[common_pb2.Segment(segment=s, partition=p) for s, p in segments],
        ),
    )
    assert set(failure.violations) == fields
    assert_nothing_created(ctx.api)


def test_limits_round_trip(ctx):
    limits = [
        catalog_pb2.RewardLimit(
            scope=common_pb2.LIMIT_SCOPE_PARTICIPANT,
            max_quantity=15,
            window=duration_pb2.Duration(seconds=86400),
        ),
        catalog_pb2.RewardLimit(
            scope=common_pb2.LIMIT_SCOPE_GLOBAL,
            max_quantity=1000,
            window=duration_pb2.Duration(seconds=3600),
        ),
    ]
    made = create(ctx.api, reward_of(ctx, "product", limits=limits))
    assert list(get(ctx.api, made.id).limits) == limits


def test_metadata_at_its_limits_is_accepted(ctx):
    at_limit = {f"k{i:02}": "v" for i in range(49)}
    at_limit["k" * 64] = "v" * 1024
    made = create(ctx.api, reward_of(ctx, "product", metadata=at_limit))
    assert dict(get(ctx.api, made.id).metadata) == at_limit


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({f"k{i}": "v" for i in range(51)}, "reward.metadata"),
        ({"k" * 65: "v"}, "reward.metadata[" + "k" * 64 + "]"),
        ({"note": "v" * 1025}, "reward.metadata[note]"),
    ],
    ids=["51-entries", "key-of-65", "value-of-1025"],
)
def test_metadata_over_its_limits_is_refused(ctx, metadata, field):
    failure = expect_invalid(ctx.api, reward_of(ctx, "product", metadata=metadata))
    assert set(failure.violations) == {field}
    assert_nothing_created(ctx.api)


# Idempotent create


def test_create_with_the_same_request_id_returns_the_same_reward(ctx):
    sent = reward_of(ctx, "product")
    first = create(ctx.api, sent, request_id="create-1")
    again = create(ctx.api, sent, request_id="create-1")
    assert again == first
    other = create(ctx.api, sent, request_id="create-2")
    assert other.id != first.id
    assert sorted(r.id for r in list_all(ctx.api)) == sorted([first.id, other.id])


def test_request_ids_are_per_program(ctx, other):
    mine = create(ctx.api, reward_of(ctx, "product"), request_id="shared-id")
    theirs = f.reward(other, name="theirs")
    again = other.catalog.CreateReward(
        catalog_pb2.CreateRewardRequest(
            reward=catalog_pb2.Reward(
                name="theirs",
                type=T.REWARD_TYPE_PRODUCT,
                product=catalog_pb2.ProductConfig(product_id="p"),
            ),
            request_id="shared-id",
        )
    )
    assert again.id not in (mine.id, theirs.id)
    assert [r.id for r in list_all(ctx.api)] == [mine.id]


def test_a_bad_request_id_is_refused(ctx):
    for bad in ("has space", "x" * 129, "caf\u00e9"):
        failure = expect_invalid(ctx.api, reward_of(ctx, "product"), request_id=bad)
        assert set(failure.violations) == {"request_id"}
    assert_nothing_created(ctx.api)


# Reads of missing rewards


def test_a_missing_reward_is_not_found(admin):
    for call, request in [
        (admin.catalog.GetReward, catalog_pb2.GetRewardRequest(id="rew_missing")),
        (admin.catalog.DeleteReward, catalog_pb2.DeleteRewardRequest(id="rew_missing")),
        (
            admin.catalog.UpdateReward,
            catalog_pb2.UpdateRewardRequest(
                reward=catalog_pb2.Reward(id="rew_missing", name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            ),
        ),
    ]:
        failure = expect_failure(call, request)
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert failure.reason == "REWARD_NOT_FOUND"


# Lifecycle


def reward_in(api: Api, status: int) -> catalog_pb2.Reward:
    """A reward of this program in `status`, reached the way a caller would."""
    if status == OUT_OF_STOCK:
        empty = f.code_pool(api, [])
        made = f.reward(api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=empty.id))
    elif status == ARCHIVED:
        made = delete(api, f.reward(api).id)
    elif status == ACTIVE:
        made = f.reward(api)
    else:
        made = f.reward(api, status=status)
    assert made.status == status, S.Name(made.status)
    return made


@pytest.mark.parametrize(("start", "wanted"), ALLOWED, ids=[status_ids(p) for p in ALLOWED])
def test_an_allowed_transition_by_update(admin, start, wanted):
    before = reward_in(admin, start)
    after = update(admin, before.id, ["status"], etag=before.etag, status=wanted)
    assert after.status == wanted
    assert after.etag != before.etag
    assert get(admin, before.id) == after
    # Nothing but the status (and the update bookkeeping) moved.
    for name in ("name", "type", "product", "unique_coupon", "created_at", "redeemed_count"):
        assert getattr(after, name) == getattr(before, name), name


@pytest.mark.parametrize("start", [DRAFT, ACTIVE, INACTIVE, OUT_OF_STOCK], ids=S.Name)
def test_delete_archives_from_every_live_status(admin, start):
    before = reward_in(admin, start)
    archived = delete(admin, before.id, etag=before.etag)
    assert archived.status == ARCHIVED
    # Soft delete: still readable, hidden from the default list.
    assert get(admin, before.id) == archived
    assert before.id not in [r.id for r in list_all(admin)]
    assert before.id in [r.id for r in list_all(admin, show_archived=True)]


@pytest.mark.parametrize(("start", "wanted"), REFUSED, ids=[status_ids(p) for p in REFUSED])
def test_a_refused_transition_by_update(admin, start, wanted):
    before = reward_in(admin, start)
    failure = expect_failure(update, admin, before.id, ["status"], status=wanted)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "INVALID_STATE_TRANSITION"
    assert get(admin, before.id) == before  # unchanged, etag included


def test_the_refused_list_covers_the_spec():
    assert len(ALLOWED) + len(REFUSED) == 20
    assert {(ARCHIVED, s) for s in STATUSES if s != ARCHIVED} <= set(REFUSED)
    assert {(s, OUT_OF_STOCK) for s in STATUSES if s != OUT_OF_STOCK} <= set(REFUSED)


def test_an_archived_reward_is_final(admin):
    archived = reward_in(admin, ARCHIVED)
    failure = expect_failure(update, admin, archived.id, ["name"], name="Renamed")
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "INVALID_STATE_TRANSITION"
    # Deleting again changes nothing and is not an error.
    assert delete(admin, archived.id) == archived
    assert get(admin, archived.id) == archived


def test_a_reward_cannot_be_created_out_of_stock_or_archived(admin):
    for status in (OUT_OF_STOCK, ARCHIVED):
        failure = expect_failure(f.reward, admin, status=status)
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(failure.violations) == {"reward.status"}
    assert_nothing_created(admin)


def test_a_reward_can_be_created_as_draft_or_inactive(admin):
    assert f.reward(admin, status=DRAFT).status == DRAFT
    assert f.reward(admin, status=INACTIVE).status == INACTIVE


# Immutable fields


@pytest.fixture
def priced(ctx) -> catalog_pb2.Reward:
    return create(
        ctx.api,
        reward_of(ctx, "product", cost_asset_id=ctx.asset.id, unit_cost="10"),
    )


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("type", {"type": T.REWARD_TYPE_COMPETITION_ENTRY}),
        ("redemption_type", {"redemption_type": common_pb2.REDEMPTION_TYPE_AMOUNT_BASED}),
        ("cost_asset_id", {"cost_asset_id": "NEW"}),
        ("cost_asset_id", {"cost_asset_id": ""}),
    ],
    ids=["type", "redemption_type", "cost_asset_id", "cost_asset_id-cleared"],
)
def test_an_immutable_field_cannot_change(ctx, priced, path, fields):
    if fields.get("cost_asset_id") == "NEW":
        fields = {"cost_asset_id": f.asset(ctx.api, "MILES").id}
    failure = expect_failure(update, ctx.api, priced.id, [path], **fields)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "IMMUTABLE_FIELD"
    assert path in failure.message
    assert failure.metadata == {"fields": path}
    assert get(ctx.api, priced.id) == priced


def test_an_immutable_field_with_its_current_value_is_accepted(ctx, priced):
    after = update(
        ctx.api,
        priced.id,
        ["type", "redemption_type", "cost_asset_id", "name"],
        type=priced.type,
        redemption_type=priced.redemption_type,
        cost_asset_id=priced.cost_asset_id,
        name="Renamed",
    )
    assert after.name == "Renamed"
    assert (after.type, after.redemption_type, after.cost_asset_id) == (
        priced.type,
        priced.redemption_type,
        priced.cost_asset_id,
    )


def test_a_full_replace_cannot_change_the_type_either(ctx, priced):
    changed = catalog_pb2.Reward()
    changed.CopyFrom(priced)
    changed.type = T.REWARD_TYPE_COMPETITION_ENTRY
    changed.competition_entry.CopyFrom(catalog_pb2.CompetitionEntryConfig(competition_id="c"))
    failure = expect_failure(
        ctx.api.catalog.UpdateReward,
        catalog_pb2.UpdateRewardRequest(
            reward=changed, update_mask=field_mask_pb2.FieldMask(paths=["*"])
        ),
    )
    assert failure.reason == "IMMUTABLE_FIELD"
    assert get(ctx.api, priced.id) == priced


# Etags


def test_a_stale_etag_is_refused_on_update_and_delete(admin):
    first = f.reward(admin)
    second = update(admin, first.id, ["name"], etag=first.etag, name="Second")
    assert second.etag != first.etag
    failure = expect_failure(update, admin, first.id, ["name"], etag=first.etag, name="Lost")
    assert failure.code == grpc.StatusCode.ABORTED
    assert failure.reason == "ETAG_MISMATCH"
    failure = expect_failure(delete, admin, first.id, etag=first.etag)
    assert failure.code == grpc.StatusCode.ABORTED
    assert failure.reason == "ETAG_MISMATCH"
    assert get(admin, first.id) == second
    # The current etag, or none at all, goes through.
    third = update(admin, first.id, ["name"], etag=second.etag, name="Third")
    fourth = update(admin, first.id, ["name"], name="Fourth")
    assert fourth.etag not in (first.etag, second.etag, third.etag)
    assert delete(admin, first.id, etag=fourth.etag).status == ARCHIVED


def test_a_made_up_etag_is_refused(admin):
    made = f.reward(admin)
    failure = expect_failure(update, admin, made.id, ["name"], etag="not-an-etag", name="x")
    assert failure.reason == "ETAG_MISMATCH"
    assert get(admin, made.id) == made


# Field masks


@pytest.fixture
def full(ctx) -> catalog_pb2.Reward:
    return create(
        ctx.api,
        reward_of(
            ctx,
            "points",
            description="Before",
            category="before",
            max_total=50,
            max_per_participant=5,
            segments=[common_pb2.Segment(segment="tier", partition="gold")],
            metadata={"a": "1", "b": "2"},
            available_from=ts(1_700_000_000),
        ),
    )


VOLATILE = ("etag", "updated_at")


def assert_only_changed(before, after, changed: set[str]) -> None:
    for field in catalog_pb2.Reward.DESCRIPTOR.fields:
        if field.name in VOLATILE:
            continue
        same = getattr(before, field.name) == getattr(after, field.name)
        if field.name in changed:
            assert not same, f"{field.name} should have changed"
        else:
            assert same, f"{field.name} should not have changed"


def test_an_update_changes_only_the_named_fields(ctx, full):
    sent = dict(
        name="After",
        description="After too",
        category="after",
        max_total=7,
        metadata={"z": "9"},
        segments=[common_pb2.Segment(segment="tier", partition="silver")],
    )
    after = update(ctx.api, full.id, ["name"], **sent)
    assert after.name == "After"
    assert_only_changed(full, after, {"name"})
    after2 = update(ctx.api, full.id, ["description", "category"], **sent)
    assert (after2.description, after2.category) == ("After too", "after")
    assert_only_changed(after, after2, {"description", "category"})
    after3 = update(ctx.api, full.id, ["metadata", "segments"], **sent)
    assert dict(after3.metadata) == {"z": "9"}  # a map is replaced, not merged
    assert [(s.segment, s.partition) for s in after3.segments] == [("tier", "silver")]
    assert_only_changed(after2, after3, {"metadata", "segments"})
    assert get(ctx.api, full.id) == after3


def test_an_unset_optional_field_in_the_mask_clears_it(ctx, full):
    after = update(ctx.api, full.id, ["max_total", "available_from"])
    assert not after.HasField("max_total")
    assert not after.HasField("available_from")
    assert_only_changed(full, after, {"max_total", "available_from"})


def test_a_config_sub_field_updates_only_that_field(ctx, full):
    after = update(
        ctx.api,
        full.id,
        ["points.amount"],
        points=catalog_pb2.PointsConfig(amount="250.00"),
    )
    assert after.points == catalog_pb2.PointsConfig(asset_id=ctx.asset.id, amount="250.00")
    assert_only_changed(full, after, {"points"})


def test_a_config_member_in_the_mask_replaces_the_whole_config(ctx, full):
    failure = expect_failure(
        update,
        ctx.api,
        full.id,
        ["points"],
        points=catalog_pb2.PointsConfig(amount="250.00"),
    )
    assert set(failure.violations) == {"reward.points.asset_id"}
    assert get(ctx.api, full.id) == full
    miles = f.asset(ctx.api, "MILES", scale=0)
    after = update(
        ctx.api,
        full.id,
        ["points"],
        points=catalog_pb2.PointsConfig(asset_id=miles.id, amount="3"),
    )
    assert after.points == catalog_pb2.PointsConfig(asset_id=miles.id, amount="3")


def test_an_update_is_validated_like_a_create(ctx, full):
    failure = expect_failure(
        update,
        ctx.api,
        full.id,
        ["name", "max_total", "points.amount"],
        name="",
        max_total=0,
        points=catalog_pb2.PointsConfig(amount="0.001"),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"reward.name", "reward.max_total", "reward.points.amount"}
    assert get(ctx.api, full.id) == full


def test_a_star_mask_replaces_every_updatable_field(ctx, full):
    replacement = catalog_pb2.Reward()
    replacement.CopyFrom(full)
    replacement.name = "Replaced"
    replacement.description = ""
    replacement.category = "other"
    replacement.points.amount = "1.00"
    replacement.ClearField("max_total")
    replacement.max_per_participant = 9
    del replacement.segments[:]
    replacement.metadata.clear()
    replacement.metadata["only"] = "this"
    replacement.status = INACTIVE
    replacement.redeemed_count = 1234  # output only: ignored
    after = ctx.api.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=replacement, update_mask=field_mask_pb2.FieldMask(paths=["*"])
        )
    )
    assert after.name == "Replaced" and after.description == "" and after.category == "other"
    assert after.points.amount == "1.00"
    assert not after.HasField("max_total") and after.max_per_participant == 9
    assert list(after.segments) == [] and dict(after.metadata) == {"only": "this"}
    assert after.status == INACTIVE
    assert after.redeemed_count == 0
    assert after.id == full.id and after.created_at == full.created_at
    assert get(ctx.api, full.id) == after


@pytest.mark.parametrize(
    ("paths", "field"),
    [([], "update_mask"), (["no_such_field"], "update_mask"), (["name", "bogus"], "update_mask")],
    ids=["empty", "unknown", "one-unknown"],
)
def test_a_bad_mask_is_refused(ctx, full, paths, field):
    failure = expect_failure(update, ctx.api, full.id, paths, name="Changed")
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in failure.violations
    assert get(ctx.api, full.id) == full


def test_output_only_paths_in_the_mask_are_ignored(ctx, full):
    after = update(ctx.api, full.id, ["redeemed_count", "name"], redeemed_count=77, name="New")
    assert after.name == "New" and after.redeemed_count == 0


# Stock


def test_a_unique_coupon_reward_on_an_empty_pool_is_born_out_of_stock(admin):
    pool = f.code_pool(admin, [])
    made = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    assert made.status == OUT_OF_STOCK
    added = admin.catalog.AddCodes(
        catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=["A", "B"])
    )
    assert added.added_count == 2
    after = get(admin, made.id)
    assert after.status == ACTIVE
    assert after.etag != made.etag


def test_adding_codes_leaves_operator_statuses_alone(admin):
    pool = f.code_pool(admin, [])
    config = catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id)
    draft = f.reward(admin, unique_coupon=config, status=DRAFT)
    inactive = f.reward(admin, unique_coupon=config, status=INACTIVE)
    assert (draft.status, inactive.status) == (DRAFT, INACTIVE)
    admin.catalog.AddCodes(catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=["A"]))
    assert get(admin, draft.id).status == DRAFT
    assert get(admin, inactive.id).status == INACTIVE


def test_activating_a_draft_on_an_empty_pool_makes_it_out_of_stock(admin):
    pool = f.code_pool(admin, [])
    draft = f.reward(
        admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id), status=DRAFT
    )
    after = update(admin, draft.id, ["status"], status=ACTIVE)
    assert after.status == OUT_OF_STOCK


def test_pointing_a_reward_at_a_stocked_pool_lifts_out_of_stock(admin):
    empty = f.code_pool(admin, [])
    stocked = f.code_pool(admin, ["Z"])
    made = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=empty.id))
    assert made.status == OUT_OF_STOCK
    after = update(
        admin,
        made.id,
        ["unique_coupon.code_pool_id"],
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=stocked.id),
    )
    assert after.status == ACTIVE
    assert after.unique_coupon.code_pool_id == stocked.id


def test_lowering_and_raising_max_total_moves_the_reward_in_and_out_of_stock(admin):
    made = f.reward(admin, max_total=5)
    user = f.participant(admin)
    f.issue(admin, made.id, user.id, quantity=2)
    assert get(admin, made.id).redeemed_count == 2

    lowered = update(admin, made.id, ["max_total"], max_total=2)
    assert (lowered.status, lowered.max_total, lowered.redeemed_count) == (OUT_OF_STOCK, 2, 2)
    refused = expect_failure(f.issue, admin, made.id, user.id)
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.reason == "OUT_OF_STOCK"

    raised = update(admin, made.id, ["max_total"], max_total=3)
    assert raised.status == ACTIVE
    f.issue(admin, made.id, user.id)
    assert get(admin, made.id).status == OUT_OF_STOCK  # the last unit was taken

    below = update(admin, made.id, ["max_total"], max_total=1)
    assert below.status == OUT_OF_STOCK and below.redeemed_count == 3
    unlimited = update(admin, made.id, ["max_total"])
    assert unlimited.status == ACTIVE and not unlimited.HasField("max_total")


def test_an_out_of_stock_reward_cannot_be_set_active_by_hand_but_can_be_archived(admin):
    made = f.reward(admin, max_total=1)
    f.issue(admin, made.id, f.participant(admin).id)
    sold_out = get(admin, made.id)
    assert sold_out.status == OUT_OF_STOCK
    for wanted in (ACTIVE, INACTIVE, DRAFT):
        failure = expect_failure(update, admin, made.id, ["status"], status=wanted)
        assert failure.reason == "INVALID_STATE_TRANSITION"
    assert get(admin, made.id) == sold_out
    assert delete(admin, made.id).status == ARCHIVED


def test_an_active_reward_cannot_be_set_out_of_stock_by_hand(admin):
    made = f.reward(admin, max_total=10)
    failure = expect_failure(update, admin, made.id, ["status"], status=OUT_OF_STOCK)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "INVALID_STATE_TRANSITION"
    assert get(admin, made.id).status == ACTIVE


# Lists


@pytest.fixture
def assorted(ctx):
    """Rewards of several types, categories and statuses."""
    api = ctx.api
    made = {
        "food_active": create(api, reward_of(ctx, "product", category="food")),
        "food_inactive": create(api, reward_of(ctx, "product", category="food", status=INACTIVE)),
        "drink_draft": create(api, reward_of(ctx, "points", category="drink", status=DRAFT)),
        "drink_points": create(api, reward_of(ctx, "points", category="drink")),
        "coupon": create(api, reward_of(ctx, "non_unique_coupon")),
        "archived_food": create(api, reward_of(ctx, "product", category="food")),
    }
    made["archived_food"] = delete(api, made["archived_food"].id)
    return {name: r.id for name, r in made.items()}


def names(assorted, rewards) -> set[str]:
    by_id = {v: k for k, v in assorted.items()}
    return {by_id[r.id] for r in rewards}


def test_list_hides_archived_rewards_by_default(ctx, assorted):
    assert names(assorted, list_all(ctx.api)) == set(assorted) - {"archived_food"}
    assert names(assorted, list_all(ctx.api, show_archived=True)) == set(assorted)


def test_list_filters_by_status(ctx, assorted):
    assert names(assorted, list_all(ctx.api, status=INACTIVE)) == {"food_inactive"}
    assert names(assorted, list_all(ctx.api, status=DRAFT)) == {"drink_draft"}
    assert names(assorted, list_all(ctx.api, status=ARCHIVED)) == {"archived_food"}
    assert names(assorted, list_all(ctx.api, status=ACTIVE)) == {
        "food_active",
        "drink_points",
        "coupon",
    }


def test_list_filters_by_type_and_category(ctx, assorted):
    assert names(assorted, list_all(ctx.api, type=T.REWARD_TYPE_POINTS)) == {
        "drink_draft",
        "drink_points",
    }
    assert names(assorted, list_all(ctx.api, category="food")) == {"food_active", "food_inactive"}
    assert names(assorted, list_all(ctx.api, category="food", show_archived=True)) == {
        "food_active",
        "food_inactive",
        "archived_food",
    }
    assert names(
        assorted, list_all(ctx.api, category="drink", type=T.REWARD_TYPE_POINTS, status=ACTIVE)
    ) == {"drink_points"}
    assert list_all(ctx.api, category="nothing") == []
    assert list_all(ctx.api, type=T.REWARD_TYPE_COMPETITION_ENTRY) == []


def test_list_is_oldest_first_and_only_this_programs(ctx, other, assorted):
    f.reward(other, name="not mine")
    listed = [r.id for r in list_all(ctx.api, show_archived=True)]
    assert listed == list(assorted.values())


def test_a_negative_page_size_is_refused(admin):
    failure = expect_failure(
        admin.catalog.ListRewards, catalog_pb2.ListRewardsRequest(page_size=-1)
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"page_size"}


def test_a_page_token_is_bound_to_its_filters(admin):
    for _ in range(3):
        f.reward(admin, category="food")
    first = admin.catalog.ListRewards(catalog_pb2.ListRewardsRequest(page_size=1, category="food"))
    assert len(first.rewards) == 1 and first.next_page_token
    for changed in (
        {"category": "drink"},
        {"category": "food", "status": ACTIVE},
        {"category": "food", "show_archived": True},
        {"category": "food", "type": T.REWARD_TYPE_PRODUCT},
        {},
    ):
        failure = expect_failure(
            admin.catalog.ListRewards,
            catalog_pb2.ListRewardsRequest(
                page_size=1, page_token=first.next_page_token, **changed
            ),
        )
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT, changed
        assert set(failure.violations) == {"page_token"}
    same = admin.catalog.ListRewards(
        catalog_pb2.ListRewardsRequest(
            page_size=1, page_token=first.next_page_token, category="food"
        )
    )
    assert same.rewards[0].id != first.rewards[0].id


def test_a_garbled_page_token_is_refused(admin):
    failure = expect_failure(
        admin.catalog.ListRewards, catalog_pb2.ListRewardsRequest(page_token="garbage!")
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"page_token"}


def test_pages_walk_250_rewards_without_gaps_or_duplicates_while_rewards_are_added(admin):
    originals = [f.reward(admin, name=f"original {i}").id for i in range(250)]
    assert len(admin.catalog.ListRewards(catalog_pb2.ListRewardsRequest()).rewards) == 50

    seen: list[str] = []
    added: list[str] = []
    token = ""
    pages = 0
    while True:
        page = admin.catalog.ListRewards(
            catalog_pb2.ListRewardsRequest(page_size=40, page_token=token)
        )
        pages += 1
        seen.extend(r.id for r in page.rewards)
        token = page.next_page_token
        if not token:
            assert len(page.rewards) <= 40
            break
        assert len(page.rewards) == 40
        # New rewards arrive between pages.
        added.extend(f.reward(admin, name=f"added {pages}.{i}").id for i in range(3))

    assert len(seen) == len(set(seen)), "a reward was listed twice"
    assert all(seen.count(rid) == 1 for rid in originals)
    assert seen[:250] == originals  # the originals come first, in order, none missing
    assert set(seen) <= set(originals) | set(added)
    assert seen == sorted(seen)
    assert pages >= 7


def test_an_empty_list_has_no_token(admin):
    page = admin.catalog.ListRewards(catalog_pb2.ListRewardsRequest())
    assert list(page.rewards) == [] and page.next_page_token == ""


def test_the_last_full_page_still_ends_the_list(admin):
    made = [f.reward(admin).id for _ in range(4)]
    first = admin.catalog.ListRewards(catalog_pb2.ListRewardsRequest(page_size=2))
    second = admin.catalog.ListRewards(
        catalog_pb2.ListRewardsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [r.id for r in [*first.rewards, *second.rewards]] == made
    assert second.next_page_token == ""


def test_an_amount_in_non_ascii_digits_is_refused(ctx):
    failure = expect_invalid(ctx.api, reward_of(ctx, "points", points(ctx, amount="\u0663")))
    assert set(failure.violations) == {"reward.points.amount"}
