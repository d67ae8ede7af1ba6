// The one way every method calls the server: gRPC over HTTP/2 (plaintext or TLS), the API key,
// a deadline per attempt, request ids, retries, typed errors.
import { randomUUID } from "node:crypto";
import type { SecureClientSessionOptions } from "node:http2";
import {
  clone,
  create,
  isMessage,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  ConnectError,
  createClient,
  type CallOptions,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { fromConnectError } from "./errors.js";
import {
  backoffMs,
  DEFAULT_RETRY_POLICY,
  idempotent,
  retries,
  RetryBudget,
  type RetryEvent,
  type RetryPolicy,
} from "./retry.js";
import { RewardCatalog } from "./gen/rewards/v1/catalog_pb.js";
import { RewardIssuance } from "./gen/rewards/v1/issuance_pb.js";
import { Participants } from "./gen/rewards/v1/participants_pb.js";
import { ParticipantGroups } from "./gen/rewards/v1/groups_pb.js";
import { ProgramRegistry } from "./gen/rewards/v1/programs_pb.js";
import type { ParticipantRef, ParticipantRefSchema } from "./gen/rewards/v1/common_pb.js";

/** TLS settings; PEM strings or buffers. Any of them, or `true`, turns TLS on. */
export interface TlsOptions {
  /** Trust these CAs instead of the system's. */
  ca?: string | Buffer | undefined;
  /** With `key`: a client certificate (mTLS). */
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** The name to check the server's certificate against, when not the target's host. */
  serverName?: string | undefined;
}

export interface RewardsClientOptions {
  /** "host:port", or a URL ("http://host:port", "https://host:port"). */
  target: string;
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string | undefined;
  /** TLS on (`true` or settings) or off (the default: plaintext HTTP/2). */
  tls?: boolean | TlsOptions | undefined;
  /** Deadline of each attempt in milliseconds; a call's own `timeoutMs` wins. */
  timeoutMs?: number | undefined;
  /** How many tries and how long between them (see retry.ts); `{maxAttempts: 1}` for none. */
  retry?: Partial<RetryPolicy> | undefined;
  /** Share one budget between clients, or tune it; each client has its own by default. */
  retryBudget?: RetryBudget | undefined;
  /** Told of each retry before its backoff, e.g. to log it. */
  onRetry?: ((event: RetryEvent) => void) | undefined;
  /** Connect interceptors, run on every attempt inside the client's own (after the key). */
  interceptors?: Interceptor[] | undefined;
}

/** A request id for one business event: a random UUID. */
export function newRequestId(): string {
  return randomUUID();
}

const REF_CASES = new Set(["id", "externalId", "email", "mobile"]);

/** A ParticipantRef naming a participant by exactly one of its identifiers. */
export function ref(
  by: { id: string } | { externalId: string } | { email: string } | { mobile: string },
): MessageInitShape<typeof ParticipantRefSchema> {
  const entries = Object.entries(by).filter(([, value]) => value !== undefined);
  const [key, value] = entries[0] ?? [];
  if (entries.length !== 1 || !REF_CASES.has(key ?? "") || typeof value !== "string") {
    throw new TypeError("ref() takes exactly one of id, externalId, email or mobile");
  }
  const ref = { case: key, value } as ParticipantRef["ref"];
  return { ref } as MessageInitShape<typeof ParticipantRefSchema>;
}

/** The field of each request that is its idempotency key, when it has one. */
const ID_FIELDS = ["requestId", "clientReference"] as const;

/**
 * The message to send, made once per method call: every retry sends this same message, so a
 * request id made here is reused by every attempt. A message passed in is copied, not changed.
 */
function prepare<I extends DescMessage>(schema: I, request: MessageInitShape<I>): MessageShape<I> {
  const message = isMessage(request, schema)
    ? clone(schema, request as MessageShape<I>)
    : create(schema, request);
  fillRequestId(schema, message);
  // BatchIssueRewards: each item is an IssueRewardRequest with its own request_id.
  const items = schema.fields.find((f) => f.localName === "requests" && f.fieldKind === "list");
  if (items?.fieldKind === "list" && items.listKind === "message") {
    for (const item of (message as Record<string, unknown>)[items.localName] as MessageShape<
      typeof items.message
    >[]) {
      fillRequestId(items.message, item);
    }
  }
  return message;
}

function fillRequestId(schema: DescMessage, message: object): void {
  const fields = message as Record<string, unknown>;
  for (const name of ID_FIELDS) {
    const field = schema.fields.find((f) => f.localName === name);
    if (field?.fieldKind === "scalar" && !fields[name]) {
      fields[name] = newRequestId();
    }
  }
}

function baseUrl(target: string, tls: boolean): string {
  return target.includes("://") ? target : `${tls ? "https" : "http"}://${target}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A client of the three rewards.v1 services. `catalog`, `issuance` and `participants` have one
 * method per RPC, named as in the proto (`issuance.issueReward`), taking the request as a plain
 * object or a message and resolving to the response message. Every rejection is a
 * RewardsError. Make one per process, share it, and `close()` it at the end.
 */
export class RewardsClient {
  readonly catalog: Client<typeof RewardCatalog>;
  readonly issuance: Client<typeof RewardIssuance>;
  readonly participants: Client<typeof Participants>;
  readonly groups: Client<typeof ParticipantGroups>;
  readonly registry: Client<typeof ProgramRegistry>;
  /** The retry budget this client's calls share. */
  readonly retryBudget: RetryBudget;
  /** The underlying Connect transport, for other services on the same server. */
  readonly transport: Transport;

  private readonly sessions: Http2SessionManager;
  private readonly policy: RetryPolicy;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(options: RewardsClientOptions) {
    const tlsOptions: TlsOptions = typeof options.tls === "object" ? options.tls : {};
    const tls =
      options.tls === true ||
      typeof options.tls === "object" ||
      options.target.startsWith("https://");
    const url = baseUrl(options.target, tls);
    const nodeOptions: SecureClientSessionOptions = {};
    if (tlsOptions.ca !== undefined) nodeOptions.ca = tlsOptions.ca;
    if (tlsOptions.cert !== undefined) nodeOptions.cert = tlsOptions.cert;
    if (tlsOptions.key !== undefined) nodeOptions.key = tlsOptions.key;
    if (tlsOptions.serverName !== undefined) nodeOptions.servername = tlsOptions.serverName;
    this.sessions = new Http2SessionManager(url, undefined, nodeOptions);

    const apiKey = options.apiKey;
    const auth: Interceptor = (next) => (req) => {
      if (apiKey) {
        req.header.set("authorization", `Bearer ${apiKey}`);
      }
      return next(req);
    };
    this.transport = createGrpcTransport({
      baseUrl: url,
      sessionManager: this.sessions,
      interceptors: [auth, ...(options.interceptors ?? [])],
      ...(options.timeoutMs !== undefined ? { defaultTimeoutMs: options.timeoutMs } : {}),
    });
    const given = Object.entries(options.retry ?? {}).filter(([, value]) => value !== undefined);
    this.policy = { ...DEFAULT_RETRY_POLICY, ...Object.fromEntries(given) };
    if (this.policy.maxAttempts < 1) {
      throw new RangeError("retry.maxAttempts must be at least 1");
    }
    this.retryBudget = options.retryBudget ?? new RetryBudget();
    this.onRetry = options.onRetry;

    this.catalog = this.wrap(RewardCatalog);
    this.issuance = this.wrap(RewardIssuance);
    this.participants = this.wrap(Participants);
    this.groups = this.wrap(ParticipantGroups);
    this.registry = this.wrap(ProgramRegistry);
  }

  /** Closes the HTTP/2 connection; calls still in flight fail with CANCELLED. */
  close(): void {
    this.sessions.abort();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private wrap<S extends DescService>(service: S): Client<S> {
    const raw = createClient(service, this.transport) as Record<
      string,
      (request: unknown, options?: CallOptions) => Promise<unknown>
    >;
    const wrapped: Record<string, unknown> = {};
    for (const method of service.methods) {
      if (method.methodKind !== "unary") {
        throw new TypeError(`${method.parent.typeName}.${method.name} is not unary`);
      }
      const unary = method as DescMethodUnary;
      const send = raw[method.localName]!;
      wrapped[method.localName] = (request: MessageInitShape<DescMessage>, options?: CallOptions) =>
        this.call(unary, send, request, options);
    }
    return wrapped as Client<S>;
  }

  private async call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    send: (request: unknown, options?: CallOptions) => Promise<unknown>,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>> {
    const fullName = `${method.parent.typeName}.${method.name}`;
    const isIdempotent = idempotent(fullName);
    let message: MessageShape<I>;
    try {
      message = prepare(method.input, request);
    } catch (error) {
      throw fromConnectError(error);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const response = (await send(message, options)) as MessageShape<O>;
        this.retryBudget.record(undefined);
        return response;
      } catch (error) {
        const failure = ConnectError.from(error);
        this.retryBudget.record(failure.code);
        const again =
          attempt < this.policy.maxAttempts &&
          retries(failure.code, isIdempotent) &&
          this.retryBudget.allowsRetry() &&
          !options?.signal?.aborted;
        if (!again) {
          throw fromConnectError(failure);
        }
        const delayMs = backoffMs(this.policy, attempt);
        this.onRetry?.({
          method: fullName,
          attempt,
          code: failure.code,
          message: failure.rawMessage,
          delayMs,
        });
        try {
          await sleep(delayMs, options?.signal);
        } catch {
          throw fromConnectError(failure);
        }
      }
    }
  }
}
