"""The one way every method calls the server: API key, deadline, retries, typed errors.

Transport (sync) and AsyncTransport (grpc.aio) differ only in how they open the channel and
wait; the constructor, the metadata, the deadline, the retry decisions (retry.py) and the
error mapping (errors.py) are the same code for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from rewards_client._call import Call, Page, Response
from rewards_client.errors import from_rpc_error
from rewards_client.retry import (
    RetryBudget,
    RetryEvent,
    RetryPolicy,
    call_with_retry,
    call_with_retry_async,
)

_Channel = TypeVar("_Channel", grpc.Channel, grpc.aio.Channel)
_R = TypeVar("_R", bound=Response)
_T = TypeVar("_T")
_P = TypeVar("_P", bound=Page)

Options = Sequence[tuple[str, Any]]


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


class _Client(ABC, Generic[_Channel]):
    """What each call needs besides its request, the same for both clients: the channel,
    the metadata, the deadline and the retries. Subclasses open the channel and send."""

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
        settings = channel_options(initial_backoff, max_backoff, options)
        credentials = channel_credentials(tls, root_certificates, private_key, certificate_chain)
        self._channel: _Channel = self._open(target, credentials, settings)
        self.target = target
        self._metadata = auth_metadata(api_key)
        self._timeout = timeout
        self._retry = RetryPolicy(
            max_attempts=max_attempts, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        self._budget = retry_budget or RetryBudget()
        self._on_retry = on_retry
        # One callable per RPC, made on first use as a generated stub makes them.
        self._callables: dict[str, Any] = {}

    @abstractmethod
    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, settings: list[Any]
    ) -> _Channel: ...

    @property
    def retry_budget(self) -> RetryBudget:
        """The retry budget this client's calls share."""
        return self._budget

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    def _callable(self, call: Call[_R]) -> Any:
        """The channel's callable for call's RPC, made once as a generated stub makes it."""
        rpc = self._callables.get(call.path)
        if rpc is None:
            rpc = self._callables[call.path] = self._channel.unary_unary(
                call.path,
                request_serializer=type(call.request).SerializeToString,
                response_deserializer=call.response.FromString,
                _registered_method=True,  # type: ignore[call-arg]  # missing from grpc's stubs
            )
        return rpc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"


class Transport(_Client[grpc.Channel]):
    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, settings: list[Any]
    ) -> grpc.Channel:
        if credentials is None:
            return grpc.insecure_channel(target, options=settings)
        return grpc.secure_channel(target, credentials, options=settings)

    def _send(self, call: Call[_R]) -> _R:
        """Send call.request (the same message on every attempt) and return the answer."""
        rpc: grpc.UnaryUnaryMultiCallable[Message, _R] = self._callable(call)
        deadline = self._deadline(call.timeout)

        def attempt() -> _R:
            return rpc(call.request, timeout=deadline, metadata=self._metadata)

        try:
            return call_with_retry(
                attempt,
                self._retry,
                method=call.method,
                idempotent=call.idempotent,
                budget=self._budget,
                on_retry=self._on_retry,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error


class AsyncTransport(_Client[grpc.aio.Channel]):
    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, settings: list[Any]
    ) -> grpc.aio.Channel:
        if credentials is None:
            return grpc.aio.insecure_channel(target, options=settings)
        return grpc.aio.secure_channel(target, credentials, options=settings)

    async def _send(self, call: Call[_R]) -> _R:
        """Send call.request (the same message on every attempt) and return the answer."""
        rpc: grpc.aio.UnaryUnaryMultiCallable[Message, _R] = self._callable(call)
        deadline = self._deadline(call.timeout)

        def attempt() -> Awaitable[_R]:
            return rpc(call.request, timeout=deadline, metadata=self._metadata)

        try:
            return await call_with_retry_async(
                attempt,
                self._retry,
                method=call.method,
                idempotent=call.idempotent,
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
