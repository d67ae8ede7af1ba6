"""The store's invariants for one program, read straight from the database.

`check_program(program_id)` reads every row of the program in one read snapshot (a deferred
read transaction on SQLite, REPEATABLE READ on PostgreSQL) so that it can run while servers
are still writing, and returns a `Report` listing every violation:

- every issuance with a cost has exactly one SPEND entry of that cost, every issuance with a
  credit exactly one EARN entry of that credit, both with its issuance_id; REVERSAL entries
  (the refund and the take-back) exist iff the issuance is REVOKED; no entry points at a
  missing issuance;
- each reward's redeemed_count == the sum of quantity of its non-revoked issuances, and stays
  within max_total and max_per_participant;
- each code pool's issued_count == its codes issued or voided, available_count == its codes
  available, total_count == all its codes; no code belongs to two issuances, and a unique
  coupon issuance holds exactly one code (issued, or voided once revoked);
- every balance: available == the sum of its entries' deltas == lifetime_earned -
  lifetime_spent, >= 0; every entry's balance_after >= 0 and the entries chain from 0 to
  the balance; no entries without a balance row;
- per asset: the sum of available == sum(lifetime_earned) - sum(lifetime_spent) == the sum of
  every entry's delta.
"""

from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

from rewards.v1 import common_pb2

from rewards_service.store.db import database, is_sqlite, session
from rewards_service.store.models import (
    Balance,
    Code,
    CodePool,
    Issuance,
    LedgerEntry,
    Participant,
    Reward,
)

K = common_pb2.LedgerEntryKind
REVOKED = common_pb2.ISSUANCE_STATUS_REVOKED
UNIQUE_COUPON = common_pb2.REWARD_TYPE_UNIQUE_COUPON


@dataclass
class AssetTotals:
    available: int = 0
    earned: int = 0
    spent: int = 0
    entries: int = 0  # sum of the deltas of every entry


@dataclass
class Report:
    program_id: str
    issuances: int = 0
    revoked: int = 0
    entries: int = 0
    balances: int = 0
    rewards: int = 0
    codes: int = 0
    totals: dict[str, AssetTotals] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        head = (
            f"{self.issuances} issuances ({self.revoked} revoked), {self.entries} ledger entries, "
            f"{self.balances} balances, {self.rewards} rewards, {self.codes} codes: "
        )
        if self.ok:
            return head + "all invariants hold"
        shown = "\n  ".join(self.violations[:25])
        more = len(self.violations) - 25
        return (
            head
            + f"{len(self.violations)} VIOLATIONS\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


@contextmanager
def _snapshot():
    """One consistent read of the store that never blocks its writers."""
    if is_sqlite():
        # The models' database begins IMMEDIATE (a write lock); a deferred BEGIN only reads.
        with database.transaction(lock_type="DEFERRED"):
            yield
    else:
        with database.transaction():
            database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield


def check_program(program_id: str) -> Report:
    with session(), _snapshot():
        return _check(program_id)


def assert_invariants(program_id: str) -> Report:
    report = check_program(program_id)
    assert report.ok, report.summary()
    return report


def _check(program_id: str) -> Report:
    report = Report(program_id)
    bad = report.violations.append

    issuances = list(
        Issuance.select(
            Issuance.id,
            Issuance.reward,
            Issuance.participant,
            Issuance.type,
            Issuance.status,
            Issuance.quantity,
            Issuance.cost_asset_id,
            Issuance.cost_amount,
            Issuance.credit_asset_id,
            Issuance.credit_amount,
            Issuance.coupon_code,
        )
        .where(Issuance.program == program_id)
        .tuples()
    )
    entries = list(
        LedgerEntry.select(
            LedgerEntry.id,
            LedgerEntry.participant,
            LedgerEntry.asset,
            LedgerEntry.delta,
            LedgerEntry.balance_after,
            LedgerEntry.kind,
            LedgerEntry.issuance_id,
            LedgerEntry.seq,
        )
        .where(LedgerEntry.program == program_id)
        .tuples()
    )
    balances = list(
        Balance.select(
            Balance.participant,
            Balance.asset,
            Balance.available,
            Balance.lifetime_earned,
            Balance.lifetime_spent,
            Balance.seq,
        )
        .join(Participant)
        .where(Participant.program == program_id)
        .tuples()
    )
    rewards = list(
        Reward.select(
            Reward.id,
            Reward.redeemed_count,
            Reward.max_total,
            Reward.max_per_participant,
        )
        .where(Reward.program == program_id)
        .tuples()
    )
    pools = list(
        CodePool.select(
            CodePool.id, CodePool.total_count, CodePool.available_count, CodePool.issued_count
        )
        .where(CodePool.program == program_id)
        .tuples()
    )
    codes = list(
        Code.select(Code.id, Code.pool, Code.code, Code.status, Code.issuance_id)
        .join(CodePool)
        .where(CodePool.program == program_id)
        .tuples()
    )
    report.issuances = len(issuances)
    report.revoked = sum(i[4] == REVOKED for i in issuances)
    report.entries = len(entries)
    report.balances = len(balances)
    report.rewards = len(rewards)
    report.codes = len(codes)

    # Issuances and their ledger entries.
    by_issuance: dict[str, list[tuple]] = defaultdict(list)
    for entry in entries:
        if entry[6] is not None:
            by_issuance[entry[6]].append(entry)
    known = {i[0] for i in issuances}
    for orphan in sorted(set(by_issuance) - known):
        bad(f"ledger entries point at missing issuance {orphan}")
    for iid, _rew, par, _typ, status, _qty, cost_asset, cost, credit_asset, credit, _ in issuances:
        expected = Counter()
        if cost:
            expected[(K.LEDGER_ENTRY_KIND_SPEND, par, cost_asset, -cost)] += 1
        if credit:
            expected[(K.LEDGER_ENTRY_KIND_EARN, par, credit_asset, credit)] += 1
        if status == REVOKED:
            if cost:
                expected[(K.LEDGER_ENTRY_KIND_REVERSAL, par, cost_asset, cost)] += 1
            if credit:
                expected[(K.LEDGER_ENTRY_KIND_REVERSAL, par, credit_asset, -credit)] += 1
        found = Counter((e[5], e[1], e[2], e[3]) for e in by_issuance.get(iid, ()))
        if found != expected:
            bad(
                f"issuance {iid} (status {status}, cost {cost}, credit {credit}) has entries "
                f"{sorted(found.items())}, expected {sorted(expected.items())}"
            )

    # Caps: redeemed_count, max_total, max_per_participant.
    units: Counter[str] = Counter()
    per_participant: Counter[tuple[str, str]] = Counter()
    for _iid, rew, par, _typ, status, qty, *_ in issuances:
        if rew is not None and status != REVOKED:
            units[rew] += qty
            per_participant[(rew, par)] += qty
    caps = {}
    for rid, redeemed, max_total, max_per_participant in rewards:
        caps[rid] = max_per_participant
        if redeemed != units[rid]:
            bad(f"reward {rid}: redeemed_count {redeemed} != {units[rid]} issued units")
        if max_total is not None and redeemed > max_total:
            bad(f"reward {rid}: redeemed_count {redeemed} > max_total {max_total}")
    for (rid, par), used in per_participant.items():
        cap = caps.get(rid)
        if cap is not None and used > cap:
            bad(f"reward {rid}: participant {par} holds {used} units > max {cap}")

    # Code pools and codes.
    by_pool: dict[str, Counter[str]] = defaultdict(Counter)
    holders: dict[str, list[str]] = defaultdict(list)  # issuance id -> codes
    for _cid, pool, code, status, holder in codes:
        by_pool[pool][status] += 1
        if holder is not None:
            holders[holder].append(code)
        if status == Code.STATUS_AVAILABLE and holder is not None:
            bad(f"code {code!r} of pool {pool} is available but held by {holder}")
        if status != Code.STATUS_AVAILABLE and holder is None:
            bad(f"code {code!r} of pool {pool} is {status} but held by no issuance")
    for pid, total, available, issued in pools:
        counted = by_pool[pid]
        want = (
            sum(counted.values()),
            counted[Code.STATUS_AVAILABLE],
            counted[Code.STATUS_ISSUED] + counted[Code.STATUS_VOIDED],
        )
        if (total, available, issued) != want:
            bad(
                f"code pool {pid}: (total, available, issued) = {(total, available, issued)} "
                f"but the codes say {want}"
            )
    code_status = {(c[4], c[2]): c[3] for c in codes if c[4] is not None}
    for holder, held in holders.items():
        if holder not in known:
            bad(f"codes {held} are held by missing issuance {holder}")
    for iid, _rew, _par, typ, status, *_rest, coupon in issuances:
        if typ != UNIQUE_COUPON:
            continue
        held = holders.get(iid, [])
        if held != [coupon]:
            bad(f"unique coupon issuance {iid} shows {coupon!r} but holds codes {held}")
            continue
        want = Code.STATUS_VOIDED if status == REVOKED else Code.STATUS_ISSUED
        if code_status[(iid, coupon)] != want:
            bad(f"code {coupon!r} of issuance {iid} is {code_status[(iid, coupon)]}, not {want}")
    drawn = Counter(i[10] for i in issuances if i[3] == UNIQUE_COUPON)
    for code, times in drawn.items():
        if times > 1:
            bad(f"code {code!r} was issued {times} times")

    # Balances and the ledger.
    ledgers: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for entry in entries:
        ledgers[(entry[1], entry[2])].append(entry)
        if entry[4] < 0:
            bad(f"ledger entry {entry[0]} has balance_after {entry[4]} < 0")
    seen = set()
    for par, asset, available, earned, spent, last_seq in balances:
        seen.add((par, asset))
        own = ledgers.get((par, asset), [])
        total = sum(e[3] for e in own)
        totals = report.totals.setdefault(asset, AssetTotals())
        totals.available += available
        totals.earned += earned
        totals.spent += spent
        if available < 0:
            bad(f"balance {par}/{asset} is negative: {available}")
        if available != total:
            bad(f"balance {par}/{asset}: available {available} != sum of entries {total}")
        if available != earned - spent:
            bad(f"balance {par}/{asset}: available {available} != {earned} earned - {spent} spent")
        # The chain, in the account's sequence: 1, 2, ... n = the balance's seq, and each
        # entry moves the balance from the previous one's balance_after (0 before the first).
        chain = sorted(own, key=lambda e: e[7])
        if [e[7] for e in chain] != list(range(1, len(chain) + 1)) or last_seq != len(chain):
            bad(
                f"balance {par}/{asset}: entries numbered {[e[7] for e in chain]}, "
                f"balance at seq {last_seq}"
            )
        before = 0
        for e in chain:
            if e[4] - e[3] != before:
                bad(
                    f"ledger entry {e[0]} (seq {e[7]}) moves {par}/{asset} from {e[4] - e[3]}, "
                    f"not from the previous entry's balance_after {before}"
                )
            before = e[4]
        if before != available:
            bad(f"balance {par}/{asset}: the chain ends at {before}, not at {available}")
    for (par, asset), own in ledgers.items():
        report.totals.setdefault(asset, AssetTotals()).entries += sum(e[3] for e in own)
        if (par, asset) not in seen:
            bad(f"{len(own)} ledger entries of {par}/{asset} have no balance row")
    for asset, t in report.totals.items():
        if not t.available == t.earned - t.spent == t.entries:
            bad(
                f"asset {asset}: sum available {t.available}, earned - spent "
                f"{t.earned - t.spent}, sum of entries {t.entries} differ"
            )
    return report


def program_state(program_id: str) -> dict[str, list[tuple]]:
    """Every row a call of this program could change, to prove that a failed call changed
    nothing: issuances and their status, ledger entries, balances, rewards' counters and
    status, pools' counts, codes' status."""
    with session(), _snapshot():
        return {
            "issuances": sorted(
                Issuance.select(Issuance.id, Issuance.status, Issuance.request_id)
                .where(Issuance.program == program_id)
                .tuples()
            ),
            "entries": sorted(
                LedgerEntry.select(LedgerEntry.id, LedgerEntry.delta)
                .where(LedgerEntry.program == program_id)
                .tuples()
            ),
            "balances": sorted(
                Balance.select(
                    Balance.participant,
                    Balance.asset,
                    Balance.available,
                    Balance.lifetime_earned,
                    Balance.lifetime_spent,
                )
                .join(Participant)
                .where(Participant.program == program_id)
                .tuples()
            ),
            "rewards": sorted(
                Reward.select(Reward.id, Reward.redeemed_count, Reward.status, Reward.version)
                .where(Reward.program == program_id)
                .tuples()
            ),
            "pools": sorted(
                CodePool.select(
                    CodePool.id,
                    CodePool.total_count,
                    CodePool.available_count,
                    CodePool.issued_count,
                )
                .where(CodePool.program == program_id)
                .tuples()
            ),
            "codes": sorted(
                Code.select(Code.id, Code.status, Code.issuance_id)
                .join(CodePool)
                .where(CodePool.program == program_id)
                .tuples(),
                key=repr,
            ),
        }
