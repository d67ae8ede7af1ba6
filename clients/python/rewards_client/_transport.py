"""The one way every method calls the server: API key, deadline, retries, typed errors.

Transport (sync) and AsyncTransport (grpc.aio) differ only in how they wait; the channel
settings, the metadata, the deadline, which calls are idempotent (_build.py), the retry
decisions (retry.py) and the error mapping (errors.py) are the same code for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from rewards.v1 import (
    catalog_pb2_grpc,
    groups_pb2_grpc,
    issuance_pb2_grpc,
    participants_pb2_grpc,
    programs_pb2_grpc,
)

from rewards_client._build import idempotent, method_name
from rewards_client.errors import from_rpc_error
from rewards_client.retry import (
    RetryBudget,
    RetryEvent,
    RetryPolicy,
    call_with_retry,
    call_with_retry_async,
)

_Req = TypeVar("_Req", bound=Message)
_R = TypeVar("_R")
_T = TypeVar("_T")
_P = TypeVar("_P", bound="_Page")

Options = Sequence[tuple[str, Any]]


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


def channel_options(initial_backoff: float, max_backoff: float, options: Options) -> list[Any]:
    """The caller's channel options after ours: reconnect about as fast as we retry. gRPC's
    default first reconnect backoff (1 s) would make the retries fail fast against a channel
    still waiting to reconnect."""
    return [
        ("grpc.initial_reconnect_backoff_ms", max(1, int(initial_backoff * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(max_backoff * 1000))),
        *options,
    ]


def channel_credentials(
    tls: bool,
    root_certificates: bytes | None,
    private_key: bytes | None,
    certificate_chain: bytes | None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials when asked for or when any certificate is given; None for plaintext."""
    if tls or root_certificates or private_key or certificate_chain:
        return grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
    return None


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


class _Settings:
    """What each call needs besides its request, the same for both transports."""

    def __init__(
        self,
        api_key: str | None,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        budget: RetryBudget | None,
        on_retry: Callable[[RetryEvent], None] | None,
    ) -> None:
        self._metadata = auth_metadata(api_key)
        self._timeout = timeout
        self._retry = retry
        self._budget = budget or RetryBudget()
        self._on_retry = on_retry

    @property
    def retry_budget(self) -> RetryBudget:
        """The retry budget this client's calls share."""
        return self._budget

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout


class Transport(_Settings):
    def __init__(
        self,
        channel: grpc.Channel,
        api_key: str | None,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        budget: RetryBudget | None,
        on_retry: Callable[[RetryEvent], None] | None,
    ) -> None:
        super().__init__(api_key, timeout=timeout, retry=retry, budget=budget, on_retry=on_retry)
        self._channel = channel
        self._catalog = catalog_pb2_grpc.RewardCatalogStub(channel)
        self._issuance = issuance_pb2_grpc.RewardIssuanceStub(channel)
        self._participants = participants_pb2_grpc.ParticipantsStub(channel)
        self._groups = groups_pb2_grpc.ParticipantGroupsStub(channel)
        self._registry = programs_pb2_grpc.ProgramRegistryStub(channel)

    def _invoke(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[_Req, _R],
        request: _Req,
        *,
        timeout: float | None,
    ) -> _R:
        """Send `request` (the same message on every attempt) and return the response."""
        deadline = self._deadline(timeout)

        def attempt() -> _R:
            return rpc(request, timeout=deadline, metadata=self._metadata)

        try:
            return call_with_retry(
                attempt,
                self._retry,
                method=method_name(request),
                idempotent=idempotent(request),
                budget=self._budget,
                on_retry=self._on_retry,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error


class AsyncTransport(_Settings):
    def __init__(
        self,
        channel: grpc.aio.Channel,
        api_key: str | None,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        budget: RetryBudget | None,
        on_retry: Callable[[RetryEvent], None] | None,
    ) -> None:
        super().__init__(api_key, timeout=timeout, retry=retry, budget=budget, on_retry=on_retry)
        self._channel = channel
        self._catalog = catalog_pb2_grpc.RewardCatalogStub(channel)
        self._issuance = issuance_pb2_grpc.RewardIssuanceStub(channel)
        self._participants = participants_pb2_grpc.ParticipantsStub(channel)
        self._groups = groups_pb2_grpc.ParticipantGroupsStub(channel)
        self._registry = programs_pb2_grpc.ProgramRegistryStub(channel)

    async def _invoke(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Req, _R],
        request: _Req,
        *,
        timeout: float | None,
    ) -> _R:
        """Send `request` (the same message on every attempt) and return the response."""
        deadline = self._deadline(timeout)

        def attempt() -> Awaitable[_R]:
            return rpc(request, timeout=deadline, metadata=self._metadata)

        try:
            return await call_with_retry_async(
                attempt,
                self._retry,
                method=method_name(request),
                idempotent=idempotent(request),
                budget=self._budget,
                on_retry=self._on_retry,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error


def walk(fetch: Callable[[str], _P], items: Callable[[_P], Iterable[_T]]) -> Iterator[_T]:
    """Every item of every page: fetch(page_token) until next_page_token is empty."""
    token = ""
    while True:
        page = fetch(token)
        yield from items(page)
        token = page.next_page_token
        if not token:
            return


async def awalk(
    fetch: Callable[[str], Awaitable[_P]], items: Callable[[_P], Iterable[_T]]
) -> AsyncIterator[_T]:
    """walk() for an async fetch: every item of every page, one page awaited at a time."""
    token = ""
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        token = page.next_page_token
        if not token:
            return
