"""Retries with exponential backoff and jitter.

UNAVAILABLE is retried for every call: the server was not reached, or it answered that it
changed nothing. DEADLINE_EXCEEDED is retried only for idempotent calls (reads, and writes
that carry a request_id), because a write without one may have happened before the deadline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

_T = TypeVar("_T")

ALWAYS_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE})
RETRIED_IF_IDEMPOTENT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED})


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
        return code in ALWAYS_RETRIED or (idempotent and code in RETRIED_IF_IDEMPOTENT)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class RetryEvent:
    """Told to the client's on_retry hook before it waits and tries again."""

    method: str
    attempt: int
    code: grpc.StatusCode
    details: str
    delay: float


def call_with_retry(
    attempt: Callable[[], _T],
    policy: RetryPolicy,
    *,
    method: str,
    idempotent: bool,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run `attempt` until it succeeds, fails for good, or runs out of attempts.

    `attempt` must send the very same request each time: that is what makes a retried
    write with a request_id safe.
    """
    number = 1
    while True:
        try:
            return attempt()
        except grpc.RpcError as error:
            if not isinstance(error, grpc.Call) or number >= policy.max_attempts:
                raise
            code = error.code()
            if not policy.retries(code, idempotent=idempotent):
                raise
            delay = policy.backoff(number)
            if on_retry is not None:
                on_retry(RetryEvent(method, number, code, error.details() or "", delay))
            sleep(delay)
            number += 1
