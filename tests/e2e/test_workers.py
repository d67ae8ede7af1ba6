"""--workers N on SQLite: forked processes share one port and one file, and none of them
answers from memory after another one committed a change."""

import json
import os
import signal

import grpc
import pytest
from rewards.v1 import catalog_pb2

from tests import factories as f
from tests.helpers import admin_key_of, make_api, new_connection, spawn_server, wait_for_line

# The kernel spreads connections, not calls, over the workers: with 12, the chance that one
# worker gets them all is about 1 in 2,000.
CONNECTIONS = 12
CONNECTIONS_FOR_EVERY_WORKER = 16


def _names_seen(address: str, key: str, reward_id: str) -> list[str]:
    """The reward's name as each of several new connections sees it, asked twice each."""
    names = []
    for _ in range(CONNECTIONS):
        with new_connection(address) as channel:
            api = make_api(channel, "", key)
            names += [f.get_reward(api, reward_id).name for _ in range(2)]
    return names


def test_no_worker_answers_from_memory_after_another_committed(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'workers.db'}", "--workers", "2")
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            reward = f.reward(make_api(channel, "", key), name="first")
        assert set(_names_seen(server.address, key, reward.id)) == {"first"}
        for name in ("second", "third"):
            with grpc.insecure_channel(server.address) as channel:
                make_api(channel, "", key).catalog.UpdateReward(
                    catalog_pb2.UpdateRewardRequest(
                        reward=catalog_pb2.Reward(id=reward.id, name=name),
                        update_mask={"paths": ["name"]},
                    )
                )
            assert set(_names_seen(server.address, key, reward.id)) == {name}
    finally:
        assert server.stop() == 0


def test_workers_share_one_port_and_each_answers_calls(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'shared.db'}", "--workers", "2")
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        key = admin_key_of(server)
        # Port 0 was asked for: one port was reserved and both workers bound it.
        serving = [e for e in _entries(server) if e["event"] == "serving"]
        assert {e["address"] for e in serving} == {server.address}
        assert len({e["pid"] for e in serving}) == 2
        # A new connection each: with 16, both workers are picked but 1 time in 32,768.
        for _ in range(CONNECTIONS_FOR_EVERY_WORKER):
            with new_connection(server.address) as channel:
                make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())
        wait_for_line(server, '"event":"rpc"', count=CONNECTIONS_FOR_EVERY_WORKER)
        answered_by = {e["pid"] for e in _entries(server) if e["event"] == "rpc"}
        assert answered_by == {e["pid"] for e in serving}
    finally:
        assert server.stop() == 0


def _entries(server) -> list[dict]:
    return [json.loads(line) for line in server.stdout_lines if line.startswith("{")]


def test_a_worker_that_dies_is_replaced_and_sigterm_still_stops_all(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'restart.db'}", "--workers", "2")
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        key = admin_key_of(server)
        first = [e["pid"] for e in _entries(server) if e["event"] == "serving"]
        os.kill(first[0], signal.SIGKILL)
        wait_for_line(server, '"event":"worker_restarted"')
        wait_for_line(server, '"event":"serving"', count=3)
        died = next(e for e in _entries(server) if e["event"] == "worker_died")
        assert died["worker_pid"] == first[0] and died["signal"] == "SIGKILL"
        assert died["level"] == "error"
        restarted = next(e for e in _entries(server) if e["event"] == "worker_restarted")
        assert restarted["replaced"] == first[0]
        serving = [e for e in _entries(server) if e["event"] == "serving"]
        workers = {first[1], restarted["worker_pid"]}
        assert serving[-1]["pid"] == restarted["worker_pid"] not in first
        assert serving[-1]["address"] == server.address  # the same reserved port
        # New connections are answered, by the old worker and the new one: each connection
        # goes to one of them at random, so ask on new ones until both have answered.
        answered: set[int] = set()
        for calls in range(1, 201):
            with grpc.insecure_channel(server.address) as channel:
                make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())
            if calls % CONNECTIONS_FOR_EVERY_WORKER == 0:
                wait_for_line(server, '"event":"rpc"', count=calls)
                answered = {e["pid"] for e in _entries(server) if e["event"] == "rpc"}
                if answered == workers:
                    break
        assert answered == workers
    finally:
        assert server.stop() == 0
    for pid in workers:  # reaped by the parent: none is left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert sum(e["event"] == "worker_restarted" for e in _entries(server)) == 1
