"""One program floods the server; another program's calls are timed meanwhile.

    python -m bench.flood [--calls 2000] [--seconds 10] [--old-design 5e1d650]

The flooder keeps `--calls` ListIssuances(page_size=1000) in flight at once (over connections
of 100 streams each) for `--seconds`; the victim, another program with its own key, sends one
GetReward after another. Prints the victim's latencies (p50, p99, max, failures) without and
during the flood, and what the flooder got (answers, refusals), for this design and, with
--old-design, for the source tree of that commit. SQLite, a fresh file each."""

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    issuance_pb2,
    issuance_pb2_grpc,
    participants_pb2,
    participants_pb2_grpc,
)

from bench.__main__ import _bootstrap_key, _export, start_ours

ISSUANCES = 1000
PER_CONNECTION = 100
# rewards-admin of whichever source tree is on the path.
CLI = "from rewards_service.cli import main; main()"


def _create_program(database_url: str, name: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CLI, "create-program", name, "--json"],
        env={**os.environ, **env, "REWARDS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["api_key"]


def _seed(target: str, key: str, issuances: int) -> str:
    """A reward, a participant and `issuances` issuances of it; returns the reward id."""
    md = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(target) as channel:
        reward = catalog_pb2_grpc.RewardCatalogStub(channel).CreateReward(
            catalog_pb2.CreateRewardRequest(
                reward=catalog_pb2.Reward(
                    name="Mug",
                    type=common_pb2.REWARD_TYPE_PRODUCT,
                    product=catalog_pb2.ProductConfig(product_id="mug"),
                )
            ),
            metadata=md,
        )
        person = participants_pb2_grpc.ParticipantsStub(channel).UpsertParticipant(
            participants_pb2.UpsertParticipantRequest(
                participant=participants_pb2.Participant(external_id="flood")
            ),
            metadata=md,
        )
        issue = issuance_pb2_grpc.RewardIssuanceStub(channel).IssueReward
        request = issuance_pb2.IssueRewardRequest(
            reward_id=reward.id,
            participant=common_pb2.ParticipantRef(id=person.id),
            notes="x" * 200,
        )
        for _ in range(issuances):
            issue(request, metadata=md)
    return reward.id


def _victim(target: str, key: str, reward_id: str, seconds: float) -> dict:
    md = (("authorization", f"Bearer {key}"),)
    latencies, failures = [], Counter()
    with grpc.insecure_channel(target) as channel:
        get = catalog_pb2_grpc.RewardCatalogStub(channel).GetReward
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                get(catalog_pb2.GetRewardRequest(id=reward_id), metadata=md, timeout=60)
                latencies.append((time.perf_counter() - started) * 1000)
            except grpc.RpcError as error:
                failures[error.code().name] += 1
    latencies.sort()
    return {
        "calls": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[math.ceil(len(latencies) * 0.99) - 1], 2) if latencies else None,
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "failures": dict(failures),
    }


async def _flood(target: str, key: str, calls: int, seconds: float) -> dict:
    md = (("authorization", f"Bearer {key}"),)
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(-(-calls // PER_CONNECTION))
    ]
    outcomes: Counter = Counter()
    until = time.monotonic() + seconds

    async def keep_one(channel: grpc.aio.Channel) -> None:
        stub = issuance_pb2_grpc.RewardIssuanceStub(channel)
        while time.monotonic() < until:
            try:
                await stub.ListIssuances(
                    issuance_pb2.ListIssuancesRequest(page_size=1000), metadata=md, timeout=120
                )
                outcomes["OK"] += 1
            except grpc.RpcError as error:
                outcomes[error.code().name] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(keep_one(channels[i // PER_CONNECTION]) for i in range(calls)))
    for channel in channels:
        await channel.close()
    return dict(outcomes)


def measure(label: str, calls: int, seconds: float, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/flood.db"
        server = start_ours(label, url, Path(tmp) / "server.log", env=env)
        try:
            flooder_key = _bootstrap_key(Path(tmp) / "server.log")
            victim_key = _create_program(url, "victim", env)
            _seed(server.target, flooder_key, ISSUANCES)
            victim_reward = _seed(server.target, victim_key, 0)
            quiet = _victim(server.target, victim_key, victim_reward, 3)
            flood = subprocess.Popen(
                [
                    *(sys.executable, "-m", "bench.flood", "--flood", server.target, flooder_key),
                    *("--calls", str(calls), "--seconds", str(seconds)),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)  # the flood's calls are in flight
            during = _victim(server.target, victim_key, victim_reward, seconds - 1)
            flooded = json.loads(flood.communicate(timeout=seconds + 300)[0])
        finally:
            server.stop()
    return {"design": label, "victim_quiet": quiet, "victim_during": during, "flood": flooded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--old-design", default="")
    parser.add_argument("--flood", nargs=2, metavar=("TARGET", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        print(json.dumps(asyncio.run(_flood(*args.flood, args.calls, args.seconds))))
        return
    results = [measure("this design", args.calls, args.seconds, {})]
    if args.old_design:
        with tempfile.TemporaryDirectory() as tmp:
            old_src = _export(args.old_design, Path(tmp))
            label = f"design at {args.old_design}"
            results.append(measure(label, args.calls, args.seconds, {"PYTHONPATH": str(old_src)}))
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
