"""Retries with exponential backoff and jitter, within a retry budget.

UNAVAILABLE is retried for every call: the server was not reached, or it answered that it
changed nothing. DEADLINE_EXCEEDED is retried only for idempotent calls (reads, and writes
that carry a request_id), because a write without one may have happened before the deadline.

The budget is gRPC's retry throttling (gRFC A6): a client holds up to `max_tokens` tokens;
each attempt that fails with UNAVAILABLE or DEADLINE_EXCEEDED takes one, every other answer
gives back `token_ratio`, and while `max_tokens / 2` or fewer are left nothing is retried. So
when the server is down every call is tried once, not `max_attempts` times, and retries come
back as the server answers again.

The decisions are the pure functions below; the sync and the async client each run them in a
loop of their own, one sleeping and one awaiting.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from rewards_client.errors import call_status

_T = TypeVar("_T")

ALWAYS_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE})
RETRIED_IF_IDEMPOTENT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED})
# Answers that say the server is unreachable or overloaded: these spend the retry budget.
TRANSIENT = ALWAYS_RETRIED | RETRIED_IF_IDEMPOTENT


@dataclass(frozen=True)
class RetryPolicy:
    """At most max_attempts tries; before try n+1 wait a random 50-100% of
    min(max_backoff, initial_backoff * multiplier ** (n - 1)) seconds."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and the multiplier >= 1")

    def retries(self, code: grpc.StatusCode, *, idempotent: bool) -> bool:
        """Whether a failure with `code` may be retried at all."""
        return code in ALWAYS_RETRIED or (idempotent and code in RETRIED_IF_IDEMPOTENT)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class RetryBudget:
    """A token bucket shared by every call of one client (thread-safe).

    Starts full. `record(transient=True)` takes a token (never below zero), any other answer
    adds `token_ratio` (never above `max_tokens`); retries are allowed while more than half of
    `max_tokens` are left. With the defaults (10, 0.1) a server that fails every call gets at
    most about 5 retries in all, after which each call is tried once until it has answered
    about 50 calls again.
    """

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        if max_tokens <= 0 or token_ratio <= 0:
            raise ValueError("max_tokens and token_ratio must be > 0")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self._tokens = max_tokens
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        """Tokens left now."""
        return self._tokens

    def record(self, *, transient: bool) -> None:
        """Count one attempt's answer: a transient failure, or anything else."""
        with self._lock:
            if transient:
                self._tokens = max(0.0, self._tokens - 1)
            else:
                self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def allows_retry(self) -> bool:
        """Whether a failed attempt may be tried again now."""
        return self._tokens > self.max_tokens / 2

    def __repr__(self) -> str:
        return f"RetryBudget(tokens={self._tokens:g}/{self.max_tokens:g})"


@dataclass(frozen=True)
class RetryEvent:
    """Told to the client's on_retry hook before it waits and tries again."""

    method: str
    attempt: int
    code: grpc.StatusCode
    details: str
    delay: float


def next_retry(
    error: grpc.RpcError,
    attempt: int,
    policy: RetryPolicy,
    budget: RetryBudget,
    *,
    method: str,
    idempotent: bool,
) -> RetryEvent | None:
    """After attempt number `attempt` (from 1) failed with `error`: the retry to make, with
    its delay, or None to give up and raise. Records the failure in the budget."""
    status = call_status(error)
    if status is None:  # not an answer from gRPC at all
        return None
    code, details = status
    budget.record(transient=code in TRANSIENT)
    if attempt >= policy.max_attempts or not policy.retries(code, idempotent=idempotent):
        return None
    if not budget.allows_retry():
        return None
    return RetryEvent(method, attempt, code, details, policy.backoff(attempt))


def call_with_retry(
    attempt: Callable[[], _T],
    policy: RetryPolicy,
    *,
    method: str,
    idempotent: bool,
    budget: RetryBudget | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run `attempt` until it succeeds, fails for good, runs out of attempts or of budget.

    `attempt` must send the very same request each time: that is what makes a retried
    write with a request_id safe. Without a budget, this call gets one of its own.
    """
    budget = budget or RetryBudget()
    number = 1
    while True:
        try:
            result = attempt()
        except grpc.RpcError as error:
            retry = next_retry(error, number, policy, budget, method=method, idempotent=idempotent)
            if retry is None:
                raise
            if on_retry is not None:
                on_retry(retry)
            sleep(retry.delay)
            number += 1
        else:
            budget.record(transient=False)
            return result


async def call_with_retry_async(
    attempt: Callable[[], Awaitable[_T]],
    policy: RetryPolicy,
    *,
    method: str,
    idempotent: bool,
    budget: RetryBudget | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> _T:
    """call_with_retry for a coroutine: awaits each attempt and each backoff."""
    budget = budget or RetryBudget()
    number = 1
    while True:
        try:
            result = await attempt()
        except grpc.RpcError as error:
            retry = next_retry(error, number, policy, budget, method=method, idempotent=idempotent)
            if retry is None:
                raise
            if on_retry is not None:
                on_retry(retry)
            await sleep(retry.delay)
            number += 1
        else:
            budget.record(transient=False)
            return result
