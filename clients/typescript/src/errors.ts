// Typed errors: every failed call rejects with a RewardsError carrying the gRPC code and what
// the server put in google.rpc.Status: the ErrorInfo (reason, domain, metadata) and the
// BadRequest field violations.
import { Code, ConnectError } from "@connectrpc/connect";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { createRegistry } from "@bufbuild/protobuf";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  type BadRequest,
  type ErrorInfo,
} from "./gen/google/rpc/error_details_pb.js";
import type { Status } from "./gen/google/rpc/status_pb.js";

export { Code };

/** The ErrorInfo domain of every error the service sends. */
export const DOMAIN = "rewards.v1";

/** The ErrorInfo reasons the service sends (SPEC section 4). */
export type Reason =
  | "VALIDATION_FAILED"
  | "IMMUTABLE_FIELD"
  | "MISSING_CREDENTIALS"
  | "INVALID_CREDENTIALS"
  | "INSUFFICIENT_SCOPE"
  | "REWARD_NOT_FOUND"
  | "PARTICIPANT_NOT_FOUND"
  | "ISSUANCE_NOT_FOUND"
  | "CODE_POOL_NOT_FOUND"
  | "ASSET_NOT_FOUND"
  | "IDEMPOTENCY_KEY_REUSED"
  | "ASSET_EXISTS"
  | "PARTICIPANT_EXISTS"
  | "CONTENTION"
  | "RATE_LIMITED"
  | "MESSAGE_TOO_LARGE"
  | "ETAG_MISMATCH"
  | "REWARD_NOT_ACTIVE"
  | "REWARD_NOT_AVAILABLE"
  | "NOT_ELIGIBLE"
  | "OUT_OF_STOCK"
  | "PARTICIPANT_LIMIT_REACHED"
  | "CODE_POOL_EXHAUSTED"
  | "INSUFFICIENT_BALANCE"
  | "AMBIGUOUS_PARTICIPANT"
  | "INVALID_STATE_TRANSITION"
  | "INTERNAL";

/** One bad field of a request, from google.rpc.BadRequest. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

const details = createRegistry(ErrorInfoSchema, BadRequestSchema);

/** "INVALID_ARGUMENT" for Code.InvalidArgument: the gRPC name of a code. */
export function codeName(code: Code): string {
  if (code === Code.Canceled) {
    return "CANCELLED";
  }
  return (Code[code] ?? "Unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * A failed call. `reason` is the ErrorInfo reason ("" when the status carried none, e.g. when
 * the server was not reached); `metadata` is ErrorInfo.metadata (e.g. `limit`, `available`,
 * `required`); `fieldViolations` come from google.rpc.BadRequest. A reason this client does not
 * know yet still arrives in `reason`, so new server reasons never break callers.
 */
export class RewardsError extends Error {
  override readonly name = "RewardsError";

  constructor(
    readonly code: Code,
    readonly reason: Reason | (string & {}),
    readonly rawMessage: string,
    readonly metadata: Readonly<Record<string, string>> = {},
    readonly fieldViolations: readonly FieldViolation[] = [],
    readonly domain: string = DOMAIN,
    options?: { cause?: unknown },
  ) {
    super(RewardsError.describe(code, reason, rawMessage, fieldViolations), options);
  }

  /** Field violations as {field: description}. */
  get violations(): Record<string, string> {
    return Object.fromEntries(this.fieldViolations.map((v) => [v.field, v.description]));
  }

  /** Whether this error has the given code and, when given, reason. */
  is(code: Code, reason?: Reason): boolean {
    return this.code === code && (reason === undefined || this.reason === reason);
  }

  private static describe(
    code: Code,
    reason: string,
    message: string,
    violations: readonly FieldViolation[],
  ): string {
    const head = reason ? `${codeName(code)} ${reason}` : codeName(code);
    return [`${head}: ${message}`, ...violations.map((v) => `  ${v.field}: ${v.description}`)].join(
      "\n",
    );
  }
}

function fromDetails(
  code: Code,
  message: string,
  infos: ErrorInfo[],
  badRequests: BadRequest[],
  cause: unknown,
): RewardsError {
  const info = infos[0];
  const violations = badRequests.flatMap((bad) =>
    bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
  );
  return new RewardsError(
    code,
    info?.reason ?? "",
    message,
    { ...info?.metadata },
    violations,
    info?.domain ?? "",
    { cause },
  );
}

/** A typed error from anything a call threw; the original error is its `cause`. */
export function fromConnectError(error: unknown): RewardsError {
  if (error instanceof RewardsError) {
    return error;
  }
  const connect = ConnectError.from(error);
  return fromDetails(
    connect.code,
    connect.rawMessage,
    connect.findDetails(ErrorInfoSchema),
    connect.findDetails(BadRequestSchema),
    connect,
  );
}

/** A typed error from a google.rpc.Status, e.g. the error of a failed BatchIssueRewards item. */
export function fromStatus(status: Status): RewardsError {
  const infos: ErrorInfo[] = [];
  const badRequests: BadRequest[] = [];
  for (const detail of status.details) {
    const unpacked = anyUnpack(detail, details);
    if (unpacked?.$typeName === ErrorInfoSchema.typeName) {
      infos.push(unpacked as ErrorInfo);
    } else if (unpacked?.$typeName === BadRequestSchema.typeName) {
      badRequests.push(unpacked as BadRequest);
    }
  }
  const code = status.code in Code ? (status.code as Code) : Code.Unknown;
  return fromDetails(code, status.message, infos, badRequests, undefined);
}
