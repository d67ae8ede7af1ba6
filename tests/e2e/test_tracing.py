"""OpenTelemetry traces of a real server (--otlp-endpoint), received by a real OTLP/gRPC
collector endpoint on loopback: the collector's TraceService from opentelemetry-proto."""

import json
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.trace.v1 import trace_pb2
from rewards.v1 import catalog_pb2, issuance_pb2

from tests import factories as f
from tests.helpers import admin_key_of, expect_failure, make_api, spawn_server, wait_for_line

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[trace_pb2.Span] = []
        self.resources: list[dict] = []
        self._lock = threading.Lock()

    def Export(self, request, context):
        with self._lock:
            for resource_spans in request.resource_spans:
                self.resources.append(_attributes(resource_spans.resource))
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def named(self, name: str) -> list[trace_pb2.Span]:
        with self._lock:
            return [span for span in self.spans if span.name == name]


def _attributes(holder) -> dict:
    found = {}
    for attribute in holder.attributes:
        value = attribute.value
        found[attribute.key] = getattr(value, value.WhichOneof("value"))
    return found


def _start_collector() -> tuple[grpc.Server, Collector, int]:
    collector = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, collector, port


def _rpc_lines(server) -> dict[str, list[dict]]:
    lines: dict[str, list[dict]] = {}
    for line in server.stdout_lines:
        if line.startswith("{") and '"event":"rpc"' in line:
            entry = json.loads(line)
            lines.setdefault(entry["method"], []).append(entry)
    return lines


def _wait_for_spans(collector: Collector, name: str, count: int = 1) -> list[trace_pb2.Span]:
    deadline = time.monotonic() + 15
    while len(collector.named(name)) < count:
        assert time.monotonic() < deadline, f"no {name!r} span arrived"
        time.sleep(0.05)
    return collector.named(name)


def test_each_call_is_a_server_span_with_its_store_writes_as_children(tmp_path):
    grpc_server, collector, port = _start_collector()
    server = spawn_server(
        f"sqlite:///{tmp_path / 'traced.db'}", "--otlp-endpoint", f"http://127.0.0.1:{port}"
    )
    try:
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, "", key)
            user = f.participant(api).id  # on the thread pool, written by the writer
            reward = f.reward(api).id
            caller = (("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),)
            # On the event loop, then the writer.
            api.issuance.IssueReward(
                issuance_pb2.IssueRewardRequest(reward_id=reward, participant=f.ref(user)),
                metadata=caller,
            )
            expect_failure(api.catalog.GetReward, catalog_pb2.GetRewardRequest(id="rew_none"))
        wait_for_line(server, '"event":"rpc"', count=4)
    finally:
        assert server.stop() == 0  # sends what it holds on the way out
    try:
        [issue] = _wait_for_spans(collector, "rewards.v1.RewardIssuance/IssueReward")
        [upsert] = _wait_for_spans(collector, "rewards.v1.Participants/UpsertParticipant")
        [missing] = _wait_for_spans(collector, "rewards.v1.RewardCatalog/GetReward")
        writes = _wait_for_spans(collector, "store write", count=3)
    finally:
        grpc_server.stop(None)

    # The caller's trace goes on: same trace, the caller's span as parent.
    assert issue.trace_id.hex() == CALLER_TRACE
    assert issue.parent_span_id.hex() == CALLER_SPAN
    assert issue.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert _attributes(issue) == {
        "rpc.system": "grpc",
        "rpc.service": "rewards.v1.RewardIssuance",
        "rpc.method": "IssueReward",
        "rpc.grpc.status_code": 0,
    }
    # A call with no traceparent starts a trace of its own.
    assert upsert.trace_id.hex() != CALLER_TRACE and not upsert.parent_span_id
    assert _attributes(missing)["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _attributes(missing)["error.type"] == "REWARD_NOT_FOUND"

    # Each call's write ran on the writer's thread, as a child of the call's span, whether the
    # call ran on the event loop (IssueReward) or on the thread pool (UpsertParticipant).
    parents = {(w.trace_id, w.parent_span_id) for w in writes}
    assert (issue.trace_id, issue.span_id) in parents
    assert (upsert.trace_id, upsert.span_id) in parents
    for write in writes:
        assert _attributes(write) == {"db.system.name": "sqlite"}
        assert write.kind == trace_pb2.Span.SPAN_KIND_INTERNAL
    issue_write = next(w for w in writes if w.parent_span_id == issue.span_id)
    assert issue.start_time_unix_nano <= issue_write.start_time_unix_nano
    assert issue_write.end_time_unix_nano <= issue.end_time_unix_nano

    # Each access line names its call's trace.
    lines = _rpc_lines(server)
    [issue_line] = lines["/rewards.v1.RewardIssuance/IssueReward"]
    assert issue_line["trace_id"] == CALLER_TRACE
    [upsert_line] = lines["/rewards.v1.Participants/UpsertParticipant"]
    assert upsert_line["trace_id"] == upsert.trace_id.hex()
    assert collector.resources[0]["service.name"] == "rewards-service"


def test_a_trace_not_sampled_sends_no_span_and_logs_no_trace_id(tmp_path):
    grpc_server, collector, port = _start_collector()
    server = spawn_server(
        f"sqlite:///{tmp_path / 'unsampled.db'}",
        "--otlp-endpoint",
        f"http://127.0.0.1:{port}",
        "--trace-sample-ratio",
        "0",
    )
    try:
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, "", key)
            f.participant(api)  # ratio 0: not kept
            sampled = (("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),)
            api.catalog.ListRewards(catalog_pb2.ListRewardsRequest(), metadata=sampled)
        wait_for_line(server, '"event":"rpc"', count=2)
    finally:
        assert server.stop() == 0
    try:
        # The caller's sampled flag wins over the ratio.
        [listed] = _wait_for_spans(collector, "rewards.v1.RewardCatalog/ListRewards")
    finally:
        grpc_server.stop(None)
    assert listed.trace_id.hex() == CALLER_TRACE
    assert collector.named("rewards.v1.Participants/UpsertParticipant") == []
    assert collector.named("store write") == []
    lines = _rpc_lines(server)
    assert "trace_id" not in lines["/rewards.v1.Participants/UpsertParticipant"][0]
    assert lines["/rewards.v1.RewardCatalog/ListRewards"][0]["trace_id"] == CALLER_TRACE


def test_without_an_endpoint_no_line_carries_a_trace_id(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            caller = (("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),)
            make_api(channel, "", key).catalog.ListRewards(
                catalog_pb2.ListRewardsRequest(), metadata=caller
            )
        wait_for_line(server, '"event":"rpc"')
    finally:
        assert server.stop() == 0
    [line] = _rpc_lines(server)["/rewards.v1.RewardCatalog/ListRewards"]
    assert "trace_id" not in line


def test_with_workers_each_worker_sends_the_spans_of_its_own_calls(tmp_path):
    grpc_server, collector, port = _start_collector()
    server = spawn_server(
        f"sqlite:///{tmp_path / 'workers.db'}",
        "--workers",
        "2",
        "--otlp-endpoint",
        f"http://127.0.0.1:{port}",
    )
    try:
        wait_for_line(server, '"event":"serving"', count=2)
        key = admin_key_of(server)
        # A new connection each: with 16, both workers are picked but 1 time in 32,768.
        for _ in range(16):
            with grpc.insecure_channel(server.address) as channel:
                make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())
        wait_for_line(server, '"event":"rpc"', count=16)
    finally:
        assert server.stop() == 0
    try:
        spans = _wait_for_spans(collector, "rewards.v1.RewardCatalog/ListRewards", count=16)
    finally:
        grpc_server.stop(None)
    entries = [json.loads(line) for line in server.stdout_lines if line.startswith("{")]
    workers = {e["pid"] for e in entries if e["event"] == "serving"}
    assert {int(r["process.pid"]) for r in collector.resources} == workers
    logged = {e["trace_id"] for e in entries if e["event"] == "rpc"}
    assert logged == {span.trace_id.hex() for span in spans}
