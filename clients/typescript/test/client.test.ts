// The client against a real rewards-server: issue, replay, read back, request ids, errors, TLS.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  Participants,
  RewardCatalog,
  RewardIssuance,
  RewardType,
  RewardsClient,
  RewardsError,
  IssuanceStatus,
  IssueRewardRequestSchema,
  fromStatus,
  ref,
  type RetryEvent,
} from "../src/index.js";
import { startServer, waitForExit, type Server } from "./server.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function unique(prefix: string): string {
  return `${prefix}${randomUUID().slice(0, 8).toUpperCase()}`;
}

/** The error a call rejected with; fails the test when it resolved. */
async function failure(call: Promise<unknown>): Promise<RewardsError> {
  try {
    const result = await call;
    assert.fail(`expected the call to fail, it returned ${JSON.stringify(result)}`);
  } catch (error) {
    assert.ok(error instanceof RewardsError, `not a RewardsError: ${String(error)}`);
    return error;
  }
}

describe("against a real server", () => {
  let server: Server;
  let client: RewardsClient;

  /** An asset, a points reward crediting 50 of it, and a participant. */
  async function fixture(): Promise<{ assetId: string; rewardId: string; externalId: string }> {
    const asset = await client.catalog.createAsset({ asset: { code: unique("MILES_"), name: "Miles" } });
    const reward = await client.catalog.createReward({
      reward: {
        name: "50 miles",
        type: RewardType.POINTS,
        config: { case: "points", value: { assetId: asset.id, amount: "50" } },
      },
    });
    const externalId = unique("alice-").toLowerCase();
    await client.participants.upsertParticipant({ participant: { externalId } });
    return { assetId: asset.id, rewardId: reward.id, externalId };
  }

  before(async () => {
    server = await startServer();
    client = new RewardsClient({ target: server.address, apiKey: server.adminKey, timeoutMs: 10_000 });
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  test("issue, replay the same request id, read it back", async () => {
    const { assetId, rewardId, externalId } = await fixture();
    const requestId = `order-${randomUUID()}`;
    const request = { rewardId, participant: ref({ externalId }), requestId };

    const first = await client.issuance.issueReward(request);
    assert.equal(first.idempotentReplay, false);
    assert.match(first.issuance!.id, /^iss_/);
    assert.equal(first.issuance!.status, IssuanceStatus.CONFIRMED);
    assert.equal(first.issuance!.requestId, requestId);

    const again = await client.issuance.issueReward(request);
    assert.equal(again.idempotentReplay, true);
    assert.equal(again.issuance!.id, first.issuance!.id);

    const read = await client.issuance.getIssuance({ id: first.issuance!.id });
    assert.equal(read.id, first.issuance!.id);
    assert.equal(read.rewardId, rewardId);
    assert.equal(read.requestId, requestId);
    assert.equal(read.credit?.amount, "50");

    // Issued once: 50, not 100.
    const balance = await client.participants.getBalance({ participant: ref({ externalId }), assetId });
    assert.equal(balance.available, "50");
  });

  test("a request id is made when none is given, and a message passed in is not changed", async () => {
    const { rewardId, externalId } = await fixture();
    const one = await client.issuance.issueReward({ rewardId, participant: ref({ externalId }) });
    const two = await client.issuance.issueReward({ rewardId, participant: ref({ externalId }) });
    assert.match(one.issuance!.requestId, UUID);
    assert.match(two.issuance!.requestId, UUID);
    assert.notEqual(one.issuance!.requestId, two.issuance!.requestId);
    assert.notEqual(one.issuance!.id, two.issuance!.id);
    assert.equal(two.idempotentReplay, false);

    const message = create(IssueRewardRequestSchema, { rewardId, participant: ref({ externalId }) });
    const three = await client.issuance.issueReward(message);
    assert.match(three.issuance!.requestId, UUID);
    assert.equal(message.requestId, "");

    const created = await client.catalog.createAsset({ asset: { code: unique("GEMS_"), name: "Gems" } });
    assert.match(created.id, /^ast_/);
  });

  test("a retry after a lost answer resends the same request id and replays", async () => {
    const { rewardId, externalId } = await fixture();
    const seen: string[] = [];
    // The first answer of IssueReward is dropped after the server acted on the call.
    const loseFirstAnswer: Interceptor = (next) => async (req) => {
      if (req.method.name !== "IssueReward") {
        return next(req);
      }
      seen.push((req.message as unknown as { requestId: string }).requestId);
      const res = await next(req);
      if (seen.length === 1) {
        throw new ConnectError("connection lost", Code.Unavailable);
      }
      return res;
    };
    const retries: RetryEvent[] = [];
    const flaky = new RewardsClient({
      target: server.address,
      apiKey: server.adminKey,
      interceptors: [loseFirstAnswer],
      retry: { initialBackoffMs: 10 },
      onRetry: (event) => retries.push(event),
    });
    try {
      const issued = await flaky.issuance.issueReward({ rewardId, participant: ref({ externalId }) });
      assert.equal(seen.length, 2);
      assert.match(seen[0]!, UUID);
      assert.equal(seen[1], seen[0]);
      assert.equal(issued.idempotentReplay, true);
      assert.equal(issued.issuance!.requestId, seen[0]);
      assert.equal(retries.length, 1);
      assert.equal(retries[0]!.method, "rewards.v1.RewardIssuance.IssueReward");
      assert.equal(retries[0]!.code, Code.Unavailable);

      const list = await client.issuance.listIssuances({ participant: ref({ externalId }) });
      assert.equal(list.issuances.length, 1, "issued once");
    } finally {
      flaky.close();
    }
  });

  test("a bad request: VALIDATION_FAILED with every field violation", async () => {
    const error = await failure(
      client.catalog.createReward({
        reward: { type: RewardType.POINTS, config: { case: "points", value: { amount: "-1" } } },
      }),
    );
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.reason, "VALIDATION_FAILED");
    assert.equal(error.domain, "rewards.v1");
    assert.ok(error.is(Code.InvalidArgument, "VALIDATION_FAILED"));
    const fields = error.fieldViolations.map((v) => v.field).sort();
    assert.deepEqual(fields, ["reward.name", "reward.points.amount", "reward.points.asset_id"]);
    assert.ok(error.violations["reward.name"]);
    assert.match(error.message, /^INVALID_ARGUMENT VALIDATION_FAILED: /);
    assert.ok(error.cause instanceof ConnectError);
  });

  test("not found carries its reason", async () => {
    const error = await failure(client.issuance.getIssuance({ id: "iss_0000000000000000000000" }));
    assert.equal(error.code, Code.NotFound);
    assert.equal(error.reason, "ISSUANCE_NOT_FOUND");
  });

  test("no key: MISSING_CREDENTIALS; a wrong key: INVALID_CREDENTIALS", async () => {
    const keyless = new RewardsClient({ target: server.address });
    const wrong = new RewardsClient({ target: server.address, apiKey: "rwk_not_a_key" });
    try {
      const missing = await failure(keyless.catalog.listRewards({}));
      assert.equal(missing.code, Code.Unauthenticated);
      assert.equal(missing.reason, "MISSING_CREDENTIALS");
      assert.equal(missing.domain, "rewards.v1");

      const invalid = await failure(wrong.catalog.listRewards({}));
      assert.equal(invalid.code, Code.Unauthenticated);
      assert.equal(invalid.reason, "INVALID_CREDENTIALS");
    } finally {
      keyless.close();
      wrong.close();
    }
  });

  test("a failed batch item decodes with fromStatus; each item gets its own request id", async () => {
    const { rewardId, externalId } = await fixture();
    const batch = await client.issuance.batchIssueRewards({
      requests: [
        { rewardId, participant: ref({ externalId }) },
        { rewardId: "rew_0000000000000000000000", participant: ref({ externalId }) },
      ],
    });
    assert.equal(batch.results.length, 2);
    assert.match(batch.results[0]!.issuance!.requestId, UUID);
    const error = fromStatus(batch.results[1]!.error!);
    assert.equal(error.code, Code.NotFound);
    assert.equal(error.reason, "REWARD_NOT_FOUND");
  });

  test("ref() takes exactly one identifier", () => {
    assert.deepEqual(ref({ email: "a@example.com" }), { ref: { case: "email", value: "a@example.com" } });
    assert.throws(() => ref({} as { id: string }), TypeError);
    assert.throws(() => ref({ id: "par_1", externalId: "x" } as { id: string }), TypeError);
    assert.throws(() => ref({ name: "x" } as unknown as { id: string }), TypeError);
  });

  test("every RPC of the three services is a method of the client", () => {
    for (const [service, methods] of [
      [RewardCatalog, client.catalog],
      [RewardIssuance, client.issuance],
      [Participants, client.participants],
    ] as const) {
      assert.ok(service.methods.length > 0);
      for (const method of service.methods) {
        assert.equal(typeof (methods as Record<string, unknown>)[method.localName], "function", method.name);
      }
    }
  });

  test("the example runs", async () => {
    const example = fileURLToPath(new URL("../examples/issue.js", import.meta.url));
    const child = spawn(process.execPath, [example], {
      env: { ...process.env, REWARDS_TARGET: server.address, REWARDS_API_KEY: server.adminKey },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    assert.equal(await waitForExit(child), 0, out);
    assert.match(out, /replayed: true/);
    assert.match(out, /status: CLAIMED/);
    assert.match(out, /balance: 50 miles/);
    assert.match(out, /not found: ISSUANCE_NOT_FOUND/);
  });
});

describe("over TLS", () => {
  let dir: string;
  let server: Server;

  before(async (t) => {
    dir = mkdtempSync(join(tmpdir(), "rewards-ts-tls-"));
    // A self-signed certificate for 127.0.0.1, trusted by the client as its CA.
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
      "-subj", "/CN=rewards test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ], { stdio: "ignore" });
    server = await startServer(["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a call over TLS with the server's CA", async () => {
    const client = new RewardsClient({
      target: server.address,
      apiKey: server.adminKey,
      tls: { ca: readFileSync(join(dir, "cert.pem")) },
    });
    try {
      const asset = await client.catalog.createAsset({ asset: { code: unique("TLS_"), name: "TLS" } });
      assert.match(asset.id, /^ast_/);
    } finally {
      client.close();
    }
  });

  test("a certificate the client does not trust is refused", async () => {
    const client = new RewardsClient({
      target: server.address,
      apiKey: server.adminKey,
      tls: true,
      retry: { maxAttempts: 1 },
    });
    try {
      const error = await failure(client.catalog.listAssets({}));
      // Connect reports a TLS handshake failure as INTERNAL, and it is not retried.
      assert.equal(error.code, Code.Internal);
      assert.equal(error.reason, "");
      assert.match(error.message, /self-signed certificate/);
    } finally {
      client.close();
    }
  });
});
