"""The streams anyone may open without a key (health Watch, reflection) are bounded: in number
per process, and a reflection stream in how long it may sit idle. A waiting stream costs the
server no thread, but each holds memory, and an unbounded number of them is a way to take
the server from others."""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager

import grpc
from grpc_health.v1 import health

from rewards_service.api.reflection import DocumentedReflectionServicer

# Open keyless streams per process, all kinds together.
MAX_OPEN_STREAMS = 2_000
# A reflection stream with no request for this long is ended; grpcurl sends its requests at
# once, and a client that needs more opens a new stream.
REFLECTION_IDLE_SECONDS = 30.0


class OpenStreams:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_OPEN_STREAMS if limit is None else limit
        self.count = 0

    @asynccontextmanager
    async def held(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """One more open stream for the block, or the call ends with RESOURCE_EXHAUSTED."""
        if self.count >= self.limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Too many open streams ({self.limit}); retry later.",
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class BoundedHealthServicer(health.aio.HealthServicer):
    def __init__(self, streams: OpenStreams) -> None:
        super().__init__()
        self._streams = streams

    async def Watch(self, request, context):
        async with self._streams.held(context):
            return await super().Watch(request, context)


async def _until_idle(requests: AsyncIterable, seconds: float) -> AsyncIterator:
    iterator = aiter(requests)
    while True:
        try:
            yield await asyncio.wait_for(anext(iterator), seconds)
        except (StopAsyncIteration, TimeoutError):
            return


class BoundedReflectionServicer(DocumentedReflectionServicer):
    def __init__(self, service_names, streams: OpenStreams) -> None:
        super().__init__(service_names)
        self._streams = streams

    async def ServerReflectionInfo(self, request_iterator, context):
        async with self._streams.held(context):
            requests = _until_idle(request_iterator, REFLECTION_IDLE_SECONDS)
            async for response in super().ServerReflectionInfo(requests, context):
                yield response
