"""Access-log lines are written in batches: they still arrive on their own, in order, from
every worker process, and none is left behind at shutdown."""

import json

import grpc
from rewards.v1 import catalog_pb2

from tests.helpers import admin_key_of, make_api, spawn_server, wait_for_line

LIST_REWARDS = "/rewards.v1.RewardCatalog/ListRewards"


def _entries(server) -> list[dict]:
    return [json.loads(line) for line in server.stdout_lines if line.startswith("{")]


def _list_rewards(address: str, key: str, calls: int) -> None:
    with grpc.insecure_channel(address) as channel:
        api = make_api(channel, "", key)
        for _ in range(calls):
            api.catalog.ListRewards(catalog_pb2.ListRewardsRequest())


def test_an_access_line_arrives_while_the_server_is_idle(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        _list_rewards(server.address, admin_key_of(server), 1)
        # No other line follows to push it out: the batch is written within a second.
        wait_for_line(server, LIST_REWARDS, timeout=2)
    finally:
        assert server.stop() == 0


def test_every_access_line_is_written_before_the_server_stops(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'log.db'}")
    _list_rewards(server.address, admin_key_of(server), 25)
    assert server.stop() == 0
    wait_for_line(server, '"event":"stopped"')
    events = [entry["event"] for entry in _entries(server)]
    assert events.count("rpc") == 25
    assert events.index("stopping") > max(i for i, e in enumerate(events) if e == "rpc")
    assert events[-1] == "stopped"


def test_each_worker_serves_and_writes_its_access_lines(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'log.db'}", "--workers", "2")
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        serving = [e for e in _entries(server) if e["event"] == "serving"]
        assert len({e["pid"] for e in serving}) == 2
        key = admin_key_of(server)
        for _ in range(8):  # a connection each, which the kernel spreads over the workers
            _list_rewards(server.address, key, 2)
        # Written by each worker's own flushing thread: nothing else is logged meanwhile.
        wait_for_line(server, LIST_REWARDS, timeout=2, count=16)
        assert sum(LIST_REWARDS in line for line in server.stdout_lines) == 16
    finally:
        assert server.stop() == 0
