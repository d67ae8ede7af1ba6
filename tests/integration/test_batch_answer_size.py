"""A BatchIssueRewards answer never passes the message limit: an item whose result would not
fit is refused with MESSAGE_TOO_LARGE before it commits, so a reported failure did nothing,
and the rest of the answer is still sent."""

import grpc
from rewards.v1 import issuance_pb2

from rewards_service.api.issuance import MAX_ANSWER_BYTES
from rewards_service.server import MAX_MESSAGE_BYTES
from tests import factories as f
from tests.helpers import make_api
from tests.integration.test_issuance_lifecycle import error_reason, item

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_the_answer_limit_is_the_servers_send_limit():
    assert MAX_MESSAGE_BYTES - 1024 < MAX_ANSWER_BYTES <= MAX_MESSAGE_BYTES


def test_items_past_the_message_limit_are_refused_before_they_commit(admin, target):
    reward, user = f.reward(admin), f.participant(admin)
    # One issuance that answers with ~108 KB: its full fulfillment history.
    big = f.issue(admin, reward.id, user.id, request_id="big", fulfillment_status="S0").issuance
    for n in range(1, 100):
        admin.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=big.id, status=f"S{n}", note="n" * 1000)
        )
    replay = item(reward.id, user.id, request_id="big", fulfillment_status="S0")
    fresh = item(reward.id, user.id)  # no request_id: a retry would issue again
    requests = [fresh, *[replay] * 90, fresh, fresh]
    fresh_at = {0, 91, 92}  # ~9.7 MB of replays alone
    options = [("grpc.max_receive_message_length", 2 * MAX_MESSAGE_BYTES)]
    with grpc.insecure_channel(target, options=options) as channel:
        response = make_api(channel, admin.program_id, admin.key).issuance.BatchIssueRewards(
            issuance_pb2.BatchIssueRewardsRequest(requests=requests)
        )
    assert response.ByteSize() <= MAX_MESSAGE_BYTES
    results = list(response.results)
    assert len(results) == len(requests)
    ok = [r.HasField("issuance") for r in results]
    # The replays (all of one size) fit up to a point; none after it.
    fitted = ok.index(False)
    assert 60 < fitted < 90 and not any(ok[fitted:91])
    for result in results:
        if not result.HasField("issuance"):
            code, reason, metadata, _ = error_reason(result.error)
            assert (code, reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                "MESSAGE_TOO_LARGE",
            )
            assert metadata == {"limit": str(MAX_ANSWER_BYTES)}
    assert all(r.idempotent_replay for r in results[1:fitted])
    # Exactly what was answered as issued was issued: the big one and the fresh items
    # reported as issued (the first always; the last two when room was left for them).
    issued = [r.issuance.id for i, r in enumerate(results) if ok[i] and i in fresh_at]
    assert ok[0] and not results[0].idempotent_replay
    stored = f.all_issuances(admin, participant=f.ref(user.id))
    assert sorted(i.id for i in stored) == sorted([big.id, *issued])
    assert f.get_reward(admin, reward.id).redeemed_count == 1 + len(issued)
