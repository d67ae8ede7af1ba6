"""Ledger conservation, Jepsen-bank style: many participants, random concurrent earn / spend /
adjust / revoke against two server processes sharing the suite's database, for a bounded time.

While the load runs, a sampler reads the store in one snapshot at regular points; at the end
the clients' own account of every acknowledged call must match the store to the cent:
- no balance below zero, each balance == the sum of its entries == earned - spent;
- per asset, the sum of balances == sum(lifetime_earned) - sum(lifetime_spent);
- the invariant checker passes (issuances <-> entries, caps, codes);
- every participant holds exactly what the acknowledged calls add up to.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import grpc
import pytest
from rewards.v1 import catalog_pb2, issuance_pb2

from rewards_service.store.db import session
from rewards_service.store.models import Balance, Code, LedgerEntry, Reward
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import failure_of, make_api, spawn_server
from tests.invariants import check_program

pytestmark = pytest.mark.slow

SECONDS = 10
THREADS = 16
PARTICIPANTS = 40
OPENING = Decimal("20.00")
SAMPLE_EVERY = 0.5
# The only refusal a bank operation may meet: not enough money. Anything else is a failure.
EXPECTED_REFUSALS = {"INSUFFICIENT_BALANCE"}


@pytest.fixture(scope="module")
def two_servers(store):
    servers = [spawn_server(store, "--threads", "16") for _ in range(2)]
    channels = [grpc.insecure_channel(s.address) for s in servers]
    yield channels
    for channel in channels:
        channel.close()
    for server in servers:
        assert server.stop() == 0


@dataclass
class Bank:
    points: str
    earn: list[str]
    spend: list[str]
    users: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    expected: dict[str, Decimal] = field(default_factory=dict)
    issued: list[tuple[str, str, Decimal]] = field(default_factory=list)  # (id, user, delta)
    revoked: set[str] = field(default_factory=set)
    outcomes: Counter = field(default_factory=Counter)  # (op, OK or reason)

    def record(self, op: str, user: str, delta: Decimal, issuance_id: str = "") -> None:
        with self.lock:
            self.expected[user] += delta
            self.outcomes[(op, "OK")] += 1
            if issuance_id:
                self.issued.append((issuance_id, user, delta))


def _issue_delta(issued) -> Decimal:
    delta = Decimal(0)
    if issued.HasField("credit"):
        delta += Decimal(issued.credit.amount)
    if issued.HasField("cost"):
        delta -= Decimal(issued.cost.amount)
    return delta


def _operate(api, bank: Bank, rng: random.Random) -> None:
    user = rng.choice(bank.users)
    roll = rng.random()
    try:
        if roll < 0.25:
            op = "earn"
            got = f.issue(api, rng.choice(bank.earn), user, quantity=rng.randint(1, 3)).issuance
            bank.record(op, user, _issue_delta(got), got.id)
        elif roll < 0.6:
            op = "spend"
            got = f.issue(api, rng.choice(bank.spend), user).issuance
            bank.record(op, user, _issue_delta(got), got.id)
        elif roll < 0.85:
            op = "adjust"
            delta = rng.choice(["-12.34", "-5.00", "-0.01", "0.01", "3.33", "8.00"])
            entry = f.fund(api, user, bank.points, delta).entry
            bank.record(op, user, Decimal(entry.delta))
        else:
            op = "revoke"
            with bank.lock:
                if not bank.issued:
                    return
                # Sometimes one already revoked, or revoked by another thread right now.
                issuance_id, owner, delta = rng.choice(bank.issued)
            api.issuance.RevokeIssuance(
                issuance_pb2.RevokeIssuanceRequest(id=issuance_id, reason="bank")
            )
            with bank.lock:
                bank.outcomes[(op, "OK")] += 1
                if issuance_id not in bank.revoked:
                    bank.revoked.add(issuance_id)
                    bank.expected[owner] -= delta
    except grpc.RpcError as error:
        with bank.lock:
            bank.outcomes[(op, failure_of(error).reason)] += 1


def _setup(api) -> Bank:
    points = f.asset(api).id
    earn = [
        f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points, amount=amount)).id
        for amount in ("1", "2.50")
    ]
    pool = f.code_pool(api, [f"BANK-{i:05d}" for i in range(3000)])
    spend = [
        f.reward(api, cost_asset_id=points, unit_cost="4").id,
        f.reward(api, cost_asset_id=points, unit_cost="9.25").id,
        f.reward(
            api,
            unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
            cost_asset_id=points,
            unit_cost="2",
            max_per_participant=3000,
        ).id,
    ]
    users = [f.participant(api).id for _ in range(PARTICIPANTS)]
    for user in users:
        f.fund(api, user, points, str(OPENING))
    return Bank(points, earn, spend, users, expected=dict.fromkeys(users, OPENING))


def test_concurrent_earn_spend_adjust_revoke_conserve_every_balance(channel, two_servers):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    issued = new_program("bank")
    bank = _setup(make_api(channel, issued.program_id, issued.api_key))
    apis = [make_api(ch, issued.program_id, issued.api_key) for ch in two_servers]
    deadline = time.monotonic() + SECONDS
    samples = []

    def client(n: int) -> None:
        local = random.Random(rng.random() + n)
        while time.monotonic() < deadline:
            _operate(apis[n % len(apis)], bank, local)

    def sampler() -> None:
        while time.monotonic() < deadline:
            samples.append(check_program(issued.program_id))
            time.sleep(SAMPLE_EVERY)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    threads.append(threading.Thread(target=sampler))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
        assert not thread.is_alive()

    final = check_program(issued.program_id)
    refusals: Counter = Counter()
    for (_, reason), n in bank.outcomes.items():
        refusals[reason] += n
    ok = refusals.pop("OK", 0)
    print(
        f"\nbank [{issued.program_id}] seed={seed}: {sum(bank.outcomes.values())} operations "
        f"in {SECONDS}s ({ok} acknowledged), {dict(sorted(bank.outcomes.items()))}; "
        f"{len(bank.revoked)} issuances revoked; {len(samples)} sampled checks, "
        f"{sum(not s.ok for s in samples)} failed; final: {final.summary()}"
    )
    assert set(refusals) <= EXPECTED_REFUSALS, refusals
    assert ok >= 300, "too little load to prove anything"
    assert len(samples) >= SECONDS / SAMPLE_EVERY / 2
    for sample in samples:
        assert sample.ok, sample.summary()
    assert final.ok, final.summary()

    # The store holds exactly what the acknowledged calls add up to, participant by participant.
    scale = Decimal("0.01")
    with session():
        stored = {
            participant: Decimal(available) * scale
            for participant, available in Balance.select(Balance.participant, Balance.available)
            .where(Balance.asset == bank.points)
            .tuples()
        }
    assert stored == bank.expected
    totals = final.totals[bank.points]
    assert Decimal(totals.available) * scale == sum(bank.expected.values())
    assert min(stored.values()) >= 0
    assert len(bank.revoked) > 0 and bank.outcomes[("spend", "OK")] > 0


def test_the_checker_catches_each_broken_invariant(admin):
    """Corrupt a healthy program row by row: the checker names each break."""
    points = f.asset(admin)
    pool = f.code_pool(admin, ["CHK-1", "CHK-2", "CHK-3"])
    coupon = f.reward(
        admin,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        cost_asset_id=points.id,
        unit_cost="1",
    )
    earn = f.reward(admin, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"))
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "10")
    drawn = f.issue(admin, coupon.id, user.id).issuance
    f.issue(admin, earn.id, user.id)
    admin.issuance.RevokeIssuance(issuance_pb2.RevokeIssuanceRequest(id=drawn.id))
    healthy = check_program(admin.program_id)
    assert healthy.ok, healthy.summary()
    assert (healthy.issuances, healthy.revoked, healthy.codes) == (2, 1, 3)

    def broken(change, undo, expected: str) -> None:
        with session():
            change()
        try:
            report = check_program(admin.program_id)
            assert not report.ok
            assert any(expected in v for v in report.violations), report.violations
        finally:
            with session():
                undo()
        assert check_program(admin.program_id).ok

    where_balance = (Balance.participant == user.id) & (Balance.asset == points.id)
    broken(
        lambda: Balance.update(available=Balance.available + 1).where(where_balance).execute(),
        lambda: Balance.update(available=Balance.available - 1).where(where_balance).execute(),
        "!= sum of entries",
    )
    broken(
        lambda: (
            Reward.update(redeemed_count=Reward.redeemed_count + 1)
            .where(Reward.id == earn.id)
            .execute()
        ),
        lambda: (
            Reward.update(redeemed_count=Reward.redeemed_count - 1)
            .where(Reward.id == earn.id)
            .execute()
        ),
        "issued units",
    )
    broken(
        lambda: (
            Code.update(status=Code.STATUS_ISSUED).where(Code.issuance_id == drawn.id).execute()
        ),
        lambda: (
            Code.update(status=Code.STATUS_VOIDED).where(Code.issuance_id == drawn.id).execute()
        ),
        "not voided",
    )
    reversal = (LedgerEntry.issuance_id == drawn.id) & (LedgerEntry.delta > 0)
    with session():
        kept = LedgerEntry.get(reversal)
    broken(
        lambda: LedgerEntry.delete().where(LedgerEntry.id == kept.id).execute(),
        lambda: LedgerEntry.insert(**kept.__data__).execute(),
        f"issuance {drawn.id}",
    )
