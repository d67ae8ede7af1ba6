"""AsyncRewardsClient against a real server: the same surface as RewardsClient, typed errors,
request ids reused across retries, retries with backoff within the budget, deadlines, and
page iterators as async iterators. Faults come from the FaultProxy of the sync retry tests.
"""

import asyncio
import inspect
import socket
import time
import typing

import grpc
import pytest
import pytest_asyncio
import rewards_client as rc
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2
from rewards_client import AsyncRewardsClient, RetryEvent, RewardsClient, ref

from tests.conftest import new_key, new_program
from tests.e2e.fault_proxy import FaultProxy

S = common_pb2

# Each attempt's deadline where a hung first attempt is retried.
RETRIED_DEADLINE = 1.0


@pytest.fixture
def program():
    return new_program("sdk-async")


@pytest_asyncio.fixture
async def client(target, program):
    async with AsyncRewardsClient(target, program.api_key) as c:
        yield c


@pytest.fixture
def proxy(target):
    running = FaultProxy(target)
    yield running
    running.close()


@pytest.fixture
def events() -> list[RetryEvent]:
    return []


@pytest_asyncio.fixture
async def flaky(proxy, program, events):
    """A client through the proxy, with quick backoff and a short deadline."""
    async with AsyncRewardsClient(
        proxy.target,
        program.api_key,
        timeout=1.0,
        initial_backoff=0.01,
        max_backoff=0.05,
        on_retry=events.append,
    ) as c:
        yield c


def product(name: str = "Mug", **fields) -> catalog_pb2.Reward:
    return catalog_pb2.Reward(
        name=name,
        type=S.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="sku-1"),
        **fields,
    )


async def points_reward(client: AsyncRewardsClient, amount: str = "10.00"):
    asset = await client.create_asset(code="POINTS", name="Points", scale=2)
    reward = await client.create_reward(
        name="Points",
        type=S.REWARD_TYPE_POINTS,
        points=catalog_pb2.PointsConfig(asset_id=asset.id, amount=amount),
    )
    return asset, reward


def public_methods(cls) -> dict[str, object]:
    return {n: m for n, m in inspect.getmembers(cls, callable) if not n.startswith("_")}


def test_the_async_client_has_every_method_of_the_sync_one_with_the_same_parameters():
    sync, aio = public_methods(RewardsClient), public_methods(AsyncRewardsClient)
    assert set(sync) == set(aio)
    for name, method in aio.items():
        assert inspect.signature(method).parameters == inspect.signature(sync[name]).parameters
        assert method.__doc__ and sync[name].__doc__, f"{name} has no docstring"
        if name != "watch":  # the one method whose async form is documented on its own
            assert method.__doc__ == sync[name].__doc__, name
            returns = inspect.signature(method).return_annotation
            sync_returns = inspect.signature(sync[name]).return_annotation
            assert typing.get_args(returns) == typing.get_args(sync_returns), name
            assert name.startswith("iter_") or returns == sync_returns, name
        if name.startswith("iter_") or name == "watch":
            assert not inspect.iscoroutinefunction(method), name  # returns an async iterator
        else:
            assert inspect.iscoroutinefunction(method), name
    assert len(aio) > 30  # every RPC of the three services, and the iterators


@pytest.mark.asyncio
async def test_create_get_and_list_rewards(client):
    created = await client.create_reward(product("Mug", category="kitchen", max_total=5))
    assert created.id.startswith("rew_") and created.status == S.REWARD_STATUS_ACTIVE
    assert await client.get_reward(created.id) == created
    page = await client.list_rewards(category="kitchen")
    assert [r.id for r in page.rewards] == [created.id] and page.next_page_token == ""
    updated = await client.update_reward(id=created.id, etag=created.etag, name="Big mug")
    assert updated.name == "Big mug" and updated.etag != created.etag


@pytest.mark.asyncio
async def test_a_create_with_the_same_request_id_returns_the_first_resource(client):
    first = await client.create_reward(product("Once"), request_id="create-once")
    again = await client.create_reward(product("Once"), request_id="create-once")
    assert again.id == first.id
    assert [r.id async for r in client.iter_rewards()] == [first.id]


@pytest.mark.asyncio
async def test_iter_rewards_is_an_async_iterator_over_every_page(client, proxy, program):
    ids = [(await client.create_reward(product(f"R{i}"))).id for i in range(5)]
    async with AsyncRewardsClient(proxy.target, program.api_key) as through_proxy:
        walked = [r.id async for r in through_proxy.iter_rewards(page_size=2)]
        assert walked == ids
        assert len(proxy.requests("ListRewards", catalog_pb2.ListRewardsRequest)) == 3
        # Lazy: stopping after the first item fetched one page only.
        proxy.seen.clear()
        async for _ in through_proxy.iter_rewards(page_size=2):
            break
        assert len(proxy.seen) == 1


@pytest.mark.asyncio
async def test_assets_and_code_pools(client):
    asset = await client.create_asset(code="MILES", name="Miles", scale=0)
    assert await client.get_asset(asset.id) == asset
    assert [a.id async for a in client.iter_assets()] == [asset.id]
    pool = await client.create_code_pool(name="Spring")
    added = await client.add_codes(pool.id, ["A-1", "A-2", "A-1"])
    assert (added.added_count, added.duplicate_count) == (2, 1)
    assert (await client.get_code_pool(pool.id)).available_count == 2
    assert [p.id async for p in client.iter_code_pools()] == [pool.id]


@pytest.mark.asyncio
async def test_typed_errors_with_reason_and_field_violations(client, target, program):
    with pytest.raises(rc.RewardNotFound) as missing:
        await client.get_reward("rew_missing")
    assert missing.value.reason == "REWARD_NOT_FOUND" and missing.value.domain == "rewards.v1"
    assert isinstance(missing.value.__cause__, grpc.aio.AioRpcError)
    with pytest.raises(rc.ValidationFailed) as invalid:
        await client.create_reward(type=S.REWARD_TYPE_POINTS, points=catalog_pb2.PointsConfig())
    assert {"reward.name", "reward.points.asset_id"} <= set(invalid.value.violations)
    async with AsyncRewardsClient(target, "rwk_not_a_key") as stranger:
        with pytest.raises(rc.InvalidCredentials):
            await stranger.list_rewards()
    reader = new_key(program.program_id, "reader").api_key
    async with AsyncRewardsClient(target, reader) as read_only:
        with pytest.raises(rc.InsufficientScope):
            await read_only.create_asset(code="X", name="X")


@pytest.mark.asyncio
async def test_issue_replay_claim_and_balance(client):
    asset, reward = await points_reward(client)
    await client.upsert_participant(external_id="u1", email="u1@example.com")
    first = await client.issue_reward(reward.id, ref(external_id="u1"), request_id="order-1")
    again = await client.issue_reward(reward.id, ref(external_id="u1"), request_id="order-1")
    assert not first.idempotent_replay and again.idempotent_replay
    assert again.issuance.id == first.issuance.id
    with pytest.raises(rc.IdempotencyKeyReused):
        await client.issue_reward(
            reward.id, ref(external_id="u1"), quantity=2, request_id="order-1"
        )
    claimed = await client.claim_issuance(first.issuance.id)
    assert claimed.status == S.ISSUANCE_STATUS_CLAIMED
    assert (await client.get_balance(ref(external_id="u1"), asset.id)).available == "10.00"
    listed = [i.id async for i in client.iter_issuances(participant=ref(external_id="u1"))]
    assert listed == [first.issuance.id]


@pytest.mark.asyncio
async def test_concurrent_issues_with_one_request_id_issue_once(client):
    _, reward = await points_reward(client)
    await client.upsert_participant(external_id="u1")
    answers = await asyncio.gather(
        *(
            client.issue_reward(reward.id, ref(external_id="u1"), request_id="order-9")
            for _ in range(10)
        )
    )
    assert len({a.issuance.id for a in answers}) == 1
    assert sum(not a.idempotent_replay for a in answers) == 1
    assert len([i async for i in client.iter_issuances()]) == 1


@pytest.mark.asyncio
async def test_batch_grant_revoke_and_fulfillment(client):
    asset, reward = await points_reward(client)
    await client.upsert_participant(external_id="u1")
    u1 = ref(external_id="u1")
    batch = await client.batch_issue_rewards(
        [
            {"reward_id": reward.id, "participant": u1},
            {"reward_id": "rew_missing", "participant": u1},
        ]
    )
    ok, failed = batch.results
    assert ok.issuance.request_id  # made by the SDK
    assert isinstance(rc.from_status(failed.error), rc.RewardNotFound)
    granted = await client.grant_custom_reward(u1, amount="5.00", action_code="review")
    assert granted.issuance.type == S.REWARD_TYPE_CUSTOM
    shipped = await client.update_fulfillment(granted.issuance.id, status="SHIPPED")
    assert shipped.fulfillment_status == "SHIPPED"
    revoked = await client.revoke_issuance(ok.issuance.id, reason="test")
    assert revoked.status == S.ISSUANCE_STATUS_REVOKED
    assert (await client.get_issuance(ok.issuance.id)).revoke_reason == "test"
    assert (await client.get_balance(u1, asset.id)).available == "0.00"


@pytest.mark.asyncio
async def test_participants_balances_and_ledger(client):
    asset = await client.create_asset(code="POINTS", name="Points", scale=2)
    ann = await client.upsert_participant(
        external_id="ann", segments=[S.Segment(segment="tier", partition="gold")]
    )
    assert await client.get_participant(ann.id) == ann
    assert await client.get_participant(participant=ann) == ann
    assert [p.id async for p in client.iter_participants(segment="tier")] == [ann.id]
    out = await client.adjust_balance(ann, asset_id=asset.id, delta="7.50", reason="welcome")
    assert out.balance.available == "7.50"
    entries = [e async for e in client.iter_ledger_entries(ann, asset_id=asset.id)]
    assert [e.delta for e in entries] == ["7.50"]
    with pytest.raises(rc.InsufficientBalance):
        await client.adjust_balance(ann, asset_id=asset.id, delta="-100")


# Retries, request ids and deadlines, through the fault proxy.


@pytest.mark.asyncio
async def test_refused_calls_are_retried_with_backoff(flaky, proxy, events):
    proxy.plan("ListRewards", "refuse", "refuse")
    assert list((await flaky.list_rewards()).rewards) == []
    assert len(proxy.requests("ListRewards", catalog_pb2.ListRewardsRequest)) == 3
    assert [(e.method, e.attempt, e.code) for e in events] == [
        ("ListRewards", 1, grpc.StatusCode.UNAVAILABLE),
        ("ListRewards", 2, grpc.StatusCode.UNAVAILABLE),
    ]
    assert all(0 < e.delay <= 0.05 for e in events)


@pytest.mark.asyncio
async def test_gives_up_after_max_attempts_with_a_typed_error(proxy, program):
    proxy.plan("GetReward", *["refuse"] * 5)
    async with AsyncRewardsClient(
        proxy.target, program.api_key, max_attempts=3, initial_backoff=0.01
    ) as c:
        with pytest.raises(rc.Unavailable) as info:
            await c.get_reward("rew_x")
    assert "injected" in info.value.message
    assert len(proxy.requests("GetReward", catalog_pb2.GetRewardRequest)) == 3


@pytest.mark.asyncio
async def test_an_issue_whose_answer_was_lost_issues_once(flaky, proxy, client):
    asset, reward = await points_reward(client)
    await client.upsert_participant(external_id="u1")
    proxy.plan("IssueReward", "drop", "refuse")
    out = await flaky.issue_reward(reward.id, ref(external_id="u1"), quantity=2)
    sent = proxy.requests("IssueReward", issuance_pb2.IssueRewardRequest)
    assert len(sent) == 3 and sent[0].request_id
    assert sent[0] == sent[1] == sent[2]  # one request id, made once, resent by every retry
    assert out.idempotent_replay
    assert [i.id async for i in client.iter_issuances()] == [out.issuance.id]
    assert (await client.get_balance(ref(external_id="u1"), asset.id)).available == "20.00"


@pytest.mark.asyncio
async def test_deadline_exceeded_is_retried_for_reads(flaky, proxy, client, events):
    reward = await client.create_reward(product())
    proxy.plan("GetReward", "hang")
    started = time.monotonic()
    # Long enough for the retry to be answered on a loaded machine; the hang outlasts it.
    assert await flaky.get_reward(reward.id, timeout=RETRIED_DEADLINE) == reward
    assert [e.code for e in events] == [grpc.StatusCode.DEADLINE_EXCEEDED]
    assert time.monotonic() - started >= RETRIED_DEADLINE


@pytest.mark.asyncio
async def test_deadline_exceeded_is_not_retried_for_writes_without_a_request_id(
    flaky, proxy, client, events
):
    reward = await client.create_reward(product())
    proxy.plan("UpdateReward", "hang")
    started = time.monotonic()
    with pytest.raises(rc.DeadlineExceeded):
        await flaky.update_reward(id=reward.id, name="New", timeout=0.3)
    assert time.monotonic() - started < 2  # the deadline, not the proxy, ended the call
    assert len(proxy.seen) == 1 and events == []


@pytest.mark.asyncio
async def test_no_retry_storm_when_the_server_is_down(program):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events: list[RetryEvent] = []
    async with AsyncRewardsClient(
        f"127.0.0.1:{port}",
        program.api_key,
        max_attempts=4,
        initial_backoff=0.01,
        max_backoff=0.01,
        on_retry=events.append,
    ) as down:
        for _ in range(30):
            with pytest.raises(rc.Unavailable):
                await down.list_rewards()
        # Only the first call retried (3 times); then the budget was at half and every call
        # was tried once: 33 attempts for 30 calls instead of 120.
        assert len(events) == 3
        assert down.retry_budget.tokens == 0


@pytest.mark.asyncio
async def test_payment_options_and_the_issuer_filters(client):
    points = await client.create_asset(code="POINTS", name="Points", scale=0)
    reward = await client.create_reward(
        name="Lounge",
        type=S.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="lounge"),
        cost_asset_id=points.id,
        payment_options=[
            catalog_pb2.PaymentOption(id="points", unit_cost="20"),
            catalog_pb2.PaymentOption(
                id="mixed", unit_cost="5", cash_amount="2.50", cash_currency="EUR"
            ),
        ],
    )
    user = await client.upsert_participant(external_id="u1")
    await client.adjust_balance(user, asset_id=points.id, delta="100")
    with pytest.raises(rc.PaymentOptionRequired):
        await client.issue_reward(reward.id, user)
    out = await client.issue_reward(
        reward.id, user, quantity=2, payment_option_id="mixed", source_event_id="evt-9"
    )
    assert out.issuance.cost.amount == "10"
    assert out.issuance.redemption_details.tender.amount == "5.00"
    found = [i.id async for i in client.iter_issuances(source_event_id="evt-9")]
    assert found == [out.issuance.id]
    assert (await client.list_rewards(include_total_size=True)).total_size == 1
