// Retries with exponential backoff and jitter, within a retry budget, as the Python SDK does.
//
// UNAVAILABLE is retried for every call: the server was not reached, or it answered that it
// changed nothing. DEADLINE_EXCEEDED is retried only for idempotent calls (reads, and writes
// that carry a request_id), because a write without one may have happened before the deadline.
// The budget is gRPC's retry throttling (gRFC A6), so a server that is down gets each call
// once, not maxAttempts times.
import { Code } from "@connectrpc/connect";

/** At most maxAttempts tries; before try n+1 wait a random 50-100% of
 * min(maxBackoffMs, initialBackoffMs * multiplier ** (n - 1)). */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  multiplier: 2,
};

const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded]);

/** Writes that may act twice when retried after a deadline: they carry no request_id and a
 * repeat is not a no-op. Every other method is safe to send again. */
const NOT_IDEMPOTENT = new Set([
  "rewards.v1.RewardCatalog.UpdateReward",
  "rewards.v1.RewardCatalog.DeleteReward",
  "rewards.v1.RewardCatalog.AddCodes",
  "rewards.v1.RewardIssuance.UpdateFulfillment",
]);

/** Whether sending the method's request twice has the effect of sending it once. */
export function idempotent(methodFullName: string): boolean {
  return !NOT_IDEMPOTENT.has(methodFullName);
}

export function retries(code: Code, isIdempotent: boolean): boolean {
  return code === Code.Unavailable || (isIdempotent && code === Code.DeadlineExceeded);
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(
    policy.maxBackoffMs,
    policy.initialBackoffMs * policy.multiplier ** (attempt - 1),
  );
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * A token bucket shared by every call of one client. Starts full; an attempt that fails with
 * UNAVAILABLE or DEADLINE_EXCEEDED takes a token, any other answer gives back `tokenRatio`;
 * retries are allowed while more than half of `maxTokens` are left.
 */
export class RetryBudget {
  private current: number;

  constructor(
    readonly maxTokens = 10,
    readonly tokenRatio = 0.1,
  ) {
    if (maxTokens <= 0 || tokenRatio <= 0) {
      throw new RangeError("maxTokens and tokenRatio must be > 0");
    }
    this.current = maxTokens;
  }

  /** Tokens left now. */
  get tokens(): number {
    return this.current;
  }

  record(code: Code | undefined): void {
    if (code !== undefined && TRANSIENT.has(code)) {
      this.current = Math.max(0, this.current - 1);
    } else {
      this.current = Math.min(this.maxTokens, this.current + this.tokenRatio);
    }
  }

  allowsRetry(): boolean {
    return this.current > this.maxTokens / 2;
  }
}

/** Told to the client's onRetry hook before it waits and tries again. */
export interface RetryEvent {
  readonly method: string;
  readonly attempt: number;
  readonly code: Code;
  readonly message: string;
  readonly delayMs: number;
}
