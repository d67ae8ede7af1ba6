"""make soak: mixed traffic at a fixed rate for a fixed time, then the store's invariants.

    python -m bench.soak --seconds 30 --rate 200 [--database-url postgresql://...]

Starts a server on a temporary SQLite file (or the given database), seeds a program, and
sends calls on an open-loop schedule (call i is due at start + i / rate, whatever the server's
pace) from a thread pool: IssueReward with a new request_id, IssueReward replays, GetIssuance,
ListIssuances, AdjustBalance and ClaimIssuance. Prints errors by code and reason, p50/p99
latency per RPC, and the invariant check of the program at the end. Exits non-zero when an
invariant is broken or a replay did not return its original issuance. Figures, not pass/fail.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    issuance_pb2,
    issuance_pb2_grpc,
    participants_pb2,
    participants_pb2_grpc,
)

from bench import seed
from rewards_service.services import programs
from rewards_service.store.db import session
from tests.invariants import check_program

CALL_TIMEOUT = 10
# Share of each kind of call in the mix.
MIX = {"issue": 30, "replay": 15, "get": 15, "list": 10, "adjust": 20, "claim": 10}


def start_server(database_url: str, log_path: Path, threads: int):
    log = log_path.open("w")
    command = [sys.executable, "-m", "rewards_service", "--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*command, "--threads", str(threads)],
        env={**os.environ, "REWARDS_DATABASE_URL": database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        for line in log_path.read_text().splitlines():
            if '"event":"serving"' in line:
                return process, json.loads(line)["address"]
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start:\n" + log_path.read_text())


@dataclass
class Stubs:
    catalog: catalog_pb2_grpc.RewardCatalogStub
    issuance: issuance_pb2_grpc.RewardIssuanceStub
    participants: participants_pb2_grpc.ParticipantsStub
    metadata: tuple


@dataclass
class State:
    points: str
    rewards: list[str]
    users: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: list[tuple[str, issuance_pb2.IssueRewardRequest]] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter = field(default_factory=Counter)  # (rpc, code, reason)
    replay_mismatches: int = 0
    lag: list[float] = field(default_factory=list)


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return error.details() or ""


def setup(stubs: Stubs, participants: int, codes: int, prefix: str) -> State:
    md = stubs.metadata
    points = stubs.catalog.CreateAsset(
        catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(code="POINTS", name="P", scale=2)),
        metadata=md,
    ).id
    pool = stubs.catalog.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(code_pool=catalog_pb2.CodePool(name="soak")),
        metadata=md,
    )
    for start in range(0, codes, 5000):
        stubs.catalog.AddCodes(
            catalog_pb2.AddCodesRequest(
                code_pool_id=pool.id,
                codes=[f"SOAK-{prefix}-{i:07d}" for i in range(start, min(codes, start + 5000))],
            ),
            metadata=md,
        )
    rewards = [
        catalog_pb2.Reward(
            name="5 points",
            type=common_pb2.REWARD_TYPE_POINTS,
            points=catalog_pb2.PointsConfig(asset_id=points, amount="5"),
        ),
        catalog_pb2.Reward(
            name="product",
            type=common_pb2.REWARD_TYPE_PRODUCT,
            product=catalog_pb2.ProductConfig(product_id="sku-soak"),
            cost_asset_id=points,
            unit_cost="3",
        ),
        catalog_pb2.Reward(
            name="coupon",
            type=common_pb2.REWARD_TYPE_UNIQUE_COUPON,
            unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
            cost_asset_id=points,
            unit_cost="1",
        ),
    ]
    reward_ids = [
        stubs.catalog.CreateReward(catalog_pb2.CreateRewardRequest(reward=r), metadata=md).id
        for r in rewards
    ]
    users = []
    for n in range(participants):
        user = stubs.participants.UpsertParticipant(
            participants_pb2.UpsertParticipantRequest(
                participant=participants_pb2.Participant(external_id=f"soak-{prefix}-{n}")
            ),
            metadata=md,
        ).id
        stubs.participants.AdjustBalance(
            participants_pb2.AdjustBalanceRequest(
                participant=common_pb2.ParticipantRef(id=user),
                asset_id=points,
                delta="100.00",
                reason="soak opening",
            ),
            metadata=md,
        )
        users.append(user)
    return State(points, reward_ids, users)


def one_call(stubs: Stubs, state: State, rng: random.Random, kind: str, n: int):
    """(rpc name, the call) for a call of `kind`; reads fall back to an issue when empty."""
    md = stubs.metadata
    with state.lock:
        known = state.issued[rng.randrange(len(state.issued))] if state.issued else None
    if kind in ("replay", "get", "claim") and known is None:
        kind = "issue"
    if kind == "issue":
        request = issuance_pb2.IssueRewardRequest(
            reward_id=rng.choice(state.rewards),
            participant=common_pb2.ParticipantRef(id=rng.choice(state.users)),
            request_id=f"soak-{n}-{uuid.uuid4().hex[:8]}",
        )

        def issue():
            response = stubs.issuance.IssueReward(request, metadata=md, timeout=CALL_TIMEOUT)
            with state.lock:
                state.issued.append((response.issuance.id, request))

        return "IssueReward", issue
    if kind == "replay":
        issuance_id, request = known

        def replay():
            response = stubs.issuance.IssueReward(request, metadata=md, timeout=CALL_TIMEOUT)
            if not response.idempotent_replay or response.issuance.id != issuance_id:
                with state.lock:
                    state.replay_mismatches += 1

        return "IssueReward replay", replay
    if kind == "get":
        request = issuance_pb2.GetIssuanceRequest(id=known[0])
        return "GetIssuance", lambda: stubs.issuance.GetIssuance(
            request, metadata=md, timeout=CALL_TIMEOUT
        )
    if kind == "list":
        request = issuance_pb2.ListIssuancesRequest(
            page_size=50, participant=common_pb2.ParticipantRef(id=rng.choice(state.users))
        )
        return "ListIssuances", lambda: stubs.issuance.ListIssuances(
            request, metadata=md, timeout=CALL_TIMEOUT
        )
    if kind == "adjust":
        request = participants_pb2.AdjustBalanceRequest(
            participant=common_pb2.ParticipantRef(id=rng.choice(state.users)),
            asset_id=state.points,
            delta=rng.choice(["-7.50", "-2.00", "1.00", "4.25"]),
            reason="soak",
            request_id=f"soak-adj-{n}-{uuid.uuid4().hex[:8]}",
        )
        return "AdjustBalance", lambda: stubs.participants.AdjustBalance(
            request, metadata=md, timeout=CALL_TIMEOUT
        )
    request = issuance_pb2.ClaimIssuanceRequest(id=known[0])
    return "ClaimIssuance", lambda: stubs.issuance.ClaimIssuance(
        request, metadata=md, timeout=CALL_TIMEOUT
    )


def drive(stubs: Stubs, state: State, *, seconds: float, rate: float, threads: int, seed: int):
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    total = int(seconds * rate)

    def run(rpc: str, call, due: float) -> None:
        started = time.perf_counter()
        lag = started - due
        try:
            call()
            code, reason = "OK", ""
        except grpc.RpcError as error:
            code, reason = error.code().name, _reason(error)
        took = time.perf_counter() - started
        with state.lock:
            state.latencies[rpc].append(took)
            state.outcomes[(rpc, code, reason)] += 1
            state.lag.append(lag)

    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            rpc, call = one_call(stubs, state, rng, rng.choices(kinds, weights)[0], n)
            pool.submit(run, rpc, call, due)
        sent = time.perf_counter() - start
    return total, sent, time.perf_counter() - start


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def report(state: State, total: int, sent: float, elapsed: float) -> None:
    print(
        f"sent {total} calls in {sent:.1f}s ({total / sent:.1f}/s), all answered after "
        f"{elapsed:.1f}s; start lag behind schedule p50 {_ms(state.lag, 0.5):.2f} ms, "
        f"p99 {_ms(state.lag, 0.99):.2f} ms, max {_ms(state.lag, 1.0):.2f} ms"
    )
    print(f"\n{'rpc':<20} {'calls':>7} {'ok':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for rpc in sorted(state.latencies):
        values = state.latencies[rpc]
        ok = sum(n for (r, code, _), n in state.outcomes.items() if r == rpc and code == "OK")
        print(
            f"{rpc:<20} {len(values):>7} {ok:>7} {_ms(values, 0.5):>8.2f} "
            f"{_ms(values, 0.99):>8.2f} {_ms(values, 1.0):>8.2f}"
        )
    errors: Counter = Counter()
    for (rpc, code, reason), n in state.outcomes.items():
        if code != "OK":
            errors[(code, reason, rpc)] += n
    print("\nerrors by code:" + ("" if errors else " none"))
    for (code, reason, rpc), n in sorted(errors.items()):
        print(f"  {code:<20} {reason:<24} {rpc:<20} {n:>6}")
    by_code = Counter()
    for (code, _, _), n in errors.items():
        by_code[code] += n
    if by_code:
        print("  totals: " + ", ".join(f"{code} {n}" for code, n in sorted(by_code.items())))
    replays = len(state.latencies.get("IssueReward replay", []))
    print(
        f"\nreplays: {replays}, "
        + (
            "each returned its original issuance"
            if not state.replay_mismatches
            else f"{state.replay_mismatches} did NOT return the original issuance"
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200, help="calls per second")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--threads", type=int, default=32, help="client threads")
    parser.add_argument("--server-threads", type=int, default=16)
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'soak.db'}"
        backend = urlparse(database_url).scheme
        key = seed.program(database_url)  # also opens the store here for the final check
        server, target = start_server(database_url, Path(tmp) / "server.log", args.server_threads)
        channel = grpc.insecure_channel(target)
        try:
            stubs = Stubs(
                catalog_pb2_grpc.RewardCatalogStub(channel),
                issuance_pb2_grpc.RewardIssuanceStub(channel),
                participants_pb2_grpc.ParticipantsStub(channel),
                (("authorization", f"Bearer {key}"),),
            )
            prefix = uuid.uuid4().hex[:6]
            codes = max(1000, int(args.seconds * args.rate * 0.2))
            state = setup(stubs, args.participants, codes, prefix)
            with session():
                program_id = programs.authenticate(key).program_id
            print(
                f"soak: {args.seconds:g}s at {args.rate:g} calls/s on {backend} "
                f"(server threads {args.server_threads}, client threads {args.threads}, "
                f"{args.participants} participants, {codes} codes, seed {run_seed}); "
                f"mix {MIX}",
                flush=True,
            )
            total, sent, elapsed = drive(
                stubs,
                state,
                seconds=args.seconds,
                rate=args.rate,
                threads=args.threads,
                seed=run_seed,
            )
        finally:
            channel.close()
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(30)
        report(state, total, sent, elapsed)
        print(f"server exit code after SIGTERM: {exit_code}")
        checked = check_program(program_id)
        print(f"\ninvariants: {checked.summary()}")
        for asset, totals in checked.totals.items():
            print(
                f"  asset {asset}: sum available {totals.available}, earned - spent "
                f"{totals.earned - totals.spent}, sum of entries {totals.entries} (minor units)"
            )
    return 0 if checked.ok and not state.replay_mismatches and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
