"""Prometheus metrics of a real server on --metrics-listen, scraped over HTTP."""

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rewards.v1 import catalog_pb2, issuance_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import (
    admin_key_of,
    expect_failure,
    make_api,
    new_connection,
    spawn_server,
    wait_for_line,
)

# As in test_workers: with 16 new connections both workers answer but 1 time in 32,768.
CONNECTIONS_FOR_EVERY_WORKER = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(address: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(method: str, **more: str) -> frozenset:
    service = "rewards.v1.RewardCatalog"
    return frozenset(
        {"grpc_type": "unary", "grpc_service": service, "grpc_method": method, **more}.items()
    )


def test_calls_are_counted_and_timed_by_method_and_code(tmp_path):
    metrics_address = f"127.0.0.1:{_free_port()}"
    server = spawn_server(
        f"sqlite:///{tmp_path / 'metrics.db'}", "--metrics-listen", metrics_address
    )
    try:
        wait_for_line(server, '"event":"metrics"')
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, "", key)
            for _ in range(3):
                api.catalog.ListRewards(catalog_pb2.ListRewardsRequest())
            expect_failure(api.catalog.GetReward, catalog_pb2.GetRewardRequest(id="rew_missing"))
            stranger = make_api(channel, "", "rwk_unknown")
            expect_failure(stranger.catalog.ListRewards, catalog_pb2.ListRewardsRequest())
        samples = _scrape(metrics_address)
    finally:
        assert server.stop() == 0
    handled = "grpc_server_handled_total"
    assert samples[(handled, _labels("ListRewards", grpc_code="OK"))] == 3
    assert samples[(handled, _labels("ListRewards", grpc_code="UNAUTHENTICATED"))] == 1
    assert samples[(handled, _labels("GetReward", grpc_code="NOT_FOUND"))] == 1
    assert samples[("grpc_server_handling_seconds_count", _labels("ListRewards"))] == 4
    assert samples[("grpc_server_handling_seconds_count", _labels("GetReward"))] == 1
    seconds = samples[("grpc_server_handling_seconds_sum", _labels("ListRewards"))]
    assert 0 < seconds < 10
    everything = samples[("grpc_server_handling_seconds_bucket", _labels("ListRewards", le="+Inf"))]
    assert everything == 4
    # Health and reflection are not ours to count.
    assert not any(("grpc.health" in value) for _, labels in samples for _, value in labels)


def _entries(server) -> list[dict]:
    return [json.loads(line) for line in server.stdout_lines if line.startswith("{")]


def _handled(samples, method: str, code: str = "OK") -> float:
    return samples.get(("grpc_server_handled_total", _labels(method, grpc_code=code)), 0)


def _list_on_new_connections(address: str, key: str, count: int) -> None:
    for _ in range(count):
        with new_connection(address) as channel:
            make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())


def test_one_scrape_counts_the_calls_of_every_worker_a_dead_one_included(tmp_path):
    metrics_address = f"127.0.0.1:{_free_port()}"
    server = spawn_server(
        f"sqlite:///{tmp_path / 'workers.db'}",
        "--workers",
        "2",
        "--metrics-listen",
        metrics_address,
    )
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        key = admin_key_of(server)
        directory = Path(next(e for e in _entries(server) if e["event"] == "metrics")["directory"])
        assert directory.is_dir()
        workers = {e["pid"] for e in _entries(server) if e["event"] == "serving"}
        _list_on_new_connections(server.address, key, CONNECTIONS_FOR_EVERY_WORKER)
        wait_for_line(server, '"event":"rpc"', count=CONNECTIONS_FOR_EVERY_WORKER)
        answered_by = {e["pid"] for e in _entries(server) if e["event"] == "rpc"}
        assert answered_by == workers  # both workers took calls...
        samples = _scrape(metrics_address)
        # ...and the one scrape counted every one of them.
        assert _handled(samples, "ListRewards") == CONNECTIONS_FOR_EVERY_WORKER
        assert (
            samples[("grpc_server_handling_seconds_count", _labels("ListRewards"))]
            == CONNECTIONS_FOR_EVERY_WORKER
        )

        # A worker killed: what it counted stays counted, and its replacement adds on.
        os.kill(sorted(workers)[0], signal.SIGKILL)
        wait_for_line(server, '"event":"serving"', count=3)
        _list_on_new_connections(server.address, key, CONNECTIONS_FOR_EVERY_WORKER)
        wait_for_line(server, '"event":"rpc"', count=2 * CONNECTIONS_FOR_EVERY_WORKER)
        assert _handled(_scrape(metrics_address), "ListRewards") == 2 * CONNECTIONS_FOR_EVERY_WORKER
    finally:
        assert server.stop() == 0
    assert not directory.exists()  # removed on the way out


def _issuances(samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["type"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "rewards_issuances_total"
    }


def test_issuances_code_pools_and_the_writer_are_measured(tmp_path):
    metrics_address = f"127.0.0.1:{_free_port()}"
    server = spawn_server(
        f"sqlite:///{tmp_path / 'issues.db'}", "--metrics-listen", metrics_address
    )
    try:
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, "", key)
            user = f.participant(api).id
            product = f.reward(api, max_total=2).id
            f.issue(api, product, user, request_id="first")
            f.issue(api, product, user, request_id="first")  # a replay
            f.issue(api, product, user)
            expect_failure(f.issue, api, product, user)  # past max_total
            pool = f.code_pool(api, ["A-1", "A-2", "A-3"]).id
            f.code_pool(api, [])  # an empty pool
            coupon = f.reward(
                api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool)
            ).id
            batch = api.issuance.BatchIssueRewards(
                issuance_pb2.BatchIssueRewardsRequest(
                    requests=[
                        issuance_pb2.IssueRewardRequest(reward_id=coupon, participant=f.ref(user)),
                        issuance_pb2.IssueRewardRequest(
                            reward_id="rew_none", participant=f.ref(user)
                        ),
                    ]
                )
            )
            assert batch.results[0].HasField("issuance") and batch.results[1].HasField("error")
            f.grant(api, user, "grant-1")
        samples = _scrape(metrics_address)
    finally:
        assert server.stop() == 0
    assert _issuances(samples) == {
        ("PRODUCT", "issued"): 2,
        ("PRODUCT", "replayed"): 1,
        ("UNKNOWN", "OUT_OF_STOCK"): 1,
        ("UNIQUE_COUPON", "issued"): 1,
        ("UNKNOWN", "REWARD_NOT_FOUND"): 1,
        ("CUSTOM", "issued"): 1,
    }
    pools = {
        dict(labels)["code_pool_id"]: value
        for (name, labels), value in samples.items()
        if name == "rewards_code_pool_available_codes"
    }
    assert pools[pool] == 2
    assert len(pools) == 2 and min(pools.values()) == 0  # the empty one comes first
    assert samples[("rewards_code_pools", frozenset())] == 2
    assert samples[("rewards_code_pools_empty", frozenset())] == 1
    # Every write went through the writer: one group or more each, none bigger than allowed.
    groups = samples[("rewards_store_group_size_count", frozenset())]
    written = samples[("rewards_store_group_size_sum", frozenset())]
    assert 1 <= groups <= written
    assert written >= 6  # the issues, the pools, the codes, the reward, the grant
    assert samples[("rewards_store_group_commit_seconds_count", frozenset())] == groups
    assert samples[("rewards_store_group_size_bucket", frozenset({("le", "16.0")}))] == groups


def test_pool_connections_in_use_on_postgresql(store):
    if not store.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite has no connection pool")
    issued = new_program("metrics-connections")
    metrics_address = f"127.0.0.1:{_free_port()}"
    server = spawn_server(store, "--metrics-listen", metrics_address)
    try:
        with grpc.insecure_channel(server.address) as channel:
            f.asset(make_api(channel, "", issued.api_key))  # a write: the writer has connected
        deadline = time.monotonic() + 10
        in_use = 0.0
        while in_use < 1 and time.monotonic() < deadline:
            samples = _scrape(metrics_address)
            in_use = samples.get(("rewards_store_connections", frozenset({("state", "in_use")})), 0)
            time.sleep(0.2)
    finally:
        assert server.stop() == 0
    # The writer keeps its connection; the call's own went back to the pool.
    assert in_use >= 1
    assert samples[("rewards_store_connections", frozenset({("state", "idle")}))] >= 0
