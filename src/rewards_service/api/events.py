"""Events servicer: the program's event feed.

WatchEvents runs on the event loop and holds no thread while it waits: each page is read on
the RPC pool, and between pages the stream waits for this process's writer to say that the
program committed events (services/events.py), or for the poll interval, which catches commits
of other processes sharing the database. A page is at most WATCH_PAGE events, and each is
sent only once gRPC has taken the one before (flow control), so a slow consumer holds that
much memory and no more.
"""

import asyncio
import contextlib
import time
from concurrent.futures import Executor
from datetime import timedelta

import structlog
from google.protobuf import duration_pb2
from rewards.v1 import events_pb2, events_pb2_grpc

from rewards_service.api import convert
from rewards_service.api.groups import entry_out as group_ledger_entry_out
from rewards_service.auth import caller
from rewards_service.domain.errors import FieldViolation, InvalidArgument, ResourceExhausted
from rewards_service.domain.validation import Violations
from rewards_service.services import events
from rewards_service.services.records import (
    CodePool,
    GroupLedgerEntry,
    Issuance,
    LedgerEntry,
    Reward,
    session,
)

log = structlog.get_logger("rewards.events")
WATCH_PAGE = 100
# How often a waiting stream looks for events committed by other processes.
POLL_SECONDS = 0.5
# Open WatchEvents streams per program, per process.
MAX_WATCHES_PER_PROGRAM = 64


def event_out(stored: events.Event) -> events_pb2.Event:
    event = events_pb2.Event(
        position=stored.position,
        type=stored.type,
        created_at=convert.timestamp_out(stored.created_at),
    )
    row = stored.record.row
    if isinstance(row, Issuance):
        event.issuance.CopyFrom(convert.issuance_out(stored.record))
    elif isinstance(row, Reward):
        event.reward.CopyFrom(convert.reward_out(row))
    elif isinstance(row, LedgerEntry):
        event.ledger_entry.CopyFrom(convert.ledger_entry_out(stored.record))
    elif isinstance(row, CodePool):
        event.code_pool.CopyFrom(convert.code_pool_out(row))
    elif isinstance(row, GroupLedgerEntry):
        event.group_ledger_entry.CopyFrom(group_ledger_entry_out(stored.record))
    return event


def _page(program_id: str, after: int, types: frozenset[int]):
    """On a pool thread: the next page and where the one after starts."""
    with session():
        page = events.read(program_id, after, types, WATCH_PAGE)
        return [event_out(e) for e in page.events], page.position, page.full


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, executor: Executor, heartbeat_seconds: float = 10.0) -> None:
        self._executor = executor
        self.heartbeat_seconds = heartbeat_seconds
        self._open: dict[str, int] = {}
        self._stopping = False
        self._bells: set = set()

    def stop(self) -> None:
        """End every open stream (the server is draining); new ones end at once."""
        self._stopping = True
        for bell in self._bells:
            bell.event.set()

    async def WatchEvents(self, request, context):
        v = Violations()
        types = events.check_types(v, "types", request.types)
        events.check_position(v, "after_position", request.after_position)
        events.check_consumer(v, "consumer", request.consumer, required=False)
        v.raise_if_any()
        program_id = caller().program_id
        if self._open.get(program_id, 0) >= MAX_WATCHES_PER_PROGRAM:
            raise ResourceExhausted(
                f"This program has {MAX_WATCHES_PER_PROGRAM} WatchEvents streams open on this "
                "server; close one or retry later.",
                reason="TOO_MANY_STREAMS",
                metadata={"limit": MAX_WATCHES_PER_PROGRAM},
            )
        self._open[program_id] = self._open.get(program_id, 0) + 1
        # Registered before the first read, so that no commit after it goes unheard.
        bell = events.waiter(program_id)
        self._bells.add(bell)
        try:
            async for response in self._follow(program_id, request, types, bell):
                yield response
        finally:
            events.forget(program_id, bell)
            self._bells.discard(bell)
            self._open[program_id] -= 1
            if not self._open[program_id]:
                del self._open[program_id]

    async def _follow(self, program_id, request, types, bell):
        loop = asyncio.get_running_loop()
        position = await loop.run_in_executor(
            self._executor, _start, program_id, request.after_position, request.consumer
        )
        heartbeat = duration_pb2.Duration()
        heartbeat.FromTimedelta(timedelta(seconds=self.heartbeat_seconds))
        quiet_since = time.monotonic()
        while not self._stopping:
            bell.event.clear()
            found, position, full = await loop.run_in_executor(
                self._executor, _page, program_id, position, types
            )
            for event in found:
                yield events_pb2.WatchEventsResponse(event=event)
            if found:
                quiet_since = time.monotonic()
            if full:
                continue
            due = quiet_since + self.heartbeat_seconds - time.monotonic()
            if due <= 0:
                yield events_pb2.WatchEventsResponse(
                    heartbeat=events_pb2.Heartbeat(position=position, interval=heartbeat)
                )
                quiet_since = time.monotonic()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bell.event.wait(), min(POLL_SECONDS, due))

    def ListEvents(self, request, context):
        v = Violations()
        types = events.check_types(v, "types", request.types)
        events.check_position(v, "after_position", request.after_position)
        filters = {"after_position": request.after_position, "types": sorted(types)}
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        if page.after is not None and not page.after.isdigit():
            raise InvalidArgument(
                "The page token is not one of ListEvents'.",
                violations=(
                    FieldViolation("page_token", "is not a token returned by this method"),
                ),
            )
        found, token = events.list_events(caller().program_id, request.after_position, types, page)
        return events_pb2.ListEventsResponse(
            events=[event_out(e) for e in found], next_page_token=token
        )

    def AckEvents(self, request, context):
        stored = events.ack_events(caller().program_id, request.consumer, request.position)
        return events_pb2.AckEventsResponse(position=stored)


def _start(program_id: str, after: int, consumer: str) -> int:
    with session():
        return events.start_position(program_id, after, consumer)


# How often the retention step runs while it finds nothing more to delete.
RETENTION_EVERY_SECONDS = 60.0


async def keep_retention(executor: Executor, retention_seconds: float) -> None:
    """The server's retention step: bounded deletes, again at once while each one is full."""
    if retention_seconds <= 0:
        return
    loop = asyncio.get_running_loop()
    retention = timedelta(seconds=retention_seconds)
    while True:
        try:
            deleted = await loop.run_in_executor(executor, events.delete_expired, retention)
        except Exception:
            log.exception("event_retention_failed")
            deleted = 0
        if deleted:
            log.info("events_deleted", count=deleted)
        if deleted < events.RETENTION_BATCH:
            await asyncio.sleep(RETENTION_EVERY_SECONDS)
