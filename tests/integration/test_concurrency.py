"""Invariants under concurrent load: many threads against two server processes sharing one
database (the suite's backend: a SQLite file, or PostgreSQL)."""

import itertools
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from rewards.v1 import catalog_pb2, common_pb2, groups_pb2, issuance_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import failure_of, make_api, spawn_server
from tests.integration.test_groups import add, adjust, assert_group_ledger_consistent

THREADS = 32


@pytest.fixture(scope="module")
def two_servers(store):
    servers = [spawn_server(store, "--threads", "16") for _ in range(2)]
    channels = [grpc.insecure_channel(s.address) for s in servers]
    yield channels
    for channel in channels:
        channel.close()
    for server in servers:
        assert server.stop() == 0


@pytest.fixture
def program(channel, two_servers):
    """(setup api on the in-process server, apis spread over the two server processes)."""
    issued = new_program("concurrency")
    setup = make_api(channel, issued.program_id, issued.api_key)
    workers = [make_api(ch, issued.program_id, issued.api_key) for ch in two_servers]
    return setup, workers


def hammer(workers, calls):
    """Run each call(api) on a thread pool, alternating servers; returns (successes, failures)."""
    apis = itertools.cycle(workers)
    jobs = [(next(apis), call) for call in calls]

    def run(job):
        api, call = job
        try:
            return call(api), None
        except grpc.RpcError as error:
            return None, failure_of(error)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, jobs))
    return [r for r, _ in results if r is not None], [e for _, e in results if e is not None]


def test_max_total_is_never_exceeded(program):
    setup, workers = program
    reward = f.reward(setup, max_total=50)
    users = [f.participant(setup) for _ in range(20)]
    calls = [(lambda api, u=users[i % 20]: f.issue(api, reward.id, u.id)) for i in range(200)]
    ok, failed = hammer(workers, calls)
    assert len(ok) == 50
    assert len(failed) == 150
    assert {e.reason for e in failed} == {"OUT_OF_STOCK"}
    got = setup.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward.id))
    assert got.redeemed_count == 50
    assert got.status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    listed = setup.issuance.ListIssuances(
        issuance_pb2.ListIssuancesRequest(reward_id=reward.id, page_size=1000)
    )
    assert len(listed.issuances) == 50


def test_unique_codes_are_never_issued_twice(program):
    setup, workers = program
    codes = [f"CODE-{i:03d}" for i in range(60)]
    pool = f.code_pool(setup, codes)
    reward = f.reward(
        setup,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        max_per_participant=1000,
    )
    user = f.participant(setup)
    ok, failed = hammer(workers, [lambda api: f.issue(api, reward.id, user.id)] * 100)
    drawn = [r.issuance.coupon_code for r in ok]
    assert len(drawn) == 60
    assert sorted(drawn) == sorted(codes)
    assert len(failed) == 40
    assert {e.reason for e in failed} == {"CODE_POOL_EXHAUSTED"}
    stats = setup.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool.id))
    assert (stats.available_count, stats.issued_count, stats.total_count) == (0, 60, 60)


def test_one_request_id_makes_one_issuance(program):
    setup, workers = program
    points = f.asset(setup)
    reward = f.reward(setup, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"))
    user = f.participant(setup)
    ok, failed = hammer(
        workers,
        [lambda api: f.issue(api, reward.id, user.id, request_id="same-key")] * 50,
    )
    assert failed == []
    assert len({r.issuance.id for r in ok}) == 1
    assert sum(r.idempotent_replay for r in ok) == 49
    assert f.balance(setup, user.id, points.id).available == "5.00"
    f.assert_ledger_consistent(setup, user.id, points.id)


def test_balance_never_goes_negative(program):
    setup, workers = program
    points = f.asset(setup)
    reward = f.reward(setup, cost_asset_id=points.id, unit_cost="10")
    user = f.participant(setup)
    f.fund(setup, user.id, points.id, "100")
    ok, failed = hammer(workers, [lambda api: f.issue(api, reward.id, user.id)] * 30)
    assert len(ok) == 10
    assert {e.reason for e in failed} == {"INSUFFICIENT_BALANCE"}
    assert len(failed) == 20
    assert f.balance(setup, user.id, points.id).available == "0.00"
    f.assert_ledger_consistent(setup, user.id, points.id)


def test_payment_options_debit_only_their_points_and_never_overdraw(program):
    setup, workers = program
    points = f.asset(setup, scale=0)
    reward = f.reward(
        setup,
        redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        payment_options=[
            catalog_pb2.PaymentOption(id="ratio", conversion_ratio="0.44"),
            catalog_pb2.PaymentOption(
                id="mixed", unit_cost="1", cash_amount="10.00", cash_currency="USD"
            ),
        ],
    )
    user = f.participant(setup)
    f.fund(setup, user.id, points.id, "10000")
    calls = [
        (lambda api, o=option: f.issue(api, reward.id, user.id, amount="1000", payment_option_id=o))
        for option in ("ratio", "mixed") * 15
    ]
    ok, failed = hammer(workers, calls)
    assert {e.reason for e in failed} <= {"INSUFFICIENT_BALANCE"}
    assert len(ok) + len(failed) == 30 and ok and failed
    spent = 0
    for out in ok:
        issued = out.issuance
        mixed = issued.redemption_details.payment_option_id == "mixed"
        assert issued.cost.amount == ("1000" if mixed else "2273")
        assert issued.redemption_details.HasField("tender") == mixed
        spent += int(issued.cost.amount)
    left = int(f.balance(setup, user.id, points.id).available)
    assert left == 10000 - spent >= 0
    # Balances only fall, so each refusal needed more than is left now.
    assert all(left < int(e.metadata["required"]) for e in failed)
    f.assert_ledger_consistent(setup, user.id, points.id)


def test_one_participant_gets_one_unique_code_however_many_ask_at_once(program):
    setup, workers = program
    pool = f.code_pool(setup, [f"ONE-{i:02d}" for i in range(40)])
    reward = f.reward(setup, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    user = f.participant(setup)
    ok, failed = hammer(workers, [lambda api: f.issue(api, reward.id, user.id)] * 40)
    assert len(ok) == 1
    assert len(failed) == 39
    assert {e.reason for e in failed} == {"PARTICIPANT_LIMIT_REACHED"}
    stats = setup.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool.id))
    assert (stats.available_count, stats.issued_count) == (39, 1)


def test_a_group_balance_never_goes_negative_under_spends_of_its_members(program):
    setup, workers = program
    points = f.asset(setup)
    reward = f.reward(setup, cost_asset_id=points.id, unit_cost="10")
    home = setup.groups.CreateGroup(
        groups_pb2.CreateGroupRequest(group=groups_pb2.Group(name="Home"))
    )
    members = [f.participant(setup) for _ in range(2)]
    for member in members:
        add(setup, home.id, member.id)
        f.fund(setup, member.id, points.id, "100")  # never touched: the group pays
    adjust(setup, home.id, points.id, "100")
    calls = [
        (
            lambda api, m=members[i % 2]: f.issue(
                api, reward.id, m.id, pay_from=groups_pb2.PAY_FROM_GROUP
            )
        )
        for i in range(30)
    ]
    ok, failed = hammer(workers, calls)
    assert len(ok) == 10
    assert {e.reason for e in failed} == {"INSUFFICIENT_BALANCE"}
    assert {r.issuance.cost_group_id for r in ok} == {home.id}
    got = setup.groups.GetGroupBalance(
        groups_pb2.GetGroupBalanceRequest(group_id=home.id, asset_id=points.id)
    )
    assert (got.available, got.lifetime_spent) == ("0.00", "100.00")
    assert_group_ledger_consistent(setup, home.id, points.id)
    for member in members:
        assert f.balance(setup, member.id, points.id).available == "100.00"
