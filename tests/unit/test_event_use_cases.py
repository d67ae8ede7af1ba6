"""The event feed's use cases (services/events.py) against an in-memory store: windowed reads
and pages that never pass the committed position, consumers' positions and acks, and
retention steps, without a database."""

from datetime import timedelta

import pytest
from rewards.v1 import events_pb2

from rewards_service.domain.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from rewards_service.domain.ids import new_id
from rewards_service.domain.pagination import parse_page
from rewards_service.domain.validation import Violations
from rewards_service.services import events
from rewards_service.services.records import LedgerEntry, Reward
from rewards_service.store.fields import utcnow
from rewards_service.store.outbox import StoredEvent
from tests.unit.fakes import InMemoryStore, Untouchable

E = events_pb2.EventType
UPDATED, ISSUED, BALANCE = (
    E.EVENT_TYPE_REWARD_UPDATED,
    E.EVENT_TYPE_ISSUANCE_ISSUED,
    E.EVENT_TYPE_BALANCE_CHANGED,
)
SECRET = b"page-secret"
ALL: frozenset[int] = frozenset()


class FakeEventStore(InMemoryStore):
    """The event tables in dicts: each program's events by position, the sequencer's last
    committed position, and the consumers' positions (one per name in a program, which an ack
    never moves back: the store's upsert keeps the larger). Retention here deletes by age
    only: the rule that keeps what a consumer has not acked is the store's SQL (integration
    tests)."""

    TABLES = ("events", "consumers")
    DEEP_SNAPSHOT = True  # each program's events are one list

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, list[StoredEvent]] = {}
        self.written: dict[str, int] = {}  # the last position taken, committed or not
        self.committed: dict[str, int] = {}
        self.consumers: dict[tuple[str, str], int] = {}
        self.scales: dict[str, int] = {}
        self.retention_steps: list[tuple] = []  # delete_expired's (older_than, max_rows)

    def append(self, program_id, event_type=UPDATED, row=None, *, age=timedelta(0)) -> int:
        """A committed event; its position."""
        position = self.write(program_id, event_type, row, age=age)
        self.committed[program_id] = position
        return position

    def write(self, program_id, event_type=UPDATED, row=None, *, age=timedelta(0)) -> int:
        """An event whose group has not committed yet: the sequencer has not moved."""
        position = self.written.get(program_id, 0) + 1
        self.written[program_id] = position
        row = row if row is not None else Reward(id=new_id("rwd"), program=program_id)
        stored = StoredEvent(position, event_type, utcnow() - age, row)
        self.events.setdefault(program_id, []).append(stored)
        return position

    def last_position(self, program_id):
        return self.committed.get(program_id, 0)

    def read_events(self, program_id, after, upto, types, limit):
        found = [
            e
            for e in self.events.get(program_id, [])
            if after < e.position <= upto and (not types or e.type in types)
        ]
        return found[:limit]

    def consumer_position(self, program_id, name):
        return self.consumers.get((program_id, name))

    def consumer_count(self, program_id):
        return sum(program == program_id for program, _ in self.consumers)

    def ack(self, program_id, name, position):
        self._writing()
        kept = max(position, self.consumers.get((program_id, name), position))
        self.consumers[program_id, name] = kept
        return kept

    def delete_expired(self, older_than, max_rows):
        self._writing()
        self.retention_steps.append((older_than, max_rows))
        deleted = 0
        for program_id in sorted(self.events):
            expired = [e for e in self.events[program_id] if e.created_at < older_than]
            gone = {e.position for e in expired[: max_rows - deleted]}
            self.events[program_id] = [e for e in self.events[program_id] if e.position not in gone]
            deleted += len(gone)
        return deleted

    def asset_scale(self, asset_id):
        return self.scales[asset_id]


@pytest.fixture
def store():
    return FakeEventStore()


@pytest.fixture
def program():
    return new_id("prg")


def positions(found) -> list[int]:
    return [event.position for event in found]


def first_page(size: int):
    return parse_page(Violations(), size, "", {}, secret=SECRET)


def page_after(token: str, size: int):
    return parse_page(Violations(), size, token, {}, secret=SECRET)


def feed(store, program, n: int, event_type=UPDATED) -> None:
    for _ in range(n):
        store.append(program, event_type)


# Reads, as a watching stream makes them


def test_a_read_returns_what_follows_a_position_in_order(store, program):
    feed(store, program, 5)
    page = events.read(program, 2, ALL, 10, store=store)
    assert positions(page.events) == [3, 4, 5]
    assert (page.position, page.full) == (5, False)
    assert events.read(new_id("prg"), 0, ALL, 10, store=store).events == []


def test_a_full_read_goes_on_from_its_last_event(store, program):
    feed(store, program, 5)
    page = events.read(program, 0, ALL, 2, store=store)
    assert positions(page.events) == [1, 2]
    assert (page.position, page.full) == (2, True)
    page = events.read(program, page.position, ALL, 2, store=store)
    assert positions(page.events) == [3, 4]


def test_a_read_never_passes_the_committed_position(store, program):
    feed(store, program, 3)
    store.write(program)  # written by a group that has not committed yet
    page = events.read(program, 0, ALL, 10, store=store)
    assert positions(page.events) == [1, 2, 3]
    assert (page.position, page.full) == (3, False)
    found, token = events.list_events(program, 0, ALL, first_page(10), store=store)
    assert (positions(found), token) == ([1, 2, 3], "")


def test_a_filtered_read_looks_at_a_window_and_goes_on_from_its_end(store, program, monkeypatch):
    monkeypatch.setattr(events, "SCAN_EVENTS", 10)
    feed(store, program, 24)
    store.append(program, ISSUED)  # position 25
    feed(store, program, 5)
    only_issued = frozenset({ISSUED})
    page = events.read(program, 0, only_issued, 10, store=store)
    assert (page.events, page.position, page.full) == ([], 10, True)
    page = events.read(program, 10, only_issued, 10, store=store)
    assert (page.events, page.position, page.full) == ([], 20, True)
    page = events.read(program, 20, only_issued, 10, store=store)
    assert positions(page.events) == [25]
    assert (page.position, page.full) == (30, False)
    # Without a filter every event counts: no window.
    assert len(events.read(program, 0, ALL, 100, store=store).events) == 30


def test_each_record_carries_the_scales_of_its_assets_from_the_store(store, program):
    store.scales["ast_pts"] = 2
    entry = LedgerEntry(id=new_id("led"), program=program, asset="ast_pts", delta=150)
    store.append(program, BALANCE, entry)
    store.append(program, UPDATED)
    balance, reward = events.read(program, 0, ALL, 10, store=store).events
    assert (balance.type, balance.record.row, balance.record.scale("ast_pts")) == (
        BALANCE,
        entry,
        2,
    )
    assert reward.record.scales == {}


# Pages, as ListEvents gives them


def test_pages_follow_one_another_with_a_token_until_the_end(store, program):
    feed(store, program, 5)
    found, token = events.list_events(program, 0, ALL, first_page(2), store=store)
    assert positions(found) == [1, 2] and token
    found, token = events.list_events(program, 0, ALL, page_after(token, 2), store=store)
    assert positions(found) == [3, 4] and token
    found, token = events.list_events(program, 0, ALL, page_after(token, 2), store=store)
    assert (positions(found), token) == ([5], "")


def test_a_page_starts_after_the_later_of_the_position_and_the_token(store, program):
    feed(store, program, 6)
    _, token = events.list_events(program, 0, ALL, first_page(2), store=store)  # at 2
    found, _ = events.list_events(program, 4, ALL, page_after(token, 2), store=store)
    assert positions(found) == [5, 6]
    found, _ = events.list_events(program, 1, ALL, page_after(token, 2), store=store)
    assert positions(found) == [3, 4]


def test_a_filtered_page_may_be_short_with_a_token_to_go_on(store, program, monkeypatch):
    monkeypatch.setattr(events, "SCAN_EVENTS", 10)
    feed(store, program, 24)
    store.append(program, ISSUED)  # position 25
    feed(store, program, 5)
    only_issued = frozenset({ISSUED})
    found, token = events.list_events(program, 0, only_issued, first_page(5), store=store)
    assert found == [] and page_after(token, 5).after == "10"
    found, token = events.list_events(program, 0, only_issued, page_after(token, 5), store=store)
    assert found == [] and page_after(token, 5).after == "20"
    found, token = events.list_events(program, 0, only_issued, page_after(token, 5), store=store)
    assert (positions(found), token) == ([25], "")


def test_a_full_filtered_page_goes_on_from_its_last_event(store, program, monkeypatch):
    monkeypatch.setattr(events, "SCAN_EVENTS", 10)
    for _ in range(4):
        store.append(program, ISSUED)
    feed(store, program, 20)
    only_issued = frozenset({ISSUED})
    found, token = events.list_events(program, 0, only_issued, first_page(3), store=store)
    assert positions(found) == [1, 2, 3] and page_after(token, 3).after == "3"


# Consumers


def test_a_watch_starts_after_its_position_else_after_its_consumers(store, program):
    nobody = Untouchable()
    assert events.start_position(program, 7, "billing", store=nobody) == 7
    assert events.start_position(program, 0, "", store=nobody) == 0
    assert events.start_position(program, 0, "billing", store=store) == 0
    feed(store, program, 5)
    events.ack_events(program, "billing", 4, store=store)
    assert events.start_position(program, 0, "billing", store=store) == 4
    assert events.start_position(program, 2, "billing", store=store) == 2


def test_an_ack_answers_with_the_position_the_store_keeps(store, program):
    feed(store, program, 5)
    assert events.ack_events(program, "billing", 3, store=store) == 3
    assert events.ack_events(program, "billing", 5, store=store) == 5
    assert events.ack_events(program, "billing", 1, store=store) == 5  # never back
    assert store.consumer_position(program, "billing") == 5


def test_an_ack_up_to_the_last_committed_position_only(store, program):
    feed(store, program, 3)
    store.write(program)  # position 4, not committed yet
    assert events.ack_events(program, "billing", 3, store=store) == 3
    with pytest.raises(FailedPrecondition) as refused:
        events.ack_events(program, "billing", 4, store=store)
    assert refused.value.reason == "POSITION_NOT_REACHED"
    assert refused.value.metadata == {"position": "4", "last_position": "3"}
    assert str(refused.value) == "Position 4 is past the program's last event (3)."
    assert store.consumer_position(program, "billing") == 3
    # A program with no events yet takes an ack of 0 only.
    other = new_id("prg")
    assert events.ack_events(other, "billing", 0, store=store) == 0
    with pytest.raises(FailedPrecondition):
        events.ack_events(other, "billing", 1, store=store)


def test_a_program_has_at_most_max_consumers_but_each_keeps_acking(store, program):
    feed(store, program, 5)
    for n in range(events.MAX_CONSUMERS):
        events.ack_events(program, f"consumer-{n}", 1, store=store)
    with pytest.raises(ResourceExhausted) as refused:
        events.ack_events(program, "one-more", 1, store=store)
    assert refused.value.reason == "TOO_MANY_CONSUMERS"
    assert refused.value.metadata == {"limit": str(events.MAX_CONSUMERS)}
    assert store.consumer_position(program, "one-more") is None
    assert events.ack_events(program, "consumer-0", 5, store=store) == 5
    # Other programs have room of their own.
    other = new_id("prg")
    store.append(other)
    assert events.ack_events(other, "one-more", 1, store=store) == 1


@pytest.mark.parametrize(
    ("consumer", "position", "field"),
    [("", 1, "consumer"), ("bad\nname", 1, "consumer"), ("billing", -1, "position")],
)
def test_an_invalid_ack_is_refused_before_the_store(consumer, position, field):
    with pytest.raises(InvalidArgument) as refused:
        events.ack_events("prg_1", consumer, position, store=Untouchable())
    assert [v.field for v in refused.value.violations] == [field]


def test_filters_and_positions_are_checked_field_by_field():
    v = Violations()
    assert events.check_types(v, "types", [ISSUED, UPDATED]) == {ISSUED, UPDATED}
    events.check_types(v, "types", [ISSUED, 9999, E.EVENT_TYPE_UNSPECIFIED])
    events.check_position(v, "after_position", -1)
    events.check_consumer(v, "consumer", "", required=False)
    assert [(x.field, x.description) for x in v.items] == [
        ("types[1]", "is not an event type"),
        ("types[2]", "is not an event type"),
        ("after_position", "must not be negative"),
    ]


# Retention


def test_a_retention_step_deletes_what_is_older_than_the_retention(store, program):
    store.append(program, age=timedelta(days=3))
    store.append(program, age=timedelta(days=2))
    store.append(program, age=timedelta(hours=1))
    before = utcnow()
    assert events.delete_expired(timedelta(days=1), store=store) == 2
    assert positions(store.events[program]) == [3]
    ((older_than, max_rows),) = store.retention_steps
    assert before - timedelta(days=1) <= older_than <= utcnow() - timedelta(days=1)
    assert max_rows == events.RETENTION_BATCH


def test_a_retention_step_deletes_one_batch_at_most(store, program, monkeypatch):
    monkeypatch.setattr(events, "RETENTION_BATCH", 2)
    for _ in range(5):
        store.append(program, age=timedelta(days=2))
    assert events.delete_expired(timedelta(days=1), store=store) == 2
    assert positions(store.events[program]) == [3, 4, 5]
    assert events.delete_expired(timedelta(days=1), store=store) == 2
    assert events.delete_expired(timedelta(days=1), store=store) == 1
    assert events.delete_expired(timedelta(days=1), store=store) == 0
