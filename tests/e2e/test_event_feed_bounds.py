"""What a watcher can cost a server process: a consumer that stops reading while thousands
of events are committed holds a page of them in the server, not the backlog; and streams
the clients leave mid-way end as cancelled, not as server failures."""

import grpc
import pytest
from rewards.v1 import catalog_pb2, events_pb2, issuance_pb2

from rewards_service.domain.validation import MAX_MAP_ENTRIES, MAX_MAP_KEY, MAX_MAP_VALUE
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import make_api, spawn_server, wait_for_line

pytestmark = pytest.mark.slow

# Each issuance carries the largest metadata a request may: its event is ~54 KB.
METADATA = {
    f"k{i:02d}".ljust(MAX_MAP_KEY, "k"): "v" * MAX_MAP_VALUE for i in range(MAX_MAP_ENTRIES)
}
ISSUES = 1_000
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def own_connection(address: str) -> grpc.Channel:
    """A channel on a TCP connection of its own: its HTTP/2 windows are not the others'."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_a_consumer_that_stops_reading_holds_no_backlog_in_the_server(store):
    server = spawn_server(store)
    issued = new_program("feed-slow-consumer")
    try:
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, issued.program_id, issued.api_key)
            reward = f.reward(api, max_per_participant=ISSUES + 50)
            user = f.participant(api)
            request = issuance_pb2.IssueRewardRequest(
                reward_id=reward.id, participant=f.ref(user.id), metadata=METADATA
            )
            for _ in range(50):  # the server's caches and pools at their working size
                api.issuance.IssueReward(request, timeout=60)
            with own_connection(server.address) as slow_channel:
                slow = make_api(slow_channel, issued.program_id, issued.api_key)
                stream = slow.events.WatchEvents(events_pb2.WatchEventsRequest())
                first = next(stream)  # the stream is open; from here on it is not read
                before = rss_bytes(server.process.pid)
                produced = 0
                for _ in range(ISSUES):
                    # Another client's calls are answered meanwhile.
                    done = api.issuance.IssueReward(request, timeout=60)
                    produced += done.issuance.ByteSize()
                    assert (
                        api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward.id)).id
                        == reward.id
                    )
                grown = rss_bytes(server.process.pid) - before
                # Holding the backlog takes at least its bytes (more as Python objects: a
                # read-ahead queue grew by ~95 MiB for these ~52 MiB); a server that holds
                # one page of 100 events and its HTTP/2 windows grew by ~8 MiB.
                assert produced > 50 * MIB
                assert grown < produced / 2, (grown / MIB, produced / MIB)
                # Read now, the consumer gets every event once, in order.
                last = 1 + 50 + ISSUES  # the reward's creation, then one event per issue
                positions = [first.event.position]
                while positions[-1] < last:
                    response = next(stream)
                    if response.HasField("event"):
                        positions.append(response.event.position)
                stream.cancel()
        assert positions == list(range(1, last + 1))
    finally:
        assert server.stop() == 0


def test_streams_the_clients_leave_end_as_cancelled(store):
    server = spawn_server(store, "--event-heartbeat", "0.05")
    issued = new_program("feed-left")
    try:
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, issued.program_id, issued.api_key)
            f.reward(api)
            for after in (0, 1) * 100:  # an event or a heartbeat first, then gone
                stream = api.events.WatchEvents(events_pb2.WatchEventsRequest(after_position=after))
                next(stream)
                stream.cancel()
            # Every cancel reached the server before it stops: a stream still open when the
            # server drains is ended by the server, not by its client.
            wait_for_line(server, '"messages":', count=200)
    finally:
        assert server.stop() == 0
    watches = [line for line in server.stdout_lines if "/rewards.v1.Events/WatchEvents" in line]
    assert not [line for line in watches if '"rpc_failed"' in line]
    ended = [line for line in watches if '"event":"rpc"' in line]
    assert len(ended) == 200
    assert not [line for line in ended if '"code":"CANCELLED"' not in line]
