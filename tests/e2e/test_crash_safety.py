"""Crash safety: write load at a real server process, `kill -9` at random moments, restart on
the same database (the suite's backend: a SQLite file in WAL mode, or PostgreSQL).

After the last kill a fresh server must show that every acknowledged call survived (its
request_id replays to the same issuance or ledger entry), that nothing was half-written (the
invariant checker), and that the balances are exactly what the clients were told.
"""

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from rewards.v1 import catalog_pb2, issuance_pb2, participants_pb2

from rewards_service.store.db import session
from rewards_service.store.models import Issuance, LedgerEntry
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import failure_of, make_api, spawn_server
from tests.invariants import assert_invariants

pytestmark = pytest.mark.slow

KILLS = 6
THREADS = 8
PARTICIPANTS = 12
FUNDS = Decimal("500.00")
CALL_TIMEOUT = 10
# Each round kills only after this many acknowledged calls, so a slow machine still proves
# something; the kill itself then lands at a random moment.
ACKED_PER_KILL = 25
LOAD_DEADLINE = 60
# Refusals by the contract: the call recorded nothing.
REFUSED = {grpc.StatusCode.FAILED_PRECONDITION}
# The answer was lost with the server: the call may or may not have committed.
LOST = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass
class Call:
    kind: str  # issue | grant | adjust
    request: object
    participant_id: str
    outcome: str = "pending"  # ok | refused | unknown | unexpected
    code: str = ""
    result_id: str = ""  # issuance id, or ledger entry id for an adjustment
    delta: Decimal = Decimal(0)  # effect on the participant's POINTS balance


@dataclass
class Scene:
    api: object
    points: str
    earn: str
    priced: str
    coupon: str
    users: list[str]


def _send(api, call: Call, **kwargs):
    if call.kind == "issue":
        return api.issuance.IssueReward(call.request, **kwargs)
    if call.kind == "grant":
        return api.issuance.GrantCustomReward(call.request, **kwargs)
    return api.participants.AdjustBalance(call.request, **kwargs)


def _effect(call: Call, response) -> tuple[str, Decimal]:
    if call.kind == "adjust":
        return response.entry.id, Decimal(response.entry.delta)
    issued = response.issuance
    delta = Decimal(0)
    if issued.HasField("credit"):
        delta += Decimal(issued.credit.amount)
    if issued.HasField("cost"):
        delta -= Decimal(issued.cost.amount)
    return issued.id, delta


def _new_call(rng: random.Random, scene: Scene, request_id: str) -> Call:
    user = rng.choice(scene.users)
    ref = f.ref(user)
    roll = rng.random()
    if roll < 0.55:
        reward_id, quantity = rng.choice(
            [(scene.earn, rng.randint(1, 3)), (scene.priced, rng.randint(1, 2)), (scene.coupon, 1)]
        )
        request = issuance_pb2.IssueRewardRequest(
            reward_id=reward_id, participant=ref, quantity=quantity, request_id=request_id
        )
        return Call("issue", request, user)
    if roll < 0.75:
        request = issuance_pb2.GrantCustomRewardRequest(
            participant=ref,
            amount=f"{rng.randint(100, 10000) / 100:.2f}",
            action_code="crash.test",
            client_reference=request_id,
        )
        return Call("grant", request, user)
    delta = rng.choice(["-25.50", "-3.00", "1.25", "12.00", "40.00"])
    request = participants_pb2.AdjustBalanceRequest(
        participant=ref, asset_id=scene.points, delta=delta, reason="crash", request_id=request_id
    )
    return Call("adjust", request, user)


def _settle(call: Call, send) -> None:
    """Send `call` and record how it ended."""
    try:
        response = send()
    except grpc.RpcError as error:
        call.code = error.code().name
        if error.code() in REFUSED:
            call.outcome, call.code = "refused", failure_of(error).reason
        elif error.code() in LOST:
            call.outcome = "unknown"
        else:
            call.outcome = "unexpected"
        return
    call.outcome, call.code = "ok", "OK"
    call.result_id, call.delta = _effect(call, response)


def _load(api, scene, rng, calls, lock, stop, prefix):
    n = 0
    while not stop.is_set():
        n += 1
        call = _new_call(rng, scene, f"{prefix}-{n}")
        with lock:
            calls.append(call)
        _settle(call, lambda call=call: _send(api, call, timeout=CALL_TIMEOUT))


def _acknowledged(calls: list[Call]) -> int:
    return sum(1 for c in calls if c.outcome == "ok")


def _scene(api) -> Scene:
    points = f.asset(api)
    earn = f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"))
    priced = f.reward(api, cost_asset_id=points.id, unit_cost="2.50", max_total=400)
    pool = f.code_pool(api, [f"CRASH-{i:04d}" for i in range(400)])
    coupon = f.reward(
        api,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        cost_asset_id=points.id,
        unit_cost="1",
    )
    users = [f.participant(api).id for _ in range(PARTICIPANTS)]
    for user in users:
        f.fund(api, user, points.id, str(FUNDS))
    return Scene(api, points.id, earn.id, priced.id, coupon.id, users)


def test_acknowledged_calls_survive_kill_9(store, channel):
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    issued = new_program("crash")
    scene = _scene(make_api(channel, issued.program_id, issued.api_key))
    calls: list[Call] = []
    lock = threading.Lock()
    rounds = []

    for kill in range(KILLS):
        server = spawn_server(store, "--threads", "16")
        with grpc.insecure_channel(server.address) as ch:
            api = make_api(ch, issued.program_id, issued.api_key)
            stop = threading.Event()
            workers = [
                threading.Thread(
                    target=_load,
                    args=(api, scene, random.Random(rng.random()), calls, lock, stop),
                    kwargs={"prefix": f"k{kill}-t{t}-{uuid.uuid4().hex[:6]}"},
                )
                for t in range(THREADS)
            ]
            before = len(calls)
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + LOAD_DEADLINE
            while _acknowledged(calls[before:]) < ACKED_PER_KILL:
                assert time.monotonic() < deadline, (
                    f"round {kill}: {_acknowledged(calls[before:])} calls acknowledged "
                    f"in {LOAD_DEADLINE}s; rounds so far {rounds}"
                )
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 1.2))
            # Each worker has one call in flight now; stop them sending more, then kill.
            stop.set()
            server.process.kill()
            assert server.process.wait(10) == -9
            for worker in workers:
                worker.join(CALL_TIMEOUT + 5)
                assert not worker.is_alive()
        done = Counter(c.outcome for c in calls[before:])
        rounds.append((done["ok"], done["unknown"]))

    outcomes = Counter(c.outcome for c in calls)
    refusals = Counter(c.code for c in calls if c.outcome == "refused")
    unexpected = Counter(c.code for c in calls if c.outcome == "unexpected")
    assert not unexpected, f"unexpected answers under load: {unexpected}"
    acknowledged = [c for c in calls if c.outcome == "ok"]

    # Restart once more and account for every call.
    server = spawn_server(store, "--threads", "16")
    with grpc.insecure_channel(server.address) as ch:
        api = make_api(ch, issued.program_id, issued.api_key)

        def replay(call: Call):
            try:
                return call, _send(api, call, timeout=CALL_TIMEOUT), None
            except grpc.RpcError as error:
                return call, None, error

        with ThreadPoolExecutor(16) as pool:
            replayed = list(pool.map(replay, [c for c in calls if c.outcome in ("ok", "unknown")]))

        found = committed_unacked = applied_now = 0
        missing = []
        for call, response, error in replayed:
            if call.outcome == "ok":
                if error is not None:
                    missing.append((call, error.code()))
                    continue
                result_id, _ = _effect(call, response)
                if response.idempotent_replay and result_id == call.result_id:
                    found += 1
                else:
                    missing.append((call, response))
            elif error is not None:
                assert error.code() in REFUSED, (call, error)
                call.outcome = "refused"
            else:
                # In flight at the kill: either it committed (and replays) or it left nothing
                # behind and is applied now. Both are fine; a half of it is not.
                call.result_id, call.delta = _effect(call, response)
                call.outcome = "ok"
                if response.idempotent_replay:
                    committed_unacked += 1
                else:
                    applied_now += 1
        assert not missing, f"{len(missing)} acknowledged calls lost: {missing[:5]}"
        assert found == len(acknowledged)

        # Nothing else exists: no phantom issuance or adjustment beyond the calls made.
        present = {c.result_id for c in calls if c.outcome == "ok"}
        with session():
            stored = {
                i
                for (i,) in Issuance.select(Issuance.id)
                .where(Issuance.program == issued.program_id)
                .tuples()
            } | {
                e
                for (e,) in LedgerEntry.select(LedgerEntry.id)
                .where(
                    (LedgerEntry.program == issued.program_id)
                    & LedgerEntry.request_id.is_null(False)
                )
                .tuples()
            }
        assert stored == present

        # Nothing half-written: every issuance with its entries and counters, every balance
        # the sum of its entries.
        report = assert_invariants(issued.program_id)

        # The balances are exactly what the clients were told.
        expected = {u: FUNDS for u in scene.users}
        for call in calls:
            if call.outcome == "ok":
                expected[call.participant_id] += call.delta
        for user, amount in expected.items():
            assert Decimal(f.balance(api, user, scene.points).available) == amount, user
        assert server.stop() == 0

    elapsed = time.monotonic() - started
    print(
        f"\ncrash safety [{store.split(':')[0]}] seed={seed}: {KILLS} kills survived; "
        f"per kill (acknowledged, in flight): {rounds}; calls {dict(outcomes)}; "
        f"refusals {dict(refusals)}; "
        f"acknowledged {len(acknowledged)}, found {found}; in flight at a kill: "
        f"{committed_unacked} had committed, {applied_now} had not; {report.summary()}; "
        f"{elapsed:.1f}s"
    )
