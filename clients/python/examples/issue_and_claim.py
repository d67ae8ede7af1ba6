"""Issue a points reward exactly once, claim it, and read the balance.

    REWARDS_TARGET=127.0.0.1:50051 REWARDS_API_KEY=rwk_... \
        .venv/bin/python clients/python/examples/issue_and_claim.py
"""

import os
import uuid

from rewards.v1 import catalog_pb2, common_pb2
from rewards_client import RewardsClient, ref


def main() -> None:
    target = os.environ.get("REWARDS_TARGET", "127.0.0.1:50051")
    with RewardsClient(target, os.environ["REWARDS_API_KEY"]) as client:
        miles = client.create_asset(code=f"MILES_{uuid.uuid4().hex[:6].upper()}", name="Miles")
        reward = client.create_reward(
            name="50 miles",
            type=common_pb2.REWARD_TYPE_POINTS,
            points=catalog_pb2.PointsConfig(asset_id=miles.id, amount="50"),
        )
        alice = ref(external_id=f"alice-{uuid.uuid4().hex[:6]}")
        client.upsert_participant(external_id=alice.external_id, email="alice@example.com")

        # One order, one issuance: a retry with the same request_id replays the original.
        order = f"order-{uuid.uuid4().hex[:8]}"
        first = client.issue_reward(reward.id, alice, request_id=order)
        again = client.issue_reward(reward.id, alice, request_id=order)
        print(f"issued {first.issuance.id}; replayed: {again.idempotent_replay}")

        claimed = client.claim_issuance(first.issuance.id)
        print(f"status: {common_pb2.IssuanceStatus.Name(claimed.status)}")
        print(f"balance: {client.get_balance(alice, miles.id).available} miles")
        print(f"issuances: {len(list(client.iter_issuances(participant=alice)))}")


if __name__ == "__main__":
    main()
