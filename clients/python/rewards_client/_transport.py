"""The one way every method calls the server: API key, deadline, retries, typed errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from rewards.v1 import catalog_pb2_grpc, issuance_pb2_grpc, participants_pb2_grpc

from rewards_client.errors import from_rpc_error
from rewards_client.retry import RetryEvent, RetryPolicy, call_with_retry

_R = TypeVar("_R")
_T = TypeVar("_T")
_P = TypeVar("_P", bound="_Page")


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


class Transport:
    def __init__(
        self,
        channel: grpc.Channel,
        api_key: str | None,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        on_retry: Callable[[RetryEvent], None] | None,
    ) -> None:
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout = timeout
        self._retry = retry
        self._on_retry = on_retry
        self._catalog = catalog_pb2_grpc.RewardCatalogStub(channel)
        self._issuance = issuance_pb2_grpc.RewardIssuanceStub(channel)
        self._participants = participants_pb2_grpc.ParticipantsStub(channel)

    def _invoke(
        self,
        rpc: Callable[..., _R],
        request: Message,
        *,
        idempotent: bool,
        timeout: float | None,
    ) -> _R:
        """Send `request` (the same message on every attempt) and return the response."""
        deadline = self._timeout if timeout is None else timeout

        def attempt() -> _R:
            return rpc(request, timeout=deadline, metadata=self._metadata)

        try:
            return call_with_retry(
                attempt,
                self._retry,
                method=type(request).__name__.removesuffix("Request"),
                idempotent=idempotent,
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
