"""The event outbox: every state change records an event in the transaction that makes it,
and the writer (group_commit.py) writes a group's events just before its COMMIT.

Positions are per program and follow commit order. Before COMMIT the group takes one
sequencer step per program it touched, in sorted program order: an upsert of the program's
`event_sequence` row that adds n to `last` and returns it. On PostgreSQL that row stays
locked until COMMIT, so a group of another replica that writes events of the same program
waits there and gets the next positions only once this group is committed: a reader never
sees position n + 1 before n. A group takes the sequencer rows last, after every other row
it locks, and in one order, so replicas cannot deadlock on them. On SQLite there is one
writer at a time, and that is already the order.

An event's payload is the changed row's stored columns (fast.snapshot), turned back into
the row, and then into the message its RPCs return, when read.
"""

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import orjson
import peewee
from rewards.v1 import events_pb2

from rewards_service.store import fast
from rewards_service.store.db import database, is_sqlite
from rewards_service.store.fields import TimestampField, utcnow
from rewards_service.store.group_commit import record
from rewards_service.store.models import (
    CodePool,
    GroupLedgerEntry,
    Issuance,
    LedgerEntry,
    Reward,
)

E = events_pb2.EventType

# The row type each event type carries.
PAYLOAD_MODEL: dict[int, type[peewee.Model]] = {
    E.EVENT_TYPE_REWARD_CREATED: Reward,
    E.EVENT_TYPE_REWARD_UPDATED: Reward,
    E.EVENT_TYPE_REWARD_STATUS_CHANGED: Reward,
    E.EVENT_TYPE_ISSUANCE_ISSUED: Issuance,
    E.EVENT_TYPE_ISSUANCE_CLAIMED: Issuance,
    E.EVENT_TYPE_ISSUANCE_REVOKED: Issuance,
    E.EVENT_TYPE_ISSUANCE_FULFILLMENT_UPDATED: Issuance,
    E.EVENT_TYPE_BALANCE_CHANGED: LedgerEntry,
    E.EVENT_TYPE_CODE_POOL_LOW: CodePool,
    E.EVENT_TYPE_CODE_POOL_EXHAUSTED: CodePool,
    E.EVENT_TYPE_CUSTOM_GRANTED: Issuance,
    E.EVENT_TYPE_GROUP_BALANCE_CHANGED: GroupLedgerEntry,
}

# Rows per INSERT: 5 parameters each, well under SQLite's limit of 32766.
_INSERT_ROWS = 500
_created = TimestampField()
# A code pool's expired_count in its events' payload.
_EXPIRED = "expired_count"
# False records no events (REWARDS_EVENTS=off): only to measure what the outbox costs.
ENABLED = True


@dataclass(frozen=True, slots=True)
class PendingEvent:
    program_id: str
    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    type: int
    created_at: datetime
    row: peewee.Model


def emit(program_id: str, event_type: int, row: peewee.Model) -> None:
    """Record that `row` changed: written with the current write's effects, or not at all."""
    if not ENABLED:
        return
    stored = fast.snapshot(row)
    if isinstance(row, CodePool):
        # Not a column, but part of the pool its RPCs show: as it was at the change.
        stored[_EXPIRED] = row.expired_count
    record(PendingEvent(program_id, event_type, orjson.dumps(stored)))


def _next_positions_sql() -> str:
    return fast.sql(
        'INSERT INTO "event_sequence" ("program_id", "last") VALUES (?, ?) '
        'ON CONFLICT ("program_id") DO UPDATE SET "last" = "event_sequence"."last" + ? '
        'RETURNING "last"'
    )


@cache
def _insert_sql(rows: int, param: str) -> str:
    values = ", ".join([f"({param}, {param}, {param}, {param}, {param})"] * rows)
    return (
        'INSERT INTO "event" ("program_id", "position", "type", "payload", "created_at") '
        f"VALUES {values}"
    )


def write_events(events: list[PendingEvent]) -> None:
    """In the group's transaction, last: one sequencer step per program, then the rows."""
    by_program: dict[str, list[PendingEvent]] = {}
    for event in events:
        by_program.setdefault(event.program_id, []).append(event)
    created = _created.db_value(utcnow())
    if not is_sqlite():
        for program_id in sorted(by_program):
            mine = by_program[program_id]
            for start in range(0, len(mine), _INSERT_ROWS):
                _step_and_insert(program_id, mine[start : start + _INSERT_ROWS], created)
        return
    rows: list[object] = []
    for program_id in sorted(by_program):
        mine = by_program[program_id]
        (last,) = database.execute_sql(
            _next_positions_sql(), (program_id, len(mine), len(mine))
        ).fetchone()
        first = last - len(mine) + 1
        for offset, event in enumerate(mine):
            rows += (program_id, first + offset, event.type, event.payload.decode(), created)
    for start in range(0, len(rows), _INSERT_ROWS * 5):
        chunk = rows[start : start + _INSERT_ROWS * 5]
        database.execute_sql(_insert_sql(len(chunk) // 5, database.param), chunk)


@cache
def _step_and_insert_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?)"] * rows)
    return (
        'WITH "step" AS (INSERT INTO "event_sequence" ("program_id", "last") VALUES (?, ?) '
        'ON CONFLICT ("program_id") DO UPDATE SET "last" = "event_sequence"."last" + ? '
        'RETURNING "last") '
        'INSERT INTO "event" ("program_id", "position", "type", "payload", "created_at") '
        'SELECT ?, "step"."last" - ? + "v"."ord", "v"."type", "v"."payload", ? '
        f'FROM "step", (VALUES {values}) AS "v"("ord", "type", "payload")'
    )


def _step_and_insert(program_id: str, events: list[PendingEvent], created: int) -> None:
    """PostgreSQL: the sequencer step and the rows in one statement, read by nobody, so it
    goes with the COMMIT: no round trip of its own."""
    n = len(events)
    params: list[object] = [program_id, n, n, program_id, n, created]
    for ordinal, event in enumerate(events, 1):
        params += (ordinal, event.type, event.payload.decode())
    fast.execute_unread(_step_and_insert_sql(n), *params)


def _stored(position: int, event_type: int, payload: str, created_at: int) -> StoredEvent:
    model = PAYLOAD_MODEL[event_type]
    values = orjson.loads(payload)
    row = fast.from_columns(model, values)
    if model is CodePool:
        row.expired_count = values.get(_EXPIRED, 0)
    return StoredEvent(position, event_type, _created.python_value(created_at), row)


def read_events(
    program_id: str, after: int, upto: int, types: frozenset[int], limit: int
) -> list[StoredEvent]:
    """Up to `limit` events in (after, upto], in position order."""
    text = (
        'SELECT "position", "type", "payload", "created_at" FROM "event" '
        'WHERE "program_id" = ? AND "position" > ? AND "position" <= ?'
    )
    params: list[object] = [program_id, after, upto]
    if types:
        text += ' AND "type" IN (' + ", ".join("?" * len(types)) + ")"
        params += sorted(types)
    text += ' ORDER BY "position" LIMIT ?'
    params.append(limit)
    return [_stored(*found) for found in fast.execute(text, *params).fetchall()]


def last_position(program_id: str) -> int:
    found = fast.execute(
        'SELECT "last" FROM "event_sequence" WHERE "program_id" = ?', program_id
    ).fetchone()
    return found[0] if found else 0


def consumer_position(program_id: str, name: str) -> int | None:
    found = fast.execute(
        'SELECT "position" FROM "event_consumer" WHERE "program_id" = ? AND "name" = ?',
        program_id,
        name,
    ).fetchone()
    return found[0] if found else None


def consumer_count(program_id: str) -> int:
    return fast.execute(
        'SELECT COUNT(*) FROM "event_consumer" WHERE "program_id" = ?', program_id
    ).fetchone()[0]


def ack(program_id: str, name: str, position: int) -> int:
    """Moves the consumer forward to `position` (never back); its stored position."""
    now = _created.db_value(utcnow())
    (stored,) = fast.execute(
        'INSERT INTO "event_consumer" ("program_id", "name", "position", "updated_at") '
        'VALUES (?, ?, ?, ?) ON CONFLICT ("program_id", "name") DO UPDATE SET '
        '"position" = CASE WHEN "event_consumer"."position" < ? THEN ? '
        'ELSE "event_consumer"."position" END, "updated_at" = ? RETURNING "position"',
        program_id,
        name,
        position,
        now,
        position,
        position,
        now,
    ).fetchone()
    return stored


def delete_expired(older_than: datetime, max_rows: int) -> int:
    """Deletes up to `max_rows` events created before `older_than`, oldest first per
    program, keeping every event after the lowest position a named consumer acknowledged.
    Returns how many it deleted."""
    cutoff = _created.db_value(older_than)
    deleted = 0
    programs = fast.execute(
        'SELECT DISTINCT "program_id" FROM "event_sequence" ORDER BY "program_id"'
    ).fetchall()
    for (program_id,) in programs:
        if deleted >= max_rows:
            break
        kept_from = fast.execute(
            'SELECT MIN("position") FROM "event_consumer" WHERE "program_id" = ?', program_id
        ).fetchone()[0]
        text = (
            'DELETE FROM "event" WHERE "program_id" = ? AND "position" IN ('
            'SELECT "position" FROM "event" WHERE "program_id" = ? AND "created_at" < ?'
        )
        params: list[object] = [program_id, program_id, cutoff]
        if kept_from is not None:
            text += ' AND "position" <= ?'
            params.append(kept_from)
        text += ' ORDER BY "position" LIMIT ?)'
        params.append(max_rows - deleted)
        deleted += fast.execute(text, *params).rowcount
    return deleted


# Streams waiting for a program's next events, woken by this process's writer after each
# commit. Streams also look again every few seconds for commits of other processes.
class _Waiter:
    __slots__ = ("event", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()


_waiters: dict[str, set[_Waiter]] = {}
_waiters_lock = threading.Lock()


def waiter(program_id: str) -> _Waiter:
    """On the event loop: a waiter woken when events of the program are committed here.
    Call `forget` when done with it."""
    found = _Waiter()
    with _waiters_lock:
        _waiters.setdefault(program_id, set()).add(found)
    return found


def forget(program_id: str, found: _Waiter) -> None:
    with _waiters_lock:
        mine = _waiters.get(program_id)
        if mine is not None:
            mine.discard(found)
            if not mine:
                del _waiters[program_id]


def wake_watchers(events: list[PendingEvent]) -> None:
    """On the writer, after COMMIT."""
    programs = {event.program_id for event in events}
    with _waiters_lock:
        woken = [w for program in programs for w in _waiters.get(program, ())]
    for found in woken:
        with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
            found.loop.call_soon_threadsafe(found.event.set)
