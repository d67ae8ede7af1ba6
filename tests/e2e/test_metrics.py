"""Prometheus metrics of a real server on --metrics-listen, scraped over HTTP."""

import socket
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families
from rewards.v1 import catalog_pb2

from tests.helpers import admin_key_of, expect_failure, make_api, spawn_server, wait_for_line


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
