"""Event feed use cases: a program's events in position order, named consumers, retention.

Reads never pass a position that is not committed yet: they read the program's last
committed position first, then the events up to it. Every event up to that position was
committed before it (store/outbox.py), so the second read sees them all.

Each use case reaches the database through `store` (services/ports.EventStore): the
store's own by default, an in-memory one in unit tests.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from rewards.v1 import events_pb2

from rewards_service.domain.errors import FailedPrecondition, ResourceExhausted
from rewards_service.domain.pagination import PageRequest, next_token
from rewards_service.domain.validation import Violations, check_request_id
from rewards_service.services.ports import EventStore
from rewards_service.services.scaled import Scaled, scaled
from rewards_service.store import outbox
from rewards_service.store.events import EVENTS
from rewards_service.store.fields import utcnow

# A stream's bell, rung by this process's writer when the program commits events.
waiter = outbox.waiter
forget = outbox.forget

KNOWN_TYPES = frozenset(events_pb2.EventType.values()) - {events_pb2.EVENT_TYPE_UNSPECIFIED}
# Events deleted by one retention step at most: a step is one short write.
RETENTION_BATCH = 1_000
# Positions one filtered read looks at, at most (see _window_end).
SCAN_EVENTS = 5_000
# Named consumers per program: each holds back retention, so there are few of them.
MAX_CONSUMERS = 100


@dataclass(frozen=True, slots=True)
class Event:
    position: int
    type: int
    created_at: datetime
    record: Scaled  # the row it is about (an issuance, a reward...) as of the event


def _events(store: EventStore, found: list[outbox.StoredEvent]) -> list[Event]:
    return [
        Event(e.position, e.type, e.created_at, scaled(e.row, scale_of=store.asset_scale))
        for e in found
    ]


@dataclass(frozen=True)
class Page:
    events: list[Event]
    # Where the next read starts: past every event read, and past the positions skipped by
    # the types filter up to the committed position the read saw.
    position: int
    # Whether events may remain before that committed position (the page was full).
    full: bool


def check_types(v: Violations, field: str, types) -> frozenset[int]:
    for i, value in enumerate(types):
        v.check(value in KNOWN_TYPES, f"{field}[{i}]", "is not an event type")
    return frozenset(types)


def check_consumer(v: Violations, field: str, name: str, *, required: bool) -> None:
    check_request_id(v, field, name, required=required)


def check_position(v: Violations, field: str, position: int) -> None:
    v.check(position >= 0, field, "must not be negative")


def _window_end(after: int, committed: int, types: frozenset[int]) -> int:
    """How far one read looks. Positions are dense, so with a types filter that matches
    rarely a read looks at SCAN_EVENTS positions at most, and the reader goes on from there
    (at once for a stream, with a token for a page) instead of one read scanning millions."""
    return min(committed, after + SCAN_EVENTS) if types else committed


def read(
    program_id: str,
    after: int,
    types: frozenset[int],
    limit: int,
    *,
    store: EventStore = EVENTS,
) -> Page:
    committed = store.last_position(program_id)
    upto = _window_end(after, committed, types)
    found = store.read_events(program_id, after, upto, types, limit)
    if len(found) == limit:
        return Page(_events(store, found), found[-1].position, True)
    return Page(_events(store, found), max(after, upto), upto < committed)


def list_events(
    program_id: str,
    after: int,
    types: frozenset[int],
    page: PageRequest,
    *,
    store: EventStore = EVENTS,
) -> tuple[list[Event], str]:
    start = max(after, int(page.after)) if page.after is not None else after
    committed = store.last_position(program_id)
    upto = _window_end(start, committed, types)
    found = store.read_events(program_id, start, upto, types, page.size + 1)
    has_more = len(found) > page.size
    found = found[: page.size]
    if not has_more and upto < committed:  # the filter looked at part of the feed only
        return _events(store, found), next_token(page, str(upto), True)
    last = str(found[-1].position) if found else None
    return _events(store, found), next_token(page, last, has_more)


def start_position(
    program_id: str, after: int, consumer: str, *, store: EventStore = EVENTS
) -> int:
    """Where a watch starts: after `after`, else after the named consumer's position."""
    if after or not consumer:
        return after
    return store.consumer_position(program_id, consumer) or 0


def ack_events(program_id: str, consumer: str, position: int, *, store: EventStore = EVENTS) -> int:
    v = Violations()
    check_consumer(v, "consumer", consumer, required=True)
    check_position(v, "position", position)
    v.raise_if_any()

    def work() -> int:
        last = store.last_position(program_id)
        if position > last:
            raise FailedPrecondition(
                f"Position {position} is past the program's last event ({last}).",
                reason="POSITION_NOT_REACHED",
                metadata={"position": position, "last_position": last},
            )
        known = store.consumer_position(program_id, consumer) is not None
        if not known and store.consumer_count(program_id) >= MAX_CONSUMERS:
            raise ResourceExhausted(
                f"This program has {MAX_CONSUMERS} named consumers; reuse one of them.",
                reason="TOO_MANY_CONSUMERS",
                metadata={"limit": MAX_CONSUMERS},
            )
        return store.ack(program_id, consumer, position)

    return store.transaction(work)


def record_events(enabled: bool) -> None:
    """Off only to measure what the outbox costs (REWARDS_EVENTS=off)."""
    outbox.ENABLED = enabled


def delete_expired(retention: timedelta, *, store: EventStore = EVENTS) -> int:
    """One bounded retention step; how many events it deleted."""
    cutoff = utcnow() - retention
    return store.transaction(lambda: store.delete_expired(cutoff, RETENTION_BATCH))
