"""The SDK with code expiry, participant groups and program registries, against a real
server, from both clients."""

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import rewards_client as rc
from rewards.v1 import catalog_pb2, common_pb2, groups_pb2, programs_pb2
from rewards_client import AsyncRewardsClient, RewardsClient, ref

from tests.conftest import new_program


@pytest.fixture
def program():
    return new_program("sdk-groups")


@pytest.fixture
def client(target, program):
    with RewardsClient(target, program.api_key) as c:
        yield c


@pytest_asyncio.fixture
async def aclient(target, program):
    async with AsyncRewardsClient(target, program.api_key) as c:
        yield c


def test_codes_with_an_expiry_and_a_group_paying(client):
    miles = client.create_asset(code="MILES", name="Miles", scale=0)
    pool = client.create_code_pool(name="Spring")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    added = client.add_codes(
        pool.id,
        ["KEEP"],
        code_entries=[("OLD", datetime.now(UTC) - timedelta(days=1)), ("SOON", later)],
    )
    assert (added.added_count, added.code_pool.expired_count) == (3, 1)
    coupon = client.create_reward(
        name="Coupon",
        type=common_pb2.REWARD_TYPE_UNIQUE_COUPON,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        cost_asset_id=miles.id,
        unit_cost="40",
    )
    ada = client.upsert_participant(external_id="ada")
    group = client.create_group("The Lovelaces")
    client.add_group_member(group.id, ref(id=ada.id))
    assert [m.participant_id for m in client.iter_group_members(group.id)] == [ada.id]
    client.adjust_group_balance(group.id, asset_id=miles.id, delta=100)
    issued = client.issue_reward(coupon.id, ada, pay_from=groups_pb2.PAY_FROM_GROUP).issuance
    assert (issued.coupon_code, issued.cost_group_id) == ("SOON", group.id)
    assert issued.code_expires_at.ToDatetime(tzinfo=UTC) == later
    assert client.get_group_balance(group.id, miles.id).available == "60"
    assert [e.delta for e in client.iter_group_ledger_entries(group.id, asset_id=miles.id)] == [
        "-40",
        "100",
    ]
    with pytest.raises(rc.ParticipantLimitReached):
        client.issue_reward(coupon.id, ada, pay_from=groups_pb2.PAY_FROM_GROUP)
    loner = client.upsert_participant(external_id="loner")
    with pytest.raises(rc.NotGroupMember):
        client.issue_reward(coupon.id, loner, pay_from=groups_pb2.PAY_FROM_GROUP)
    client.add_group_member(client.create_group("Other").id, ref(id=loner.id))
    with pytest.raises(rc.AlreadyInGroup):
        client.add_group_member(group.id, ref(id=loner.id))
    with pytest.raises(rc.GroupNotFound):
        client.get_group("grp_missing")


@pytest.mark.asyncio
async def test_the_async_client_manages_registries_and_groups(aclient):
    field = await aclient.create_custom_field(
        "store", programs_pb2.CUSTOM_FIELD_TYPE_STRING, required=True
    )
    status = await aclient.create_fulfillment_status("SHIPPED")
    assert [f.key async for f in aclient.iter_custom_fields()] == ["store"]
    assert [s.status async for s in aclient.iter_fulfillment_statuses()] == ["SHIPPED"]
    assert await aclient.get_custom_field(field.id) == field
    assert await aclient.get_fulfillment_status(status.id) == status
    group = await aclient.create_group("Office")
    assert [g.id async for g in aclient.iter_groups()] == [group.id]
    assert (await aclient.get_group(group.id)).name == "Office"
    await aclient.delete_custom_field(field.id)
    await aclient.delete_fulfillment_status(status.id)
    assert [f async for f in aclient.iter_custom_fields()] == []
