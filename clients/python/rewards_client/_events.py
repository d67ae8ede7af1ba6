"""Events methods: the program's event feed, and watch(), which follows it for good.

watch() yields events in position order, each once. When the stream breaks (UNAVAILABLE: the
server restarted, the network dropped) or ends (the server is draining), it opens a new one
after the last position it yielded, waiting a backoff that grows while reconnects keep
failing. With a named consumer and no position, the server starts after the consumer's
acknowledged position: a worker that restarts without local state resumes where it acked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import grpc
import grpc.aio
from rewards.v1 import events_pb2, events_pb2_grpc

from rewards_client._call import Call, Pages
from rewards_client._transport import AsyncTransport, Transport
from rewards_client.errors import from_rpc_error
from rewards_client.retry import RetryPolicy

EventTypes = Iterable[events_pb2.EventType.ValueType]

# Failures after which watch() opens a new stream; any other is raised as its RewardsError.
RECONNECTED = frozenset({grpc.StatusCode.UNAVAILABLE})


def list_events(
    *,
    after_position: int = 0,
    types: EventTypes = (),
    page_size: int = 0,
    page_token: str = "",
    timeout: float | None = None,
) -> Call[events_pb2.ListEventsResponse]:
    """One page of the program's events after `after_position`, oldest first."""
    request = events_pb2.ListEventsRequest(
        after_position=after_position, types=list(types), page_size=page_size, page_token=page_token
    )
    return Call(request, events_pb2.ListEventsResponse, timeout)


def iter_events(
    *, after_position: int = 0, types: EventTypes = (), page_size: int = 0
) -> Pages[events_pb2.ListEventsResponse, events_pb2.Event]:
    """Every event after `after_position` committed by now, page by page."""
    return Pages(
        lambda token: list_events(
            after_position=after_position, types=types, page_size=page_size, page_token=token
        ),
        lambda page: page.events,
    )


def ack_events(
    consumer: str, position: int, *, timeout: float | None = None
) -> Call[events_pb2.AckEventsResponse]:
    """Store the named consumer's position (it only moves forward)."""
    request = events_pb2.AckEventsRequest(consumer=consumer, position=position)
    return Call(request, events_pb2.AckEventsResponse, timeout)


class _Resume:
    """Where the next stream starts, and how long to wait before opening it."""

    def __init__(
        self, after_position: int, types: EventTypes, consumer: str, retry: RetryPolicy
    ) -> None:
        self.position = after_position
        self.types = list(types)
        self.consumer = consumer
        self._retry = retry
        self._failures = 0

    def request(self) -> events_pb2.WatchEventsRequest:
        return events_pb2.WatchEventsRequest(
            after_position=self.position, types=self.types, consumer=self.consumer
        )

    def delivered(self, event: events_pb2.Event) -> None:
        self.position = event.position
        self._failures = 0

    def next_wait(self) -> float:
        self._failures += 1
        return self._retry.backoff(self._failures)

    @staticmethod
    def reconnects(error: grpc.RpcError) -> bool:
        return error.code() in RECONNECTED


class EventWatch(Iterator[events_pb2.Event]):
    """An iterator over a program's events that reconnects and resumes by itself. `position`
    is the last one yielded; `ack()` stores a position for the named consumer; `close()`
    ends it (from any thread)."""

    def __init__(self, client: EventsMethods, resume: _Resume) -> None:
        self._client = client
        self._resume = resume
        self._stream: Any = None
        self._closed = False

    @property
    def position(self) -> int:
        return self._resume.position

    def __iter__(self) -> EventWatch:
        return self

    def __next__(self) -> events_pb2.Event:
        while not self._closed:
            if self._stream is None:
                self._stream = self._client._events.WatchEvents(
                    self._resume.request(), metadata=self._client._metadata
                )
            try:
                response = next(self._stream)
            except StopIteration:  # the server ended the stream (e.g. it is draining)
                self._stream = None
                time.sleep(self._resume.next_wait())
                continue
            except grpc.RpcError as error:
                self._stream = None
                if self._closed:
                    break
                if not self._resume.reconnects(error):
                    raise from_rpc_error(error) from error
                time.sleep(self._resume.next_wait())
                continue
            if response.HasField("event"):
                event: events_pb2.Event = response.event
                self._resume.delivered(event)
                return event
        raise StopIteration

    def ack(self, position: int | None = None) -> int:
        """Store `position` (default: the last one yielded) for the named consumer."""
        if not self._resume.consumer:
            raise ValueError("ack() needs the watch to have a consumer name")
        chosen = self.position if position is None else position
        return self._client._send(ack_events(self._resume.consumer, chosen)).position

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.cancel()

    def __enter__(self) -> EventWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventsMethods(Transport):
    @property
    def _events(self) -> events_pb2_grpc.EventsStub:
        return events_pb2_grpc.EventsStub(self._channel)

    def watch(
        self, *, after_position: int = 0, types: EventTypes = (), consumer: str = ""
    ) -> EventWatch:
        """Follow the program's events: those after `after_position` (or after the named
        consumer's acknowledged position), then new ones as they are committed, for as long
        as it is iterated. Reconnects with backoff and resumes after the last event it
        yielded, so each event comes once and in order.

            for event in client.watch(consumer="shipper"):
                handle(event)
        """
        return EventWatch(self, _Resume(after_position, types, consumer, self._retry))


class AsyncEventWatch(AsyncIterator[events_pb2.Event]):
    """EventWatch for asyncio: `async for event in client.watch(...)`."""

    def __init__(self, client: AsyncEventsMethods, resume: _Resume) -> None:
        self._client = client
        self._resume = resume
        self._stream: Any = None
        self._closed = False

    @property
    def position(self) -> int:
        return self._resume.position

    def __aiter__(self) -> AsyncEventWatch:
        return self

    async def __anext__(self) -> events_pb2.Event:
        while not self._closed:
            if self._stream is None:
                self._stream = self._client._events.WatchEvents(
                    self._resume.request(), metadata=self._client._metadata
                )
            try:
                response = await self._stream.read()
            except grpc.RpcError as error:
                self._stream = None
                if self._closed:
                    break
                if not self._resume.reconnects(error):
                    raise from_rpc_error(error) from error
                await asyncio.sleep(self._resume.next_wait())
                continue
            if response is grpc.aio.EOF:
                self._stream = None
                await asyncio.sleep(self._resume.next_wait())
                continue
            if response.HasField("event"):
                event: events_pb2.Event = response.event
                self._resume.delivered(event)
                return event
        raise StopAsyncIteration

    async def ack(self, position: int | None = None) -> int:
        """Store `position` (default: the last one yielded) for the named consumer."""
        if not self._resume.consumer:
            raise ValueError("ack() needs the watch to have a consumer name")
        chosen = self.position if position is None else position
        return (await self._client._send(ack_events(self._resume.consumer, chosen))).position

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.cancel()


class AsyncEventsMethods(AsyncTransport):
    @property
    def _events(self) -> events_pb2_grpc.EventsAsyncStub:
        return events_pb2_grpc.EventsStub(self._channel)

    def watch(
        self, *, after_position: int = 0, types: EventTypes = (), consumer: str = ""
    ) -> AsyncEventWatch:
        """watch() for asyncio: `async for event in client.watch(consumer="shipper")`."""
        return AsyncEventWatch(self, _Resume(after_position, types, consumer, self._retry))
