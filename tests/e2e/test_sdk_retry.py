"""SDK retries: backoff on UNAVAILABLE, DEADLINE_EXCEEDED only when idempotent, and one
request_id per method call, resent on every attempt so a retry can never act twice.

A FaultProxy sits between the SDK and the real server: it records every request and can
refuse a call (UNAVAILABLE before the server sees it), drop an answer (the server acts, the
client gets UNAVAILABLE), or hang until the client's deadline passes.
"""

import socket

import grpc
import pytest
import rewards_client as rc
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2
from rewards_client import RetryBudget, RetryEvent, RetryPolicy, RewardsClient, ref

from rewards_service.config import Config
from rewards_service.server import build_server
from tests.conftest import new_program
from tests.e2e.fault_proxy import FaultProxy

# Each attempt's deadline where a hung first attempt is retried.
RETRIED_DEADLINE = 1.0


@pytest.fixture
def proxy(target):
    running = FaultProxy(target)
    yield running
    running.close()


@pytest.fixture
def program():
    return new_program("sdk-retry")


@pytest.fixture
def events() -> list[RetryEvent]:
    return []


@pytest.fixture
def client(proxy, program, events):
    """A client through the proxy, with quick backoff and a short deadline."""
    with RewardsClient(
        proxy.target,
        program.api_key,
        timeout=1.0,
        initial_backoff=0.01,
        max_backoff=0.05,
        on_retry=events.append,
    ) as c:
        yield c


@pytest.fixture
def direct(target, program):
    """A client straight to the server, to check what really happened."""
    with RewardsClient(target, program.api_key) as c:
        yield c


def product(name: str = "Mug") -> catalog_pb2.Reward:
    return catalog_pb2.Reward(
        name=name,
        type=common_pb2.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="sku-1"),
    )


def test_refused_calls_are_retried_with_backoff(client, proxy, events):
    proxy.plan("ListRewards", "refuse", "refuse")
    assert list(client.list_rewards().rewards) == []
    assert len(proxy.requests("ListRewards", catalog_pb2.ListRewardsRequest)) == 3
    assert [(e.method, e.attempt, e.code) for e in events] == [
        ("ListRewards", 1, grpc.StatusCode.UNAVAILABLE),
        ("ListRewards", 2, grpc.StatusCode.UNAVAILABLE),
    ]
    assert all(0 < e.delay <= 0.05 for e in events)
    assert "injected" in events[0].details


def test_gives_up_after_max_attempts(proxy, program):
    proxy.plan("GetReward", *["refuse"] * 5)
    c = RewardsClient(proxy.target, program.api_key, max_attempts=3, initial_backoff=0.01)
    with c, pytest.raises(rc.Unavailable) as info:
        c.get_reward("rew_x")
    assert "injected" in info.value.message
    assert len(proxy.requests("GetReward", catalog_pb2.GetRewardRequest)) == 3


def test_max_attempts_one_never_retries(proxy, program):
    proxy.plan("GetReward", "refuse")
    c = RewardsClient(proxy.target, program.api_key, max_attempts=1)
    with c, pytest.raises(rc.Unavailable):
        c.get_reward("rew_x")
    assert len(proxy.seen) == 1


def test_a_create_whose_answer_was_lost_creates_one_reward(client, proxy, direct):
    proxy.plan("CreateReward", "drop")
    reward = client.create_reward(product("Once"))
    sent = proxy.requests("CreateReward", catalog_pb2.CreateRewardRequest)
    assert len(sent) == 2
    assert sent[0].request_id and sent[0] == sent[1]
    assert [r.id for r in direct.iter_rewards()] == [reward.id]


def test_each_method_call_gets_its_own_request_id(client, proxy):
    client.create_reward(product("A"))
    client.create_reward(product("B"))
    first, second = proxy.requests("CreateReward", catalog_pb2.CreateRewardRequest)
    assert first.request_id != second.request_id


def test_a_given_request_id_is_sent_on_every_attempt(client, proxy):
    proxy.plan("CreateAsset", "drop", "refuse")
    client.create_asset(code="POINTS", name="Points", scale=2, request_id="mine-1")
    sent = proxy.requests("CreateAsset", catalog_pb2.CreateAssetRequest)
    assert [r.request_id for r in sent] == ["mine-1"] * 3


def test_deadline_exceeded_is_retried_for_reads(client, proxy, direct, events):
    reward = direct.create_reward(product())
    proxy.plan("GetReward", "hang")
    # Long enough for the retry to be answered on a loaded machine; the hang outlasts it.
    assert client.get_reward(reward.id, timeout=RETRIED_DEADLINE) == reward
    assert [e.code for e in events] == [grpc.StatusCode.DEADLINE_EXCEEDED]


def test_deadline_exceeded_is_retried_for_writes_with_a_request_id(client, proxy, direct):
    proxy.plan("CreateCodePool", "hang")
    pool = client.create_code_pool(name="Pool", timeout=RETRIED_DEADLINE)
    sent = proxy.requests("CreateCodePool", catalog_pb2.CreateCodePoolRequest)
    assert len(sent) == 2 and sent[0].request_id == sent[1].request_id
    assert [p.id for p in direct.iter_code_pools()] == [pool.id]


@pytest.mark.parametrize("method", ["UpdateReward", "DeleteReward", "AddCodes"])
def test_deadline_exceeded_is_not_retried_for_writes_without_a_request_id(
    client, proxy, direct, events, method
):
    reward = direct.create_reward(product())
    pool = direct.create_code_pool(name="Pool")
    proxy.plan(method, "hang")
    calls = {
        "UpdateReward": lambda: client.update_reward(id=reward.id, name="New", timeout=0.3),
        "DeleteReward": lambda: client.delete_reward(reward.id, timeout=0.3),
        "AddCodes": lambda: client.add_codes(pool.id, ["A"], timeout=0.3),
    }
    with pytest.raises(rc.DeadlineExceeded):
        calls[method]()
    assert len(proxy.seen) == 1 and events == []


def test_errors_with_other_codes_are_not_retried(client, proxy, events):
    with pytest.raises(rc.RewardNotFound):
        client.get_reward("rew_missing")
    with pytest.raises(rc.ValidationFailed) as info:
        client.create_reward(name="")
    assert "reward.name" in info.value.violations  # the rich status survives the proxy
    assert len(proxy.seen) == 2 and events == []


def test_a_server_that_starts_after_the_first_attempt(server, program):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = []

    def start_server(event: RetryEvent) -> None:
        if not started:
            config = Config(listen=f"127.0.0.1:{port}", threads=4)
            started.append(build_server(config))

    try:
        with RewardsClient(
            f"127.0.0.1:{port}",
            program.api_key,
            max_attempts=8,
            initial_backoff=0.1,
            max_backoff=0.5,
            on_retry=start_server,
        ) as c:
            asset = c.create_asset(code="POINTS", name="Points", scale=2)
            assert [a.id for a in c.iter_assets()] == [asset.id]
    finally:
        for running in started:
            running.stop(grace=None)
    assert started


def test_retry_policy_backoff_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=6, initial_backoff=0.1, max_backoff=0.5, multiplier=2)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (5, 0.5)]:
        delays = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# Issuance and participants: the same promise where it matters most.


@pytest.fixture
def issuance_served(direct):
    for probe in (lambda: direct.get_issuance("iss_probe"), lambda: direct.get_participant("p")):
        try:
            probe()
        except rc.Unimplemented:
            pytest.skip("the server does not implement RewardIssuance/Participants yet")
        except rc.RewardsError:
            pass


@pytest.fixture
def points_reward(direct, issuance_served):
    asset = direct.create_asset(code="POINTS", name="Points", scale=2)
    reward = direct.create_reward(
        name="10 points",
        type=common_pb2.REWARD_TYPE_POINTS,
        points=catalog_pb2.PointsConfig(asset_id=asset.id, amount="10.00"),
    )
    direct.upsert_participant(external_id="u1")
    return asset, reward


def test_an_issue_whose_answer_was_lost_issues_once(client, proxy, direct, points_reward):
    asset, reward = points_reward
    proxy.plan("IssueReward", "drop", "refuse")
    out = client.issue_reward(reward.id, ref(external_id="u1"), quantity=2)
    sent = proxy.requests("IssueReward", issuance_pb2.IssueRewardRequest)
    assert len(sent) == 3 and sent[0].request_id
    assert sent[0] == sent[1] == sent[2]
    assert out.idempotent_replay  # the second attempt found the first one's issuance
    assert out.issuance.request_id == sent[0].request_id
    assert [i.id for i in direct.iter_issuances()] == [out.issuance.id]
    assert direct.get_balance(ref(external_id="u1"), asset.id).available == "20.00"


def test_a_batch_whose_answer_was_lost_issues_each_item_once(client, proxy, direct, points_reward):
    _, reward = points_reward
    proxy.plan("BatchIssueRewards", "drop")
    out = client.batch_issue_rewards(
        [{"reward_id": reward.id, "participant": ref(external_id="u1")}] * 3
    )
    sent = proxy.requests("BatchIssueRewards", issuance_pb2.BatchIssueRewardsRequest)
    assert len(sent) == 2 and sent[0] == sent[1]
    ids = [item.request_id for item in sent[0].requests]
    assert all(ids) and len(set(ids)) == 3
    assert all(r.idempotent_replay for r in out.results)
    assert len(list(direct.iter_issuances())) == 3


def test_a_grant_whose_answer_was_lost_grants_once(client, proxy, direct, points_reward):
    proxy.plan("GrantCustomReward", "drop")
    out = client.grant_custom_reward(ref(external_id="u1"), amount="5.00", action_code="review")
    sent = proxy.requests("GrantCustomReward", issuance_pb2.GrantCustomRewardRequest)
    assert len(sent) == 2 and sent[0].client_reference == sent[1].client_reference
    assert out.issuance.request_id == sent[0].client_reference
    assert [i.id for i in direct.iter_issuances()] == [out.issuance.id]


def test_an_adjustment_whose_answer_was_lost_applies_once(client, proxy, direct, points_reward):
    asset, _ = points_reward
    proxy.plan("AdjustBalance", "drop")
    out = client.adjust_balance(ref(external_id="u1"), asset_id=asset.id, delta="7.50")
    sent = proxy.requests("AdjustBalance", participants_pb2.AdjustBalanceRequest)
    assert len(sent) == 2 and sent[0].request_id and sent[0] == sent[1]
    assert out.balance.available == "7.50"
    assert direct.get_balance(ref(external_id="u1"), asset.id).available == "7.50"
    assert len(list(direct.iter_ledger_entries(ref(external_id="u1")))) == 1


def test_no_retry_storm_when_the_server_is_down(program):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events: list[RetryEvent] = []
    with RewardsClient(
        f"127.0.0.1:{port}",
        program.api_key,
        max_attempts=4,
        initial_backoff=0.01,
        max_backoff=0.01,
        on_retry=events.append,
    ) as down:
        for _ in range(30):
            with pytest.raises(rc.Unavailable):
                down.list_rewards()
        # Only the first call retried (3 times); then the budget was at half and every call
        # was tried once: 33 attempts for 30 calls instead of 120.
        assert len(events) == 3
        assert down.retry_budget.tokens == 0


def test_clients_can_share_one_budget(proxy, program):
    budget = RetryBudget(max_tokens=4)
    proxy.plan("GetReward", "refuse", "refuse")
    with (
        RewardsClient(
            proxy.target, program.api_key, initial_backoff=0.01, retry_budget=budget
        ) as first,
        pytest.raises(rc.Unavailable),
    ):
        first.get_reward("rew_x")  # 4 -> 3 (retry) -> 2 (at half: give up)
    assert len(proxy.seen) == 2 and budget.tokens == 2
    proxy.plan("GetReward", "refuse")
    with (
        RewardsClient(
            proxy.target, program.api_key, initial_backoff=0.01, retry_budget=budget
        ) as second,
        pytest.raises(rc.Unavailable),
    ):
        second.get_reward("rew_x")  # the shared budget is spent: no retry
    assert len(proxy.seen) == 3
