"""Client methods from the functions that say what each method sends (see _call.py).

sync_method(spec) is the RewardsClient method that sends spec's Call and waits for the answer
(or walks spec's Pages); async_method(spec) is the AsyncRewardsClient one that awaits it (or
is an async iterator). Both take spec's name, parameters and docstring, so help() and
inspect show the same method on both clients; only the return annotation says how it waits.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import GenericAlias
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from rewards_client._call import Call, Page, Pages, Response
from rewards_client._transport import AsyncTransport, Transport, awalk, walk

_A = ParamSpec("_A")
_R = TypeVar("_R", bound=Response)
_P = TypeVar("_P", bound=Page)
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def sync_method(spec: Callable[_A, Call[_R]]) -> Callable[Concatenate[Transport, _A], _R]: ...


@overload
def sync_method(
    spec: Callable[_A, Pages[_P, _T]],
) -> Callable[Concatenate[Transport, _A], Iterator[_T]]: ...


def sync_method(spec: Callable[_A, Any]) -> Callable[Concatenate[Transport, _A], Any]:
    answer = _answer(spec)
    if typing.get_origin(answer) is Pages:

        def iterate(self: Transport, /, *args: _A.args, **kwargs: _A.kwargs) -> Any:
            pages = spec(*args, **kwargs)
            return walk(lambda token: self._send(pages.page(token)), pages.items)

        return _shown_as(iterate, spec, GenericAlias(Iterator, typing.get_args(answer)[1]))

    def send(self: Transport, /, *args: _A.args, **kwargs: _A.kwargs) -> Any:
        return self._send(spec(*args, **kwargs))

    return _shown_as(send, spec, typing.get_args(answer)[0])


@overload
def async_method(
    spec: Callable[_A, Call[_R]],
) -> Callable[Concatenate[AsyncTransport, _A], Coroutine[Any, Any, _R]]: ...


@overload
def async_method(
    spec: Callable[_A, Pages[_P, _T]],
) -> Callable[Concatenate[AsyncTransport, _A], AsyncIterator[_T]]: ...


def async_method(spec: Callable[_A, Any]) -> Callable[Concatenate[AsyncTransport, _A], Any]:
    answer = _answer(spec)
    if typing.get_origin(answer) is Pages:

        def iterate(self: AsyncTransport, /, *args: _A.args, **kwargs: _A.kwargs) -> Any:
            pages = spec(*args, **kwargs)
            return awalk(lambda token: self._send(pages.page(token)), pages.items)

        return _shown_as(iterate, spec, GenericAlias(AsyncIterator, typing.get_args(answer)[1]))

    async def send(self: AsyncTransport, /, *args: _A.args, **kwargs: _A.kwargs) -> Any:
        return await self._send(spec(*args, **kwargs))

    return _shown_as(send, spec, typing.get_args(answer)[0])


def _answer(spec: Callable[..., Any]) -> Any:
    """What spec returns: Call[Response] or Pages[Page, Item], with its type arguments."""
    return typing.get_type_hints(spec)["return"]


def _shown_as(method: _F, spec: Callable[..., Any], returns: Any) -> _F:
    """`method` with spec's name, docstring and parameters after `self`, returning `returns`:
    what help(), inspect and documentation tools see."""
    functools.update_wrapper(method, spec)
    signature = inspect.signature(spec)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self, *signature.parameters.values()], return_annotation=returns
    )
    method.__annotations__ = {**spec.__annotations__, "return": returns}
    return method
