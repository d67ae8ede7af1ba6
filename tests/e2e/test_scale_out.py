"""Three stateless server processes sharing one database behind client-side round robin:
exactly-once and caps hold across them."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from rewards.v1 import catalog_pb2, common_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import failure_of, make_api, spawn_server, wait_for_line


@pytest.fixture(scope="module")
def replicas(store):
    servers = [spawn_server(store) for _ in range(3)]
    target = "ipv4:" + ",".join(s.address for s in servers)
    channel = grpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
    yield servers, channel
    channel.close()
    for server in servers:
        assert server.stop() == 0


def test_round_robin_replicas_keep_caps_and_exactly_once(replicas):
    servers, channel = replicas
    issued = new_program("replicas")
    api = make_api(channel, issued.program_id, issued.api_key)
    points = f.asset(api)
    capped = f.reward(api, max_total=30)
    credited = f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="1"))
    user = f.participant(api)

    def attempt(i):
        try:
            if i % 2:
                return f.issue(api, capped.id, user.id), None
            return f.issue(api, credited.id, user.id, request_id="one-key"), None
        except grpc.RpcError as error:
            return None, failure_of(error)

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(attempt, range(180)))

    capped_ok = [r for r, e in results if r and r.issuance.reward_id == capped.id]
    credited_ok = [r for r, e in results if r and r.issuance.reward_id == credited.id]
    failures = [e for _, e in results if e]
    assert len(capped_ok) == 30
    assert {e.reason for e in failures} == {"OUT_OF_STOCK"} and len(failures) == 60
    assert len({r.issuance.id for r in credited_ok}) == 1
    assert sum(not r.idempotent_replay for r in credited_ok) == 1
    assert f.balance(api, user.id, points.id).available == "1.00"
    reward = api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=capped.id))
    assert reward.redeemed_count == 30
    assert reward.status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
    # Round robin really spread the calls: every replica served some.
    for server in servers:
        wait_for_line(server, "/rewards.v1.RewardIssuance/IssueReward")
