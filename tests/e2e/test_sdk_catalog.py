"""The SDK's RewardCatalog methods and page iterators against a real server."""

import pytest
from rewards.v1 import (
    catalog_pb2,
    common_pb2,
    groups_pb2,
    issuance_pb2,
    participants_pb2,
    programs_pb2,
)
from rewards_client import RewardsClient

from tests.conftest import new_key, new_program

Reward = catalog_pb2.Reward


@pytest.fixture
def program():
    return new_program("sdk")


@pytest.fixture
def client(target, program):
    with RewardsClient(target, program.api_key) as c:
        yield c


def product(name: str = "Mug", **fields) -> Reward:
    return Reward(
        name=name,
        type=common_pb2.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="sku-1"),
        **fields,
    )


def test_there_is_a_method_for_every_rpc_of_every_service():
    for module, service in (
        (catalog_pb2, "RewardCatalog"),
        (issuance_pb2, "RewardIssuance"),
        (participants_pb2, "Participants"),
        (groups_pb2, "ParticipantGroups"),
        (programs_pb2, "ProgramRegistry"),
    ):
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in method.name)[1:]
            assert callable(getattr(RewardsClient, snake)), snake
            if method.name.startswith("List"):
                assert callable(getattr(RewardsClient, "iter" + snake[4:])), snake


def test_create_reward_from_a_message(client):
    reward = client.create_reward(product("Mug", category="kitchen", max_total=5))
    assert reward.id.startswith("rew_")
    assert reward.status == common_pb2.REWARD_STATUS_ACTIVE
    assert reward.max_total == 5 and reward.etag


def test_create_reward_from_keyword_fields(client):
    points = client.create_asset(code="POINTS", name="Points", scale=2)
    reward = client.create_reward(
        name="100 points",
        type=common_pb2.REWARD_TYPE_POINTS,
        points=catalog_pb2.PointsConfig(asset_id=points.id, amount="100.00"),
        segments=[common_pb2.Segment(segment="tier", partition="gold")],
        metadata={"campaign": "spring"},
    )
    assert reward.points.amount == "100.00"
    assert reward.metadata["campaign"] == "spring"
    assert [(s.segment, s.partition) for s in reward.segments] == [("tier", "gold")]


def test_create_reward_refuses_a_message_and_fields_together(client):
    with pytest.raises(TypeError):
        client.create_reward(product(), name="Other")


def test_create_with_the_same_request_id_returns_the_first_resource(client):
    first = client.create_reward(product(), request_id="create-1")
    again = client.create_reward(product(), request_id="create-1")
    assert again.id == first.id
    assert [r.id for r in client.iter_rewards()] == [first.id]


def test_get_reward(client):
    created = client.create_reward(product("Lamp"))
    got = client.get_reward(created.id)
    assert got == created


def test_list_rewards_with_filters(client):
    mug = client.create_reward(product("Mug", category="kitchen"))
    client.create_reward(product("Pen", category="office"))
    draft = client.create_reward(product("Soon", status=common_pb2.REWARD_STATUS_DRAFT))
    page = client.list_rewards(category="kitchen")
    assert [r.id for r in page.rewards] == [mug.id]
    assert page.next_page_token == ""
    drafts = client.list_rewards(status=common_pb2.REWARD_STATUS_DRAFT)
    assert [r.id for r in drafts.rewards] == [draft.id]
    products = client.list_rewards(type=common_pb2.REWARD_TYPE_PRODUCT)
    assert len(products.rewards) == 3


def test_update_reward_with_keyword_fields_derives_the_mask(client):
    reward = client.create_reward(product("Mug", description="Blue"))
    updated = client.update_reward(id=reward.id, etag=reward.etag, name="Big mug", description="")
    assert updated.name == "Big mug"
    assert updated.description == ""
    assert updated.etag != reward.etag


def test_update_reward_with_a_message_and_an_explicit_mask(client):
    reward = client.create_reward(product("Mug", category="kitchen"))
    patch = Reward(id=reward.id, name="Cup", category="ignored")
    updated = client.update_reward(patch, update_mask=["name"])
    assert (updated.name, updated.category) == ("Cup", "kitchen")


def test_update_reward_with_a_message_and_no_mask_updates_populated_fields(client):
    reward = client.create_reward(product("Mug"))
    reward.name = "Renamed"
    reward.max_total = 9
    updated = client.update_reward(reward)
    assert (updated.name, updated.max_total) == ("Renamed", 9)


def test_update_reward_status(client):
    reward = client.create_reward(product())
    paused = client.update_reward(id=reward.id, status=common_pb2.REWARD_STATUS_INACTIVE)
    assert paused.status == common_pb2.REWARD_STATUS_INACTIVE


def test_delete_reward_archives_it(client):
    reward = client.create_reward(product())
    archived = client.delete_reward(reward.id, etag=reward.etag)
    assert archived.status == common_pb2.REWARD_STATUS_ARCHIVED
    assert client.get_reward(reward.id).status == common_pb2.REWARD_STATUS_ARCHIVED
    assert list(client.iter_rewards()) == []
    assert [r.id for r in client.iter_rewards(show_archived=True)] == [reward.id]


def test_assets(client):
    points = client.create_asset(catalog_pb2.Asset(code="POINTS", name="Points", scale=2))
    miles = client.create_asset(code="MILES", name="Miles", scale=0)
    assert points.id.startswith("ast_")
    assert client.get_asset(miles.id) == miles
    assert [a.id for a in client.list_assets().assets] == [points.id, miles.id]


def test_code_pools_and_add_codes(client):
    pool = client.create_code_pool(name="Spring", description="Spring codes")
    assert pool.id.startswith("pool_") and pool.total_count == 0
    added = client.add_codes(pool.id, ["A", "B", "B", "C"])
    assert (added.added_count, added.duplicate_count) == (3, 1)
    again = client.add_codes(pool.id, (c for c in ["C", "D"]))
    assert (again.added_count, again.duplicate_count) == (1, 1)
    assert again.code_pool.total_count == 4
    got = client.get_code_pool(pool.id)
    assert (got.total_count, got.available_count, got.issued_count) == (4, 4, 0)
    other = client.create_code_pool(catalog_pb2.CodePool(name="Other"))
    assert [p.id for p in client.list_code_pools().code_pools] == [pool.id, other.id]


def test_unique_coupon_reward_over_a_pool(client):
    pool = client.create_code_pool(name="Pool")
    reward = client.create_reward(
        name="Coupon",
        type=common_pb2.REWARD_TYPE_UNIQUE_COUPON,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
    )
    assert reward.unique_coupon.code_pool_id == pool.id


def test_iter_rewards_walks_every_page(client):
    created = [client.create_reward(product(f"R{i}")).id for i in range(7)]
    first = client.list_rewards(page_size=3)
    assert len(first.rewards) == 3 and first.next_page_token
    assert [r.id for r in client.iter_rewards(page_size=3)] == created
    assert [r.id for r in client.iter_rewards(page_size=7)] == created


def test_iter_rewards_keeps_the_filters_on_every_page(client):
    kitchen = [client.create_reward(product(f"K{i}", category="kitchen")).id for i in range(5)]
    client.create_reward(product("Pen", category="office"))
    assert [r.id for r in client.iter_rewards(page_size=2, category="kitchen")] == kitchen


def test_iter_assets_and_code_pools_walk_every_page(client):
    assets = [client.create_asset(code=f"A{i}", name=f"A{i}", scale=0).id for i in range(5)]
    pools = [client.create_code_pool(name=f"P{i}").id for i in range(5)]
    assert [a.id for a in client.iter_assets(page_size=2)] == assets
    assert [p.id for p in client.iter_code_pools(page_size=2)] == pools


def test_iterators_are_lazy(client):
    for i in range(4):
        client.create_reward(product(f"R{i}"))
    pages = iter(client.iter_rewards(page_size=2))
    assert next(pages).name == "R0"


def test_a_reader_key_reads_the_catalog(client, program, target):
    reward = client.create_reward(product())
    with RewardsClient(target, new_key(program.program_id, "reader").api_key) as reader:
        assert reader.get_reward(reward.id) == reward
        assert [r.id for r in reader.iter_rewards()] == [reward.id]


def test_leaving_the_context_manager_closes_the_channel(target, program):
    with RewardsClient(target, program.api_key) as c:
        c.list_assets()
    with pytest.raises(ValueError):
        c.list_assets()
