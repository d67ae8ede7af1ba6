"""issue_and_claim.py with AsyncRewardsClient: the same flow, awaited, and ten concurrent
sends of one order that still issue once.

    REWARDS_TARGET=127.0.0.1:50051 REWARDS_API_KEY=rwk_... \
        .venv/bin/python clients/python/examples/async_issue_and_claim.py
"""

import asyncio
import os
import uuid

from rewards.v1 import catalog_pb2, common_pb2
from rewards_client import AsyncRewardsClient, ref


async def main() -> None:
    target = os.environ.get("REWARDS_TARGET", "127.0.0.1:50051")
    async with AsyncRewardsClient(target, os.environ["REWARDS_API_KEY"]) as client:
        miles = await client.create_asset(
            code=f"MILES_{uuid.uuid4().hex[:6].upper()}", name="Miles"
        )
        reward = await client.create_reward(
            name="50 miles",
            type=common_pb2.REWARD_TYPE_POINTS,
            points=catalog_pb2.PointsConfig(asset_id=miles.id, amount="50"),
        )
        alice = ref(external_id=f"alice-{uuid.uuid4().hex[:6]}")
        await client.upsert_participant(external_id=alice.external_id)

        # One order sent ten times at once: one issuance, nine replays of it.
        order = f"order-{uuid.uuid4().hex[:8]}"
        answers = await asyncio.gather(
            *(client.issue_reward(reward.id, alice, request_id=order) for _ in range(10))
        )
        first = next(a for a in answers if not a.idempotent_replay)
        replayed = sum(a.idempotent_replay for a in answers) == 9
        print(f"issued {first.issuance.id}; replayed: {replayed}")

        claimed = await client.claim_issuance(first.issuance.id)
        print(f"status: {common_pb2.IssuanceStatus.Name(claimed.status)}")
        print(f"balance: {(await client.get_balance(alice, miles.id)).available} miles")
        issuances = [i async for i in client.iter_issuances(participant=alice)]
        print(f"issuances: {len(issuances)}")


if __name__ == "__main__":
    asyncio.run(main())
