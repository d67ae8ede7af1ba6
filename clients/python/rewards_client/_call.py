"""What a client method sends, written once for RewardsClient and AsyncRewardsClient.

Each method of both clients is a plain function in _catalog.py, _issuance.py, ... with the
method's parameters and docstring, returning a Call (one unary RPC: its request and the type
of its answer) or Pages (every item of a paged listing). _methods.py turns such a function
into a blocking method and into an awaited one, so only the waiting differs between clients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

_M = TypeVar("_M")


class Response(Protocol):
    @classmethod
    def FromString(cls: type[_M], s: bytes) -> _M: ...


class Page(Response, Protocol):
    @property
    def next_page_token(self) -> str: ...


_R = TypeVar("_R", bound=Response)
_P = TypeVar("_P", bound=Page)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Call(Generic[_R]):
    """One unary RPC: `request`, decoded as `response` when it answers. `timeout` is the
    caller's deadline (None: the client's). `idempotent=False` marks a write that may act
    twice when retried after a deadline (no request_id, and a repeat is not a no-op)."""

    request: Message
    response: type[_R]
    timeout: float | None = None
    idempotent: bool = True

    @property
    def method(self) -> str:
        """The RPC's name: GetRewardRequest -> "GetReward"."""
        return type(self.request).__name__.removesuffix("Request")

    @property
    def path(self) -> str:
        """The RPC's path on the wire: "/rewards.v1.RewardCatalog/GetReward"."""
        return rpc_path(self.request.DESCRIPTOR)


@dataclass(frozen=True)
class Pages(Generic[_P, _T]):
    """Every item of a listing: `page(token)` is the Call for one page, `items(page)` its
    items; pages are fetched until next_page_token is empty."""

    page: Callable[[str], Call[_P]]
    items: Callable[[_P], Iterable[_T]]


@functools.cache
def rpc_path(request: Descriptor) -> str:
    """The path of the RPC that takes `request` messages, from the services of its file."""
    for service in request.file.services_by_name.values():
        for method in service.methods:
            if method.input_type.full_name == request.full_name:
                return f"/{service.full_name}/{method.name}"
    raise LookupError(f"no RPC of {request.file.name} takes {request.full_name}")
