"""The retry budget (gRPC's retry throttling) and the retry decisions both SDK clients share.

The failures are real grpc.aio.AioRpcError values, as a channel raises them when the server
is down; the e2e suites (test_sdk_retry.py, test_sdk_async.py) do the same against a port
nobody listens on.
"""

import asyncio

import grpc
import grpc.aio
import pytest
from rewards_client import RetryBudget, RetryPolicy
from rewards_client.retry import call_with_retry, call_with_retry_async, next_retry

POLICY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.01)


def failure(code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> grpc.aio.AioRpcError:
    empty = grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, empty, empty, details="connection refused")


class DownServer:
    """Every attempt fails with UNAVAILABLE; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self) -> None:
        self.attempts += 1
        raise failure()

    async def async_call(self) -> None:
        self()


def test_a_budget_starts_full_and_allows_retries():
    budget = RetryBudget()
    assert budget.tokens == 10 and budget.allows_retry()


def test_each_transient_failure_takes_a_token_and_half_empty_stops_retries():
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(4):
        budget.record(transient=True)
    assert budget.tokens == 6 and budget.allows_retry()
    budget.record(transient=True)
    assert budget.tokens == 5 and not budget.allows_retry()  # at half: no more retries


def test_tokens_stay_between_zero_and_the_maximum():
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(50):
        budget.record(transient=True)
    assert budget.tokens == 0
    for _ in range(500):
        budget.record(transient=False)
    assert budget.tokens == 10


def test_answers_refill_the_budget_until_retries_come_back():
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(10):
        budget.record(transient=True)
    answers = 0
    while not budget.allows_retry():
        budget.record(transient=False)
        answers += 1
    assert answers == 51  # 0 -> 5.1 tokens in steps of 0.1


def test_a_budget_refuses_nonsense():
    with pytest.raises(ValueError):
        RetryBudget(max_tokens=0)
    with pytest.raises(ValueError):
        RetryBudget(token_ratio=0)


def test_next_retry_decides_from_code_attempts_and_budget():
    budget = RetryBudget()
    event = next_retry(failure(), 1, POLICY, budget, method="GetReward", idempotent=True)
    assert event is not None
    assert (event.method, event.attempt, event.code) == (
        "GetReward",
        1,
        grpc.StatusCode.UNAVAILABLE,
    )
    assert event.details == "connection refused" and 0 < event.delay <= 0.01
    # The last attempt, a code never retried, DEADLINE_EXCEEDED on a write without request_id.
    assert next_retry(failure(), 4, POLICY, budget, method="m", idempotent=True) is None
    not_found = failure(grpc.StatusCode.NOT_FOUND)
    assert next_retry(not_found, 1, POLICY, budget, method="m", idempotent=True) is None
    deadline = failure(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert next_retry(deadline, 1, POLICY, budget, method="m", idempotent=False) is None
    assert next_retry(deadline, 1, POLICY, budget, method="m", idempotent=True) is not None


def test_only_transient_failures_spend_the_budget():
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    next_retry(failure(grpc.StatusCode.NOT_FOUND), 1, POLICY, budget, method="m", idempotent=True)
    assert budget.tokens == 10
    next_retry(failure(), 1, POLICY, budget, method="m", idempotent=True)
    next_retry(
        failure(grpc.StatusCode.DEADLINE_EXCEEDED), 1, POLICY, budget, method="m", idempotent=False
    )
    assert budget.tokens == 8


def test_no_retry_storm_when_the_server_is_down():
    down, budget, calls = DownServer(), RetryBudget(), 100
    for _ in range(calls):
        with pytest.raises(grpc.RpcError):
            call_with_retry(
                down, POLICY, method="m", idempotent=True, budget=budget, sleep=lambda _: None
            )
    # The first call spends 4 tokens on 3 retries; from the second on, the budget is at half
    # and every call is tried once: 3% more attempts than calls, not 300%.
    assert down.attempts == calls + 3
    assert budget.tokens == 0


def test_no_retry_storm_when_the_server_is_down_async():
    down, budget, calls = DownServer(), RetryBudget(), 100

    async def no_wait(_: float) -> None:
        return None

    async def main() -> None:
        for _ in range(calls):
            with pytest.raises(grpc.RpcError):
                await call_with_retry_async(
                    down.async_call,
                    POLICY,
                    method="m",
                    idempotent=True,
                    budget=budget,
                    sleep=no_wait,
                )

    asyncio.run(main())
    assert down.attempts == calls + 3


def test_without_a_budget_every_call_would_retry_to_the_limit():
    # The counterpart of the storm test: each call with a fresh budget retries fully.
    down = DownServer()
    for _ in range(10):
        with pytest.raises(grpc.RpcError):
            call_with_retry(down, POLICY, method="m", idempotent=True, sleep=lambda _: None)
    assert down.attempts == 10 * POLICY.max_attempts
