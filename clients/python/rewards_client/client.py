"""RewardsClient: one channel, one API key, a method per RPC of every rewards.v1 service."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import grpc

from rewards_client._catalog import CatalogMethods
from rewards_client._events import EventsMethods
from rewards_client._groups import GroupsMethods
from rewards_client._issuance import IssuanceMethods
from rewards_client._participants import ParticipantsMethods
from rewards_client._registry import RegistryMethods
from rewards_client._transport import Options, channel_credentials, channel_options
from rewards_client.retry import RetryBudget, RetryEvent, RetryPolicy


class RewardsClient(
    CatalogMethods,
    IssuanceMethods,
    ParticipantsMethods,
    EventsMethods,
    GroupsMethods,
    RegistryMethods,
):
    """A client of the rewards service. Thread-safe; use one per process and close it.

        with RewardsClient("localhost:50051", api_key) as client:
            reward = client.get_reward("rew_...")

    Every method takes keyword arguments, returns the generated message, and raises a
    RewardsError subclass on failure. `timeout` is the deadline of each attempt in seconds;
    UNAVAILABLE is retried for every call and DEADLINE_EXCEEDED for idempotent ones, at most
    `max_attempts` tries in all, with exponential backoff and jitter, while the client's
    `retry_budget` allows (a RetryBudget of its own unless given one to share). `on_retry` is
    told about each retry (e.g. to log it). private_key/certificate_chain present a client
    certificate (mTLS); giving any certificate implies tls.
    """

    def __init__(
        self,
        target: str,
        api_key: str | None,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout: float | None = 10.0,
        max_attempts: int = 4,
        initial_backoff: float = 0.1,
        max_backoff: float = 2.0,
        retry_budget: RetryBudget | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        options: Options = (),
    ) -> None:
        policy = RetryPolicy(
            max_attempts=max_attempts, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        settings = channel_options(initial_backoff, max_backoff, options)
        credentials = channel_credentials(tls, root_certificates, private_key, certificate_chain)
        if credentials is None:
            channel = grpc.insecure_channel(target, options=settings)
        else:
            channel = grpc.secure_channel(target, credentials, options=settings)
        super().__init__(
            channel,
            api_key,
            timeout=timeout,
            retry=policy,
            budget=retry_budget,
            on_retry=on_retry,
        )
        self.target = target

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel, e.g. for stubs of other services on the same connection."""
        return self._channel

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> RewardsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RewardsClient({self.target!r})"
