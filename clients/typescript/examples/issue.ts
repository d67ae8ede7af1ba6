// Issue a points reward once, replay it, read it back and look at the balance.
//   REWARDS_TARGET=127.0.0.1:50051 REWARDS_API_KEY=rwk_... node dist/examples/issue.js
import { randomUUID } from "node:crypto";
import { Code, IssuanceStatus, RewardsClient, RewardType, RewardsError, ref } from "../src/index.js";

const apiKey = process.env.REWARDS_API_KEY;
if (!apiKey) {
  console.error("set REWARDS_API_KEY to an admin key");
  process.exit(2);
}
const client = new RewardsClient({
  target: process.env.REWARDS_TARGET ?? "127.0.0.1:50051",
  apiKey,
  timeoutMs: 10_000,
});
try {
  const suffix = randomUUID().slice(0, 6).toUpperCase();
  const miles = await client.catalog.createAsset({ asset: { code: `MILES_${suffix}`, name: "Miles" } });
  const reward = await client.catalog.createReward({
    reward: {
      name: "50 miles",
      type: RewardType.POINTS,
      config: { case: "points", value: { assetId: miles.id, amount: "50" } },
    },
  });
  const bob = ref({ externalId: `bob-${suffix.toLowerCase()}` });
  await client.participants.upsertParticipant({
    participant: { externalId: `bob-${suffix.toLowerCase()}` },
  });

  const order = `order-${randomUUID()}`; // one business event, one request id
  const first = await client.issuance.issueReward({ rewardId: reward.id, participant: bob, requestId: order });
  const again = await client.issuance.issueReward({ rewardId: reward.id, participant: bob, requestId: order });
  console.log(`issued ${first.issuance?.id}; replayed: ${again.idempotentReplay}`);

  const claimed = await client.issuance.claimIssuance({ id: first.issuance!.id });
  console.log(`status: ${IssuanceStatus[claimed.status]}`);
  const balance = await client.participants.getBalance({ participant: bob, assetId: miles.id });
  console.log(`balance: ${balance.available} miles`);

  try {
    await client.issuance.getIssuance({ id: "iss_missing" });
  } catch (error) {
    if (error instanceof RewardsError && error.is(Code.NotFound)) {
      console.log(`not found: ${error.reason}`);
    } else {
      throw error;
    }
  }
} finally {
  client.close();
}
