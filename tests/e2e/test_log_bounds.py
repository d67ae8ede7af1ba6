"""Logged values are clipped: a caller cannot grow the log by more than a bounded line per
call, with or without a key."""

import json

import grpc
from rewards.v1 import issuance_pb2

from rewards_service.logging import MAX_VALUE_CHARS, clip_values
from tests.helpers import spawn_server, wait_for_line

ISSUE = "/rewards.v1.RewardIssuance/IssueReward"


def test_an_8_mb_request_id_logs_a_short_prefix(tmp_path):
    server = spawn_server(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        request_id = "r" * (8 * 1024 * 1024 - 1024)
        request = issuance_pb2.IssueRewardRequest(reward_id="rew_x", request_id=request_id)
        with grpc.insecure_channel(server.address) as channel:
            issue = channel.unary_unary(
                ISSUE,
                request_serializer=issuance_pb2.IssueRewardRequest.SerializeToString,
                response_deserializer=issuance_pb2.IssueRewardResponse.FromString,
            )
            for _ in range(3):  # no key: refused as UNAUTHENTICATED, after the body was read
                try:
                    issue(request, timeout=30)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        wait_for_line(server, ISSUE, count=3)
    finally:
        assert server.stop() == 0
    lines = [line for line in server.stdout_lines if ISSUE in line]
    assert len(lines) == 3
    assert max(len(line.encode()) for line in server.stdout_lines) < 2048
    logged = json.loads(lines[0])["request_id"]
    assert logged.startswith("r" * MAX_VALUE_CHARS)
    assert logged.endswith(f"[{len(request_id)} chars]")


def test_every_value_is_clipped_and_short_ones_are_kept():
    event = {
        "event": "rpc",
        "code": 200,
        "ok": True,
        "gone": None,
        "short": "abc",
        "long": "x" * 10_000,
        "listed": ["y" * 1000],
    }
    clipped = clip_values(None, "info", dict(event))
    assert {k: clipped[k] for k in ("event", "code", "ok", "gone", "short")} == {
        k: event[k] for k in ("event", "code", "ok", "gone", "short")
    }
    assert clipped["long"] == "x" * MAX_VALUE_CHARS + "…[10000 chars]"
    assert len(clipped["listed"]) < MAX_VALUE_CHARS + 20
    traceback = "Traceback\n" + "line\n" * 100_000
    kept = clip_values(None, "error", {"exception": traceback})["exception"]
    assert kept.endswith("line\n") and len(kept) < 17 * 1024
