"""The event feed's figures: commit-to-delivery lag on an open WatchEvents stream while
IssueReward runs at a fixed rate, and what the outbox costs IssueReward's throughput.

The cost is measured honestly on the same build: two servers, each on a fresh SQLite file,
one recording events and one started with REWARDS_EVENTS=off (emit() returns at once: no
snapshot, no sequencer step, no event rows), measured in alternating rounds under the same
h2load load. Lag is an event's arrival at the consumer less its created_at, which the writer
stamps just before COMMIT: it covers the commit, the wake-up of the stream, the page read,
and the send (server and consumer share one clock, on one machine).
"""

import asyncio
import statistics
import threading
import time
from pathlib import Path

import grpc
from rewards.v1 import common_pb2, events_pb2, events_pb2_grpc, issuance_pb2, issuance_pb2_grpc

from bench import seed


def _percentile(values: list[float], rank: int) -> float | None:
    if len(values) < 2:
        return None
    return statistics.quantiles(values, n=100)[rank - 1]


def event_lag(target: str, key: str, ids: dict[str, str], *, rate: int, seconds: float) -> dict:
    """Issues `rate` a second for `seconds` while one stream follows the program; the lag of
    every ISSUANCE_ISSUED event it receives."""
    metadata = (("authorization", f"Bearer {key}"),)
    lags: list[float] = []
    channel = grpc.insecure_channel(target)
    stream = events_pb2_grpc.EventsStub(channel).WatchEvents(
        events_pb2.WatchEventsRequest(
            after_position=_last_position(channel, metadata),
            types=[events_pb2.EVENT_TYPE_ISSUANCE_ISSUED],
        ),
        metadata=metadata,
    )
    expected = int(rate * seconds)

    def follow() -> None:
        try:
            for response in stream:
                if response.HasField("event"):
                    created = response.event.created_at
                    lags.append(time.time() - (created.seconds + created.nanos / 1e9))
                    if len(lags) >= expected:
                        return
        except grpc.RpcError:
            pass  # cancelled at the end

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    issued, failed = asyncio.run(_issue_at(target, metadata, ids, rate=rate, count=expected))
    follower.join(30)
    stream.cancel()
    channel.close()
    lags_ms = [lag * 1000 for lag in lags]
    return {
        "rate": rate,
        "seconds": seconds,
        "issued": issued,
        "failed": failed,
        "delivered": len(lags_ms),
        "p50_ms": _percentile(lags_ms, 50),
        "p99_ms": _percentile(lags_ms, 99),
        "max_ms": max(lags_ms) if lags_ms else None,
    }


def _last_position(channel: grpc.Channel, metadata) -> int:
    stub = events_pb2_grpc.EventsStub(channel)
    position, token = 0, ""
    while True:
        page = stub.ListEvents(
            events_pb2.ListEventsRequest(page_size=1000, page_token=token, after_position=0),
            metadata=metadata,
        )
        if page.events:
            position = page.events[-1].position
        token = page.next_page_token
        if not token:
            return position


async def _issue_at(target: str, metadata, ids, *, rate: int, count: int) -> tuple[int, int]:
    """`count` IssueReward calls started on a fixed schedule, `rate` a second, each without
    waiting for the one before (an open-loop load, like independent clients)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = issuance_pb2_grpc.RewardIssuanceStub(channel)
        request = issuance_pb2.IssueRewardRequest(
            reward_id=ids["reward_id"],
            participant=common_pb2.ParticipantRef(id=ids["participant_id"]),
        )
        outcomes = {"ok": 0, "failed": 0}

        async def one() -> None:
            try:
                await stub.IssueReward(request, metadata=metadata, timeout=30)
                outcomes["ok"] += 1
            except grpc.RpcError:
                outcomes["failed"] += 1

        started = time.monotonic()
        tasks = []
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        return outcomes["ok"], outcomes["failed"]


def servers(tmp: Path, start_ours, threads: tuple[str, ...]):
    """(events on, events off): the same build on two fresh SQLite files."""
    made = []
    for label, switch in (("events on", "on"), ("events off", "off")):
        url = f"sqlite:///{tmp}/events-{switch}.db"
        key = seed.program(url)
        server = start_ours(
            f"ours, SQLite, {label}",
            url,
            tmp / f"events-{switch}.log",
            *threads,
            env={"REWARDS_EVENTS": switch},
        )
        server.key, server.ids = key, seed.catalog(server.target, key)
        made.append(server)
    return made
