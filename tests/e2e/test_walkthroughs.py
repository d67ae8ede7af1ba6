"""The README's walkthroughs and the SDK examples run against a real server, so they cannot
rot: the shell walkthrough through the real grpcurl binary, the Python ones through the SDK."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rewards.v1 import catalog_pb2, common_pb2
from rewards_client import RewardsClient, ref

from tests.conftest import new_program
from tests.helpers import spawn_server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _block(marker: str) -> str:
    """The fenced block right after `<!-- marker -->` in the README."""
    found = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", README, re.S)
    assert found, f"README has no block marked {marker}"
    return found.group(1)


@pytest.fixture(scope="module")
def server(store):
    running = spawn_server(store)
    yield running
    assert running.stop() == 0


@pytest.fixture
def env(server):
    issued = new_program("walkthrough")
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "ADDR": server.address,
        "KEY": issued.api_key,
        "REWARDS_TARGET": server.address,
        "REWARDS_API_KEY": issued.api_key,
    }


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_grpcurl_walkthrough(env):
    # Twice on one program: a reader who pastes it again gets the same story.
    for _ in range(2):
        out = _run(["bash", "-euo", "pipefail", "-c", _block("walkthrough")], env)
        assert "rewards.v1.RewardIssuance" in out  # reflection listed the services
        assert '"idempotent_replay": true' in out  # the replay came back as such
        assert re.search(r'"coupon_code": "SPRING-00\d"', out)  # a code was drawn from the pool
        assert '"status": "ISSUANCE_STATUS_CLAIMED"' in out
        assert '"available": "10"' in out  # 50 miles earned, 40 spent on the coupon


def test_the_sdk_walkthrough(env):
    out = _run([sys.executable, "-c", _block("sdk-walkthrough")], env)
    assert "replayed: True" in out
    assert "status: ISSUANCE_STATUS_CLAIMED" in out
    assert "balance: 50 miles" in out


def _with_events(env) -> None:
    """An issued reward in the program of `env`: events for the consumers to read."""
    with RewardsClient(env["REWARDS_TARGET"], env["REWARDS_API_KEY"]) as client:
        reward = client.create_reward(
            name="Mug",
            type=common_pb2.REWARD_TYPE_PRODUCT,
            product=catalog_pb2.ProductConfig(product_id="mug"),
        )
        client.upsert_participant(external_id="carol")
        client.issue_reward(reward.id, ref(external_id="carol"))


def test_the_sdk_consumer(env):
    _with_events(env)
    consumer = subprocess.Popen(
        [sys.executable, "-c", _block("sdk-consumer")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    acked = []
    try:
        lines = [consumer.stdout.readline() for _ in range(2)]
        # It acknowledges each event after printing it: a restarted consumer would resume
        # after the last one. Asked (ack_events with 0 moves nothing) until it has, or 30 s.
        with RewardsClient(env["REWARDS_TARGET"], env["REWARDS_API_KEY"]) as client:
            deadline = time.monotonic() + 30
            while not acked or (acked[-1] < 2 and time.monotonic() < deadline):
                acked.append(client.ack_events("shipper", 0).position)
                time.sleep(0.05)
    finally:
        consumer.kill()
        consumer.wait()
    assert lines == ["1 EVENT_TYPE_REWARD_CREATED\n", "2 EVENT_TYPE_ISSUANCE_ISSUED\n"]
    assert acked[-1] == 2


def test_the_grpcurl_consumer(env):
    _with_events(env)
    out = _run(["bash", "-euo", "pipefail", "-c", _block("grpcurl-consumer")], env)
    assert '"type": "EVENT_TYPE_REWARD_CREATED"' in out
    assert out.count('"type": "EVENT_TYPE_ISSUANCE_ISSUED"') == 2  # watched, then listed
    assert '"position": "2"' in out  # the acknowledged position


@pytest.mark.parametrize("example", sorted((ROOT / "clients/python/examples").glob("*.py")))
def test_every_example_runs(env, example):
    out = _run([sys.executable, str(example)], env)
    assert "replayed: True" in out and "balance: 50 miles" in out
