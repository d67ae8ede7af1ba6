"""RewardsClient: one channel, one API key, a method per RPC of every rewards.v1 service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import grpc

from rewards_client._catalog import CatalogMethods
from rewards_client._issuance import IssuanceMethods
from rewards_client._participants import ParticipantsMethods
from rewards_client.retry import RetryEvent, RetryPolicy


def _channel(
    target: str,
    *,
    tls: bool,
    root_certificates: bytes | None,
    private_key: bytes | None,
    certificate_chain: bytes | None,
    options: Sequence[tuple[str, Any]],
) -> grpc.Channel:
    if tls or root_certificates or private_key or certificate_chain:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)


class RewardsClient(CatalogMethods, IssuanceMethods, ParticipantsMethods):
    """A client of the rewards service. Thread-safe; use one per process and close it.

        with RewardsClient("localhost:50051", api_key) as client:
            reward = client.get_reward("rew_...")

    Every method takes keyword arguments, returns the generated message, and raises a
    RewardsError subclass on failure. `timeout` is the deadline of each attempt in seconds;
    UNAVAILABLE is retried for every call and DEADLINE_EXCEEDED for idempotent ones, at most
    `max_attempts` tries in all, with exponential backoff and jitter. `on_retry` is told about
    each retry (e.g. to log it). private_key/certificate_chain present a client certificate
    (mTLS); giving any certificate implies tls.
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
        on_retry: Callable[[RetryEvent], None] | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        policy = RetryPolicy(
            max_attempts=max_attempts, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        # Reconnect about as fast as we retry: gRPC's default first reconnect backoff (1s)
        # would make the retries fail fast against a channel still waiting to reconnect.
        reconnect = [
            ("grpc.initial_reconnect_backoff_ms", max(1, int(initial_backoff * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(1, int(max_backoff * 1000))),
        ]
        channel = _channel(
            target,
            tls=tls,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
            options=[*reconnect, *options],
        )
        super().__init__(channel, api_key, timeout=timeout, retry=policy, on_retry=on_retry)
        self.target = target

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def close(self) -> None:
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
