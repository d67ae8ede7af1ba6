"""The real grpcurl binary against a real `rewards-server` process on a SQLite file: what an
operator following the README does."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from tests.helpers import admin_key_of, spawn_server, wait_for_line

GRPCURL = Path(sys.executable).parent / "grpcurl"


def grpcurl(
    address: str, *args: str, key: str | None = None, data: object = None
) -> subprocess.CompletedProcess:
    command = [str(GRPCURL), "-plaintext"]
    if key is not None:
        command += ["-H", f"authorization: Bearer {key}"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    command += [address, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def call(address: str, method: str, key: str, data: object) -> dict:
    done = grpcurl(address, method, key=key, data=data)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("grpcurl") / "rewards.db"
    server = spawn_server(f"sqlite:///{db}")
    key = admin_key_of(server)
    assert key and key.startswith("rwk_"), "".join(server.stdout_lines)
    yield server, key
    assert server.stop() == 0


def test_the_binary_is_real():
    assert GRPCURL.exists()
    done = subprocess.run(
        [str(GRPCURL), "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert "grpcurl" in (done.stdout + done.stderr)


def test_the_first_start_prints_one_admin_key(served):
    server, key = served
    lines = [line for line in server.stdout_lines if "Admin API key" in line]
    assert len(lines) == 1
    assert any("default" in line for line in server.stdout_lines)
    # The key is printed for the operator, never written to the structured log.
    logged = [line for line in server.stdout_lines if line.startswith("{")]
    assert logged and not any(key in line for line in logged)


def test_reflection_lists_the_services(served):
    server, _ = served
    done = grpcurl(server.address, "list")
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) >= {
        "rewards.v1.RewardCatalog",
        "rewards.v1.RewardIssuance",
        "rewards.v1.Participants",
        "rewards.v1.ParticipantGroups",
        "rewards.v1.ProgramRegistry",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    methods = grpcurl(server.address, "list", "rewards.v1.RewardCatalog")
    assert methods.returncode == 0, methods.stderr
    assert {
        "rewards.v1.RewardCatalog.CreateReward",
        "rewards.v1.RewardCatalog.ListRewards",
        "rewards.v1.RewardCatalog.AddCodes",
    } <= set(methods.stdout.split())


def test_every_method_that_list_reaches_describes_with_its_comments(served):
    server, _ = served
    services = grpcurl(server.address, "list").stdout.split()
    assert "grpc.reflection.v1.ServerReflection" in services
    methods = [m for s in services for m in grpcurl(server.address, "list", s).stdout.split()]
    assert len(methods) > 30
    for method in methods:
        done = grpcurl(server.address, "describe", method)
        assert done.returncode == 0, (method, done.stderr)
        assert f"{method} is a method" in done.stdout
    issue = grpcurl(server.address, "describe", "rewards.v1.RewardIssuance.IssueReward").stdout
    assert "Idempotent on request_id" in issue


def test_nested_symbols_describe_and_unknown_ones_do_not(served):
    server, _ = served
    value = grpcurl(server.address, "describe", "rewards.v1.RewardType.REWARD_TYPE_POINTS")
    assert value.returncode == 0, value.stderr
    assert "is an enum value" in value.stdout
    field = grpcurl(server.address, "describe", "rewards.v1.Reward.name")
    assert "is a field" in field.stdout
    unknown = grpcurl(server.address, "describe", "rewards.v1.RewardIssuance.Bogus")
    assert unknown.returncode != 0
    assert "Symbol not found" in unknown.stderr


def test_reflection_answers_under_v1_and_v1alpha(served):
    server, _ = served
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with grpc.insecure_channel(server.address) as channel:
        for version in ("v1", "v1alpha"):
            call = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            (answer,) = list(call(iter([request]), timeout=10))
            names = {s.name for s in answer.list_services_response.service}
            assert "rewards.v1.RewardIssuance" in names


def test_describe_shows_the_reward_message(served):
    server, _ = served
    done = grpcurl(server.address, "describe", "rewards.v1.Reward")
    assert done.returncode == 0, done.stderr
    assert "rewards.v1.Reward is a message" in done.stdout
    for field in ("string name = 2;", "oneof config", "optional int64 max_total", "string etag"):
        assert field in done.stdout, field


@pytest.mark.parametrize(
    ("symbol", "shown"),
    [
        ("rewards.v1.ParticipantGroups", "rpc AdjustGroupBalance"),
        ("rewards.v1.ProgramRegistry", "rpc CreateCustomField"),
        ("rewards.v1.IssueRewardRequest", ".rewards.v1.PayFrom pay_from = 17;"),
        ("rewards.v1.PayFrom", "PAY_FROM_GROUP = 2;"),
        ("rewards.v1.AddCodesRequest", "repeated .rewards.v1.CodeEntry code_entries = 4;"),
        ("rewards.v1.CodePool", "int64 expired_count = 9;"),
        ("rewards.v1.Issuance", ".google.protobuf.Timestamp code_expires_at = 32;"),
        ("rewards.v1.CustomFieldType", "CUSTOM_FIELD_TYPE_DATE = 4;"),
    ],
)
def test_describe_shows_groups_registries_and_code_expiry(served, symbol, shown):
    server, _ = served
    done = grpcurl(server.address, "describe", symbol)
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout
    assert "//" in done.stdout  # with its comments


def test_describe_shows_the_proto_comments(served):
    server, _ = served
    done = grpcurl(server.address, "describe", "rewards.v1.Reward")
    assert done.returncode == 0, done.stderr
    assert "Display name, 1-255 characters." in done.stdout


def test_create_an_asset_and_a_reward_with_json_then_list(served):
    server, key = served
    asset = call(
        server.address,
        "rewards.v1.RewardCatalog/CreateAsset",
        key,
        {"asset": {"code": "GRPCURL_PTS", "name": "Points", "scale": 2}},
    )
    assert asset["id"].startswith("ast_") and asset["scale"] == 2
    reward = call(
        server.address,
        "rewards.v1.RewardCatalog/CreateReward",
        key,
        {
            "reward": {
                "name": "100 points",
                "type": "REWARD_TYPE_POINTS",
                "points": {"asset_id": asset["id"], "amount": "100.00"},
                "max_total": "1000",
                "metadata": {"source": "grpcurl"},
            },
            "request_id": "grpcurl-create-1",
        },
    )
    assert reward["id"].startswith("rew_")
    assert reward["status"] == "REWARD_STATUS_ACTIVE"
    assert reward["points"] == {"asset_id": asset["id"], "amount": "100.00"}
    assert reward["max_total"] == "1000"  # int64 is a JSON string
    listed = call(server.address, "rewards.v1.RewardCatalog/ListRewards", key, {})
    assert reward["id"] in [r["id"] for r in listed["rewards"]]
    got = call(server.address, "rewards.v1.RewardCatalog/GetReward", key, {"id": reward["id"]})
    assert got == reward


def test_a_bad_request_shows_every_bad_field(served):
    server, key = served
    done = grpcurl(
        server.address,
        "rewards.v1.RewardCatalog/CreateReward",
        key=key,
        data={"reward": {"type": "REWARD_TYPE_POINTS", "points": {"amount": "-1"}}},
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "InvalidArgument" in out
    assert "VALIDATION_FAILED" in out
    for field in ("reward.name", "reward.points.asset_id", "reward.points.amount"):
        assert field in out, field
    assert "Traceback" not in out


def test_a_call_without_a_key_is_unauthenticated(served):
    server, _ = served
    done = grpcurl(server.address, "rewards.v1.RewardCatalog/ListRewards", data={})
    assert done.returncode != 0
    assert "Unauthenticated" in done.stderr + done.stdout
    assert "MISSING_CREDENTIALS" in done.stderr + done.stdout


def test_health_answers_serving(served):
    server, _ = served
    for data in ({}, {"service": "rewards.v1.RewardCatalog"}):
        done = grpcurl(server.address, "grpc.health.v1.Health/Check", data=data)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"status": "SERVING"}


def test_the_bootstrap_key_from_the_environment_is_used(tmp_path):
    chosen = "rwk_operator-chosen-bootstrap-key-0123456789"
    url = f"sqlite:///{tmp_path / 'boot.db'}"
    first = spawn_server(url, env={"REWARDS_BOOTSTRAP_API_KEY": chosen})
    try:
        assert admin_key_of(first) is None  # no other key was made up
        assert not any(chosen in line for line in first.stdout_lines), "never echoed"
        listed = call(first.address, "rewards.v1.RewardCatalog/ListRewards", chosen, {})
        assert listed == {}
        wrong = grpcurl(
            first.address, "rewards.v1.RewardCatalog/ListRewards", key="rwk_other", data={}
        )
        assert "INVALID_CREDENTIALS" in wrong.stdout + wrong.stderr
    finally:
        assert first.stop() == 0
    # A second start on the same database makes no new program or key; the old key works.
    second = spawn_server(
        url, env={"REWARDS_BOOTSTRAP_API_KEY": "rwk_ignored-now-0123456789abcdefghijkl"}
    )
    try:
        assert admin_key_of(second) is None
        call(second.address, "rewards.v1.RewardCatalog/ListRewards", chosen, {})
        ignored = grpcurl(
            second.address,
            "rewards.v1.RewardCatalog/ListRewards",
            key="rwk_ignored-now-0123456789abcdefghijkl",
            data={},
        )
        assert ignored.returncode != 0
    finally:
        assert second.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_cleanly(tmp_path, sig):
    server = spawn_server(f"sqlite:///{tmp_path / 'stop.db'}")
    key = admin_key_of(server)
    call(server.address, "rewards.v1.RewardCatalog/ListRewards", key, {})
    assert server.stop(sig) == 0
    wait_for_line(server, '"event":"stopped"')
    log = "".join(server.stdout_lines)
    assert '"event":"stopping"' in log
    assert sig.name in log
    # The port no longer answers.
    done = grpcurl(server.address, "grpc.health.v1.Health/Check", data={})
    assert done.returncode != 0


@pytest.mark.parametrize(
    "weak", ["a", "rwk_short", "a" * 64, "ab" * 32, "rwk_ has spaces in it 0123456789abcdefgh"]
)
def test_a_weak_bootstrap_key_is_refused_at_start_and_not_echoed(tmp_path, weak):
    done = subprocess.run(
        [sys.executable, "-m", "rewards_service", "--listen", "127.0.0.1:0"],
        env={
            **os.environ,
            "REWARDS_DATABASE_URL": f"sqlite:///{tmp_path / 'weak.db'}",
            "REWARDS_BOOTSTRAP_API_KEY": weak,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "REWARDS_BOOTSTRAP_API_KEY: too weak" in done.stderr
    if len(weak) > 1:  # "a" is in any text
        assert weak not in done.stdout + done.stderr
    assert not (tmp_path / "weak.db").exists()


@pytest.mark.parametrize(
    ("symbol", "shown"),
    [
        (
            "rewards.v1.Reward",
            ["string conversion_ratio = 26;", "repeated .rewards.v1.PaymentOption"],
        ),
        ("rewards.v1.Reward", ["Unset: HALF_UP for conversion_ratio"]),
        ("rewards.v1.IssueRewardRequest", ["string payment_option_id = 13;", "bool manual = 15;"]),
        ("rewards.v1.IssueRewardRequest", ["Capillary's eventLogId"]),
        ("rewards.v1.Issuance", ["redemption_details = 26;", "string issuer_key_name = 29;"]),
        ("rewards.v1.RedemptionDetails", ["The cash part, recorded only"]),
        ("rewards.v1.ListIssuancesRequest", ["string source_event_id = 10;"]),
        ("rewards.v1.ListRewardsResponse", ["int32 total_size = 3;"]),
        ("rewards.v1.CostRounding", ["COST_ROUNDING_HALF_UP = 1;"]),
    ],
)
def test_describe_shows_the_pricing_and_issuer_fields(served, symbol, shown):
    server, _ = served
    done = grpcurl(server.address, "describe", symbol)
    assert done.returncode == 0, done.stderr
    for text in shown:
        assert text in done.stdout, (text, done.stdout)
