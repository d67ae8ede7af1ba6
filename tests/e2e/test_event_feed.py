"""The event feed against real server processes on the suite's database: a consumer that
follows a server killed with kill -9 and restarted gets every event once and in order; three
replicas writing at once give their three consumers one and the same sequence; and after the
kills every issuance and ledger entry has its event and every event its effect."""

import asyncio
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest
from rewards.v1 import catalog_pb2, events_pb2
from rewards_client import (
    AsyncRewardsClient,
    Cancelled,
    DeadlineExceeded,
    RewardsClient,
    Unavailable,
    ref,
)

from rewards_service.store.db import in_transaction, session
from rewards_service.store.fields import utcnow
from rewards_service.store.models import Event, Issuance, LedgerEntry
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import make_api, spawn_server, wait_for_line

pytestmark = pytest.mark.slow

E = events_pb2.EventType
ISSUANCE_EVENTS = {E.EVENT_TYPE_ISSUANCE_ISSUED, E.EVENT_TYPE_CUSTOM_GRANTED}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Consumer:
    """An SDK watch() on its own thread, keeping what it yields."""

    def __init__(self, target: str, key: str) -> None:
        self.client = RewardsClient(target, key, initial_backoff=0.05, max_backoff=0.5)
        self.watch = self.client.watch()
        self.seen: list[events_pb2.Event] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch:
                self.seen.append(event)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_for(self, position: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.seen or self.seen[-1].position < position:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, (position, self.seen[-1:])
            time.sleep(0.05)

    def close(self) -> None:
        self.watch.close()
        self.thread.join(10)
        self.client.close()
        assert self.error is None, self.error


def stored_events(program_id: str) -> list[tuple[int, int, str]]:
    """(position, type, payload) of the program's events, from the database."""
    with session():
        return list(
            Event.select(Event.position, Event.type, Event.payload)
            .where(Event.program == program_id)
            .order_by(Event.position)
            .tuples()
        )


def reconcile(program_id: str, events: list[events_pb2.Event]) -> None:
    """Each issuance and each ledger entry has exactly one event, and each event's row
    exists: no effect without its event, no event without its effect."""
    with session():
        issuances = {
            r.id for r in Issuance.select(Issuance.id).where(Issuance.program == program_id)
        }
        entries = {
            r.id
            for r in LedgerEntry.select(LedgerEntry.id).where(LedgerEntry.program == program_id)
        }
    issued = [e.issuance.id for e in events if e.type in ISSUANCE_EVENTS]
    moved = [e.ledger_entry.id for e in events if e.type == E.EVENT_TYPE_BALANCE_CHANGED]
    assert sorted(issued) == sorted(issuances)
    assert sorted(moved) == sorted(entries)


def issue_until_done(target: str, key: str, reward_id: str, user_id: str, count: int) -> None:
    """`count` issues, each retried with its request_id until it is acknowledged: the server
    may be down for a while in between."""
    with RewardsClient(target, key, initial_backoff=0.05, max_backoff=0.5, timeout=5) as client:
        for i in range(count):
            request_id = f"issue-{uuid.uuid4().hex}-{i}"
            while True:
                try:
                    client.issue_reward(reward_id, ref(id=user_id), request_id=request_id)
                    break
                except (Unavailable, DeadlineExceeded, Cancelled):  # the server restarts
                    time.sleep(0.05)


def test_a_consumer_gets_every_event_once_in_order_across_kill_9_and_restart(store):
    address = f"127.0.0.1:{free_port()}"
    server = spawn_server(store, "--listen", address)
    issued = new_program("feed-kill")
    with grpc.insecure_channel(address) as channel:
        api = make_api(channel, issued.program_id, issued.api_key)
        points = f.asset(api)
        reward = f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="1"))
        user = f.participant(api)
    consumer = Consumer(address, issued.api_key)
    writers = [
        threading.Thread(
            target=issue_until_done,
            args=(address, issued.api_key, reward.id, user.id, 60),
        )
        for _ in range(3)
    ]
    try:
        for writer in writers:
            writer.start()
        for _ in range(3):
            time.sleep(0.7)
            server.stop(9)  # mid-stream and mid-write
            server = spawn_server(store, "--listen", address)
        for writer in writers:
            writer.join(120)
            assert not writer.is_alive()
        stored = stored_events(issued.program_id)
        consumer.wait_for(stored[-1][0])
    finally:
        consumer.close()
        server.stop(9)
    positions = [e.position for e in consumer.seen]
    assert positions == list(range(1, len(stored) + 1))  # once each, in order, no gap
    assert [p for p, _, _ in stored] == positions
    issues = [e for e in consumer.seen if e.type == E.EVENT_TYPE_ISSUANCE_ISSUED]
    assert len(issues) == 180  # every acknowledged issue, none twice
    reconcile(issued.program_id, consumer.seen)


def test_three_replicas_writing_give_three_consumers_one_sequence(store):
    servers = [spawn_server(store) for _ in range(3)]
    issued = new_program("feed-replicas")
    target = "ipv4:" + ",".join(s.address for s in servers)
    channel = grpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
    consumers = []
    try:
        api = make_api(channel, issued.program_id, issued.api_key)
        points = f.asset(api)
        reward = f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="1"))
        users = [f.participant(api) for _ in range(4)]
        consumers = [Consumer(s.address, issued.api_key) for s in servers]
        done = threading.Event()
        gaps: list[tuple[int, int]] = []

        def poll_list() -> None:
            """A batch reader polling ListEvents: any gap it sees is n + 1 visible before n."""
            seen = 0
            while not done.is_set() or seen < 481:
                page = api.events.ListEvents(
                    events_pb2.ListEventsRequest(after_position=seen, page_size=1000)
                )
                for event in page.events:
                    if event.position != seen + 1:
                        gaps.append((seen, event.position))
                    seen = event.position
                if done.is_set() and not page.events:
                    break

        poller = threading.Thread(target=poll_list)
        poller.start()

        def issue(i: int) -> None:
            f.issue(api, reward.id, users[i % len(users)].id)

        with ThreadPoolExecutor(12) as pool:
            list(pool.map(issue, range(240)))
        done.set()
        poller.join(60)
        assert gaps == []
        last = stored_events(issued.program_id)[-1][0]
        for consumer in consumers:
            consumer.wait_for(last)
    finally:
        for consumer in consumers:
            consumer.close()
        channel.close()
        for server in servers:
            server.stop()
    sequences = [[(e.position, e.type, e.SerializeToString()) for e in c.seen] for c in consumers]
    assert sequences[0] == sequences[1] == sequences[2]
    # The reward's creation, then 240 x (the balance's move, the issuance): no gap, no
    # duplicate, and each consumer followed live, so none saw n + 1 before n.
    assert [e.position for e in consumers[0].seen] == list(range(1, 1 + 1 + 480))
    reconcile(issued.program_id, consumers[0].seen)


def test_the_async_watch_resumes_after_kill_9_and_acks(store):
    address = f"127.0.0.1:{free_port()}"
    server = spawn_server(store, "--listen", address)
    issued = new_program("feed-async")

    def issue_some(count: int) -> None:
        with grpc.insecure_channel(address) as channel:
            api = make_api(channel, issued.program_id, issued.api_key)
            reward = f.reward(api)
            user = f.participant(api)
            for _ in range(count):
                f.issue(api, reward.id, user.id)

    async def follow(until: int, watch) -> list[int]:
        positions = []
        async for event in watch:
            positions.append(event.position)
            if event.position == until:
                return positions
        return positions

    async def scenario() -> tuple[list[int], int, int]:
        nonlocal server
        async with AsyncRewardsClient(
            address, issued.api_key, initial_backoff=0.05, max_backoff=0.5
        ) as client:
            watch = client.watch(consumer="async-worker")
            issue_some(4)  # 1 reward + 4 issues
            first = await asyncio.wait_for(follow(5, watch), 30)
            acked = await watch.ack()
            server.stop(9)
            server = spawn_server(store, "--listen", address)
            issue_some(3)  # 1 reward + 3 issues: positions 6..9
            second = await asyncio.wait_for(follow(9, watch), 30)
            watch.close()
            again = client.watch(consumer="async-worker")  # a restarted worker, no state
            resumed = await asyncio.wait_for(anext(again), 30)
            again.close()
            return first + second, acked, resumed.position

    try:
        positions, acked, resumed = asyncio.run(scenario())
    finally:
        server.stop(9)
    assert positions == list(range(1, 10))
    assert acked == 5
    assert resumed == 6  # after the acknowledged position


def test_sigterm_ends_open_streams_at_once_and_the_server_exits(store):
    server = spawn_server(store)
    issued = new_program("feed-drain")
    with grpc.insecure_channel(server.address) as channel:
        api = make_api(channel, issued.program_id, issued.api_key)
        f.reward(api)
        stream = api.events.WatchEvents(events_pb2.WatchEventsRequest())
        assert next(stream).event.position == 1
        started = time.monotonic()
        server.process.send_signal(15)
        with pytest.raises(StopIteration):  # ended cleanly: the consumer reconnects elsewhere
            next(stream)
        assert server.process.wait(10) == 0
        # Well inside the 10 s grace: an open stream does not hold the shutdown.
        assert time.monotonic() - started < 5


def test_the_server_runs_retention_in_the_background(store):
    issued = new_program("feed-retention")
    server = spawn_server(store)
    try:
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, issued.program_id, issued.api_key)
            for _ in range(3):
                f.reward(api)
            api.events.AckEvents(events_pb2.AckEventsRequest(consumer="slow", position=2))
    finally:
        server.stop()
    then = utcnow() - timedelta(days=3)
    with session():
        in_transaction(
            lambda: (
                Event.update(created_at=then).where(Event.program == issued.program_id).execute()
            )
        )
    # The step runs at start: events older than 2 days go, but not the one "slow" still needs.
    server = spawn_server(store, "--event-retention", "2d")
    try:
        wait_for_line(server, '"event":"events_deleted"')
        assert [p for p, _, _ in stored_events(issued.program_id)] == [3]
    finally:
        server.stop()
